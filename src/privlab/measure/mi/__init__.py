"""Mutual information: estimators, ground-truth tasks, calibration and MI reduction (all in nats or percent).

- :mod:`~privlab.measure.mi.estimate` — :data:`MI_ESTIMATORS` (``ite-dkl``, ``ksg``, ``gaussian``,
  ``gaussian-copula``, ``auto``), :func:`estimate_mi` → :class:`MIResult` with diagnostics.
- :mod:`~privlab.measure.mi.neural` — neural lower bounds ``infonce``, ``nwj``, ``mine``, ``smile`` (training protocol).
- :mod:`~privlab.measure.mi.tasks` — seeded ground-truth distributions with known MI.
- :mod:`~privlab.measure.mi.calibration_table` — the shipped calibration table and its lookup;
  :mod:`~privlab.measure.mi.calibration` — the runner that makes it.
- :mod:`~privlab.measure.mi.reduction` — MI reduction ``100 · (1 − noisy / clean)`` with its interval.

Every module of this package is imported here, so an estimator registered in a new file is available at once.
"""

from privlab.measure.mi.estimate import MI_ESTIMATORS, MIResult, MIWarning, estimate_mi

__all__ = ["MI_ESTIMATORS", "MIResult", "MIWarning", "estimate_mi"]

from privlab.registry import import_submodules

import_submodules(__name__, __path__)
