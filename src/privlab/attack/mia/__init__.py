"""Membership-inference attacks: one file per attack, each registered in :data:`privlab.attack.ATTACKS`.

Every attack takes a :class:`~privlab.attack.mia.base.MIAObservation` (query access to the target, the candidate
records, and the attacker's own reference models / population data — never the membership truth) and returns an
:class:`~privlab.attack.base.AttackOutput` whose ``data`` is one score per candidate (higher = more likely a
member). Scoring against the truth is :func:`privlab.measure.mia.score_attack`.

- ``loss``, ``confidence`` (Yeom et al. 2018); ``entropy``, ``modified-entropy`` (Song & Mittal 2021)
- ``lira-online``, ``lira-offline`` (Carlini et al. 2022)
- ``rmia`` (Zarifzadeh et al. 2024)
- ``label-only`` (Choquette-Choo et al. 2021: augmentation or noise robustness under hard-label access)
"""

from privlab.attack.mia.base import MIA_ATTACKS, MIAObservation, QueryModel, View, run_mia_attack

__all__ = ["MIA_ATTACKS", "MIAObservation", "QueryModel", "View", "run_mia_attack"]

from privlab.registry import import_submodules

import_submodules(__name__, __path__)
