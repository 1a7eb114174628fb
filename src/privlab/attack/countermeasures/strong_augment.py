"""Strong augmentation: random resized crop, horizontal flip and colour jitter, applied once to each image."""

from __future__ import annotations

import torch
from pydantic import Field, model_validator

from privlab.attack.countermeasures import COUNTERMEASURES
from privlab.config import Spec
from privlab.data.transforms import color_jitter, random_hflip, random_resized_crop

__all__ = ["StrongAugmentConfig", "strong_augment"]


class StrongAugmentConfig(Spec):
    """Settings of the ``strong_augment`` counter-measure (defaults: SimCLR's crop and jitter strengths)."""

    crop_scale: tuple[float, float] = Field(default=(0.2, 1.0), description="area fraction range of the crop")
    flip: bool = Field(default=True, description="random horizontal flip")
    brightness: float = Field(default=0.4, ge=0, le=1, description="brightness jitter strength")
    contrast: float = Field(default=0.4, ge=0, le=1, description="contrast jitter strength")
    saturation: float = Field(default=0.4, ge=0, le=1, description="saturation jitter strength")
    jitter_p: float = Field(default=0.8, ge=0, le=1, description="probability of colour jitter per image")

    @model_validator(mode="after")
    def _check(self) -> StrongAugmentConfig:
        lo, hi = self.crop_scale
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < low ≤ high ≤ 1, got {self.crop_scale}")
        return self


@COUNTERMEASURES.register(
    "strong_augment", config=StrongAugmentConfig, description="random resized crop + flip + colour jitter (seeded)"
)
def strong_augment(x: torch.Tensor, cfg: StrongAugmentConfig, g: torch.Generator | None = None) -> torch.Tensor:
    """One random view per image (parameters drawn per image from ``g``): crop an area fraction in
    ``cfg.crop_scale`` and resize it back (bilinear), flip, jitter brightness/contrast/saturation."""
    y = random_resized_crop(x, g, scale=cfg.crop_scale)
    if cfg.flip:
        y = random_hflip(y, g)
    return color_jitter(
        y, g, brightness=cfg.brightness, contrast=cfg.contrast, saturation=cfg.saturation, p=cfg.jitter_p
    )
