"""Transferable Unlearnable Examples (Ren et al., ICLR 2023): SSL-driven min-min noise with the CSD regulariser.

Objective (per batch, δ in [0, 1] pixel units, ‖δ‖∞ ≤ ε)::

    min_θ min_δ  ssl_weight · L_SSL(θ; aug(x + δ), aug(x + δ)) + csd_weight · CSD(δ, y)

- ``L_SSL`` is SimCLR's NT-Xent, MoCo v2's InfoNCE or SimSiam's negative cosine (:mod:`privlab.models.ssl`).
- **CSD** (Classwise Separability Discriminant, :func:`csd_loss`) on the flattened perturbations of the batch: class
  centres ``μ_c``, spreads ``S_c = mean_i ‖δ_i − μ_c‖₂``, centre distances ``M_cc' = ‖μ_c − μ_c'‖₂``;
  ``CSD = mean_{c≠c'} (S_c + S_c' + 1e-5) / (M_cc' + 1e-5)`` (lower = noise more linearly separable by class).
  The released code detached the spreads (only the distances got gradient); ``detach_spread=True`` reproduces that,
  the default lets both terms carry gradient.
- **Noise update**: ``num_steps`` signed steps; the gradient is averaged over ``eot_size`` random augmentations (EOT),
  drawn once per batch as the released code does (``noise_aug_per_sample=True``: per image, like SSL training);
  each step computes separate steps for view 1 and view 2 and sets ``δ ← (δ₁ + δ₂) / 2``.
- **Outer loop** per epoch: over a shuffled pass of the data, repeat {train θ for ``train_steps`` batches on
  augmented ``x + δ``; sweep the whole set once updating δ, in a new random order per sweep (``shuffle_sweeps``:
  CSD is a per-batch loss, and fixed batches make batch-local class patterns)} until the pass is used up; optional
  kNN monitor.

Sample-wise noise is indexed by sample index (TUE's ``replace_targets_with_id``), class-wise by label.

Example:
    >>> import torch
    >>> d = torch.tensor([[0.0, 0.0], [0.0, 0.2], [1.0, 0.0], [1.0, 0.2]])
    >>> round(csd_loss(d, torch.tensor([0, 0, 1, 1])).item(), 3)  # (0.1 + 0.1) / 1
    0.2
"""

from __future__ import annotations

import time
from typing import Any, Literal

import torch
from pydantic import Field

from privlab.context import Progress, seed_everything
from privlab.data.base import LabelledImages
from privlab.data.transforms import SimCLRAugment
from privlab.models.ssl import SSLModel, ssl_optimizer
from privlab.models.ssl_config import SSLConfig, build_ssl_from_config
from privlab.protect.base import PROTECTIONS
from privlab.protect.perturbation import (
    Monitor,
    NoiseConfig,
    NoiseGenerator,
    PerturbationBank,
    RoundCallback,
    cycle_batches,
    noise_shape,
    uniform_noise,
)

__all__ = ["TUEConfig", "TransferableUnlearnable", "csd_loss"]


def _norm(v: torch.Tensor) -> torch.Tensor:
    """Row-wise L2 norm, differentiable at 0 (``sqrt(Σv² + 1e-12)``)."""
    return torch.sqrt(v.pow(2).sum(-1) + 1e-12)


def csd_loss(
    delta: torch.Tensor, labels: torch.Tensor, *, detach_spread: bool = False, eps: float = 1e-5
) -> torch.Tensor:
    """Classwise Separability Discriminant of perturbations ``delta`` ``(B, …)`` with class ``labels`` ``(B,)``.

    Returns ``mean_{c≠c'} (S_c + S_c' + eps) / (M_cc' + eps)`` over the classes present (0 with fewer than two
    classes); spreads are the mean L2 distance to the class centre, distances are between class centres.
    """
    d = delta.flatten(1)
    classes = labels.unique()
    if classes.numel() < 2:
        return d.sum() * 0.0
    onehot = (labels[:, None] == classes[None, :]).to(d.dtype)  # (B, K)
    counts = onehot.sum(0)
    mu = (onehot.t() @ d) / counts[:, None]  # (K, D)
    dist_to_centre = _norm(d[:, None, :] - mu[None, :, :])  # (B, K)
    spread = (onehot * dist_to_centre).sum(0) / counts  # (K,)
    if detach_spread:
        spread = spread.detach()
    i, j = torch.triu_indices(len(classes), len(classes), offset=1)
    ratio = (spread[i] + spread[j] + eps) / (_norm(mu[i] - mu[j]) + eps)
    return ratio.mean()  # symmetric in (c, c'): the mean over c < c' equals the mean over c ≠ c'


