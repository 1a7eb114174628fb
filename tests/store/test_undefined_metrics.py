"""A metric that comes out NaN or ±inf is stored as undefined, with the reason, and shown that way everywhere."""

import csv
import io
import json
import math

from typer.testing import CliRunner

from privlab.cli import app
from privlab.report import render_report
from privlab.store import MetricRecord, Store
from privlab.store.export import runs_to_csv

REASON = "one class only: AUC needs members and non-members"


def _store_with_undefined(tmp_path):
    with Store(tmp_path) as s:
        s.start_run("r1", experiment="mia", spec={"experiment": "mia", "seed": 0}, spec_hash="h" * 64, seed=0,
                    versions={}, hardware={}, dir="r1")  # fmt: skip
        s.log_metrics(
            "r1",
            [
                MetricRecord("auc", math.nan, None, None, "privacy", False, REASON),
                MetricRecord("psnr", math.inf),  # no reason given
                MetricRecord("accuracy", 0.75, None, "fraction", "utility", True),
                MetricRecord("loss", math.nan, 3),  # a stepped NaN: no note row
                MetricRecord("later_fixed", math.nan, None, note="first try failed"),
                MetricRecord("later_fixed", 0.5),  # the last final value wins, and it is a number
            ],
        )
        s.finish_run("r1")
    return tmp_path


def test_undefined_values_keep_their_reason(tmp_path):
    out = _store_with_undefined(tmp_path)
    with Store(out, create=False) as s:
        (run,) = s.runs()
        assert set(run.undefined) == {"auc", "psnr"}
        assert run.undefined["auc"] == REASON
        assert "gave +inf and no reason" in run.undefined["psnr"]
        assert s.get_run("r1").undefined == run.undefined
        assert s.undefined_metrics("r1") == run.undefined
        assert math.isnan(run.metrics["auc"]) and run.metrics["later_fixed"] == 0.5
        assert s._conn.execute("SELECT COUNT(*) FROM metric_notes").fetchone()[0] == 3  # finals only


def test_cli_report_and_csv_say_undefined_with_the_reason(tmp_path):
    out = _store_with_undefined(tmp_path)
    r = CliRunner().invoke(app, ["runs", "show", "r1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert f"undefined: {REASON}" in " ".join(r.output.split())
    r = CliRunner().invoke(app, ["runs", "show", "r1", "--out", str(out), "--json"])
    data = json.loads(r.stdout)
    assert data["undefined"]["auc"] == REASON and data["metrics"]["auc"] is None  # valid JSON: no NaN literal
    with Store(out, create=False) as s:
        rows = list(csv.DictReader(io.StringIO(runs_to_csv(s.runs()))))
        html = render_report(s)
    assert rows[0]["metric.auc"] == "" and rows[0]["undefined.auc"] == REASON and rows[0]["metric.accuracy"] == "0.75"
    assert "Undefined metrics" in html and REASON in html


def test_a_sweep_worker_store_carries_the_notes_into_the_sweep_store(tmp_path):
    src = _store_with_undefined(tmp_path / "worker")
    with Store(src, create=False) as s:
        payload = s.export_run("r1")
    with Store(tmp_path / "sweep") as dst:
        dst.import_run(json.loads(json.dumps(payload, default=str)))
        assert dst.undefined_metrics("r1")["auc"] == REASON


def test_a_store_from_before_the_notes_table_still_reads(tmp_path):
    out = _store_with_undefined(tmp_path)
    with Store(out, create=False) as s:
        s._conn.execute("DROP TABLE metric_notes")
        s._open_read_only()  # as on read-only media: nothing can create the table
        assert s.read_only
        (run,) = s.runs()
        assert run.undefined == {} and math.isnan(run.metrics["auc"]) and s.get_run("r1").undefined == {}
    with Store(out, create=False) as s:  # opened for writing: the table is created again, empty
        assert s.runs()[0].undefined == {}
        assert s._conn.execute("SELECT COUNT(*) FROM metric_notes").fetchone()[0] == 0
