"""One round of the federated threat model: defence → client update → what the attacker observes.

The client itself (:class:`ThreatModel`, :func:`client_update`) lives in :mod:`privlab.protect.gradient.client`, a
lower stage shared with the defences; this module wires one round for the attacker's side, so the inversion and SemSim
pipelines run the same round.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from privlab.protect.gradient import build_defense
    >>> m = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> x, y = torch.rand(2, 1, 2, 2), torch.tensor([0, 2])
    >>> rnd = gradient_leak_round(m, x, y, ThreatModel(), build_defense(None), torch.Generator().manual_seed(0),
    ...                           requires=("model", "gradients"))
    >>> [tuple(t.shape) for t in rnd.observation.gradients], rnd.observation.labels is None
    ([(3, 4), (3,)], True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from privlab.attack.base import Observation
from privlab.protect.gradient.client import GradientFn, ThreatModel, client_update

__all__ = ["LeakRound", "SharedGradientDefense", "gradient_leak_round"]


class SharedGradientDefense(Protocol):
    """A client-side defence of the shared gradient (e.g. :class:`privlab.protect.gradient.GradientDefense`): it may
    change the inputs, how each local step's gradient is computed, and what is finally shared."""

    def inputs(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor: ...

    def gradient_fn(self, generator: torch.Generator) -> GradientFn | None: ...

    def shared(self, grads: list[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]: ...


@dataclass
class LeakRound:
    """One round of the federated threat model: what the attacker observes and, when asked for, the exact update."""

    observation: Observation
    exact: list[torch.Tensor] | None = None


def gradient_leak_round(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel,
    defense: SharedGradientDefense,
    generator: torch.Generator,
    *,
    requires: Sequence[str],
    keep_exact: bool = False,
) -> LeakRound:
    """Defence → client update → observation for the batch ``(x, y)`` (``N×C×H×W`` in [0, 1], int64 ``N``).

    The client applies ``defense`` to its inputs, computes its update under ``threat`` (with the defence's per-step
    gradient, e.g. DP-SGD), and the defence transforms what is shared; all randomness comes from ``generator``. The
    observation grants the attack what its ``requires`` names among the global model, the shared tensors and the
    labels, plus ``meta`` (batch size, image shape, threat). With ``keep_exact`` the
    undefended update of the defended inputs is returned as well.
    """
    x_in = defense.inputs(x, generator)
    exact = client_update(model, x_in, y, threat) if keep_exact else None
    step_fn = defense.gradient_fn(generator)
    if exact is not None and step_fn is None:
        shared = exact
    else:
        shared = client_update(model, x_in, y, threat, gradient_fn=step_fn)
    shared = defense.shared(shared, generator)  # new tensors: `exact` stays the exact update
    meta = {"batch_size": len(x), "image_shape": tuple(x.shape[1:]), "threat": threat.model_dump()}
    available = {"model": model, "gradients": shared, "labels": y}
    return LeakRound(Observation.granted(tuple(requires), meta=meta, **available), exact)
