"""Pixel-level image similarity per image: MSE, PSNR, SSIM and MS-SSIM over torchmetrics' functional API.

Every function takes two batches ``N×C×H×W`` of float images in ``[0, 1]`` (C = 1 grey or 3 RGB) and returns one
value per image (a tensor of shape ``[N]``, float64), never a batch mean. The data range is fixed to 1.

- **MSE**: ``mean((x − y)²)`` over C, H, W, in squared ``[0, 1]`` intensity units.
- **PSNR**: ``10·log10(1 / MSE)`` in dB (``inf`` for identical images).
- **SSIM**: Wang et al. (2004): Gaussian window 11×11, σ = 1.5, K1 = 0.01, K2 = 0.03, population (biased)
  covariances, the SSIM map averaged over the pixels whose window lies inside the image (a border of 5 pixels is
  left out) and over channels. This equals scikit-image's ``structural_similarity(gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=...)``. (torchmetrics' own reduction also
  averages the reflect-padded border, which differs from scikit-image by ~1e-3 on 32×32 images; we take
  torchmetrics' SSIM map and crop it as scikit-image does.)
- **MS-SSIM**: Wang et al. (2003) through torchmetrics (``normalize="relu"``: negative per-scale terms are set to 0
  before the fractional powers, as torchmetrics does by default). The five standard scales need images of at least
  176 px with an 11-px window; on smaller images :func:`ms_ssim_settings` keeps the window and uses as many scales
  as fit, with the first betas renormalised to sum to 1 (32×32: 2 scales). The settings used are returned in words.

Example:
    >>> import torch
    >>> x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> psnr(x, x).tolist()
    [inf, inf]
    >>> [round(v, 6) for v in ssim(x, x).tolist()]
    [1.0, 1.0]
    >>> ms_ssim_settings(32, 32)[:2]
    ((0.1356, 0.8644), 11)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torchmetrics.functional.image import (
    multiscale_structural_similarity_index_measure,
    structural_similarity_index_measure,
)

from privlab.errors import ConfigError

__all__ = [
    "MS_SSIM_BETAS",
    "SSIM_NOTE",
    "SSIM_SIGMA",
    "SSIM_WINDOW",
    "check_images",
    "ms_ssim",
    "ms_ssim_settings",
    "mse",
    "psnr",
    "ssim",
]

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
MS_SSIM_BETAS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""The five scale weights of Wang et al. (2003), finest scale first."""

SSIM_NOTE = (
    "Gaussian window 11, σ 1.5, K1 0.01, K2 0.03, data range 1, population covariance (Wang et al. 2004), mean over "
    "the SSIM map without its 5-pixel border and over channels; = skimage structural_similarity(gaussian_weights=True, "
    "sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=...)"
)


def check_images(original: torch.Tensor, reconstruction: torch.Tensor) -> None:
    """Check two image batches: tensors, ``N×C×H×W`` with C ∈ {1, 3}, equal shapes, finite values in ``[0, 1]``.

    Raises:
        ConfigError: naming which check failed and how to fix it.
    """
    for name, t in (("original", original), ("reconstruction", reconstruction)):
        if not isinstance(t, torch.Tensor):
            raise ConfigError(f"{name} images must be a torch.Tensor N×C×H×W, got {type(t).__name__}")
        if t.ndim != 4:
            raise ConfigError(
                f"{name} images must be N×C×H×W (4 dimensions), got shape {tuple(t.shape)}; "
                "add a batch axis with x[None] or a channel axis with x[:, None]"
            )
        if t.shape[1] not in (1, 3):
            raise ConfigError(f"{name} images must have 1 (grey) or 3 (RGB) channels, got shape {tuple(t.shape)}")
        if t.numel() == 0:
            raise ConfigError(f"{name} images are empty (shape {tuple(t.shape)})")
        if not t.is_floating_point():
            raise ConfigError(f"{name} images must be float in [0, 1], got dtype {t.dtype}; divide uint8 images by 255")
        lo, hi = float(t.min()), float(t.max())
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ConfigError(f"{name} images contain NaN or inf values")
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise ConfigError(
                f"{name} images must be in [0, 1] (privlab's image range), got values in [{lo:.4g}, {hi:.4g}]; "
                "clamp them, or map [-1, 1] images with (x + 1) / 2 and un-normalised ones with x * std + mean"
            )
    if original.shape != reconstruction.shape:
        raise ConfigError(
            f"original and reconstruction must have the same shape, got {tuple(original.shape)} and "
            f"{tuple(reconstruction.shape)}"
        )


