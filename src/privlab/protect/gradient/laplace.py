"""``laplace`` (``sigma``): adds ``Laplace(0, b = σ)`` to every entry of the shared gradient."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, model_validator

from privlab.errors import ConfigError
from privlab.protect.base import PROTECTIONS, laplace_sample
from privlab.protect.gradient.base import DefenseConfig, GradientDefense

__all__ = ["LaplaceDefense", "LaplaceDefenseConfig"]


class LaplaceDefenseConfig(DefenseConfig):
    """Laplace noise on the shared gradient."""

    name: Literal["laplace"] = "laplace"
    sigma: float = Field(default=0.0, ge=0, description="Laplace scale b (> 0)")

    @model_validator(mode="after")
    def _positive(self) -> LaplaceDefenseConfig:
        if self.sigma <= 0:
            raise ConfigError(f"defence {self.name}: sigma must be > 0 (e.g. {self.name}:0.01)")
        return self

    def label(self) -> str:
        return f"laplace b={self.sigma:g}"


@PROTECTIONS.register(
    "gradient-laplace",
    kind="gradient",
    config=LaplaceDefenseConfig,
    primary="sigma",
    description="Laplace(0, b) noise on every entry of the shared gradient",
)
class LaplaceDefense(GradientDefense):
    """Adds ``Laplace(0, σ)`` to every shared entry."""

    config_class = LaplaceDefenseConfig

    def shared(self, grads: list[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
        s = self.config.sigma
        return [g + laplace_sample(0.0, s, g.shape, generator).to(g.device) for g in grads]
