"""A new image metric is one file: registered from a $PRIVLAB_PLUGINS file, it is scored by ``score()``, used by the
agreement statistics, listed by ``privlab metrics`` and shown in the report's inversion table — no other file edited."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from privlab import plugins
from privlab.cli import app
from privlab.measure.image import SIMILARITY_METRICS, metric_columns, score
from privlab.measure.semsim.agreement import agreement
from privlab.plugins import PLUGINS_ENV, load_plugins
from privlab.report import build_report
from privlab.store import MetricRecord, Store

NAME = "plugin-mae"
PLUGIN_SRC = f'''
"""Test plugin: mean absolute error per image as an image metric."""

from privlab.measure.image import MetricOutput, register_metric


@register_metric(
    "{NAME}", unit="intensity", higher_is_better=False, kind="privacy", description="mean |x - y| (test plugin)"
)
def _mae(x, y, opts):
    return MetricOutput({{"{NAME}": (x.double() - y.double()).abs().flatten(1).mean(1)}}, "mean |x - y| over C, H, W")
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "mae_metric.py"
    path.write_text(PLUGIN_SRC)
    monkeypatch.setenv(PLUGINS_ENV, str(path))
    assert NAME not in SIMILARITY_METRICS
    load_plugins()
    yield path
    SIMILARITY_METRICS.remove(NAME)
    plugins._loaded.pop(str(path.resolve()), None)
    sys.modules.pop("privlab_plugin_mae_metric", None)


def test_plugin_metric_is_scored_with_its_registered_metadata(plugin: Path) -> None:
    x = torch.zeros(2, 1, 4, 4)
    y = torch.cat([torch.full((1, 1, 4, 4), 0.25), torch.full((1, 1, 4, 4), 0.75)])
    table = score(x, y, ["psnr", NAME])
    assert table.metrics == ["psnr", NAME]
    assert table.column(NAME) == [0.25, 0.75]
    assert table.means[NAME] == 0.5
    assert table.units[NAME] == "intensity" and table.higher_is_better[NAME] is False
    assert table.notes[NAME] == "mean |x - y| over C, H, W"
    info = metric_columns()[NAME]
    assert (info.metric, info.unit, info.higher_is_better, info.kind) == (NAME, "intensity", False, "privacy")


def test_plugin_metric_is_used_by_the_agreement_statistics(plugin: Path) -> None:
    # recognised reconstructions have the smaller error: a lower-is-similar metric agrees perfectly
    rows = [
        {"setting": s, "recognised": r, NAME: v}
        for s, r, v in [("a", 1, 0.1), ("a", 1, 0.2), ("b", 0, 0.6), ("b", 1, 0.3), ("c", 0, 0.8), ("c", 0, 0.7)]
    ]
    res = agreement(rows, [NAME], n_boot=0)
    m = res.metrics[NAME]
    assert m["higher_is_similar"] is False
    assert m["image"]["ordering_accuracy"] == 1.0
    assert m["setting"]["spearman"]["value"] == pytest.approx(1.0)


def test_plugin_metric_is_listed_by_the_cli(plugin: Path) -> None:
    r = CliRunner().invoke(app, ["metrics", "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.stdout)["metrics"]}
    assert rows[NAME]["unit"] == "intensity" and rows[NAME]["higher_is_better"] is False
    assert rows[NAME]["kind"] == "privacy" and rows[NAME]["family"] == "image"
    assert rows["psnr"]["unit"] == "dB" and rows["psnr"]["higher_is_better"] is True
    assert rows["ksg"]["unit"] == "nats"
    text = CliRunner().invoke(app, ["metrics"], catch_exceptions=False).stdout
    assert NAME in text and "lower = more similar" in text


def test_plugin_metric_is_shown_in_the_inversion_report(plugin: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with Store(out) as s:
        s.start_run("inv-1", experiment="inversion", spec={"attack": "dlg"}, spec_hash="h1", seed=0, versions={},
                    hardware={})  # fmt: skip
        # logged without a unit: the report takes it from the metric's registration
        s.log_metrics("inv-1", [MetricRecord("psnr", 14.5, None, "dB"), MetricRecord(NAME, 0.125)])
        s.finish_run("inv-1")
    html = build_report(out).read_text("utf-8")
    assert re.search(rf"<th class=\"num\">{NAME}<br><small>intensity</small></th>", html)
    assert re.search(r"<th class=\"num\">psnr<br><small>dB</small></th>", html)
    assert ">0.125<" in html
