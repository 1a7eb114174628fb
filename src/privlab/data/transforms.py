"""Batch-level image augmentations in torch: CIFAR crop+flip and SimCLR-style views, seeded and differentiable.

Every transform takes a batch ``x`` of shape ``(B, C, H, W)`` in ``[0, 1]`` and a :class:`torch.Generator` and
returns a batch of the same shape in ``[0, 1]``. Random parameters are drawn per sample (``per_sample=True``, the
kornia behaviour used for training) or once for the whole batch (``per_sample=False``, the torchvision-on-a-batch
behaviour of TUE's noise objective). All operations are differentiable with respect to ``x`` (crops go through
``grid_sample``), so error-minimising noise can be optimised *through* the augmentation.

Example:
    >>> import torch
    >>> from privlab.data.transforms import build_transform
    >>> t = build_transform("simclr", channels=1)
    >>> g = torch.Generator().manual_seed(0)
    >>> y = t(torch.rand(4, 1, 16, 16), g)
    >>> y.shape, bool(y.min() >= 0 and y.max() <= 1)
    (torch.Size([4, 1, 16, 16]), True)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from privlab.config import Spec
from privlab.errors import ConfigError

__all__ = [
    "AugmentConfig",
    "BatchTransform",
    "SimCLRAugment",
    "build_transform",
    "color_jitter",
    "crop_flip",
    "random_grayscale",
    "random_hflip",
    "random_resized_crop",
]

BatchTransform = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


def _rand(n: int, g: torch.Generator | None, device: torch.device, per_sample: bool) -> torch.Tensor:
    """``n`` uniform [0, 1) numbers (one repeated ``n`` times when not per sample), drawn on ``g``'s device."""
    gdev = g.device if g is not None else torch.device("cpu")
    r = torch.rand(n if per_sample else 1, generator=g, device=gdev).to(device)
    return r if per_sample else r.expand(n)


def random_hflip(
    x: torch.Tensor, g: torch.Generator | None, *, p: float = 0.5, per_sample: bool = True
) -> torch.Tensor:
    """Mirror images left–right with probability ``p``."""
    flip = _rand(x.shape[0], g, x.device, per_sample) < p
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


def crop_flip(
    x: torch.Tensor, g: torch.Generator | None, *, padding: int = 4, flip: bool = True, per_sample: bool = True
) -> torch.Tensor:
    """CIFAR augmentation: zero-pad by ``padding`` pixels, crop back to ``H×W`` at a random offset, random h-flip."""
    b, _, h, w = x.shape
    if padding > 0:
        xp = F.pad(x, (padding, padding, padding, padding))
        oy = (_rand(b, g, x.device, per_sample) * (2 * padding + 1)).long().clamp_(max=2 * padding)
        ox = (_rand(b, g, x.device, per_sample) * (2 * padding + 1)).long().clamp_(max=2 * padding)
        rows = oy[:, None] + torch.arange(h, device=x.device)[None]  # (B, H)
        cols = ox[:, None] + torch.arange(w, device=x.device)[None]  # (B, W)
        bi = torch.arange(b, device=x.device)[:, None, None]
        x = xp.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    return random_hflip(x, g, per_sample=per_sample) if flip else x


def random_resized_crop(
    x: torch.Tensor,
    g: torch.Generator | None,
    *,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    per_sample: bool = True,
) -> torch.Tensor:
    """Crop a random area fraction in ``scale`` with aspect ratio in ``ratio`` and resize it back to ``H×W``.

    Implemented with ``affine_grid``/``grid_sample`` (bilinear), so it is differentiable with respect to ``x``.
    Crop sizes are clamped to the image (no retries as in torchvision; the distribution is close to it).
    """
    b = x.shape[0]
    area = scale[0] + (scale[1] - scale[0]) * _rand(b, g, x.device, per_sample)
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * _rand(b, g, x.device, per_sample)
    r = torch.exp(log_r)
    sw = torch.sqrt(area * r).clamp(max=1.0)  # width fraction
    sh = torch.sqrt(area / r).clamp(max=1.0)  # height fraction
    cx = (2 * _rand(b, g, x.device, per_sample) - 1) * (1 - sw)  # centre in [-1, 1] keeping the crop inside
    cy = (2 * _rand(b, g, x.device, per_sample) - 1) * (1 - sh)
    theta = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sw, cx, sh, cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 3:
        w = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return (x * w).sum(1, keepdim=True)
    return x.mean(1, keepdim=True)


