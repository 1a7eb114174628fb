"""The shipped calibration table of the MI estimators and its lookup (no estimation here).

``calibration_table.json`` (made by ``privlab mi calibrate --write-table``, see :mod:`privlab.measure.mi.calibration`)
holds, per estimator, n and dimension band, the error on the ground-truth tasks of :mod:`privlab.measure.mi.tasks`.
:func:`calibration_line` looks up the line that matches an estimate; every :class:`~privlab.measure.mi.MIResult`
carries it in ``diagnostics``. A missing or corrupt table is a :class:`CalibrationTableError` naming the file.

Example:
    >>> dim_band(3), dim_band(50), within_tolerance(1.05, 1.0)
    ('1-4', '21-100', True)
    >>> calibration_line("ksg", 5000, 2)["dims"]
    '1-4'
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

from privlab.errors import PrivlabError

__all__ = [
    "DIM_BANDS",
    "CalibrationTableError",
    "calibration_line",
    "dim_band",
    "load_table",
    "table_path",
    "within_tolerance",
]

ABS_TOL, REL_TOL = 0.1, 0.10
DIM_BANDS = ((1, 4), (5, 20), (21, 100), (101, 1000), (1001, 10**9))
TABLE_FILE = "calibration_table.json"


class CalibrationTableError(PrivlabError):
    """The shipped MI calibration table is missing or corrupt (the message names the file and how to remake it)."""


def within_tolerance(estimate: float, truth: float) -> bool:
    """``|estimate − truth| ≤ max(0.1 nats, 10 % of truth)``."""
    return math.isfinite(estimate) and abs(estimate - truth) <= max(ABS_TOL, REL_TOL * abs(truth))


def dim_band(d: int) -> str:
    """The band ``"lo-hi"`` of total dimension ``d`` used to group calibration results."""
    for lo, hi in DIM_BANDS:
        if lo <= d <= hi:
            return f"{lo}-{hi}" if hi < 10**9 else f">{lo - 1}"
    return "?"


def table_path() -> Path:
    """Where the shipped calibration table lives (inside the installed package)."""
    return Path(str(resources.files("privlab.measure.mi") / TABLE_FILE))


def load_table(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The lines of a calibration table (default: the shipped one).

    Raises:
        CalibrationTableError: the file is missing, is not JSON, or has no ``lines`` list of complete lines.
    """
    p = Path(path) if path is not None else table_path()
    fix = "reinstall privlab or remake it with `privlab mi calibrate --write-table`"
    try:
        data = json.loads(p.read_text("utf-8"))
    except FileNotFoundError:
        raise CalibrationTableError(f"MI calibration table {p} is missing; {fix}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CalibrationTableError(f"MI calibration table {p} is unreadable ({e}); {fix}") from None
    lines = data.get("lines") if isinstance(data, dict) else None
    keys = ("estimator", "n", "dims", "tasks", "mae", "within_fraction")
    if not isinstance(lines, list) or not all(isinstance(ln, dict) and all(k in ln for k in keys) for ln in lines):
        raise CalibrationTableError(
            f'MI calibration table {p} is corrupt: expected {{"lines": [{{{", ".join(keys)}, …}}]}}; {fix}'
        )
    return lines


_TABLE: list[dict[str, Any]] | None = None


def _table() -> list[dict[str, Any]]:
    global _TABLE
    if _TABLE is None:
        _TABLE = load_table()
    return _TABLE


def calibration_line(estimator: str, n: int, d: int) -> dict[str, Any] | None:
    """The shipped calibration line for ``estimator`` at the n nearest to ``n`` (log scale) in the band of ``d``.

    Returns:
        ``{"estimator", "n", "dims", "tasks", "mae", "within_fraction", "max_abs_error", "text"}`` or None when the
        table has no line for this estimator and dimension band.

    Raises:
        CalibrationTableError: the shipped table is missing or corrupt.
    """
    band = dim_band(d)
    lines = [ln for ln in _table() if ln["estimator"] == estimator and ln["dims"] == band]
    if not lines:
        return None
    best = dict(min(lines, key=lambda ln: abs(math.log(ln["n"]) - math.log(max(n, 1)))))
    best["text"] = (
        f"{estimator} on {best['tasks']} ground-truth tasks with {band} dimensions at n = {best['n']}: "
        f"mean |error| {best['mae']:.3g} nats, {best['within_fraction']:.0%} within max(0.1 nats, 10 %)"
    )
    return best
