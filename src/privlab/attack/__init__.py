"""Stage 4 — attacks: each sees an :class:`~privlab.attack.base.Observation` (what its threat model exposes), never
the ground truth.

One file per attack, registered with ``@ATTACKS.register("<name>", requires=(...), description=...)``.
:mod:`privlab.attack.inversion` holds the gradient-inversion engine and its presets (DLG, iDLG, Inverting Gradients).
"""

from privlab.attack.base import ATTACKS, AttackOutput, Observation

__all__ = ["ATTACKS", "AttackOutput", "Observation"]

from privlab.registry import import_submodules

import_submodules(__name__, __path__)
