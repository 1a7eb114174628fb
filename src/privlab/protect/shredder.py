"""Shredder: learned noise on the activation of a split network (Mireshghallah et al., arXiv 1905.11814).

A frozen classifier ``f = cloud ∘ edge`` is cut at an intermediate layer; the edge sends ``a' = a ⊙ w + n`` instead
of its activation ``a``. Only the noise tensors train (the network's weights never change):

- :class:`ShredderNoise` — the trainable layer: additive ``n`` (one Laplace(loc, scale) draw), multiplicative ``w``
  (Xavier-normal) or both (``a ⊙ w + n``, Shredder v2);
- :func:`shredder_loss` — task cross-entropy + ``contrastive_weight · (pos − neg)`` (v2's L1 pull/push term, see
  :func:`contrastive_term`) − a magnitude reward on ``n`` (:func:`magnitude_term`, the papers' privacy knob);
- :func:`train_noise_bank` — restarts from fresh initial noise, ``parallel_restarts`` at a time as a batch dimension;
  a restart's noise is *accepted* into the bank the first epoch ≥ ``min_epochs`` at which its validation accuracy
  is > ``accuracy_threshold``;
- deployment samplers — :class:`LaplaceFitSampler` (v1: element-wise Laplace(mean, std) fitted to the bank) and
  :class:`BankSampler` (v2: a random bank entry, its ``w`` re-drawn by :func:`rank_preserving_gaussian`);
  :class:`DeployedNoise` applies fresh noise per image or per batch;
- :func:`snr` — power of the clean activation over power of the noise ``a' − a``, per batch.

Example:
    >>> import torch
    >>> from privlab.protect.shredder import NoiseConfig, ShredderNoise, snr
    >>> layer = ShredderNoise((4,), NoiseConfig(mode="additive", laplace_loc=0.0, laplace_scale=1.0), seed=0)
    >>> a = torch.ones(2, 4)
    >>> torch.allclose(layer(a) - a, layer.n.detach().expand(2, 4))
    True
    >>> snr(torch.full((2, 4), 2.0), torch.full((2, 4), 3.0))  # power 4 over noise power 1
    4.0
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from privlab.config import Spec
from privlab.context import Progress
from privlab.errors import ConfigError, FileFormatError
from privlab.protect.base import PROTECTIONS, Budget, laplace_sample

__all__ = [
    "BankConfig",
    "BankSampler",
    "DeployedNoise",
    "LaplaceFitSampler",
    "LossConfig",
    "NoiseBank",
    "NoiseConfig",
    "NoiseSampler",
    "ShredderNoise",
    "contrastive_term",
    "laplace_sample",
    "magnitude_term",
    "rank_preserving_gaussian",
    "shredder_budget",
    "shredder_loss",
    "snr",
    "snr_db",
    "snr_per_batch",
    "train_noise_bank",
]

NoiseMode = Literal["additive", "multiplicative", "combined"]


# -- configuration ------------------------------------------------------------------------------------------------
class NoiseConfig(Spec):
    """The noise layer: which tensors exist and how they start.

    v1 (AlexNet): ``additive``, Laplace(0.6, 1.2). v2 (LeNet-5): ``combined``, Laplace(0, 20) and Xavier-normal ``w``.
    """

    mode: NoiseMode = Field(default="combined", description="additive n, multiplicative w, or combined a ⊙ w + n")
    laplace_loc: float = Field(default=0.0, description="location of the Laplace draw that initialises n")
    laplace_scale: float = Field(default=20.0, gt=0, description="scale b of that draw (variance 2·b²)")


class LossConfig(Spec):
    """Training loss of the noise: task CE + contrastive term − magnitude reward."""

    contrastive_weight: float = Field(default=0.0, ge=0, description="weight of v2's L1 pos − neg term (v2: 0.01)")
    magnitude_reward: Literal["none", "neg_weight_decay", "mean_abs", "log_scale"] = Field(
        default="none", description="reward for noise magnitude: −λ/2·‖n‖², −λ·mean|n| or −λ·log mean|n|"
    )
    magnitude_weight: float = Field(default=0.0, ge=0, description="λ of the magnitude reward (privacy knob; 0 = off)")


class BankConfig(Spec):
    """Noise-bank training: restarts, per-restart epochs and the acceptance rule."""

    size: int = Field(default=10, ge=1, description="accepted samples wanted; training stops when reached")
    max_restarts: int = Field(default=20, ge=1, description="restarts tried at most")
    max_epochs: int = Field(default=20, ge=1, description="epochs per restart at most")
    min_epochs: int = Field(default=1, ge=1, description="a sample is accepted at an epoch ≥ this (1-based)")
    accuracy_threshold: float = Field(default=0.9, ge=0, le=1, description="accept when val accuracy > this")
    val_fraction: float = Field(default=0.2, gt=0, lt=1, description="held-out part of train for acceptance")
    batch_size: int = Field(default=256, ge=1, description="noise-training batch size")
    lr: float = Field(default=1e-3, gt=0, description="Adam learning rate (one optimiser per restart)")
    parallel_restarts: int = Field(
        default=32, ge=1, description="restarts trained at once as a batch dimension (results do not depend on it)"
    )

    @model_validator(mode="after")
    def _check(self) -> BankConfig:
        if self.min_epochs > self.max_epochs:
            raise ValueError(f"min_epochs {self.min_epochs} > max_epochs {self.max_epochs}: nothing can be accepted")
        return self


# -- initialisation -------------------------------------------------------------------------------------------------
class ShredderNoise(nn.Module):
    """The trainable noise layer ``a' = a ⊙ w + n`` for activations of shape ``(N, *shape)``.

    Args:
        shape: activation shape without the batch axis, e.g. ``(120, 1, 1)`` (LeNet-5 c5) or ``(256, 6, 6)``.
        cfg: mode and Laplace initialisation.
        seed: seed of the initial draws (``n`` first, then ``w``), so a restart is reproducible.

    Attributes:
        n: additive noise ``shape`` (absent in ``multiplicative`` mode), initialised by one Laplace draw.
        w: multiplicative noise ``shape`` (absent in ``additive`` mode), Xavier-normal: for ``(120, 1, 1)``
            N(0, σ²) with σ = √(2/121) ≈ 0.1286, as torch computes fans of a ``(C, H, W)`` tensor.
    """

    def __init__(self, shape: Sequence[int], cfg: NoiseConfig | None = None, *, seed: int = 0) -> None:
        super().__init__()
        cfg = cfg or NoiseConfig()
        self.shape = tuple(int(s) for s in shape)
        self.mode = cfg.mode
        g = torch.Generator().manual_seed(seed)
        self.n: nn.Parameter | None = None
        self.w: nn.Parameter | None = None
        if cfg.mode in ("additive", "combined"):
            self.n = nn.Parameter(laplace_sample(cfg.laplace_loc, cfg.laplace_scale, self.shape, g))
        if cfg.mode in ("multiplicative", "combined"):
            w = torch.empty(self.shape if len(self.shape) >= 2 else (*self.shape, 1))
            nn.init.xavier_normal_(w, generator=g)
            self.w = nn.Parameter(w.reshape(self.shape))

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        out = a * self.w if self.w is not None else a
        return out + self.n if self.n is not None else out

    def tensors(self) -> dict[str, torch.Tensor]:
        """The current noise tensors (``n`` and/or ``w``), detached copies on the CPU."""
        return {k: p.detach().cpu().clone() for k, p in (("n", self.n), ("w", self.w)) if p is not None}

    def extra_repr(self) -> str:
        return f"shape={self.shape}, mode={self.mode}"


PROTECTIONS.add(
    "shredder",
    ShredderNoise,
    kind="activation",
    description="Shredder: learned additive/multiplicative noise on a split network's activation (a ⊙ w + n)",
)


# -- losses -------------------------------------------------------------------------------------------------------
def contrastive_term(z: torch.Tensor, y: torch.Tensor, pair: torch.Tensor) -> torch.Tensor:
    """Shredder v2's self-supervised term ``pos − neg`` over pairs ``(i, pair[i])`` of noisy activations.

    ``d_i = Σ_c |z_i − z_pair(i)|`` (L1 over every feature); ``pos`` sums ``d_i`` over same-label pairs and ``neg``
    over different-label pairs. Minimising it pulls same-label noisy activations together and pushes different-label
    ones apart. Sums, not means, as in the original (so it scales with the batch size).

    Args:
        z: noisy activations ``(B, …)``. y: labels ``(B,)``. pair: index ``(B,)`` of each row's partner.

    Example:
        >>> z = torch.tensor([[0.0, 0.0], [1.0, 2.0], [4.0, 0.0]])
        >>> y = torch.tensor([0, 0, 1])
        >>> float(contrastive_term(z, y, torch.tensor([1, 2, 0])))  # pos = 3; neg = 5 + 4
        -6.0
    """
    d = (z - z[pair]).abs().flatten(1).sum(1)
    same = y == y[pair]
    return d[same].sum() - d[~same].sum()


def magnitude_term(noise: ShredderNoise, cfg: LossConfig) -> torch.Tensor:
    """The magnitude reward added to the loss (≤ 0 grows ``n``): ``−λ/2·‖n‖²``, ``−λ·mean|n|``, ``−λ·log mean|n|``.

    ``neg_weight_decay`` is the loss form of Adam's ``weight_decay = −λ`` that the v2 code built (on ``n`` only
    here: growing ``w`` grows the signal, not the noise). Without ``n`` (multiplicative mode) it is 0.
    """
    n = noise.n
    if cfg.magnitude_reward == "none" or n is None:
        return torch.zeros((), device=n.device if n is not None else None)
    lam = cfg.magnitude_weight
    if cfg.magnitude_reward == "neg_weight_decay":
        return -0.5 * lam * n.pow(2).sum()
    if cfg.magnitude_reward == "mean_abs":
        return -lam * n.abs().mean()
    return -lam * torch.log(n.abs().mean() + 1e-12)


def shredder_loss(
    logits: torch.Tensor,
    y: torch.Tensor,
    z: torch.Tensor,
    noise: ShredderNoise,
    cfg: LossConfig,
    pair: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """``CE(logits, y) + contrastive_weight·(pos − neg) + magnitude_term``; returns ``(loss, parts in nats)``."""
    ce = F.cross_entropy(logits, y)
    loss = ce
    parts = {"ce": float(ce.detach())}
    if cfg.contrastive_weight > 0 and pair is not None:
        con = contrastive_term(z, y, pair)
        loss = loss + cfg.contrastive_weight * con
        parts["contrastive"] = float(con.detach())
    mag = magnitude_term(noise, cfg)
    parts["magnitude"] = float(mag.detach())
    return loss + mag, parts


# -- SNR ----------------------------------------------------------------------------------------------------------
def snr(clean: torch.Tensor, noisy: torch.Tensor) -> float:
    """Signal-to-noise power ratio (unitless): ``mean(a²) / mean((a' − a)²)`` over every element given.

    The signal is the clean activation ``a``, the noise is everything Shredder changes, ``a' − a`` (for the
    combined layer that includes ``a ⊙ (w − 1)``). Powers are mean squares (not variances: a Laplace(0.6, ·) offset
    is noise too). Returns ``inf`` when ``a' = a``.
    """
    noise_power = float((noisy - clean).double().pow(2).mean())
    signal_power = float(clean.double().pow(2).mean())
    return math.inf if noise_power == 0 else signal_power / noise_power


def snr_db(ratio: float) -> float:
    """``10·log10(ratio)`` in decibels (``-inf`` for 0)."""
    return 10 * math.log10(ratio) if ratio > 0 else -math.inf


def snr_per_batch(clean: torch.Tensor, noisy: torch.Tensor, batch_size: int) -> list[float]:
    """:func:`snr` of each consecutive batch of rows (each batch on its own data: the original's stale-batch bug
    computed every batch's SNR on the first test batch)."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be ≥ 1, got {batch_size}")
    return [snr(clean[i : i + batch_size], noisy[i : i + batch_size]) for i in range(0, len(clean), batch_size)]


# -- noise bank ---------------------------------------------------------------------------------------------------
@dataclass
class NoiseBank:
    """Accepted noise samples and how they were obtained.

    Attributes:
        n: additive samples ``(K, *shape)`` or None. w: multiplicative samples ``(K, *shape)`` or None.
        records: one dict per restart: ``restart``, ``seed``, ``accepted``, ``epoch``, ``val_accuracy``,
            ``train_snr``, ``seconds`` and ``elapsed_s`` (seconds from the start of the bank to its end).
        meta: shape, mode, acceptance rule, initialisation, loss settings.
    """

    n: torch.Tensor | None
    w: torch.Tensor | None
    records: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        t = self.n if self.n is not None else self.w
        return 0 if t is None else int(t.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample."""
        t = self.n if self.n is not None else self.w
        if t is None:
            raise ConfigError("the noise bank is empty")
        return tuple(t.shape[1:])

    def tensors(self) -> dict[str, torch.Tensor]:
        """``{"n": …, "w": …}`` for saving."""
        return {k: v for k, v in (("n", self.n), ("w", self.w)) if v is not None}

    def full_meta(self) -> dict[str, Any]:
        """Metadata stored with the bank file: ``meta`` plus size, shape and the per-restart records."""
        return {
            **self.meta,
            "size": len(self),
            "shape": list(self.shape) if len(self) else None,
            "records": self.records,
        }

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> NoiseBank:
        """Rebuild a bank from :meth:`tensors` and :meth:`full_meta` (as written by ``save_tensors``).

        Raises:
            FileFormatError: neither ``n`` nor ``w``, or shapes that disagree.
        """
        n, w = tensors.get("n"), tensors.get("w")
        if n is None and w is None:
            raise FileFormatError("not a Shredder noise bank: it holds neither 'n' nor 'w'")
        if n is not None and w is not None and n.shape != w.shape:
            raise FileFormatError(f"noise bank: n {tuple(n.shape)} and w {tuple(w.shape)} differ in shape")
        return cls(n, w, list(meta.get("records", [])), {k: v for k, v in meta.items() if k != "records"})


def _order_generator(rseed: int) -> torch.Generator:
    """The batch-order generator of the restart with initial-draw seed ``rseed`` (its own, so a restart's
    trajectory does not depend on which restarts ran before it or beside it)."""
    return torch.Generator().manual_seed(1_000_000_007 + rseed)


class _Slots:
    """R restarts trained at once: noise tensors ``(R, *shape)`` and a per-row Adam (torch's update rule, with a
    step counter per restart so a restart that joins late gets its own bias correction)."""

    def __init__(self, shape: tuple[int, ...], has_n: bool, has_w: bool, device: torch.device | str) -> None:
        self.shape, self.device = shape, device
        self.keys = [k for k, has in (("n", has_n), ("w", has_w)) if has]
        self.params = {k: torch.empty((0, *shape), device=device) for k in self.keys}
        self.m = {k: torch.empty((0, *shape), device=device) for k in self.keys}
        self.v = {k: torch.empty((0, *shape), device=device) for k in self.keys}
        self.step = torch.empty(0, device=device)
        self.info: list[dict[str, Any]] = []  # per slot: rec, gen, epoch, t0

    def __len__(self) -> int:
        return len(self.info)

    def add(self, noise: ShredderNoise, info: dict[str, Any]) -> None:
        t = noise.tensors()
        for k in self.keys:
            p = t[k].to(self.device).unsqueeze(0)
            self.params[k] = torch.cat([self.params[k], p])
            self.m[k] = torch.cat([self.m[k], torch.zeros_like(p)])
            self.v[k] = torch.cat([self.v[k], torch.zeros_like(p)])
        self.step = torch.cat([self.step, torch.zeros(1, device=self.device)])
        self.info.append(info)

    def keep(self, rows: list[int]) -> None:
        idx = torch.tensor(rows, dtype=torch.long, device=self.device)
        for d in (self.params, self.m, self.v):
            for k in self.keys:
                d[k] = d[k][idx]
        self.step = self.step[idx]
        self.info = [self.info[i] for i in rows]

    def apply(self, a: torch.Tensor, params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """``a ⊙ w_r + n_r`` for every slot r: ``a`` is ``(R, B, *shape)`` or ``(B, *shape)`` (shared)."""
        p = self.params if params is None else params
        a = a if a.dim() == len(self.shape) + 2 else a.unsqueeze(0)
        out = a * p["w"].unsqueeze(1) if "w" in p else a
        return out + p["n"].unsqueeze(1) if "n" in p else out

    def adam(self, grads: dict[str, torch.Tensor], lr: float, b1: float = 0.9, b2: float = 0.999) -> None:
        self.step += 1
        view = (-1,) + (1,) * len(self.shape)
        bc1 = (1 - b1**self.step).view(view)
        bc2_sqrt = (1 - b2**self.step).sqrt().view(view)
        for k in self.keys:
            g = grads[k]
            self.m[k].mul_(b1).add_(g, alpha=1 - b1)
            self.v[k].mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = self.v[k].sqrt() / bc2_sqrt + 1e-8
            self.params[k] -= (lr / bc1) * self.m[k] / denom


def _slot_loss(
    cloud: nn.Module, a: torch.Tensor, y: torch.Tensor, params: dict[str, torch.Tensor], cfg: LossConfig
) -> torch.Tensor:
    """Per-restart :func:`shredder_loss` for clean activations ``a (R, B, *shape)``, labels ``y (R, B)`` and noise
    ``params`` (``n``/``w`` of shape ``(R, *shape)``): ``(R,)``.

    The contrastive distance uses ``z_i − z_j = (a_i − a_j) ⊙ w`` (``n`` cancels), i.e. ``d = Σ_c |a_i − a_j|_c
    |w|_c``: one batched product instead of differences of noisy activations (same value, same gradient).
    """
    r, b = y.shape
    n, w = params.get("n"), params.get("w")
    flat = (r, b, -1)
    if w is not None:
        wv = w.reshape(r, 1, -1)
        z = torch.addcmul(n.reshape(r, 1, -1), a.reshape(flat), wv) if n is not None else a.reshape(flat) * wv
    else:
        z = a.reshape(flat) + n.reshape(r, 1, -1)  # type: ignore[union-attr]
    logits = cloud(z.reshape(r * b, *a.shape[2:]))
    loss = F.cross_entropy(logits, y.reshape(-1), reduction="none").view(r, b).mean(1)
    if cfg.contrastive_weight > 0 and b > 1 and w is not None:  # without w, d does not depend on the noise
        da = (a - torch.roll(a, -1, dims=1)).abs().reshape(flat)
        d = torch.bmm(da, w.reshape(r, -1, 1).abs()).squeeze(2)
        same = y == torch.roll(y, -1, dims=1)
        loss = loss + cfg.contrastive_weight * (torch.where(same, d, 0).sum(1) - torch.where(same, 0, d).sum(1))
    if cfg.magnitude_reward != "none" and n is not None:
        lam, nf = cfg.magnitude_weight, n.flatten(1)
        if cfg.magnitude_reward == "neg_weight_decay":
            loss = loss - 0.5 * lam * nf.pow(2).sum(1)
        elif cfg.magnitude_reward == "mean_abs":
            loss = loss - lam * nf.abs().mean(1)
        else:
            loss = loss - lam * torch.log(nf.abs().mean(1) + 1e-12)
    return loss


def train_noise_bank(
    cloud: nn.Module,
    acts: torch.Tensor,
    labels: torch.Tensor,
    noise_cfg: NoiseConfig,
    loss_cfg: LossConfig,
    bank_cfg: BankConfig,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    on_restart: Callable[[dict[str, Any]], None] | None = None,
) -> NoiseBank:
    """Train Shredder noise on cached clean activations of a frozen network and collect accepted samples.

    The edge is frozen, so its activations ``acts`` are computed once by the caller; each restart draws fresh
    initial noise (seed ``seed·1000 + restart``), trains it with Adam (its own moments and step count; the original
    re-created the optimiser each epoch) on ``shredder_loss`` over the training part in its own batch order (seeded
    from the same restart seed), and after each epoch measures the accuracy of ``cloud(a ⊙ w + n)`` on the held-out
    part (``bank_cfg.val_fraction``, seeded). The first epoch ``≥ min_epochs`` with accuracy
    ``> accuracy_threshold`` stores the noise and ends the restart. Contrastive pairs are ``(i, i+1 mod B)`` within
    each shuffled batch (a fresh random pairing every step).

    ``bank_cfg.parallel_restarts`` restarts train at once as a batch dimension (``(R, *shape)`` tensors through one
    cloud forward); a restart that ends (accepted or out of epochs) is replaced by the next one. The result does not
    depend on R (up to float rounding): the bank holds the accepted restarts among the shortest prefix
    ``0..k`` of restarts that reaches ``bank_cfg.size``, in restart order, exactly as a one-at-a-time loop would;
    ``on_restart`` is called in restart order for ``0..k`` only (restarts begun beyond ``k`` are discarded).

    Args:
        cloud: the frozen cloud part (its parameters are frozen here; it stays in eval mode).
        acts: clean activations ``(N, *shape)`` of the edge. labels: public-task labels ``(N,)``.
        noise_cfg, loss_cfg, bank_cfg: see the configs.
        seed: seed of the validation split, the initial draws and the batch orders.
        device: where to train.
        progress: progress reporter. on_restart: called with each restart's record.

    Returns:
        A :class:`NoiseBank` (possibly with fewer than ``bank_cfg.size`` samples; check ``len``). A record's
        ``seconds`` is its wall time from start to end, shared with the restarts trained beside it.
    """
    progress = progress or Progress(quiet=True)
    for p in cloud.parameters():
        p.requires_grad_(False)
    cloud.to(device).eval()
    n_all = len(acts)
    n_val = max(1, round(n_all * bank_cfg.val_fraction))
    if n_val >= n_all:
        raise ConfigError(f"bank.val_fraction {bank_cfg.val_fraction} leaves no training rows out of {n_all}")
    perm = torch.randperm(n_all, generator=torch.Generator().manual_seed(seed + 4241))
    tr, va = perm[n_val:], perm[:n_val]
    z_tr, y_tr = acts[tr].to(device), labels[tr].to(device)
    z_va, y_va = acts[va].to(device), labels[va].to(device)
    shape = tuple(acts.shape[1:])
    t_start = time.perf_counter()
    has_n, has_w = noise_cfg.mode in ("additive", "combined"), noise_cfg.mode in ("multiplicative", "combined")
    slots = _Slots(shape, has_n, has_w, device)
    done: dict[int, dict[str, Any]] = {}  # restart -> (rec, tensors)

    def accepted_before(r: int) -> int:  # accepted among the finished, not yet handed-over restarts below r
        return sum(1 for q, d in done.items() if q < r and d["rec"]["accepted"])

    samples: dict[str, list[torch.Tensor]] = {"n": [], "w": []}
    records: list[dict[str, Any]] = []
    next_restart, flushed = 0, 0
    n_tr, bs = len(z_tr), bank_cfg.batch_size

    def flush(advance: Callable[..., None]) -> None:
        # hand over finished restarts in restart order, up to the one that fills the bank
        nonlocal flushed
        while flushed in done and len(samples["n"] or samples["w"]) < bank_cfg.size:
            d = done.pop(flushed)
            records.append(d["rec"])
            if on_restart is not None:
                on_restart(d["rec"])
            if d["rec"]["accepted"]:
                for k, v in d["tensors"].items():
                    samples[k].append(v)
                advance(1, restart=d["rec"]["restart"], acc=d["rec"]["val_accuracy"])
            flushed += 1

    def needed(r: int) -> bool:
        return r < bank_cfg.max_restarts and len(samples["n"] or samples["w"]) + accepted_before(r) < bank_cfg.size

    with progress.task("noise bank", total=bank_cfg.size) as advance:
        while True:
            # drop restarts no longer needed (the bank fills before them), then fill free slots from the queue
            slots.keep([i for i, s in enumerate(slots.info) if needed(s["rec"]["restart"])])
            while len(slots) < bank_cfg.parallel_restarts and needed(next_restart):
                rseed = seed * 1000 + next_restart
                rec: dict[str, Any] = {"restart": next_restart, "seed": rseed, "accepted": False, "epoch": None}
                info = {"rec": rec, "gen": _order_generator(rseed), "t0": time.perf_counter()}
                slots.add(ShredderNoise(shape, noise_cfg, seed=rseed), info)
                next_restart += 1
            if not len(slots):
                break
            orders = torch.stack([torch.randperm(n_tr, generator=s["gen"]) for s in slots.info]).to(device)
            for i in range(0, n_tr, bs):
                idx = orders[:, i : i + bs]
                params = {k: v.detach().requires_grad_(True) for k, v in slots.params.items()}
                loss = _slot_loss(cloud, z_tr[idx], y_tr[idx], params, loss_cfg)
                if not torch.isfinite(loss).all():
                    bad = int((~torch.isfinite(loss)).nonzero()[0])
                    s = slots.info[bad]["rec"]
                    raise ConfigError(
                        f"noise training diverged (loss {float(loss[bad].detach())}) at restart {s['restart']}, epoch "
                        f"{(s['epoch'] or 0) + 1}; lower bank.lr ({bank_cfg.lr}) or loss.magnitude_weight "
                        f"({loss_cfg.magnitude_weight})"
                    )
                grads = torch.autograd.grad(loss.sum(), [params[k] for k in slots.keys])
                with torch.no_grad():
                    slots.adam(dict(zip(slots.keys, grads, strict=True)), bank_cfg.lr)
            with torch.no_grad():
                correct = torch.zeros(len(slots), dtype=torch.long, device=device)
                for i in range(0, n_val, 1024):
                    z = slots.apply(z_va[i : i + 1024])
                    pred = cloud(z.reshape(-1, *shape)).argmax(1).view(len(slots), -1)
                    correct += (pred == y_va[i : i + 1024]).sum(1)
                accs = (correct.double() / n_val).tolist()
            finished, keep = [], []
            for j, (s, acc) in enumerate(zip(slots.info, accs, strict=True)):
                rec = s["rec"]
                rec["epoch"] = (rec["epoch"] or 0) + 1
                rec["val_accuracy"] = acc
                rec["accepted"] = rec["epoch"] >= bank_cfg.min_epochs and acc > bank_cfg.accuracy_threshold
                (finished if rec["accepted"] or rec["epoch"] >= bank_cfg.max_epochs else keep).append(j)
            for j in finished:
                s = slots.info[j]
                tensors = {k: slots.params[k][j].detach().cpu().clone() for k in slots.keys}
                with torch.no_grad():
                    one = {k: slots.params[k][j : j + 1] for k in slots.keys}
                    s["rec"]["train_snr"] = snr(z_va, slots.apply(z_va, one)[0])
                s["rec"]["seconds"] = time.perf_counter() - s["t0"]
                s["rec"]["elapsed_s"] = time.perf_counter() - t_start
                done[s["rec"]["restart"]] = {"rec": s["rec"], "tensors": tensors}
            slots.keep(keep)
            flush(advance)
    meta = {
        "shape": list(shape),
        "mode": noise_cfg.mode,
        "init": {"n": f"Laplace(loc={noise_cfg.laplace_loc}, scale={noise_cfg.laplace_scale})", "w": "xavier_normal"},
        "seed": seed,
        "acceptance": (
            f"val accuracy > {bank_cfg.accuracy_threshold} at an epoch ≥ {bank_cfg.min_epochs} "
            f"(≤ {bank_cfg.max_epochs} epochs, ≤ {bank_cfg.max_restarts} restarts, "
            f"val_fraction {bank_cfg.val_fraction})"
        ),
        "loss": loss_cfg.model_dump(),
        "parallel_restarts": bank_cfg.parallel_restarts,
        "accuracies": [r["val_accuracy"] for r in records if r["accepted"]],
    }
    n = torch.stack(samples["n"]) if samples["n"] else None
    w = torch.stack(samples["w"]) if samples["w"] else None
    return NoiseBank(n, w, records, meta)


# -- deployment samplers ------------------------------------------------------------------------------------------
def rank_preserving_gaussian(w: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Re-draw each row of ``w`` from N(μ, σ²) fitted to that row, keeping the row's order of values (v2 sampling).

    For each row (all non-batch axes flattened), μ and σ are the maximum-likelihood fit (mean, population std, as
    ``scipy.stats.norm.fit``); ``m`` values are drawn, sorted, and the k-th smallest goes where the row had its k-th
    smallest value. Ties in ``w`` keep their stable sort order.

    Args:
        w: ``(B, *shape)`` tensors to resample. generator: random source (its device must be ``w``'s).

    Returns:
        A tensor like ``w`` whose every row has exactly the same ranks as ``w``'s.
    """
    flat = w.reshape(len(w), -1)
    mu = flat.mean(1, keepdim=True)
    sd = flat.std(1, keepdim=True, unbiased=False)
    draws = torch.randn(flat.shape, generator=generator, device=w.device, dtype=flat.dtype)
    draws = (mu + sd * draws).sort(1).values
    order = flat.argsort(dim=1, stable=True)
    out = torch.empty_like(flat).scatter_(1, order, draws)
    return out.reshape(w.shape)


class NoiseSampler(nn.Module):
    """Base of deployment samplers: ``sample(count, generator) -> (n or None, w or None)``, each ``(count, *shape)``."""

    shape: tuple[int, ...]

    def sample(
        self, count: int, generator: torch.Generator
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:  # pragma: no cover - abstract
        raise NotImplementedError


class LaplaceFitSampler(NoiseSampler):
    """Shredder v1: every element drawn from Laplace(loc = bank mean, scale = bank std) of that element.

    As in the original, the element-wise standard deviation is used as the Laplace *scale* (so the deployed noise
    has √2 times the bank's spread). A bank of one sample gives scale 0, i.e. that sample itself.
    """

    def __init__(self, bank: NoiseBank) -> None:
        super().__init__()
        if len(bank) == 0:
            raise ConfigError("cannot deploy Shredder noise from an empty bank: no restart passed the acceptance rule")
        self.shape = bank.shape
        for k, t in bank.tensors().items():
            self.register_buffer(f"{k}_loc", t.float().mean(0))
            self.register_buffer(f"{k}_scale", t.float().std(0, unbiased=False))
        self.has_n, self.has_w = bank.n is not None, bank.w is not None

    def sample(self, count: int, generator: torch.Generator) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        out = []
        for k, has in (("n", self.has_n), ("w", self.has_w)):
            if not has:
                out.append(None)
                continue
            loc, scale = getattr(self, f"{k}_loc"), getattr(self, f"{k}_scale")
            out.append(laplace_sample(loc, scale, (count, *self.shape), generator))
        return out[0], out[1]


class BankSampler(NoiseSampler):
    """Shredder v2: a uniformly drawn bank entry ``j``; ``n = n_j`` and ``w`` = :func:`rank_preserving_gaussian` of
    ``w_j`` (with ``resample_w=False``, ``w_j`` itself)."""

    def __init__(self, bank: NoiseBank, *, resample_w: bool = True) -> None:
        super().__init__()
        if len(bank) == 0:
            raise ConfigError("cannot deploy Shredder noise from an empty bank: no restart passed the acceptance rule")
        self.shape = bank.shape
        self.size = len(bank)
        self.resample_w = resample_w
        for k, t in bank.tensors().items():
            self.register_buffer(f"bank_{k}", t.float())
        self.has_n, self.has_w = bank.n is not None, bank.w is not None

    def sample(self, count: int, generator: torch.Generator) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        j = torch.randint(0, self.size, (count,), generator=generator, device=generator.device)
        n = self.bank_n[j.to(self.bank_n.device)] if self.has_n else None
        w = self.bank_w[j.to(self.bank_w.device)] if self.has_w else None
        if w is not None and self.resample_w:
            w = rank_preserving_gaussian(w, generator)
        return n, w


class DeployedNoise(nn.Module):
    """The noise layer at inference: fresh noise from ``sampler`` for every image (``per="image"``) or one draw
    shared by the whole batch (``per="batch"``), applied as ``a ⊙ w + n``.

    Args:
        sampler: a :class:`NoiseSampler`. per: ``image`` or ``batch``. seed: seed of the layer's own generator,
            used when :meth:`forward` gets none (re-seed with :meth:`reseed` for reproducible evaluations).
    """

    def __init__(self, sampler: NoiseSampler, per: Literal["image", "batch"] = "image", *, seed: int = 0) -> None:
        super().__init__()
        if per not in ("image", "batch"):
            raise ConfigError(f"per must be 'image' or 'batch', got {per!r}")
        self.sampler, self.per, self._seed = sampler, per, seed
        self._gen: torch.Generator | None = None

    def reseed(self, seed: int | None = None) -> None:
        """Restart the layer's generator (from ``seed`` or the constructor's seed)."""
        self._seed = self._seed if seed is None else seed
        self._gen = None

    def forward(self, a: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if generator is None:
            if self._gen is None or self._gen.device != a.device:
                self._gen = torch.Generator(device=a.device).manual_seed(self._seed)
            generator = self._gen
        count = len(a) if self.per == "image" else 1
        n, w = self.sampler.sample(count, generator)
        out = a * w.to(a.device) if w is not None else a
        return out + n.to(a.device) if n is not None else out


def shredder_budget(snr_ratio: float, **details: Any) -> Budget:
    """The :class:`~privlab.protect.base.Budget` Shredder reports: an SNR (ratio) per activation."""
    return Budget(kind="snr", scope="activation", details={"snr": snr_ratio, "snr_db": snr_db(snr_ratio), **details})
