"""The protection registry and the budget record every protection reports."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from privlab.registry import Registry

__all__ = ["PROTECTIONS", "Budget"]

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
