"""The HTML report: self-contained, escaped, with curves and formatted metrics."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from privlab.errors import DataMissingError
from privlab.report import SECTIONS, build_report
from privlab.report.plots import training_curves
from privlab.report.sections import format_value
from privlab.store import MetricRecord, Store


def _make_store(out: Path) -> None:
    with Store(out) as s:
        s.start_run(
            "train-aaaa1111",
            experiment="train",
            spec={"experiment": "train", "train": {"epochs": 3}},
            spec_hash="aaaa1111",
            seed=0,
            versions={"torch": "2.x"},
            hardware={"cpu_count": 2},
            name="baseline run",
        )
        recs = []
        for epoch in (1, 2, 3):
            recs.append(MetricRecord("train_loss", 1.0 / epoch, step=epoch, unit="nats", kind="utility"))
            recs.append(MetricRecord("train_accuracy", 0.5 + 0.1 * epoch, step=epoch, unit="fraction"))
        recs.append(MetricRecord("test_accuracy", 0.912345, unit="fraction", kind="utility", higher_is_better=True))
        s.log_metrics("train-aaaa1111", recs)
        art = out / "train-aaaa1111" / "weights file.safetensors"
        art.parent.mkdir(parents=True)
        art.write_bytes(b"x")
        s.add_artifact("train-aaaa1111", "weights", art, "ab" * 32)
        s.finish_run("train-aaaa1111")

        s.start_run(
            "other-bbbb2222",
            experiment="other",
            spec={"experiment": "other"},
            spec_hash="bbbb2222",
            seed=1,
            versions={},
            hardware={},
            name="<b>bad</b>",
        )
        s.finish_run("other-bbbb2222", status="failed", error="boom <script>alert(1)</script>")


def test_report_is_self_contained_escaped_and_complete(tmp_path: Path) -> None:
    _make_store(tmp_path)
    path = build_report(tmp_path, title="My <report>")
    assert path == tmp_path / "report.html"
    assert path.is_file()
    page = path.read_text(encoding="utf-8")
    assert "train-aaaa1111" in page
    assert "other-bbbb2222" in page
    assert "data:image/png;base64," in page
    assert "&lt;script&gt;" in page
    assert "<script>alert" not in page
    assert page.lower().count("<script") == 1  # only the filters' inline script: no src, no other script
    assert "<script src" not in page.lower()
    assert 'id="f-exp"' in page
    assert '<option value="other">other</option>' in page  # filter by experiment
    assert 'data-exp="train" data-status="finished"' in page
    assert "&lt;b&gt;bad&lt;/b&gt;" in page
    assert "<b>bad</b>" not in page
    assert "My &lt;report&gt;" in page
    assert "http://" not in page
    assert "https://" not in page
    assert "0.9123" in page  # accuracy with 4 significant digits
    assert "fraction" in page
    assert "nats" in page
    assert "Training" in page  # the registered train section's title
    assert "weights%20file.safetensors" in page
    assert "abababababab" in page
    assert "<details>" in page
    assert "&quot;epochs&quot;: 3" in page
    # no leftover temporary files from the atomic write
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report.html")]


def test_report_of_empty_store(tmp_path: Path) -> None:
    Store(tmp_path).close()
    page = build_report(tmp_path).read_text(encoding="utf-8")
    assert "No runs" in page


def test_folder_without_store_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(DataMissingError, match=r"runs\.sqlite"):
        build_report(tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()


def test_training_curves_none_without_steps() -> None:
    assert training_curves([MetricRecord("test_accuracy", 0.9)], "t") is None
    uri = training_curves([MetricRecord("lr", 0.1, step=1), MetricRecord("lr", 0.05, step=2)], "t")
    assert uri is not None
    assert re.fullmatch(r"data:image/png;base64,[A-Za-z0-9+/=]+", uri)


def test_format_value() -> None:
    assert format_value(0.912345, "test_accuracy") == "0.9123"
    assert format_value(1.0, "val_acc") == "1.000"
    assert format_value(float("nan"), "x") == "—"
    assert format_value(12.34567, "loss") == "12.35"


def test_custom_section_is_used(tmp_path: Path) -> None:
    _make_store(tmp_path)

    @SECTIONS.register("other", title="Other things")
    def _other(runs, store):
        return f"<p id='custom-marker'>{len(runs)}</p>"

    try:
        page = build_report(tmp_path).read_text(encoding="utf-8")
    finally:
        SECTIONS.remove("other")
    assert "custom-marker" in page
    assert "Other things" in page


def test_per_run_figures_are_capped_and_the_page_says_so(tmp_path: Path) -> None:
    """A large sweep's report draws at most ``max_figures`` per-run figures (each costs ~0.1–0.5 s), lists every run
    in its tables, and says how many figures it left out; ``privlab report --max-figures`` draws more."""
    from typer.testing import CliRunner

    from privlab.cli import app
    from privlab.report import render_report

    with Store(tmp_path) as s:
        for i in range(5):
            rid = f"train-{i}"
            s.start_run(rid, experiment="train", spec={"experiment": "train", "seed": i}, spec_hash=f"{i:064x}",
                        seed=i, versions={}, hardware={}, dir=rid)  # fmt: skip
            s.log_metrics(rid, [MetricRecord("train_loss", 1.0 / (e + 1), e) for e in range(3)])
            s.log_metrics(rid, [MetricRecord("test_accuracy", 0.5 + i / 10, None, "fraction", "utility", True)])
            s.finish_run(rid)
        page = render_report(s, max_figures=2)
        assert page.count('alt="training curves of') == 2
        assert "3 per-run figure(s) not drawn: this page draws the first 2" in page
        assert all(f"train-{i}" in page for i in range(5))  # every run still listed
        full = render_report(s, max_figures=10)
        assert full.count('alt="training curves of') == 5 and "not drawn" not in full
    r = CliRunner().invoke(app, ["report", str(tmp_path), "--max-figures", "1", "--json"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "report.html").read_text().count('alt="training curves of') == 1
