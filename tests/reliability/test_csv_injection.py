"""CSV files privlab writes open safely in a spreadsheet: a text cell that a spreadsheet would run as a formula
(``=``, ``+``, ``-``, ``@``, tab, CR first) is written with a leading ``'``; numbers stay numbers."""

from __future__ import annotations

import csv
import io

import pytest

from privlab.measure.semsim.annotations import Annotation, load_manifest, save_manifest
from privlab.pipelines.semsim import rows_to_csv
from privlab.store import MetricRecord, Store
from privlab.store.export import csv_cell, runs_to_csv, uncsv_cell

EVIL = '=HYPERLINK("x")'


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (EVIL, "'" + EVIL),
        ("+1+1", "'+1+1"),
        ("-1+cmd|' /C calc'!A0", "'-1+cmd|' /C calc'!A0"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("lenet5", "lenet5"),
        ("a=b", "a=b"),
        ("-0.5", "-0.5"),  # text that is exactly a number stays a number
        ("+3", "+3"),
        ("-1e-3", "-1e-3"),
        ("-inf", "-inf"),
        (-0.5, -0.5),
        (-3, -3),
        (None, None),
    ],
)
def test_csv_cell(value, written):
    assert csv_cell(value) == written
    if isinstance(value, str):
        assert uncsv_cell(str(written)) == value  # privlab's own readers get the original text back


def test_runs_export_neutralises_formulas_and_keeps_negative_numbers(tmp_path):
    with Store(tmp_path) as s:
        spec = {"experiment": "train", "seed": 0, "name": EVIL, "train": {"lr": -0.5, "note": "@cmd", "tag": "-0.5"}}
        s.start_run("r1", experiment="train", spec=spec, spec_hash="h" * 64, seed=0, versions={}, hardware={},
                    dir="r1", name=EVIL)  # fmt: skip
        s.log_metrics("r1", [MetricRecord("gain", -0.5)])
        s.finish_run("r1")
        text = runs_to_csv(s.runs())
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert row["name"] == "'" + EVIL
    assert row["spec.train.note"] == "'@cmd"
    assert row["spec.train.lr"] == "-0.5" and float(row["spec.train.lr"]) == -0.5
    assert row["spec.train.tag"] == "-0.5"
    assert float(row["metric.gain"]) == -0.5
    assert not any(v.startswith(("=", "+", "@")) for v in row.values())


def test_rows_to_csv_and_manifest(tmp_path):
    rows = [{"setting": EVIL, "psnr": -0.5, "annotator": "+1+1"}]
    (got,) = list(csv.DictReader(io.StringIO(rows_to_csv(rows))))
    assert got == {"setting": "'" + EVIL, "psnr": "-0.5", "annotator": "'+1+1"}
    (tmp_path / "-1").mkdir()
    rec = Annotation("-1/0_3_ori.png", "-1/0_3_rec.png", EVIL, True, "+1+1")
    save_manifest(tmp_path / "m.csv", [rec])
    text = (tmp_path / "m.csv").read_text()
    assert "'" + EVIL.replace('"', '""') in text and "'-1/0_3_rec.png" in text and "\n=" not in text
    assert load_manifest(tmp_path / "m.csv").records == [rec]  # read back unchanged
