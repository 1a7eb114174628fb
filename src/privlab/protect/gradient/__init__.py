"""Defences a federated client applies to what it shares — one file per defence, the conditions that
gradient-inversion experiments compare:

- ``none``: shares the exact gradient.
- ``gaussian`` (``sigma``): adds ``σ·N(0, 1)`` to every entry of the shared gradient.
- ``laplace`` (``sigma``): adds ``Laplace(0, b = σ)`` to every entry.
- ``prune`` (``percent``): zeroes the ``percent`` % smallest-magnitude entries of each parameter's gradient.
- ``dpsgd`` (``clip``, ``noise_multiplier``, ``sample_rate``, ``delta``): DP-SGD as opacus does it — per-example
  gradients clipped to L2 norm ``clip``, summed, plus ``N(0, (noise_multiplier·clip)²)``, divided by the batch size;
  ε of the step(s) from opacus' RDP accountant.
- ``augment`` (``transform``): transforms the images before the gradient is taken (``flip``, ``shift``,
  ``flip+shift`` or any callable registered in ``INPUT_TRANSFORMS``).

Each is registered in :data:`~privlab.protect.PROTECTIONS` as ``gradient-<name>`` (``kind="gradient"``) on a
:class:`~privlab.protect.gradient.base.GradientDefense` subclass with its config. Short forms for the command line:
``noise:0.01`` (= ``gaussian`` σ 0.01), ``laplace:0.1``, ``prune:70``, ``dpsgd:1.0`` (noise multiplier;
``dpsgd:noise_multiplier=1,clip=0.5`` for more), ``augment:flip``.

:mod:`.client` is the federated client itself (what is shared for a batch), used by the defences and the attacker.
"""

from privlab.protect.gradient.base import (
    DefenseConfig,
    DefenseSpec,
    GradientDefense,
    build_defense,
    defense_entry,
    defense_label,
    defense_names,
    parse_defense,
    resolve_defense,
)
from privlab.protect.gradient.client import ThreatModel, client_update, per_example_gradients

__all__ = [
    "DefenseConfig",
    "DefenseSpec",
    "GradientDefense",
    "ThreatModel",
    "build_defense",
    "client_update",
    "defense_entry",
    "defense_label",
    "defense_names",
    "parse_defense",
    "per_example_gradients",
    "resolve_defense",
]

from privlab.registry import import_submodules

import_submodules(__name__, __path__)
