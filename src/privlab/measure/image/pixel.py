"""Pixel-level image metrics ``mse``, ``psnr``, ``ssim`` and ``ms-ssim``.

The maths is in :mod:`privlab.measure.functional.image_similarity`; this file registers the metrics.

Example:
    >>> import torch
    >>> from privlab.measure.image import score
    >>> x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> score(x, x, ["mse", "psnr"]).means
    {'mse': 0.0, 'psnr': inf}
"""

from __future__ import annotations

import torch

from privlab.measure.functional import image_similarity as pix
from privlab.measure.image.base import MetricOutput, SimilarityOptions, register_metric

__all__: list[str] = []


def _one(name: str, values: torch.Tensor, note: str) -> MetricOutput:
    return MetricOutput({name: values}, note)


@register_metric("mse", unit=None, higher_is_better=False, description="mean squared error per image, images in [0, 1]")
def _mse(x: torch.Tensor, y: torch.Tensor, opts: SimilarityOptions) -> MetricOutput:
    return _one("mse", pix.mse(x, y), "mean over C, H, W of (original − reconstruction)², images in [0, 1]")


@register_metric("psnr", unit="dB", higher_is_better=True, description="peak signal-to-noise ratio, data range 1")
def _psnr(x: torch.Tensor, y: torch.Tensor, opts: SimilarityOptions) -> MetricOutput:
    note = "10·log10(1 / MSE) in dB per image, data range 1 (inf for identical images); = skimage " + (
        "peak_signal_noise_ratio(data_range=1)"
    )
    return _one("psnr", pix.psnr(x, y), note)


@register_metric(
    "ssim", unit=None, higher_is_better=True, description="structural similarity (Wang et al. 2004), 1 = identical"
)
def _ssim(x: torch.Tensor, y: torch.Tensor, opts: SimilarityOptions) -> MetricOutput:
    return _one("ssim", pix.ssim(x, y), pix.SSIM_NOTE)


@register_metric(
    "ms-ssim",
    aliases=("ms_ssim", "msssim"),
    unit=None,
    higher_is_better=True,
    description="multi-scale SSIM (Wang et al. 2003); fewer scales on small images, stated in the notes",
)
def _ms_ssim(x: torch.Tensor, y: torch.Tensor, opts: SimilarityOptions) -> MetricOutput:
    values, note = pix.ms_ssim(x, y, betas=opts.ms_ssim_betas, kernel=opts.ms_ssim_kernel)
    return _one("ms-ssim", values, note)
