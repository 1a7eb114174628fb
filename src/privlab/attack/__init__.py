"""Stage 4 — attacks: each sees an :class:`~privlab.attack.base.Observation` (what its threat model exposes), never
the ground truth.

One file per attack: a :class:`~privlab.attack.base.Attack` subclass with its config, registered with
``@ATTACKS.register("<name>", requires=(...), config=ConfigClass, description=...)``; pipelines build it by name
(:func:`~privlab.attack.base.build_attack`) and call ``run(observation) -> AttackOutput``.
:mod:`privlab.attack.inversion` holds the gradient-inversion engine and its presets (DLG, iDLG, Inverting Gradients).
"""

from privlab.attack.base import ATTACKS, Attack, AttackOutput, Observation, attack_config, build_attack

__all__ = ["ATTACKS", "Attack", "AttackOutput", "Observation", "attack_config", "build_attack"]

from privlab.registry import import_submodules

import_submodules(__name__, __path__)