class TUEConfig(NoiseConfig, SSLConfig):
    """TUE noise; defaults: the SimCLR row of the released demo (CIFAR-10, ResNet-18). The SSL model's settings
    (``method``, ``encoder``, ``momentum`` …) are :class:`~privlab.models.ssl_config.SSLConfig`'s."""

    name: Literal["tue"] = "tue"
    step_size: float = Field(default=0.8 / 255, gt=0, le=1, description="PGD step α, [0, 1] pixel units")
    num_steps: int = Field(default=20, ge=1, description="PGD steps per batch per sweep")
    train_steps: int = Field(default=20, ge=0, description="SSL batches trained between noise sweeps")
    epochs: int = Field(default=40, ge=1, description="outer epochs")
    ssl_weight: float = Field(default=0.0, ge=0, description="weight of L_SSL in the noise objective (demo: 0)")
    csd_weight: float = Field(default=0.1, ge=0, description="weight of CSD in the noise objective (demo: 0.1)")
    detach_spread: bool = Field(default=False, description="reproduce the released code's detached CSD numerator")
    eot_size: int = Field(default=1, ge=1, description="augmentation draws averaged per noise gradient")
    random_start: bool = Field(default=True, description="start from δ ~ U(−ε, ε)")
    allow_key_grad: bool = Field(default=False, description="gradient through MoCo's key / SimSiam's target branch")
    batch_size: int = Field(default=512, ge=2, description="batch size of SSL training and noise sweeps")
    knn_monitor: bool = Field(default=False, description="kNN accuracy of the SSL encoder each epoch (needs monitor)")
    knn_k: int = Field(default=200, ge=1, description="kNN monitor neighbours")
    noise_aug_per_sample: bool = Field(
        default=False,
        description="draw the noise objective's augmentation per image (False: once per batch, as the released code "
        "applies torchvision transforms to a batch tensor; SSL training always draws per image)",
    )
    shuffle_sweeps: bool = Field(
        default=True,
        description="visit the images in a new random order on every noise sweep (False: fixed contiguous batches, "
        "whose CSD separates the classes only within each batch)",
    )

    def label(self) -> str:
        return f"tue-{self.method} {self.kind}-wise ({self.encoder})"


