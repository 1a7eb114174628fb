"""Published values beside measured ones: the ``reference:`` spec block, its comparison, CLI and report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from privlab.cli import app
from privlab.config import Reference, spec_hash
from privlab.pipelines import pipeline_spec_class
from privlab.reference import compare
from privlab.report import build_report
from privlab.store import MetricRecord, Store

runner = CliRunner()


def test_compare_within_outside_and_missing() -> None:
    refs = {
        "acc": Reference(value=0.9387, source="Shredder, Table 2", tolerance=0.02),
        "mi": Reference(value=284.14, source="Shredder, Table 2", rel_tolerance=0.10),
        "snr": Reference(value=2.6e-4, source="Shredder, §5", tolerance=1e-4),
    }
    rows = {r.metric: r for r in compare(refs, {"acc": 0.90, "mi": 300.0, "snr": float("nan")})}
    assert rows["acc"].difference == pytest.approx(0.90 - 0.9387)
    assert rows["acc"].within is False and rows["acc"].status == "outside"  # 0.0387 > 0.02
    assert rows["mi"].allowed == pytest.approx(28.414)
    assert rows["mi"].within is True and rows["mi"].difference == pytest.approx(15.86)
    assert rows["snr"].measured is None and rows["snr"].status == "not measured"  # NaN is no measurement


def test_tolerance_at_the_boundary_is_within() -> None:
    ref = {"x": Reference(value=1.0, source="s", tolerance=0.1)}
    assert compare(ref, {"x": 1.1})[0].within is True
    assert compare(ref, {"x": 1.1000001})[0].within is False


def test_reference_needs_a_tolerance_and_a_source() -> None:
    with pytest.raises(ValueError, match="needs a tolerance or rel_tolerance"):
        Reference(value=1.0, source="paper")
    with pytest.raises(ValueError, match="source"):
        Reference(value=1.0, source="", tolerance=0.1)


def test_reference_is_not_part_of_the_spec_hash() -> None:
    cls = pipeline_spec_class("train")
    plain = cls.model_validate({"experiment": "train"})
    with_ref = cls.model_validate(
        {"experiment": "train", "reference": {"test_accuracy": {"value": 0.99, "source": "p", "tolerance": 0.01}}}
    )
    assert spec_hash(plain) == spec_hash(with_ref)


def test_bad_reference_in_a_spec_file_is_exit_2(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("experiment: train\npreset: smoke\nreference:\n  test_accuracy: {value: 0.9, source: p}\n")
    res = runner.invoke(app, ["run", str(spec), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "tolerance" in res.output and "Traceback" not in res.output


def _store_with_reference(out: Path) -> None:
    refs = {
        "test_accuracy": {"value": 0.95, "source": "paper A, Table 1", "tolerance": 0.01, "note": "CPU size"},
        "mi_nats": {"value": 100.0, "source": "paper B, Fig. 3", "rel_tolerance": 0.05},
    }
    with Store(out) as s:
        s.start_run(
            "train-r1",
            experiment="train",
            spec={"experiment": "train", "reference": refs},
            spec_hash="h1",
            seed=0,
            versions={},
            hardware={},
        )
        s.log_metrics("train-r1", [MetricRecord("test_accuracy", 0.952), MetricRecord("mi_nats", 80.0)])
        s.finish_run("train-r1")


def test_runs_show_json_and_table_show_published_beside_measured(tmp_path: Path) -> None:
    _store_with_reference(tmp_path)
    res = runner.invoke(app, ["runs", "show", "train-r1", "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["metric"]: r for r in json.loads(res.output)["reference"]}
    assert rows["test_accuracy"]["status"] == "within"
    assert rows["mi_nats"]["status"] == "outside" and rows["mi_nats"]["difference"] == pytest.approx(-20.0)
    res = runner.invoke(app, ["runs", "show", "train-r1", "--out", str(tmp_path)])
    assert "published vs measured" in res.output and "outside" in res.output


def test_report_has_a_reproduction_section(tmp_path: Path) -> None:
    _store_with_reference(tmp_path)
    page = build_report(tmp_path).read_text()
    section = page.split('<section id="reproduction">', 1)[1].split("</section>", 1)[0]
    assert "1 of 2 published values reproduced within tolerance" in section
    assert "paper B, Fig. 3" in section and "CPU size" in section
    assert section.count("<tr>") == 3  # header + one row per reference
    assert 'href="#reproduction"' in page


def test_report_without_references_has_no_reproduction_section(tmp_path: Path) -> None:
    with Store(tmp_path) as s:
        s.start_run(
            "t-1", experiment="train", spec={"experiment": "train"}, spec_hash="h", seed=0, versions={}, hardware={}
        )
        s.finish_run("t-1")
    assert 'id="reproduction"' not in build_report(tmp_path).read_text()
