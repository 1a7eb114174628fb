"""``dpsgd`` (``clip``, ``noise_multiplier``, ``sample_rate``, ``delta``): DP-SGD on the client's local steps.

Per-example gradients clipped to L2 norm ``clip``, summed, plus ``N(0, (noise_multiplier·clip)²)``, divided by the
batch size — as opacus does it; ε of the step(s) from opacus' RDP accountant.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from privlab.protect.base import PROTECTIONS, Budget
from privlab.protect.gradient.base import DefenseConfig, GradientDefense
from privlab.protect.gradient.client import GradientFn, per_example_gradients

__all__ = ["DPSGDDefense", "DPSGDDefenseConfig"]


class DPSGDDefenseConfig(DefenseConfig):
    """DP-SGD on the shared gradient."""

    name: Literal["dpsgd"] = "dpsgd"
    clip: float = Field(default=1.0, gt=0, description="per-example L2 clipping norm")
    noise_multiplier: float = Field(default=1.0, ge=0, description="noise std / clip")
    sample_rate: float = Field(default=1.0, gt=0, le=1, description="batch size / client data set size")
    delta: float = Field(default=1e-5, gt=0, lt=1, description="δ of the reported ε")

    def label(self) -> str:
        return f"dpsgd C={self.clip:g} z={self.noise_multiplier:g}"


@PROTECTIONS.register(
    "gradient-dpsgd",
    kind="gradient",
    config=DPSGDDefenseConfig,
    primary="noise_multiplier",
    description="DP-SGD: clipped per-example gradients + Gaussian noise (ε from the RDP accountant)",
)
class DPSGDDefense(GradientDefense):
    """Each local step's gradient is DP-SGD's clipped, noised per-example sum over the batch size."""

    config_class = DPSGDDefenseConfig

    def gradient_fn(self, generator: torch.Generator) -> GradientFn | None:
        spec = self.config

        def dp_gradient(
            model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, scale: float, _: bool
        ) -> list[torch.Tensor]:
            per = per_example_gradients(model, params, x, y, scale)
            norms = torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in per))  # type: ignore[arg-type]
            factor = (spec.clip / (norms + 1e-6)).clamp(max=1.0)
            out = []
            for g in per:
                summed = torch.einsum("n,n...->...", factor, g)
                noise = torch.randn(summed.shape, generator=generator).to(summed.device)
                out.append((summed + spec.noise_multiplier * spec.clip * noise) / len(x))
            return out

        return dp_gradient

    def budget(self, steps: int = 1) -> Budget:
        """ε at δ for ``steps`` local steps (opacus RDP accountant)."""
        s = self.config
        if s.noise_multiplier == 0:
            return Budget(kind="dp", scope="example", epsilon=float("inf"), delta=s.delta)
        from opacus.accountants import RDPAccountant

        acc = RDPAccountant()
        for _ in range(steps):
            acc.step(noise_multiplier=s.noise_multiplier, sample_rate=s.sample_rate)
        eps = float(acc.get_epsilon(delta=s.delta))
        return Budget(
            kind="dp",
            scope="example",
            epsilon=eps,
            delta=s.delta,
            details={"accountant": "rdp (opacus)", "steps": steps, "sample_rate": s.sample_rate},
        )
