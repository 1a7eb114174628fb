"""``prune`` (``percent``): zeroes the ``percent`` % smallest-magnitude entries of each parameter's gradient."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from privlab.protect.base import PROTECTIONS
from privlab.protect.gradient.base import DefenseConfig, GradientDefense

__all__ = ["PruneDefense", "PruneDefenseConfig"]


class PruneDefenseConfig(DefenseConfig):
    """Gradient pruning."""

    name: Literal["prune"] = "prune"
    percent: float = Field(default=0.0, ge=0, lt=100, description="% of entries zeroed per parameter")

    def label(self) -> str:
        return f"prune {self.percent:g}%"


@PROTECTIONS.register(
    "gradient-prune",
    kind="gradient",
    config=PruneDefenseConfig,
    primary="percent",
    description="zero the smallest-magnitude entries of each parameter's shared gradient",
)
class PruneDefense(GradientDefense):
    """Zeroes the ``percent`` % smallest ``|g|`` of each tensor (ties at the threshold zeroed too)."""

    config_class = PruneDefenseConfig

    def shared(self, grads: list[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
        out = []
        for g in grads:
            k = int(g.numel() * self.config.percent / 100)
            if k == 0:
                out.append(g)
                continue
            threshold = g.abs().flatten().kthvalue(k).values
            out.append(torch.where(g.abs() <= threshold, torch.zeros_like(g), g))
        return out
