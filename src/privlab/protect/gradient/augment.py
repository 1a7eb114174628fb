"""``augment`` (``transform``): the client transforms its images before taking the gradient.

Transforms are registered in :data:`INPUT_TRANSFORMS` (``flip``, ``shift``, ``flip+shift``): a callable
``(x N×C×H×W in [0, 1], generator) -> x'``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from pydantic import Field, field_validator

from privlab.protect.base import PROTECTIONS
from privlab.protect.gradient.base import DefenseConfig, GradientDefense
from privlab.registry import Registry

__all__ = ["INPUT_TRANSFORMS", "AugmentDefense", "AugmentDefenseConfig"]

InputTransform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
INPUT_TRANSFORMS: Registry[InputTransform] = Registry("augmentation defence")


@INPUT_TRANSFORMS.register("flip", description="horizontal flip of every image")
def _flip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return x.flip(-1)


@INPUT_TRANSFORMS.register("shift", description="random shift by up to 1/8 of the size (reflect padding)")
def _shift(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    h, w = x.shape[-2:]
    p = max(1, h // 8)
    padded = torch.nn.functional.pad(x, (p, p, p, p), mode="reflect")
    dy, dx = (int(v) for v in torch.randint(0, 2 * p + 1, (2,), generator=g))
    return padded[..., dy : dy + h, dx : dx + w]


@INPUT_TRANSFORMS.register("flip+shift", description="flip, then shift")
def _flip_shift(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return _shift(_flip(x, g), g)


class AugmentDefenseConfig(DefenseConfig):
    """Augmentation before the gradient."""

    name: Literal["augment"] = "augment"
    transform: str = Field(default="flip", description="flip | shift | flip+shift (INPUT_TRANSFORMS)")

    @field_validator("transform")
    @classmethod
    def _known(cls, v: str) -> str:
        INPUT_TRANSFORMS.entry(v)
        return v

    def label(self) -> str:
        return f"augment {self.transform}"


@PROTECTIONS.register(
    "gradient-augment",
    kind="gradient",
    config=AugmentDefenseConfig,
    primary="transform",
    description="transform the client's images before the gradient is taken",
)
class AugmentDefense(GradientDefense):
    """Differentiates transformed images."""

    config_class = AugmentDefenseConfig

    def inputs(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return INPUT_TRANSFORMS.get(self.config.transform)(x, generator)
