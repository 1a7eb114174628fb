"""The attack registry, the observation an attacker gets, and what an attack returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from privlab.registry import Registry

__all__ = ["ATTACKS", "AttackOutput", "Observation"]

ATTACKS: Registry[Any] = Registry("attack")


@dataclass
class Observation:
    """What the attacker sees. Only the fields its threat model exposes are set.

    Attributes:
        gradients: the shared gradient (or model update), one tensor per trainable parameter, in parameter order.
        activations: intermediate activations (split inference).
        data: released data (e.g. a protected data set), ``N×C×H×W`` in [0, 1].
        labels: labels when the threat model reveals them (known-label attacks), int64 ``N``.
        meta: everything else the attacker is told: batch size, image shape, number of local steps, learning rate ….
    """

    gradients: list[torch.Tensor] | None = None
    activations: torch.Tensor | None = None
    data: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class AttackOutput:
    """What an attack produced.

    Attributes:
        data: reconstructed images ``N×C×H×W`` in [0, 1] (or another attack's main output).
        labels: recovered / used labels ``N`` (int64), when the attack outputs labels.
        stats: numbers about the attack itself (final objective, iterations, seconds, chosen restart …).
    """

    data: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    stats: dict[str, Any] = field(default_factory=dict)
