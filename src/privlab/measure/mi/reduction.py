"""MI reduction of a protection: ``100 · (1 − noisy / clean)`` in percent, never without an interval.

:func:`mi_reduction` computes it from two :class:`~privlab.measure.mi.MIResult` (paired repeats, or the shipped
calibration error); :func:`log_mi_reduction` stores it in a run (metric ``<name>`` in %, its interval bounds, and the
two estimates as a JSON artifact).

Example:
    >>> from privlab.measure.mi import MIResult
    >>> clean = MIResult(2.0, None, "ksg", 3, 100, (1, 1), 0.0, values=[1.9, 2.0, 2.1])
    >>> noisy = MIResult(0.5, None, "ksg", 3, 100, (1, 1), 0.0, values=[0.5, 0.5, 0.5])
    >>> red = mi_reduction(clean, noisy)
    >>> red["percent"], red["method"]
    (75.0, 'repeats')
"""

from __future__ import annotations

import math
from typing import Any

from privlab.context import RunContext
from privlab.measure.mi.estimate import MIResult
from privlab.store import MetricRecord

__all__ = ["log_mi_reduction", "mi_reduction"]


def mi_reduction(clean: MIResult, noisy: MIResult) -> dict[str, Any]:
    """MI reduction ``100 · (1 − noisy / clean)`` in percent, with a 95 % interval.

    With ≥ 2 draws on both sides (same seed, so draw i of each uses the same permutation), the interval is a paired
    Student-t interval over the per-draw reductions (``method = "repeats"``). Otherwise it comes from the shipped
    calibration error of each estimate (value ± mean absolute error, ``method = "calibration"``); without either it
    is None and ``method`` says why — a reduction is never reported as a bare percentage.
    """
    value = 100.0 * (1.0 - noisy.nats / clean.nats) if clean.nats else float("nan")
    if len(clean.values) >= 2 and len(clean.values) == len(noisy.values):
        from scipy.stats import t as student_t

        per = [100.0 * (1.0 - n / c) for c, n in zip(clean.values, noisy.values, strict=True) if c]
        if len(per) >= 2:
            m = sum(per) / len(per)
            sd = math.sqrt(sum((p - m) ** 2 for p in per) / (len(per) - 1))
            half = float(student_t.ppf(0.975, len(per) - 1)) * sd / math.sqrt(len(per))
            return {"percent": value, "ci95": [m - half, m + half], "method": "repeats"}
    cc, cn = clean.diagnostics.get("calibration"), noisy.diagnostics.get("calibration")
    if cc and cn and clean.nats > cc["mae"]:
        lo_c, hi_c = clean.nats - cc["mae"], clean.nats + cc["mae"]
        lo_n, hi_n = max(0.0, noisy.nats - cn["mae"]), noisy.nats + cn["mae"]
        return {"percent": value, "ci95": [100 * (1 - hi_n / lo_c), 100 * (1 - lo_n / hi_c)], "method": "calibration"}
    return {"percent": value, "ci95": None, "method": "none: use repeats ≥ 2 or a calibrated estimator"}


def log_mi_reduction(ctx: RunContext, name: str, clean: MIResult, noisy: MIResult) -> dict[str, Any]:
    """Store ``<name>`` (percent) and its interval bounds; returns :func:`mi_reduction`'s dict."""
    red = mi_reduction(clean, noisy)
    records = [MetricRecord(name, red["percent"], None, "%", "privacy", True)]
    if red["ci95"] is not None:
        records += [
            MetricRecord(f"{name}_ci_low", red["ci95"][0], None, "%", "info", None),
            MetricRecord(f"{name}_ci_high", red["ci95"][1], None, "%", "info", None),
        ]
    ctx.log_many(records)
    ctx.save_json(
        "mi", f"mi-{name}.json", {"name": name, "reduction": red, "clean": clean.as_dict(), "noisy": noisy.as_dict()}
    )
    return red
