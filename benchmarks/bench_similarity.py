"""Overhead of :func:`privlab.measure.image.score` over calling torchmetrics directly for the same metrics.

Both sides score 64 RGB 32×32 image pairs with MSE, PSNR, SSIM (Gaussian 11, σ 1.5), MS-SSIM (2 scales, window 11)
and LPIPS-alex (a random backbone: the same cost as the real one, and no weights file needed). The baseline calls
torchmetrics' functional SSIM/PSNR/MS-SSIM and the same LPIPS module on float32 tensors with the batch reductions
set to ``"none"``; the candidate adds input checks, float64 pixel maths, the per-image table and the notes.
"""

from __future__ import annotations

import torch
from torchmetrics.functional.image import (
    multiscale_structural_similarity_index_measure,
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from privlab.bench import Benchmark
from privlab.measure.image import score
from privlab.measure.image.lpips import LPIPSMetric

N, C, HW = 64, 3, 32
_DATA: dict[str, torch.Tensor] = {}
METRICS = ["mse", "psnr", "ssim", "ms-ssim", "lpips"]


def _setup() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(N, C, HW, HW, generator=g)
    _DATA["x"], _DATA["y"] = x, (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    LPIPSMetric("alex", "random", "cpu")  # build (and cache) the LPIPS module once, outside the timing


def candidate() -> object:
    """``score`` with five metrics, per image."""
    return score(_DATA["x"], _DATA["y"], METRICS, lpips_weights="random", device="cpu")


def baseline() -> object:
    """The same metrics straight from torchmetrics (per image, float32)."""
    x, y = _DATA["x"], _DATA["y"]
    mse = (x - y).pow(2).flatten(1).mean(1)
    psnr = peak_signal_noise_ratio(y, x, data_range=1.0, reduction="none", dim=(1, 2, 3))
    _, full = structural_similarity_index_measure(y, x, data_range=1.0, reduction="none", return_full_image=True)
    ssim = full[..., 5:-5, 5:-5].flatten(1).mean(1)
    ms = multiscale_structural_similarity_index_measure(
        y, x, data_range=1.0, reduction="none", betas=(0.1356, 0.8644), normalize="relu"
    )
    model = LPIPSMetric("alex", "random", "cpu").model
    with torch.no_grad():
        lp = model(x, y, normalize=True).reshape(-1)
    return mse, psnr, ssim, ms, lp


BENCHMARK = Benchmark(
    name="similarity_overhead",
    description="similarity.score (MSE, PSNR, SSIM, MS-SSIM, LPIPS-alex) vs torchmetrics called directly, 64×3×32×32",
    candidate=candidate,
    baseline=baseline,
    setup=_setup,
    repeats=7,
    warmup=1,
    goal="similarity.score overhead ≤ 1.3× calling torchmetrics directly",
    max_ratio=1.3,
)
