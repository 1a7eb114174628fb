"""The protection registry and the budget record every protection reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from privlab.registry import Registry

__all__ = ["PROTECTIONS", "Budget", "laplace_sample"]

PROTECTIONS: Registry[Any] = Registry("protection")


@dataclass(frozen=True)
class Budget:
    """What a protection guarantees or spends, as data (stored with the run).

    Attributes:
        kind: ``"ldp"``, ``"dp"`` (central), ``"linf"`` (a perturbation radius), ``"snr"`` or ``"none"``.
        scope: what one unit of the budget covers: ``pixel``, ``image``, ``label``, ``dataset``, ``gradient`` ….
        epsilon: ε (natural-log base) where the kind is (L)DP, else None.
        delta: δ for approximate DP, else None.
        radius: the L∞ radius in [0, 1] pixel units for perturbation budgets, else None.
        details: anything else (composition count, mechanism parameters).
    """

    kind: str
    scope: str
    epsilon: float | None = None
    delta: float | None = None
    radius: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def laplace_sample(
    loc: torch.Tensor | float, scale: torch.Tensor | float, shape: Sequence[int], generator: torch.Generator
) -> torch.Tensor:
    """Draw Laplace(loc, scale) of ``shape`` by inverse CDF with ``generator`` (scale 0 gives ``loc`` exactly).

    ``loc``/``scale`` broadcast against ``shape``; the result is on the generator's device, float32.
    """
    dev = generator.device
    u = torch.rand(tuple(shape), generator=generator, device=dev) - 0.5
    loc_t = torch.as_tensor(loc, dtype=torch.float32, device=dev)
    scale_t = torch.as_tensor(scale, dtype=torch.float32, device=dev)
    # clamp keeps log finite at u = ±0.5 (probability ~2^-24)
    return loc_t - scale_t * torch.sign(u) * torch.log1p(-2 * u.abs()).clamp_min(-80.0)