@PROTECTIONS.register(
    "tue",
    kind="data",
    config=TUEConfig,
    description="Transferable Unlearnable Examples: SSL min-min noise + CSD (SimCLR / MoCo v2 / SimSiam)",
)
class TransferableUnlearnable(NoiseGenerator):
    """TUE noise generator (see the module docstring)."""

    config_class = TUEConfig

    def _noise_loss(
        self,
        model: SSLModel,
        x: torch.Tensor,
        y: torch.Tensor,
        p1: torch.Tensor,
        p2: torch.Tensor,
        aug: SimCLRAugment,
        g: torch.Generator,
    ) -> torch.Tensor:
        cfg = self.cfg
        loss = x.new_zeros(())
        if cfg.ssl_weight > 0:
            loss = loss + cfg.ssl_weight * model.ssl_loss(aug(p1, g), aug(p2, g), allow_key_grad=cfg.allow_key_grad)
        if cfg.csd_weight > 0:
            loss = loss + cfg.csd_weight * csd_loss(((p1 - x) + (p2 - x)) / 2, y, detach_spread=cfg.detach_spread)
        return loss

    def _update(
        self,
        model: SSLModel,
        x: torch.Tensor,
        y: torch.Tensor,
        d: torch.Tensor,
        aug: SimCLRAugment,
        g: torch.Generator,
    ) -> torch.Tensor:
        """``num_steps`` two-view EOT steps on per-image noise ``d`` of the batch; returns the new noise."""
        cfg = self.cfg
        eps, alpha = cfg.epsilon, cfg.step_size
        for _ in range(cfg.num_steps):
            base = (x + d).clamp(0, 1)
            g1 = torch.zeros_like(x)
            g2 = torch.zeros_like(x)
            for _ in range(cfg.eot_size):
                p1 = base.clone().requires_grad_(True)
                p2 = base.clone().requires_grad_(True)
                loss = self._noise_loss(model, x, y, p1, p2, aug, g)
                if not loss.requires_grad:
                    break
                a, b = torch.autograd.grad(loss, [p1, p2])
                g1 += a
                g2 += b
            d1 = (base - alpha * g1.sign() - x).clamp(-eps, eps)
            d2 = (base - alpha * g2.sign() - x).clamp(-eps, eps)
            d = ((x + (d1 + d2) / 2).clamp(0, 1) - x).detach()
        return d

    def generate(
        self,
        data: LabelledImages,
        *,
        seed: int = 0,
        device: Any = "cpu",
        progress: Progress | None = None,
        on_round: RoundCallback | None = None,
        monitor: Monitor | None = None,
    ) -> PerturbationBank:
        """Generate TUE noise for ``data``; returns the bank (history per epoch: ``ssl_loss`` nats, ``csd``,
        ``seconds`` and, with ``knn_monitor`` and a ``monitor`` hook, what the hook measures on the SSL encoder each
        epoch, e.g. the pipeline's ``knn_accuracy``)."""
        cfg, progress = self.cfg, progress or Progress(quiet=True)
        seed_everything(seed)
        t0 = time.perf_counter()
        model = build_ssl_from_config(cfg, data.shape, mean=data.mean, std=data.std).to(device)
        opt = ssl_optimizer(model, cfg.optimizer, cfg.lr, cfg.weight_decay)
        aug = SimCLRAugment(cfg.augment)
        noise_aug = SimCLRAugment(cfg.augment.model_copy(update={"per_sample": cfg.noise_aug_per_sample}))
        g_aug = torch.Generator(device=device).manual_seed(seed + 5)
        noise = uniform_noise(noise_shape(data, cfg.kind), cfg.epsilon, seed + 17)
        if not cfg.random_start:
            noise.zero_()
        n = len(data)
        order_gen = torch.Generator().manual_seed(seed + 3)
        sweep_gen = torch.Generator().manual_seed(seed + 7)
        history: list[dict[str, float]] = []
        images_done, noise_seconds = 0, 0.0
        with progress.task(f"TUE ({cfg.method}) noise", total=cfg.epochs) as advance:
            for epoch in range(1, cfg.epochs + 1):
                te = time.perf_counter()
                batches = list(next(_epoch_batches(n, cfg.batch_size, order_gen)))
                ssl_losses: list[float] = []
                chunk = cfg.train_steps or len(batches)
                for pos in range(0, len(batches), chunk):
                    model.train()
                    for idx in batches[pos : pos + chunk] if cfg.train_steps else []:
                        if len(idx) < 2:
                            continue
                        x, y = data.batch(idx)
                        x = x.to(device)
                        d = self._rows(noise, idx, y).to(device)
                        xp = (x + d).clamp(0, 1)
                        loss = model.ssl_loss(aug(xp, g_aug), aug(xp, g_aug))
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        opt.step()
                        model.after_step()
                        ssl_losses.append(loss.item())
                    tn = time.perf_counter()
                    self._sweep(model, data, noise, noise_aug, g_aug, device, sweep_gen)
                    noise_seconds += time.perf_counter() - tn
                    images_done += n
                stats: dict[str, float] = {
                    "ssl_loss": sum(ssl_losses) / len(ssl_losses) if ssl_losses else float("nan"),
                    "csd": self._dataset_csd(data, noise),
                    "seconds": time.perf_counter() - te,
                }
                if cfg.knn_monitor and monitor is not None:
                    stats.update(monitor(model.encoder))
                history.append({"round": epoch, **stats})
                if on_round is not None:
                    on_round(epoch, stats)
                advance(1, csd=stats["csd"])
        seconds = time.perf_counter() - t0
        meta = {
            "protection": "tue",
            "backbone": f"{cfg.method}:{cfg.encoder}",
            "dataset": data.name,
            "seed": seed,
            "rounds": len(history),
            "seconds": seconds,
            "images_per_second": images_done / noise_seconds if noise_seconds > 0 else None,
            "config": cfg.model_dump(mode="json"),
        }
        return PerturbationBank(noise, cfg.kind, cfg.epsilon, meta, history)

    def _rows(self, noise: torch.Tensor, idx: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return noise[idx] if self.cfg.kind == "sample" else noise[y]

    def _sweep(
        self,
        model: SSLModel,
        data: LabelledImages,
        noise: torch.Tensor,
        aug: SimCLRAugment,
        g: torch.Generator,
        device: Any,
        order_gen: torch.Generator,
    ) -> None:
        """One pass over ``data`` updating every image's noise (class-wise: every class row) in place.

        The batches are a fresh random partition per sweep (``shuffle_sweeps``): CSD is computed per batch, and with
        fixed batches each batch's class groups converge to their own pattern (measured on CIFAR-10: CSD 0.04 within
        the batches, 5.8 over the data set), which is not the class-separable noise CSD is meant to make."""
        model.eval()
        n, bs = len(data), self.cfg.batch_size
        order = torch.randperm(n, generator=order_gen) if self.cfg.shuffle_sweeps else torch.arange(n)
        for i in range(0, n, bs):
            idx = order[i : i + bs]
            x, y = data.batch(idx)
            x, y = x.to(device), y.to(device)
            if self.cfg.kind == "sample":
                noise[idx] = self._update(model, x, y, noise[idx].to(device), aug, g).cpu()
            else:  # class-wise: update per-image copies, then average them per class
                new = self._update(model, x, y, noise[y.cpu()].to(device), aug, g).cpu()
                yc = y.cpu()
                for c in yc.unique():
                    noise[c] = new[yc == c].mean(0).clamp(-self.cfg.epsilon, self.cfg.epsilon)

    @torch.no_grad()
    def _dataset_csd(self, data: LabelledImages, noise: torch.Tensor) -> float:
        rows = noise if self.cfg.kind == "sample" else noise[data.labels]
        return float(csd_loss(rows, data.labels))


def _epoch_batches(n: int, batch_size: int, g: torch.Generator):
    """One shuffled pass as a list of index batches (wrapped in a generator for ``next``)."""
    it = cycle_batches(n, batch_size, g)
    yield [next(it) for _ in range((n + batch_size - 1) // batch_size)]
