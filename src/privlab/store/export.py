"""Export a store's runs as CSV (one row per run, spec and final metrics flattened) or JSON."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from privlab.reference import compare
from privlab.store.sqlite import RunRecord, Store

__all__ = ["flatten", "runs_to_csv", "runs_to_json"]


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1}}`` → ``{"train.lr": 1}``; lists become JSON strings."""
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(data, list):
        out[prefix[:-1]] = json.dumps(data)
    else:
        out[prefix[:-1]] = data
    return out


_FIXED = ("id", "experiment", "name", "status", "seed", "spec_hash", "started", "finished", "error")


def runs_to_csv(runs: list[RunRecord]) -> str:
    """CSV text: fixed columns, then ``spec.*`` columns, then ``metric.*`` columns (final values)."""
    rows = []
    for r in runs:
        row = {k: getattr(r, k) for k in _FIXED}
        row |= {f"spec.{k}": v for k, v in flatten(r.spec).items() if k not in ("experiment", "seed", "name")}
        row |= {f"metric.{k}": v for k, v in r.metrics.items()}
        rows.append(row)
    spec_cols = sorted({k for row in rows for k in row if k.startswith("spec.")})
    metric_cols = sorted({k for row in rows for k in row if k.startswith("metric.")})
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=[*_FIXED, *spec_cols, *metric_cols], extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def runs_to_json(store: Store, runs: list[RunRecord], *, with_steps: bool = True) -> dict[str, Any]:
    """``{"runs": [...]}`` with each run's spec, versions, final metrics, published-vs-measured rows for the spec's
    ``reference:`` entries (:func:`privlab.reference.compare`) and (optionally) every stepped value."""
    out = []
    for r in runs:
        d = r.as_dict()
        d["reference"] = [row.as_dict() for row in compare((r.spec or {}).get("reference") or {}, r.metrics)]
        if with_steps:
            d["history"] = [
                {"name": m.name, "value": m.value, "step": m.step} for m in store.metrics(r.id) if m.step is not None
            ]
        d["artifacts"] = store.artifacts(r.id)
        out.append(d)
    return {"runs": out}