def _pair(
    original: torch.Tensor, reconstruction: torch.Tensor, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Checked, clamped copies in ``dtype`` (float64 for MSE/PSNR; float32 for the SSIM convolutions, which are ~10×
    faster on CPU and agree with float64 to ~1e-6)."""
    check_images(original, reconstruction)
    if original.device.type == "mps":
        dtype = torch.float32
    return original.detach().to(dtype).clamp(0, 1), reconstruction.detach().to(dtype).clamp(0, 1)


def mse(original: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image ``[N]`` over C, H, W, for images in ``[0, 1]`` (squared intensity units)."""
    x, y = _pair(original, reconstruction)
    return (x - y).pow(2).flatten(1).mean(1)


def psnr(original: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio per image ``[N]`` in dB, data range 1: ``10·log10(1 / MSE)`` (``inf`` if equal)."""
    x, y = _pair(original, reconstruction)
    err = (x - y).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(1.0 / err)  # inf where err == 0 (torchmetrics' PSNR would give a huge finite value)


def _min_hw(original: torch.Tensor, what: str, need: int) -> None:
    h, w = original.shape[-2:]
    if min(h, w) < need:
        raise ConfigError(
            f"{what} needs images of at least {need}×{need} pixels (Gaussian window {SSIM_WINDOW}), got {h}×{w}; "
            "resize the images first (e.g. load_dataset(..., resize=32) or --resize 32)"
        )


def ssim(original: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """SSIM per image ``[N]`` (see the module docstring for the exact variant; 1 for identical images).

    Raises:
        ConfigError: bad inputs (see :func:`check_images`) or images smaller than 11×11.
    """
    x, y = _pair(original, reconstruction, torch.float32)
    _min_hw(x, "SSIM", SSIM_WINDOW)
    _, full = structural_similarity_index_measure(
        y,
        x,
        gaussian_kernel=True,
        sigma=SSIM_SIGMA,
        kernel_size=SSIM_WINDOW,
        data_range=1.0,
        k1=0.01,
        k2=0.03,
        reduction="none",
        return_full_image=True,
    )
    pad = (SSIM_WINDOW - 1) // 2
    return full[..., pad:-pad, pad:-pad].flatten(1).double().mean(1)


def _fits(h: int, w: int, n_scales: int, kernel: int) -> bool:
    """Whether torchmetrics accepts ``n_scales`` scales with window ``kernel`` on ``h×w`` images (its own rule)."""
    div = max(1, n_scales - 1) ** 2
    coarsest = min(h, w) // 2 ** (n_scales - 1)  # its reflect padding needs more pixels than half the window
    return min(h, w) >= 2**n_scales and h // div > kernel - 1 and w // div > kernel - 1 and coarsest > kernel // 2


def ms_ssim_settings(
    h: int, w: int, *, betas: Sequence[float] | None = None, kernel: int | None = None
) -> tuple[tuple[float, ...], int, str]:
    """The MS-SSIM ``(betas, window, note)`` used on ``h×w`` images.

    With no ``betas``: the standard five (:data:`MS_SSIM_BETAS`) when they fit, else the first ``k`` of them,
    renormalised to sum to 1, for the largest ``k ≥ 2`` that fits. ``kernel`` defaults to 11 (σ is always 1.5).

    Raises:
        ConfigError: the images are too small even for 2 scales, or the given betas/kernel do not fit.
    """
    k = SSIM_WINDOW if kernel is None else int(kernel)
    if k < 3 or k % 2 == 0:
        raise ConfigError(f"MS-SSIM window must be an odd size ≥ 3, got {kernel}")
    if betas is not None:
        b = tuple(float(v) for v in betas)
        if not b or any(v < 0 for v in b):
            raise ConfigError(f"MS-SSIM betas must be non-negative weights, one per scale, got {list(betas)}")
        if not _fits(h, w, len(b), k):
            raise ConfigError(
                f"MS-SSIM with {len(b)} scales and window {k} does not fit {h}×{w} images "
                f"(torchmetrics needs H // {max(1, len(b) - 1) ** 2} > {k - 1}); use fewer betas or a smaller window"
            )
        return b, k, f"{len(b)} scales, betas {list(b)} (as given), Gaussian window {k}, σ 1.5"
    for n in range(len(MS_SSIM_BETAS), 1, -1):
        if _fits(h, w, n, k):
            if n == len(MS_SSIM_BETAS):
                return MS_SSIM_BETAS, k, f"5 scales, standard betas {list(MS_SSIM_BETAS)}, Gaussian window {k}, σ 1.5"
            total = sum(MS_SSIM_BETAS[:n])
            b = tuple(round(v / total, 4) for v in MS_SSIM_BETAS[:n])
            return (
                b,
                k,
                f"{n} scales (not 5: {h}×{w} images are too small for 5 scales with window {k}), betas "
                f"{list(b)} = the first {n} standard betas renormalised to sum 1, Gaussian window {k}, σ 1.5",
            )
    raise ConfigError(
        f"MS-SSIM needs at least 2 scales; {h}×{w} images are too small with window {k} "
        "(needs ≥ 11 px for window 11 at 2 scales in torchmetrics' rule); pass a smaller ms_ssim_kernel (e.g. 5) "
        "or resize the images"
    )


def ms_ssim(
    original: torch.Tensor,
    reconstruction: torch.Tensor,
    *,
    betas: Sequence[float] | None = None,
    kernel: int | None = None,
) -> tuple[torch.Tensor, str]:
    """MS-SSIM per image ``[N]`` and the note saying which scales/betas/window were used (:func:`ms_ssim_settings`).

    Raises:
        ConfigError: bad inputs or images too small for the chosen settings.
    """
    x, y = _pair(original, reconstruction, torch.float32)
    b, k, note = ms_ssim_settings(int(x.shape[-2]), int(x.shape[-1]), betas=betas, kernel=kernel)
    values = multiscale_structural_similarity_index_measure(
        y,
        x,
        gaussian_kernel=True,
        sigma=SSIM_SIGMA,
        kernel_size=k,
        data_range=1.0,
        k1=0.01,
        k2=0.03,
        betas=b,
        normalize="relu",
        reduction="none",
    )
    return values.double(), note + ", data range 1, torchmetrics normalize='relu'"
