"""Greyscale conversion: replace colour by luminance, kept as 3 identical channels (the model's input is unchanged)."""

from __future__ import annotations

import torch

from privlab.attack.countermeasures import COUNTERMEASURES
from privlab.config import Spec

__all__ = ["GrayscaleConfig", "grayscale"]

_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, PIL's "L" conversion


class GrayscaleConfig(Spec):
    """The ``grayscale`` counter-measure has no parameter."""


@COUNTERMEASURES.register("grayscale", config=GrayscaleConfig, description="luminance (BT.601), kept 3-channel")
def grayscale(x: torch.Tensor, cfg: GrayscaleConfig, g: torch.Generator | None = None) -> torch.Tensor:
    """``(N, 3, H, W)`` → luminance ``0.299 R + 0.587 G + 0.114 B`` repeated over the 3 channels; other channel
    counts → the channel mean repeated. Deterministic (``g`` unused)."""
    if x.shape[1] == 3:
        w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        y = (x * w).sum(1, keepdim=True)
    else:
        y = x.mean(1, keepdim=True)
    return y.expand_as(x).clone()
