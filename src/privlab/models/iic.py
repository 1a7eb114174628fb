"""Invariant Information Clustering (Ji, Henriques & Vedaldi 2019), a small CPU-friendly version.

IIC trains a network Φ with softmax heads so that the cluster assignments of an image ``x`` and of a randomly
transformed copy ``g(x)`` share as much information as possible. For a batch, ``P = (1/n) Σ Φ(x)ᵀ Φ(g(x))`` is the
joint distribution of the two assignments (k × k), symmetrised and normalised, and the loss is
``L = −I(z; z') = −Σ_ij P_ij (ln P_ij − ln P_i − ln P_j)`` (nats; minimum −ln k, reached by k balanced, perfectly
consistent clusters; the degenerate two-cluster solution sits at −ln 2). An **overclustering** head (k = 50 by
default) is trained beside the main head (k = number of classes, several sub-heads); the overclustering head only
shapes the features. Evaluation maps the clusters of each main sub-head to classes with the Hungarian algorithm
(:func:`privlab.measure.utility.clustering.hungarian_accuracy`) and reports the sub-head with the lowest training loss.

Differences from the original "config B" network (4 × conv5×5, 64–512 channels, 24×24 inputs, Adam 1e-4, batch 700,
5 repeats): a 3-layer 3×3 encoder with ``width`` channels working on the native image size, both heads optimised
together on the summed loss (not in alternating epochs), configurable repeats. Augmentations ``g`` are batched and
seeded: random rotation, random scaled crop, contrast jitter and brightness jitter relative to each image's peak
(so the views of a dim, L2-normalised Gaussian-LDP image are the raw image's views up to scale:
``augment(c·x) = c·augment(x)`` where nothing clips at 1). With ``both_views`` both views are transformed,
``(g(x), g'(x))`` instead of ``(x, g(x))``, as the paper's base crops do; on binarised (randomized-response) digits
the pair ``(x, g(x))`` pits a binary image against a smooth interpolated one and collapsed to ≈ 0.38 accuracy in one
measured run, ``(g(x), g'(x))`` reached 0.77. The same holds for Gaussian local-DP images: on MNIST at ε = 3 000
(σ = 0.02 on unit-norm images) ``(x, g(x))`` fell into the −ln 2 solution in every setting tried — the network
tells the sharp-noise view from the interpolated one and puts each in its own cluster — while ``(g(x), g'(x))`` at
half of :class:`IICConfig`'s strengths with ``peak_normalize`` reached 0.81 Hungarian accuracy in 10 epochs (10 000
images, seed 0; the ``paper-cpu`` preset of ``ldp``). ``peak_normalize`` divides each image by its peak once, before
augmentation, so a dim L2-normalised image (peak ≈ 0.1) is augmented and seen at the scale of a raw one;
normalising each augmented view instead undid the brightness/contrast jitter and left raw MNIST at 0.30. The
original's strengths (±25°, crops 16/20/24 of 24, brightness 0.4, contrast 0.6–1.4) are :func:`augment`'s defaults
and the ``paper`` preset's; the :class:`IICConfig` defaults are milder (±15°, scale 0.85–1, 0.2, 0.8–1.2) because on
8×8 digits and a few hundred steps the original strengths left IIC in the degenerate ≈ −0.6 nats solution (Hungarian
accuracy ≈ 0.11), while the milder ones reach 0.64–0.85 per sub-head in 20–40 epochs (measured, seed 0). Runs vary a
lot with the seed (±0.05–0.1 in Hungarian accuracy), which is why several sub-heads are trained and the one with the
lowest training loss (no labels, no test data) is reported.

Example:
    >>> import torch
    >>> net = IICNet((1, 8, 8), num_classes=10, overcluster=20, subheads=2, width=8)
    >>> a, b = net(torch.rand(4, 1, 8, 8))
    >>> len(a), a[0].shape, len(b), b[0].shape
    (1, torch.Size([4, 20]), 2, torch.Size([4, 10]))
    >>> p = torch.eye(4).repeat(8, 1)  # 4 perfectly consistent, balanced clusters
    >>> abs(iic_loss(p, p).item() + math.log(4)) < 1e-3  # −ln k, up to the 1e-6 clamp
    True
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from privlab.config import Spec
from privlab.context import Progress, seed_everything
from privlab.errors import ConfigError

__all__ = ["IICConfig", "IICNet", "IICResult", "augment", "iic_loss", "predict_clusters", "train_iic"]


class IICNet(nn.Module):
    """Encoder + overclustering head A (1 sub-head) + main head B (``subheads`` sub-heads); outputs logits.

    Args:
        in_shape: ``(C, H, W)`` of the inputs (values in [0, 1]).
        num_classes: clusters of the main head.
        overcluster: clusters of the overclustering head.
        subheads: number of main sub-heads.
        width: channels of the first conv layer (×2, ×4 in the next two).
        peak_normalize: :meth:`prepare` divides each image by its peak value, so the network sees the same input
            for ``x`` and ``c·x`` (an L2-normalised local-DP image peaks near 0.1; see :class:`IICConfig`).
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_classes: int = 10,
        overcluster: int = 50,
        subheads: int = 5,
        width: int = 32,
        peak_normalize: bool = False,
    ) -> None:
        super().__init__()
        c = int(in_shape[0])
        self.peak_normalize = bool(peak_normalize)

        def block(i: int, o: int) -> list[nn.Module]:
            return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

        self.encoder = nn.Sequential(
            *block(c, width),
            nn.MaxPool2d(2, ceil_mode=True),
            *block(width, 2 * width),
            nn.MaxPool2d(2, ceil_mode=True),
            *block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
        )
        feat = 16 * width
        self.head_a = nn.ModuleList([nn.Linear(feat, overcluster)])
        self.head_b = nn.ModuleList([nn.Linear(feat, num_classes) for _ in range(subheads)])

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Images as the network is trained on them: ``x / max(x)`` per image with ``peak_normalize`` (public
        post-processing of a release; an all-zero image stays zero), else ``x``. Applied once to the training images,
        *before* augmentation (normalising each augmented view instead would undo its brightness/contrast jitter)."""
        if not self.peak_normalize:
            return x
        return x / x.flatten(1).amax(1).clamp_min(1e-6).view(-1, *([1] * (x.ndim - 1)))

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """``(B, C, H, W)`` in [0, 1] → (head A logits list, head B logits list), each ``(B, k)``."""
        h = self.encoder(x * 2.0 - 1.0)
        return [m(h) for m in self.head_a], [m(h) for m in self.head_b]


def iic_loss(p: torch.Tensor, pt: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """IIC loss −I(z; z') in nats for soft assignments ``p``, ``pt`` ``(n, k)`` (rows are distributions).

    The joint ``P = pᵀ pt / n`` is symmetrised, clipped at ``eps`` (as the original) and renormalised.
    """
    if p.shape != pt.shape or p.ndim != 2:
        raise ConfigError(
            f"iic_loss wants two (n, k) tensors of the same shape, got {tuple(p.shape)}, {tuple(pt.shape)}"
        )
    joint = p.t() @ pt / p.shape[0]
    joint = (joint + joint.t()) / 2
    joint = joint.clamp_min(eps)
    joint = joint / joint.sum()
    pi = joint.sum(1, keepdim=True)
    pj = joint.sum(0, keepdim=True)
    return -(joint * (joint.log() - pi.log() - pj.log())).sum()


def augment(
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    rotation: float = 25.0,
    min_scale: float = 2.0 / 3.0,
    brightness: float = 0.4,
    contrast: tuple[float, float] = (0.6, 1.4),
) -> torch.Tensor:
    """Random g(x) for a batch ``(B, C, H, W)`` in [0, 1]: rotation, scaled crop, brightness/contrast jitter.

    Defaults are the original's (±25°, crops 16–24 of 24, brightness 0.4, contrast 0.6–1.4); brightness is added in
    units of a quarter of each image's peak value (a quarter of the [0, 1] range for an image whose peak is 1), so
    the transform is scale-equivariant up to the clip at 1.
    """
    b = x.shape[0]
    dev = x.device

    def u(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(b, generator=generator, device=dev) * (hi - lo) + lo

    angle = u(-rotation, rotation) * (math.pi / 180.0)
    scale = u(min_scale, 1.0)  # crop side / image side
    tx, ty = u(-1.0, 1.0) * (1 - scale), u(-1.0, 1.0) * (1 - scale)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    bright = u(-brightness, brightness).view(b, 1, 1, 1)
    contr = u(*contrast).view(b, 1, 1, 1)
    mean = y.mean(dim=(1, 2, 3), keepdim=True)
    peak = x.flatten(1).amax(1).clamp_min(1e-6).view(b, 1, 1, 1)  # brightness relative to the image's range
    return ((y - mean) * contr + mean + bright * 0.25 * peak).clamp(0.0, 1.0)


class IICConfig(Spec):
    """IIC training settings."""

    epochs: int = Field(default=20, ge=1, description="passes over the training images")
    batch_size: int = Field(default=128, ge=2, description="images per batch (before repeats)")
    lr: float = Field(default=3e-3, gt=0, description="Adam learning rate (original: 1e-4 for 600 epochs)")
    overcluster: int = Field(default=50, ge=2, description="clusters of the overclustering head A")
    subheads: int = Field(default=5, ge=1, description="sub-heads of the main head B")
    repeats: int = Field(default=3, ge=1, description="augmented copies g(x) per image (original: 5)")
    width: int = Field(default=16, ge=4, description="channels of the first conv layer")
    rotation: float = Field(default=15.0, ge=0, le=180, description="g(x): max rotation in degrees (original 25)")
    min_scale: float = Field(default=0.85, gt=0, le=1, description="g(x): smallest crop side / image (original 2/3)")
    brightness: float = Field(default=0.2, ge=0, description="g(x): brightness jitter (original 0.4)")
    contrast: tuple[float, float] = Field(default=(0.8, 1.2), description="g(x): contrast range (original 0.6–1.4)")
    both_views: bool = Field(
        default=False,
        description="transform both views (g(x), g'(x)) instead of (x, g(x)); needed for noisy or binary inputs",
    )
    peak_normalize: bool = Field(
        default=False,
        description="divide each image by its peak before augmentation (scale-free: L2-normalised LDP images are dim; "
        "the paper-cpu preset turns it on)",
    )


@dataclass
class IICResult:
    """What :func:`train_iic` returns besides the model."""

    history: list[dict[str, float]] = field(default_factory=list)
    subhead_losses: list[float] = field(default_factory=list)
    best_subhead: int = 0


def train_iic(
    images: torch.Tensor,
    num_classes: int,
    cfg: IICConfig,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    view_transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
) -> tuple[IICNet, IICResult]:
    """Train an :class:`IICNet` on unlabelled ``images`` ``(N, C, H, W)`` in [0, 1].

    Args:
        images: training images (e.g. privatised); labels are never used.
        num_classes: clusters of the main head.
        cfg: training settings.
        seed: seeds weights, batch order and augmentations.
        device: where to train.
        progress: progress reporter (None: silent).
        view_transform: optional ``f(x, generator)`` applied to *each* view after augmentation (e.g. fresh local-DP
            noise per epoch and per view, as the original's IIC variant did).

    Returns:
        ``(model in eval mode, IICResult)``; ``subhead_losses`` are the last epoch's mean head-B losses (nats).
    """
    seed_everything(seed)
    progress = progress or Progress(quiet=True)
    x_all = images.float()
    n = x_all.shape[0]
    if n < 2:
        raise ConfigError(f"IIC needs at least 2 training images, got {n}")
    torch.manual_seed(seed)
    net = IICNet(
        tuple(x_all.shape[1:]),  # type: ignore[arg-type]
        num_classes,
        cfg.overcluster,
        cfg.subheads,
        cfg.width,
        peak_normalize=cfg.peak_normalize,
    ).to(device)
    x_all = net.prepare(x_all)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(seed)
    aug_gen = torch.Generator(device=device).manual_seed(seed + 1)
    history: list[dict[str, float]] = []
    sub_losses = [0.0] * cfg.subheads
    with progress.task("iic", total=cfg.epochs) as advance:
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            net.train()
            order = torch.randperm(n, generator=gen)
            sums_a, sums_b, batches = 0.0, [0.0] * cfg.subheads, 0
            for i in range(0, n, cfg.batch_size):
                idx = order[i : i + cfg.batch_size]
                if len(idx) < 2:
                    continue
                x = x_all[idx].to(device).repeat(cfg.repeats, 1, 1, 1)
                aug = {
                    "rotation": cfg.rotation,
                    "min_scale": cfg.min_scale,
                    "brightness": cfg.brightness,
                    "contrast": cfg.contrast,
                }
                xt = augment(x, aug_gen, **aug)
                if cfg.both_views:
                    x = augment(x, aug_gen, **aug)
                if view_transform is not None:
                    x, xt = view_transform(x, aug_gen), view_transform(xt, aug_gen)
                a, b = net(torch.cat([x, xt]))
                m = x.shape[0]
                loss_a = torch.stack([iic_loss(h[:m].softmax(1), h[m:].softmax(1)) for h in a]).mean()
                losses_b = [iic_loss(h[:m].softmax(1), h[m:].softmax(1)) for h in b]
                loss = loss_a + torch.stack(losses_b).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sums_a += loss_a.item()
                for j, lb in enumerate(losses_b):
                    sums_b[j] += lb.item()
                batches += 1
            sub_losses = [s / max(batches, 1) for s in sums_b]
            stats = {
                "epoch": epoch,
                "loss_a": sums_a / max(batches, 1),
                "loss_b": sum(sub_losses) / len(sub_losses),
                "seconds": time.perf_counter() - t0,
            }
            history.append(stats)
            advance(1, loss=stats["loss_b"])
    net.eval()
    best = int(min(range(len(sub_losses)), key=lambda j: sub_losses[j]))
    return net, IICResult(history, sub_losses, best)


@torch.no_grad()
def predict_clusters(net: IICNet, images: torch.Tensor, *, batch_size: int = 1024) -> torch.Tensor:
    """``(subheads, N)`` cluster ids of every main sub-head for ``images`` ``(N, C, H, W)`` in [0, 1]."""
    net.eval()
    dev = next(net.parameters()).device
    outs = []
    for i in range(0, images.shape[0], batch_size):
        _, b = net(net.prepare(images[i : i + batch_size].to(dev).float()))
        outs.append(torch.stack([h.argmax(1) for h in b]).cpu())
    return torch.cat(outs, 1)
