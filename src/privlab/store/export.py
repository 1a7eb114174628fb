"""Export a store's runs as CSV or Parquet (one row per run, spec and final metrics flattened) or JSON."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from privlab.reference import compare
from privlab.store.sqlite import RunRecord, Store

__all__ = [
    "csv_cell",
    "csv_row",
    "flatten",
    "parquet_bytes",
    "runs_table",
    "runs_to_csv",
    "runs_to_json",
    "runs_to_parquet",
    "uncsv_cell",
]


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


# a spreadsheet (Excel, LibreOffice, Google Sheets) runs a cell that starts with one of these as a formula
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|nan)$", re.IGNORECASE)


def csv_cell(value: Any) -> Any:
    """One CSV cell made safe to open in a spreadsheet (CSV/formula injection).

    A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'`` so that
    a spreadsheet shows it as text instead of running it (``=HYPERLINK("x")`` → ``'=HYPERLINK("x")``). Numbers, and
    text that is exactly a number (``-0.5``, ``1e-3``, ``-inf``), are left as they are.

    >>> print(csv_cell('=HYPERLINK("x")'), csv_cell("@SUM(A1)"), csv_cell(-0.5), csv_cell("-0.5"), csv_cell("lenet5"))
    '=HYPERLINK("x") '@SUM(A1) -0.5 -0.5 lenet5
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.match(value):
        return "'" + value
    return value


def uncsv_cell(text: str) -> str:
    """Undo :func:`csv_cell` on text read back from a CSV privlab wrote (``'=x`` → ``=x``; other text unchanged)."""
    if text.startswith("'") and text[1:].startswith(_FORMULA_START) and not _NUMBER.match(text[1:]):
        return text[1:]
    return text


def csv_row(row: dict[str, Any]) -> dict[str, Any]:
    """:func:`csv_cell` applied to every value of a ``csv.DictWriter`` row."""
    return {k: csv_cell(v) for k, v in row.items()}


_FIXED = ("id", "experiment", "name", "status", "seed", "spec_hash", "started", "finished", "error")


def runs_table(runs: list[RunRecord]) -> tuple[list[str], list[dict[str, Any]]]:
    """``(columns, rows)`` of the runs, one row per run with the values as stored: fixed columns, then ``spec.*``
    columns, then ``metric.*`` columns (final values; an undefined value is None, and ``undefined.<metric>`` says
    why). A row lacks the columns its run does not have."""
    rows = []
    for r in runs:
        row = {k: getattr(r, k) for k in _FIXED}
        row |= {f"spec.{k}": v for k, v in flatten(r.spec).items() if k not in ("experiment", "seed", "name")}
        row |= {f"metric.{k}": (v if math.isfinite(v) else None) for k, v in r.metrics.items()}
        row |= {f"undefined.{k}": note for k, note in r.undefined.items()}
        rows.append(row)
    spec_cols = sorted({k for row in rows for k in row if k.startswith("spec.")})
    metric_cols = sorted({k for row in rows for k in row if k.startswith("metric.")})
    note_cols = sorted({k for row in rows for k in row if k.startswith("undefined.")})
    return [*_FIXED, *spec_cols, *metric_cols, *note_cols], rows


def runs_to_csv(runs: list[RunRecord]) -> str:
    """CSV text of :func:`runs_table`: an undefined value is an empty cell; text cells made spreadsheet-safe
    (:func:`csv_cell`)."""
    columns, rows = runs_table(runs)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(csv_row(row) for row in rows)
    return buf.getvalue()


def parquet_bytes(columns: Mapping[str, Any]) -> bytes:
    """A Parquet file (bytes) of one table: column name → values (a NumPy array or a list; all of one length).

    A list column whose values pyarrow cannot give one type (numbers and text mixed, say) is stored as text, None
    staying null. Write the bytes with :func:`privlab.store.artifacts.atomic_write_bytes`.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {}
    for name, values in columns.items():
        try:
            arrays[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays[name] = pa.array([None if v is None else str(v) for v in values], type=pa.string())
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(arrays), sink)
    return sink.getvalue().to_pybytes()


def runs_to_parquet(runs: list[RunRecord]) -> bytes:
    """A Parquet file (bytes) of :func:`runs_table`: the same columns as :func:`runs_to_csv`, typed (numbers stay
    numbers, an undefined value or a column the run lacks is null), text as written (no spreadsheet escaping)."""
    columns, rows = runs_table(runs)
    return parquet_bytes({c: [row.get(c) for row in rows] for c in columns})


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
