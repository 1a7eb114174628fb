"""``gaussian`` (``sigma``): adds ``σ·N(0, 1)`` to every entry of the shared gradient (command line: ``noise:σ``)."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, model_validator

from privlab.errors import ConfigError
from privlab.protect.base import PROTECTIONS
from privlab.protect.gradient.base import DefenseConfig, GradientDefense

__all__ = ["GaussianDefense", "GaussianDefenseConfig"]


class GaussianDefenseConfig(DefenseConfig):
    """Gaussian noise on the shared gradient."""

    name: Literal["gaussian"] = "gaussian"
    sigma: float = Field(default=0.0, ge=0, description="noise std (> 0)")

    @model_validator(mode="after")
    def _positive(self) -> GaussianDefenseConfig:
        if self.sigma <= 0:
            raise ConfigError(f"defence {self.name}: sigma must be > 0 (e.g. {self.name}:0.01)")
        return self

    def label(self) -> str:
        return f"gaussian σ={self.sigma:g}"


@PROTECTIONS.register(
    "gradient-gaussian",
    kind="gradient",
    config=GaussianDefenseConfig,
    primary="sigma",
    cli_aliases=("noise",),
    description="Gaussian noise σ·N(0, 1) on every entry of the shared gradient",
)
class GaussianDefense(GradientDefense):
    """Adds ``σ·N(0, 1)`` to every shared entry."""

    config_class = GaussianDefenseConfig

    def shared(self, grads: list[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
        s = self.config.sigma
        return [g + s * torch.randn(g.shape, generator=generator).to(g.device) for g in grads]
