"""The published attacks as engine presets, registered in :data:`privlab.attack.ATTACKS`.

- ``dlg`` (Zhu et al. 2019): ``l2`` objective, L-BFGS lr 1, 300 iterations, jointly optimised soft labels, no box,
  no TV, randn init.
- ``idlg`` (Zhao et al. 2020): as DLG with the label recovered analytically (one image).
- ``inverting-gradients`` (Geiping et al. 2020; SemSim's ``inversed``): ``cosine`` objective, signed Adam lr 0.1,
  8000 iterations with LR decay at 3/8, 5/8, 7/8, known labels, TV 1e-4, box constraint, randn init.

Any field can be overridden: ``make_attack("dlg", iterations=50)``.

Example:
    >>> make_attack("inverting-gradients", iterations=10).config.objective
    'cosine'
    >>> make_attack("dlg").config.labels
    'joint'
"""

from __future__ import annotations

from typing import Any

from privlab.attack.base import ATTACKS
from privlab.attack.inversion.engine import GradientInversion, InversionConfig

__all__ = ["INVERSION_PRESETS", "make_attack"]

_DLG = {
    "objective": "l2",
    "optimizer": "lbfgs",
    "lr": 1.0,
    "iterations": 300,
    "signed": False,
    "boxed": False,
    "lr_decay": False,
    "tv": 0.0,
    "init": "randn",
    "labels": "joint",
}

INVERSION_PRESETS: dict[str, dict[str, Any]] = {
    "dlg": _DLG,
    "idlg": {**_DLG, "labels": "idlg"},
    "inverting-gradients": {
        "objective": "cosine",
        "optimizer": "adam",
        "lr": 0.1,
        "iterations": 8000,
        "signed": True,
        "boxed": True,
        "lr_decay": True,
        "tv": 1e-4,
        "init": "randn",
        "labels": "known",
        "restarts": 1,
    },
    "gradient-inversion": {},
}

_DESCRIPTIONS = {
    "dlg": "Deep Leakage from Gradients: L2 gradient matching, L-BFGS, jointly optimised soft labels",
    "idlg": "iDLG: DLG with the label recovered analytically from the last layer's gradient (one image)",
    "inverting-gradients": "Inverting Gradients: cosine matching + TV, signed Adam, box constraint, LR decay",
    "gradient-inversion": "the engine with its own defaults (Inverting Gradients settings); set every field yourself",
}


def make_attack(name: str, **overrides: Any) -> GradientInversion:
    """The attack ``name`` (a preset) with ``overrides`` applied to its :class:`InversionConfig`."""
    base = ATTACKS.entry(name).meta["preset"]
    return GradientInversion({**base, **overrides})


for _name, _preset in INVERSION_PRESETS.items():
    ATTACKS.register(
        _name,
        requires=("model", "gradients"),
        preset=_preset,
        config=InversionConfig,
        description=_DESCRIPTIONS[_name],
    )(GradientInversion)