def color_jitter(
    x: torch.Tensor,
    g: torch.Generator | None,
    *,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    p: float = 0.8,
    per_sample: bool = True,
) -> torch.Tensor:
    """With probability ``p``: scale brightness, contrast (around the image mean) and saturation by factors drawn
    uniformly from ``[1 − s, 1 + s]``; result clamped to [0, 1]. (Hue jitter is not implemented.)"""
    b = x.shape[0]

    def factor(s: float) -> torch.Tensor:
        return (1 - s + 2 * s * _rand(b, g, x.device, per_sample)).view(-1, 1, 1, 1).to(x.dtype)

    apply = (_rand(b, g, x.device, per_sample) < p).view(-1, 1, 1, 1)
    y = x * factor(brightness)
    mean = _gray(y).mean(dim=(1, 2, 3), keepdim=True)
    y = (y - mean) * factor(contrast) + mean
    if x.shape[1] == 3:
        gray = _gray(y)
        y = (y - gray) * factor(saturation) + gray
    return torch.where(apply, y.clamp(0, 1), x)


def random_grayscale(
    x: torch.Tensor, g: torch.Generator | None, *, p: float = 0.2, per_sample: bool = True
) -> torch.Tensor:
    """Replace colour images by their luminance (repeated over channels) with probability ``p``; grey input kept."""
    if x.shape[1] != 3:
        _rand(x.shape[0], g, x.device, per_sample)  # keep the random stream independent of the channel count
        return x
    use = (_rand(x.shape[0], g, x.device, per_sample) < p).view(-1, 1, 1, 1)
    return torch.where(use, _gray(x).expand_as(x), x)


class AugmentConfig(Spec):
    """Settings of the SimCLR-style view generator (defaults: SimCLR's CIFAR settings without hue)."""

    crop_scale: tuple[float, float] = Field(default=(0.2, 1.0), description="area fraction range of the random crop")
    flip: bool = Field(default=True, description="random horizontal flip (turn off for digits/text)")
    brightness: float = Field(default=0.4, ge=0, le=1, description="brightness jitter strength")
    contrast: float = Field(default=0.4, ge=0, le=1, description="contrast jitter strength")
    saturation: float = Field(default=0.4, ge=0, le=1, description="saturation jitter strength (colour images)")
    jitter_p: float = Field(default=0.8, ge=0, le=1, description="probability of colour jitter")
    grayscale_p: float = Field(default=0.2, ge=0, le=1, description="probability of grey conversion (colour images)")
    per_sample: bool = Field(default=True, description="draw random parameters per image (False: once per batch)")


class SimCLRAugment:
    """SimCLR view: random resized crop → flip → colour jitter → random grayscale (all per :class:`AugmentConfig`)."""

    def __init__(self, cfg: AugmentConfig | None = None) -> None:
        self.cfg = cfg or AugmentConfig()
        lo, hi = self.cfg.crop_scale
        if not 0 < lo <= hi <= 1:
            raise ConfigError(f"augment crop_scale must satisfy 0 < low ≤ high ≤ 1, got {self.cfg.crop_scale}")

    def __call__(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        c = self.cfg
        y = random_resized_crop(x, g, scale=c.crop_scale, per_sample=c.per_sample)
        if c.flip:
            y = random_hflip(y, g, per_sample=c.per_sample)
        y = color_jitter(
            y,
            g,
            brightness=c.brightness,
            contrast=c.contrast,
            saturation=c.saturation,
            p=c.jitter_p,
            per_sample=c.per_sample,
        )
        return random_grayscale(y, g, p=c.grayscale_p, per_sample=c.per_sample)


def build_transform(
    name: Literal["none", "crop_flip", "crop", "simclr"] | str,
    *,
    channels: int = 3,
    cfg: AugmentConfig | None = None,
    padding: int = 4,
) -> BatchTransform | None:
    """A named batch transform: ``none`` (None), ``crop_flip`` / ``crop`` (pad-and-crop, with / without flip) or
    ``simclr`` (:class:`SimCLRAugment`; ``channels`` only documents the input — grey images skip saturation/grey).

    Raises:
        ConfigError: unknown name.
    """
    if name == "none":
        return None
    if name in ("crop_flip", "crop"):
        flip = name == "crop_flip"
        return lambda x, g: crop_flip(x, g, padding=padding, flip=flip)
    if name == "simclr":
        return SimCLRAugment(cfg)
    raise ConfigError(f"unknown augmentation {name!r}; use none, crop, crop_flip or simclr")
