"""Calibration of MI estimators against ground truth: run them over :mod:`privlab.measure.mi.tasks`.

:func:`calibrate` estimates every task of the suite with every estimator and records the error;
:func:`summarize` gives, per estimator, the mean absolute error and how many tasks are within tolerance
(``|error| ≤ max(0.1 nats, 10 %)``); :func:`table_from_rows` makes the lines of the shipped table
(``privlab mi calibrate --write-table``), which :mod:`privlab.measure.mi.calibration_table` looks up.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from privlab.errors import ConfigError
from privlab.measure.mi.calibration_table import dim_band, within_tolerance
from privlab.measure.mi.estimate import MI_ESTIMATORS, estimate_mi
from privlab.measure.mi.tasks import get_task, suite

__all__ = ["calibrate", "summarize", "table_from_rows"]


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
