"""Bit-depth reduction ("feature squeezing", Xu et al. 2018): ``b`` bits, i.e. ``2^b`` levels per channel."""

from __future__ import annotations

import torch
from pydantic import Field

from privlab.attack.countermeasures import COUNTERMEASURES
from privlab.config import Spec

__all__ = ["BitDepthConfig", "bit_depth"]


class BitDepthConfig(Spec):
    """Settings of the ``bit_depth`` counter-measure."""

    bits: int = Field(default=4, ge=1, le=8, description="bits per channel (2^bits levels; 8 = uint8, no change)")


@COUNTERMEASURES.register("bit_depth", config=BitDepthConfig, description="reduce to b bits per channel")
def bit_depth(x: torch.Tensor, cfg: BitDepthConfig, g: torch.Generator | None = None) -> torch.Tensor:
    """``round(x · (2^b − 1)) / (2^b − 1)``: values on ``2^b`` evenly spaced levels of [0, 1] (1 bit: {0, 1}).
    Deterministic (``g`` unused)."""
    levels = float(2**cfg.bits - 1)
    return torch.round(x * levels).div_(levels)
