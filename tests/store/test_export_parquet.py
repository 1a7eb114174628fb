"""``privlab runs export --parquet``: the CSV's columns as a typed Parquet table (pyarrow), written atomically."""

from __future__ import annotations

import csv
import io
import math

import pyarrow.parquet as pq
from typer.testing import CliRunner

from privlab.cli import app
from privlab.store import MetricRecord, Store
from privlab.store.export import parquet_bytes, runs_to_csv

runner = CliRunner()


def _store(tmp_path):
    """Two runs: spec key ``train.lr`` a number in both, ``tag`` a number in one and text in the other, one metric
    undefined (NaN) in the first, a name that a spreadsheet would run as a formula."""
    with Store(tmp_path) as s:
        for i, (tag, auc) in enumerate([(3, math.nan), ("=cmd", 0.625)]):
            rid = f"r{i}"
            s.start_run(rid, experiment="mia", spec={"experiment": "mia", "seed": i, "train": {"lr": 0.5 * (i + 1)},
                        "tag": tag}, spec_hash=str(i) * 64, seed=i, versions={}, hardware={}, dir=rid)  # fmt: skip
            s.log_metrics(rid, [MetricRecord("auc", auc, None, None, "privacy", False, "one class only"),
                                MetricRecord("accuracy", 0.75 + i / 8)])  # fmt: skip
            s.finish_run(rid)
    return tmp_path


def test_runs_export_parquet_matches_the_csv(tmp_path):
    out = _store(tmp_path / "store")
    to = tmp_path / "x" / "runs.parquet"
    r = runner.invoke(app, ["runs", "export", "--out", str(out), "--parquet", "--to", str(to)])
    assert r.exit_code == 0, r.output
    assert "wrote 2 runs to" in r.stderr and not list(to.parent.glob(".*.tmp"))
    table = pq.read_table(to)
    with Store(out, create=False) as s:
        rows = list(csv.DictReader(io.StringIO(runs_to_csv(s.runs()))))
    assert table.column_names == list(rows[0])  # the same columns in the same order
    got = table.to_pydict()
    assert got["id"] == ["r0", "r1"] and got["seed"] == [0, 1]
    assert got["spec.train.lr"] == [0.5, 1.0] and str(table.schema.field("spec.train.lr").type) == "double"
    assert got["metric.accuracy"] == [0.75, 0.875]
    assert got["metric.auc"] == [None, 0.625]  # undefined → null (the CSV's empty cell)
    assert got["undefined.auc"][0] == "one class only"
    assert got["spec.tag"] == ["3", "=cmd"]  # a number and text in one column: text, not spreadsheet-escaped
    assert [r["spec.tag"] for r in rows] == ["3", "'=cmd"]


def test_runs_export_parquet_needs_a_file_and_one_format(tmp_path):
    out = _store(tmp_path / "store")
    cases = [
        (["--parquet"], "--parquet writes a binary file; give its path with --to FILE.parquet"),
        (["--parquet", "--csv", "--to", str(tmp_path / "a")], "choose one of --json, --csv and --parquet"),
    ]
    for extra, msg in cases:
        r = runner.invoke(app, ["runs", "export", "--out", str(out), *extra])
        assert r.exit_code == 2 and r.stderr.strip() == f"error: {msg}", r.output
    assert not (tmp_path / "a").exists()


def test_parquet_bytes_keeps_types():
    import numpy as np

    table = pq.read_table(io.BytesIO(parquet_bytes({"i": np.arange(3), "f": [0.5, None, 2], "s": [1, "a", None]})))
    assert [str(t) for t in table.schema.types] == ["int64", "double", "string"]
    assert table.to_pydict() == {"i": [0, 1, 2], "f": [0.5, None, 2.0], "s": ["1", "a", None]}
