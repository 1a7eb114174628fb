"""Calibration of MI estimators against ground truth: run them over :mod:`privlab.measure.mi_tasks`.

:func:`calibrate` estimates every task of the suite with every estimator and records the error;
:func:`summarize` gives, per estimator, the mean absolute error and how many tasks are within tolerance
(``|error| ≤ max(0.1 nats, 10 %)``). A table of such summaries by (n, dimension band) ships with privlab
(``calibration_table.json``, made by ``privlab mi calibrate --write-table``); :func:`calibration_line` looks up the
line that matches an estimate, and every :class:`~privlab.measure.mi.MIResult` carries it in ``diagnostics``.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any

from privlab.errors import ConfigError

__all__ = ["DIM_BANDS", "calibrate", "calibration_line", "dim_band", "summarize", "within_tolerance"]

ABS_TOL, REL_TOL = 0.1, 0.10
DIM_BANDS = ((1, 4), (5, 20), (21, 100), (101, 1000), (1001, 10**9))


def within_tolerance(estimate: float, truth: float) -> bool:
    """``|estimate − truth| ≤ max(0.1 nats, 10 % of truth)``."""
    return math.isfinite(estimate) and abs(estimate - truth) <= max(ABS_TOL, REL_TOL * abs(truth))


def dim_band(d: int) -> str:
    """The band ``"lo-hi"`` of total dimension ``d`` used to group calibration results."""
    for lo, hi in DIM_BANDS:
        if lo <= d <= hi:
            return f"{lo}-{hi}" if hi < 10**9 else f">{lo - 1}"
    return "?"


def calibrate(
    estimators: list[str],
    *,
    n: int = 5000,
    max_dim: int | None = None,
    tasks: list[str] | None = None,
    families: list[str] | None = None,
    seed: int = 0,
    k: int = 3,
    options: dict[str, dict[str, Any]] | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Estimate every selected ground-truth task with every estimator.

    Returns:
        One row per (task, estimator): ``task, family, transform, dim_x, dim_z, n, truth, estimator, estimate,
        abs_error, rel_error, within_tolerance, seconds, error`` (``error`` holds a failure message, else None).
    """
    from privlab.measure.mi import MI_ESTIMATORS, estimate_mi
    from privlab.measure.mi_tasks import get_task, suite

    for name in estimators:
        MI_ESTIMATORS.entry(name)  # unknown names fail before any work
    chosen = [get_task(t) for t in tasks] if tasks else suite(max_dim=max_dim, families=families)
    if not chosen:
        raise ConfigError("no ground-truth task matches the selection (check --max-dim / --family / --task)")
    rows = []
    for task in chosen:
        x, z = task.sample(n, seed=seed)
        for name in estimators:
            row: dict[str, Any] = {
                "task": task.name,
                "family": task.family,
                "transform": task.transform,
                "dim_x": task.dim_x,
                "dim_z": task.dim_z,
                "n": n,
                "truth": task.mi,
                "estimator": name,
                "error": None,
            }
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    r = estimate_mi(x, z, name, k=k, seed=seed, diagnose=False, options=(options or {}).get(name))
                est = r.nats
            except Exception as e:  # one failing estimator must not stop the calibration
                est, row["error"] = float("nan"), f"{type(e).__name__}: {e}"
            row["seconds"] = time.perf_counter() - t0
            row["estimate"] = est
            row["abs_error"] = abs(est - task.mi) if math.isfinite(est) else float("nan")
            row["rel_error"] = row["abs_error"] / abs(task.mi) if task.mi else float("nan")
            row["within_tolerance"] = within_tolerance(est, task.mi)
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows


def summarize(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per estimator: ``tasks``, ``within`` (count), ``within_fraction``, ``mae`` (nats), ``max_abs_error``,
    ``seconds`` (total)."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        s = out.setdefault(r["estimator"], {"tasks": 0, "within": 0, "errors": [], "seconds": 0.0, "failed": 0})
        s["tasks"] += 1
        s["within"] += int(r["within_tolerance"])
        s["seconds"] += r["seconds"]
        if math.isfinite(r["abs_error"]):
            s["errors"].append(r["abs_error"])
        else:
            s["failed"] += 1
    for s in out.values():
        errs = s.pop("errors")
        s["within_fraction"] = s["within"] / s["tasks"] if s["tasks"] else float("nan")
        s["mae"] = sum(errs) / len(errs) if errs else float("nan")
        s["max_abs_error"] = max(errs) if errs else float("nan")
    return out


def table_from_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Summaries by (estimator, n, dimension band): the shipped calibration table's lines."""
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["estimator"], r["n"], dim_band(r["dim_x"] + r["dim_z"])), []).append(r)
    lines = []
    for (est, n, band), rs in sorted(groups.items()):
        s = summarize(rs)[est]
        lines.append(
            {
                "estimator": est,
                "n": n,
                "dims": band,
                "tasks": s["tasks"],
                "mae": s["mae"],
                "within_fraction": s["within_fraction"],
                "max_abs_error": s["max_abs_error"],
            }
        )
    return lines


_TABLE: list[dict[str, Any]] | None = None


def _table() -> list[dict[str, Any]]:
    global _TABLE
    if _TABLE is None:
        try:
            text = (resources.files("privlab.measure") / "calibration_table.json").read_text("utf-8")
            _TABLE = json.loads(text)["lines"]
        except (FileNotFoundError, KeyError, json.JSONDecodeError):
            _TABLE = []
    return _TABLE


def calibration_line(estimator: str, n: int, d: int) -> dict[str, Any] | None:
    """The shipped calibration line for ``estimator`` at the n nearest to ``n`` (log scale) in the band of ``d``.

    Returns:
        ``{"estimator", "n", "dims", "tasks", "mae", "within_fraction", "max_abs_error", "text"}`` or None when the
        table has no line for this estimator and dimension band.
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
