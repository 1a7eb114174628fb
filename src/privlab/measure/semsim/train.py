"""Triplet training of the SemSim embedding on recognisability labels.

Each triplet is (anchor = an original image, positive = a reconstruction of it that was **recognised**, negative =
one that was **not**), and the loss is ``TripletMarginLoss(margin = 1, p = 2)``:
``max(0, ‖φ(a) − φ(p)‖₂ − ‖φ(a) − φ(n)‖₂ + margin)``. Two samplers:

``paper``
    the paper's description: for every original with at least one recognised reconstruction, draw a positive among
    them and a negative among its unrecognised ones (or, when it has none, from the pool of negatives without an
    original — ``others/`` — and then from the unrecognised reconstructions of other originals).
``psnr``
    the PSNR-weighted variant: two positives and two negatives per anchor; the loss is the mean of the four cross
    hinge terms ``max(0, w⁺ᵢ·d(a, pᵢ) − w⁻ⱼ·d(a, nⱼ) + margin)`` with ``w⁺₁ = 2σ(psnr(p₂) − psnr(p₁))`` (the
    positive with the *lower* PSNR weighs more: a recognised reconstruction that is far in pixels must still come
    close) and ``w⁻₁ = 2σ(psnr(n₁) − psnr(n₂))`` (the negative with the *higher* PSNR weighs more: pixel-close yet
    unrecognised). Equal PSNRs give weight 1 and the plain triplet loss. (Written from the paper's description; the
    original code's weighting is not reproduced exactly.)

Optimiser as the original ("bi-conservative"): SGD lr 0.05, momentum 0.9, Nesterov, weight decay 5e-4, LR × 0.1 at
⌊E/2.667⌋, ⌊E/1.6⌋ and ⌊E/1.142⌋ epochs; augmentation (train only): random crop with ``input_size/8`` padding and,
unless ``augment: crop``, horizontal flips. The resize and normalisation are the same as at scoring time.

Initialisation (``pretrain``): ``none`` trains the trunk from scratch (random init); ``classifier`` first trains the
trunk with a temporary linear head as a classifier on a labelled set of *clean* images (the training split of the
data set the originals come from — never the originals themselves), with Gaussian pixel noise of a random strength
``σ ~ U(0, pretrain_noise)`` added to each training image so that the features stay meaningful on noisy
reconstructions, then drops the head and fine-tunes with triplets; a path to a ``.safetensors`` file loads trunk
weights from it (a SemSim checkpoint or a bare trunk state dict; local files only). The paper's network started from
an ImageNet-pretrained ResNet-18; this is the analogue when no such weights fit the images.

Example:
    >>> import torch
    >>> a = torch.zeros(1, 2); p = torch.tensor([[3.0, 4.0]]); n = torch.tensor([[1.0, 0.0]])
    >>> round(float(triplet_loss(a, p, n)), 4)  # max(0, 5 − 1 + 1)
    5.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import nn

from privlab.config import Spec
from privlab.context import Progress
from privlab.errors import ConfigError, FileFormatError
from privlab.measure.semsim.annotations import Manifest
from privlab.measure.semsim.model import SemSimNet, preprocess

__all__ = [
    "SemSimTrainConfig",
    "TrainResult",
    "TripletData",
    "load_pretrained_trunk",
    "pretrain_classifier",
    "psnr_weighted_triplet_loss",
    "sample_triplets",
    "train_semsim",
    "triplet_loss",
]


class SemSimTrainConfig(Spec):
    """How a SemSim network is trained (defaults: the paper's, for a GPU)."""

    epochs: int = Field(default=100, ge=1, le=100_000, description="passes over the originals")
    batch_size: int = Field(default=64, ge=1, description="triplets per step")
    lr: float = Field(default=0.05, gt=0, description="SGD learning rate")
    momentum: float = Field(default=0.9, ge=0, lt=1, description="SGD (Nesterov) momentum")
    weight_decay: float = Field(default=5e-4, ge=0, description="L2 weight decay")
    margin: float = Field(default=1.0, gt=0, description="triplet margin")
    sampler: Literal["paper", "psnr"] = Field(
        default="paper", description="paper: (ori, recognised, not); psnr: weighted"
    )
    triplets_per_original: int = Field(default=4, ge=1, description="triplets drawn per original and epoch")
    width: int = Field(default=64, ge=1, le=256, description="ResNet-18 width (64 → 512-d embedding)")
    input_size: int = Field(default=32, ge=8, le=512, description="images are resized to input_size²")
    l2_normalize: bool = Field(default=True, description="L2-normalise embeddings (training and scoring)")
    augment: Literal["crop+flip", "crop", "none"] = Field(default="crop+flip", description="train-time augmentation")
    pretrain: str = Field(
        default="none",
        description="trunk initialisation: none (random), classifier (train on clean labelled images first), "
        "or a local .safetensors file with trunk weights",
    )
    pretrain_epochs: int = Field(default=10, ge=1, le=10_000, description="classifier pretraining: epochs")
    pretrain_lr: float = Field(default=1e-3, gt=0, description="classifier pretraining: Adam learning rate")
    pretrain_noise: float = Field(
        default=0.5, ge=0, le=2, description="classifier pretraining: Gaussian noise σ ~ U(0, this) per image"
    )

    @field_validator("pretrain")
    @classmethod
    def _pretrain(cls, v: str) -> str:
        if v in ("none", "classifier") or v.endswith(".safetensors"):
            return v
        raise ValueError(f"pretrain {v!r}: use none, classifier or a path to a .safetensors file with trunk weights")


@dataclass
class TripletData:
    """Images ready for triplet sampling (all preprocessed to one size, ``[0, 1]``).

    Attributes:
        originals: ``K×C×S×S``.
        recs: ``M×C×S×S`` reconstructions.
        rec_original: ``[M]`` index of each reconstruction's original, −1 for a negative without one.
        recognised: ``[M]`` bool.
        psnr: ``[M]`` PSNR (dB, data range 1) of each reconstruction against its original at size S (NaN without).
        settings: ``[M]`` setting names.
    """

    originals: torch.Tensor
    recs: torch.Tensor
    rec_original: torch.Tensor
    recognised: torch.Tensor
    psnr: torch.Tensor
    settings: list[str] = field(default_factory=list)

    @classmethod
    def from_tensors(
        cls,
        originals: torch.Tensor,
        recs: torch.Tensor,
        rec_original: torch.Tensor,
        recognised: torch.Tensor,
        *,
        in_channels: int,
        input_size: int,
        settings: list[str] | None = None,
    ) -> TripletData:
        """Preprocess and index images (originals ``K×C×H×W``, recs ``M×C×H×W``, both ``[0, 1]``)."""
        o = preprocess(originals, in_channels=in_channels, input_size=input_size)
        r = preprocess(recs, in_channels=in_channels, input_size=input_size)
        idx = torch.as_tensor(rec_original, dtype=torch.long).reshape(-1)
        rec_ok = torch.as_tensor(recognised, dtype=torch.bool).reshape(-1)
        if len(idx) != len(r) or len(rec_ok) != len(r):
            raise ConfigError(f"{len(r)} reconstructions but {len(idx)} original indices and {len(rec_ok)} labels")
        if len(idx) and (int(idx.max()) >= len(o) or int(idx.min()) < -1):
            raise ConfigError("rec_original must index the originals (or be −1 for a negative without one)")
        psnr = torch.full((len(r),), float("nan"))
        has = idx >= 0
        if has.any():
            mse = ((r[has] - o[idx[has]]) ** 2).flatten(1).mean(1).double()
            psnr[has] = (10 * torch.log10(1.0 / mse.clamp_min(1e-10))).float()
        return cls(o, r, idx, rec_ok, psnr, list(settings or ["default"] * len(r)))

    @classmethod
    def from_manifest(cls, manifest: Manifest, *, in_channels: int, input_size: int) -> TripletData:
        """Read every image of ``manifest`` (PNGs, paths checked to stay in its folder)."""
        from privlab.data.reconstructions import read_png

        ori_index: dict[str, int] = {}
        originals, recs, rec_original, recognised, settings = [], [], [], [], []
        for r in manifest.records:
            if r.original and r.original not in ori_index:
                ori_index[r.original] = len(originals)
                originals.append(_prep(read_png(manifest.resolve(r.original)), in_channels, input_size))
            recs.append(_prep(read_png(manifest.resolve(r.reconstruction)), in_channels, input_size))
            rec_original.append(ori_index[r.original] if r.original else -1)
            recognised.append(r.recognised)
            settings.append(r.setting)
        if not originals:
            raise ConfigError(f"manifest {manifest.path} has no row with an original image")
        return cls.from_tensors(
            torch.stack(originals),
            torch.stack(recs),
            torch.tensor(rec_original),
            torch.tensor(recognised),
            in_channels=in_channels,
            input_size=input_size,
            settings=settings,
        )


def _prep(img: torch.Tensor, in_channels: int, input_size: int) -> torch.Tensor:
    return preprocess(img[None], in_channels=in_channels, input_size=input_size)[0]


def triplet_loss(a: torch.Tensor, p: torch.Tensor, n: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Mean of ``max(0, ‖a − p‖₂ − ‖a − n‖₂ + margin)`` over rows (``torch.nn.TripletMarginLoss(margin, p=2)``)."""
    return F.triplet_margin_loss(a, p, n, margin=margin, p=2)


def psnr_weighted_triplet_loss(
    a: torch.Tensor,
    p1: torch.Tensor,
    p2: torch.Tensor,
    n1: torch.Tensor,
    n2: torch.Tensor,
    psnr: torch.Tensor,
    margin: float = 1.0,
) -> torch.Tensor:
    """The PSNR-weighted loss (module docstring); ``psnr`` is ``B×4``: PSNR of p1, p2, n1, n2 (dB)."""
    wp1 = 2 * torch.sigmoid(psnr[:, 1] - psnr[:, 0])
    wn1 = 2 * torch.sigmoid(psnr[:, 2] - psnr[:, 3])
    dp = (torch.linalg.vector_norm(a - p1, dim=1), torch.linalg.vector_norm(a - p2, dim=1))
    dn = (torch.linalg.vector_norm(a - n1, dim=1), torch.linalg.vector_norm(a - n2, dim=1))
    wp, wn = (wp1, 2 - wp1), (wn1, 2 - wn1)
    terms = [F.relu(wp[i] * dp[i] - wn[j] * dn[j] + margin) for i in (0, 1) for j in (0, 1)]
    return torch.stack(terms).mean()


def sample_triplets(data: TripletData, sampler: str, per_original: int, generator: torch.Generator) -> torch.Tensor:
    """Draw triplets as index rows: ``paper`` → ``T×3`` (original, positive rec, negative rec); ``psnr`` → ``T×5``
    (original, p1, p2, n1, n2). Originals without a recognised reconstruction are skipped.

    Raises:
        ConfigError: no original has a recognised reconstruction, or there is no unrecognised one at all.
    """
    pos_of: dict[int, list[int]] = {}
    neg_of: dict[int, list[int]] = {}
    pool: list[int] = []
    for m, (k, ok) in enumerate(zip(data.rec_original.tolist(), data.recognised.tolist(), strict=True)):
        if k < 0:
            pool.append(m)
        else:
            (pos_of if ok else neg_of).setdefault(k, []).append(m)
    all_neg = [m for ms in neg_of.values() for m in ms]
    if not pos_of:
        raise ConfigError("no original has a recognised reconstruction: SemSim needs positives (recognised = yes)")
    if not pool and not all_neg:
        raise ConfigError("no unrecognised reconstruction: SemSim needs negatives (recognised = no)")
    n_pos, n_neg = (1, 1) if sampler == "paper" else (2, 2)

    def pick(items: list[int], k: int) -> list[int]:
        idx = torch.randint(0, len(items), (k,), generator=generator).tolist()
        return [items[i] for i in idx]

    rows = []
    for k in sorted(pos_of):
        for _ in range(per_original):
            if k in neg_of:
                negs = neg_of[k]
            elif pool:
                negs = pool
            else:
                negs = all_neg
            rows.append([k, *pick(pos_of[k], n_pos), *pick(negs, n_neg)])
    out = torch.tensor(rows, dtype=torch.long)
    return out[torch.randperm(len(out), generator=generator)]


def _augment(x: torch.Tensor, mode: str, generator: torch.Generator) -> torch.Tensor:
    if mode == "none":
        return x
    n, _, h, w = x.shape
    pad = max(1, h // 8)
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).tolist()
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).tolist()
    out = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    if mode == "crop+flip":
        flip = torch.rand(n, generator=generator) < 0.5
        out[flip] = out[flip].flip(-1)
    return out


@dataclass
class TrainResult:
    """A trained network and its per-epoch history (``epoch``, ``loss``, ``active``: fraction of triplets whose
    hinge is still positive, ``lr``); ``pretrain_history``: the classifier pretraining's per-epoch statistics
    (``privlab.train.fit``'s: ``train_loss`` in nats, ``train_accuracy``), empty without it."""

    model: SemSimNet
    history: list[dict[str, float]]
    config: dict[str, Any]
    pretrain_history: list[dict[str, float]] = field(default_factory=list)


class _Classifier(nn.Module):
    """SemSim trunk + a temporary linear head: ``[0, 1]`` images of any size → logits (pretraining only)."""

    def __init__(self, net: SemSimNet, num_classes: int) -> None:
        super().__init__()
        self.net = net
        self.head = nn.Linear(net.dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = preprocess(x, in_channels=self.net.in_channels, input_size=self.net.input_size)
        return self.head(self.net.trunk((x - self.net.mean) / self.net.std))


def pretrain_classifier(
    model: SemSimNet,
    data: Any,
    cfg: SemSimTrainConfig,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
) -> list[dict[str, float]]:
    """Train ``model``'s trunk in place as a classifier (trunk + temporary linear head, cross-entropy, Adam
    ``cfg.pretrain_lr``, ``cfg.pretrain_epochs`` epochs) on ``data`` (a :class:`~privlab.data.base.LabelledImages`
    of clean ``[0, 1]`` images, resized like SemSim's inputs), adding Gaussian noise ``σ ~ U(0, cfg.pretrain_noise)``
    per image; the head is dropped. Returns ``privlab.train.fit``'s per-epoch statistics.

    Raises:
        ConfigError: ``data`` is not labelled images, or its channels do not fit the network (RGB for a grey one).
    """
    from privlab.train import TrainConfig, fit

    if not hasattr(data, "num_classes") or not hasattr(data, "images"):
        raise ConfigError(f"classifier pretraining needs labelled images (LabelledImages), got {type(data).__name__}")
    preprocess(data.batch([0])[0], in_channels=model.in_channels, input_size=model.input_size)  # channels check
    clf = _Classifier(model, int(data.num_classes))
    sigma = float(cfg.pretrain_noise)

    def noisy(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if sigma <= 0:
            return x
        s = torch.rand((x.shape[0], 1, 1, 1), generator=g, device=g.device).to(x.device) * sigma
        return (x + s * torch.randn(x.shape, generator=g, device=g.device).to(x.device)).clamp(0, 1)

    tc = TrainConfig(epochs=cfg.pretrain_epochs, lr=cfg.pretrain_lr, batch_size=64, optimizer="adam")
    stats = fit(clf, data, tc, seed=seed, device=device, progress=progress, transform=noisy)
    model.eval()
    return [{k: float(v) for k, v in s.items() if isinstance(v, int | float)} for s in stats]


def load_pretrained_trunk(model: SemSimNet, path: str | Path) -> SemSimNet:
    """Load trunk weights into ``model`` (in place) from a local safetensors file: a SemSim checkpoint (tensors
    ``trunk.*``; its normalisation ``mean``/``std`` too) or a bare trunk state dict (``stem.*``, ``layer1.*`` …).

    Raises:
        DataMissingError: no such file. FileFormatError: not safetensors, or names/shapes that do not fit this
        network (``width``, ``in_channels``).
    """
    from privlab.store import load_tensors

    tensors, _ = load_tensors(Path(path).expanduser())
    if any(k.startswith("trunk.") for k in tensors):
        extra = {k: v for k, v in tensors.items() if k in ("mean", "std")}
        tensors = {k[len("trunk.") :]: v for k, v in tensors.items() if k.startswith("trunk.")}
    else:
        extra = {}
    want = {k: tuple(v.shape) for k, v in model.trunk.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if want != got:
        missing = sorted(set(want) - set(got))[:3]
        bad = sorted(k for k in set(want) & set(got) if want[k] != got[k])[:3]
        raise FileFormatError(
            f"{path}: its tensors do not fit a SemSim trunk of width {model.width} with {model.in_channels} input "
            f"channel(s) (missing {missing or 'none'}, shape mismatch {bad or 'none'}, "
            f"{len(set(got) - set(want))} unexpected); set width/in_channels to the file's or use pretrain: none"
        )
    model.trunk.load_state_dict(tensors)
    for k, v in extra.items():
        if tuple(v.shape) == tuple(getattr(model, k).shape):
            getattr(model, k).copy_(v)
    return model


def train_semsim(
    data: TripletData,
    cfg: SemSimTrainConfig,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    pretrain_data: Any = None,
) -> TrainResult:
    """Train a :class:`SemSimNet` on ``data`` with the triplet loss (``cfg.sampler``); seeded by ``seed``.

    ``data`` must have been built with ``input_size = cfg.input_size`` (see :meth:`TripletData.from_manifest`).
    The trunk is first initialised as ``cfg.pretrain`` says: ``classifier`` trains it on ``pretrain_data`` (a
    :class:`~privlab.data.base.LabelledImages` of clean images, see :func:`pretrain_classifier`), a path loads it
    (:func:`load_pretrained_trunk`).

    Raises:
        ConfigError: ``pretrain: classifier`` without ``pretrain_data``; sizes that do not match.
        DataMissingError, FileFormatError: a pretrain file that is missing or does not fit.
    """
    if data.originals.shape[-1] != cfg.input_size:
        raise ConfigError(f"triplet data are {data.originals.shape[-1]} px but input_size is {cfg.input_size}")
    torch.manual_seed(seed)
    dev = torch.device(device)
    model = SemSimNet(data.originals.shape[1], cfg.width, cfg.input_size, cfg.l2_normalize, mean, std)
    pre_hist: list[dict[str, float]] = []
    if cfg.pretrain == "classifier":
        if pretrain_data is None:
            raise ConfigError(
                "semsim.pretrain is 'classifier' but no labelled clean images were given to pretrain on "
                "(the experiment uses its dataset's train split; `privlab semsim train` needs --pretrain-dataset)"
            )
        pre_hist = pretrain_classifier(model, pretrain_data, cfg, seed=seed, device=dev, progress=progress)
    elif cfg.pretrain != "none":
        load_pretrained_trunk(model, cfg.pretrain)
    model = model.to(dev)
    opt = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0, weight_decay=cfg.weight_decay
    )
    e = cfg.epochs
    milestones = sorted({m for m in (math.floor(e / 2.667), math.floor(e / 1.6), math.floor(e / 1.142)) if m > 0})
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.1)
    g = torch.Generator().manual_seed(seed)
    progress = progress or Progress(quiet=True)
    history: list[dict[str, float]] = []
    with progress.task(f"SemSim triplet training ({cfg.sampler})", total=cfg.epochs) as advance:
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            rows = sample_triplets(data, cfg.sampler, cfg.triplets_per_original, g)
            total, active, count = 0.0, 0.0, 0
            for start in range(0, len(rows), cfg.batch_size):
                b = rows[start : start + cfg.batch_size]
                if len(b) < 2 and len(rows) >= 2:  # a batch of one breaks batch norm; fold it into the epoch's end
                    continue
                images = torch.cat([data.originals[b[:, 0]], *[data.recs[b[:, j]] for j in range(1, b.shape[1])]])
                z = model(_augment(images, cfg.augment, g).to(dev))
                parts = z.split(len(b))
                if cfg.sampler == "paper":
                    loss = triplet_loss(*parts, margin=cfg.margin)
                    with torch.no_grad():
                        d = (parts[0] - parts[1]).norm(dim=1) - (parts[0] - parts[2]).norm(dim=1) + cfg.margin
                else:
                    psnr = torch.nan_to_num(torch.stack([data.psnr[b[:, j]] for j in range(1, 5)], 1), nan=0.0)
                    loss = psnr_weighted_triplet_loss(*parts, psnr.to(dev), margin=cfg.margin)
                    with torch.no_grad():
                        d = (parts[0] - parts[1]).norm(dim=1) - (parts[0] - parts[3]).norm(dim=1) + cfg.margin
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(b)
                active += float((d > 0).float().sum())
                count += len(b)
            lr = opt.param_groups[0]["lr"]
            sched.step()
            stats = {"epoch": epoch, "loss": total / max(count, 1), "active": active / max(count, 1), "lr": lr}
            history.append(stats)
            advance(1, loss=round(stats["loss"], 4))
    model.eval()
    return TrainResult(model, history, cfg.model_dump(), pre_hist)
