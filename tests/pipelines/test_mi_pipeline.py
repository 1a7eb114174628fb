import json
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from privlab.cli import app
from privlab.errors import ConfigError
from privlab.measure.mi import MIResult
from privlab.measure.mi.reduction import mi_reduction
from privlab.run import execute, load_spec
from privlab.store import Store

runner = CliRunner()


def _res(nats, values=(), mae=None):
    r = MIResult(nats=nats, ci95=None, estimator="x", k=3, n=100, dims=(1, 1), seconds=0.0, values=list(values))
    if mae is not None:
        r.diagnostics = {"calibration": {"mae": mae}}
    return r


def test_reduction_always_has_an_interval_or_says_why():
    red = mi_reduction(_res(10, [9, 10, 11]), _res(4, [3.5, 4, 4.5]))
    assert red["percent"] == pytest.approx(60) and red["method"] == "repeats"
    assert red["ci95"][0] < 60 < red["ci95"][1]
    cal = mi_reduction(_res(10, mae=1.0), _res(4, mae=0.5))
    assert cal["method"] == "calibration" and cal["ci95"] == pytest.approx([100 * (1 - 4.5 / 9), 100 * (1 - 3.5 / 11)])
    none = mi_reduction(_res(10), _res(4))
    assert none["ci95"] is None and none["method"].startswith("none")


def test_mi_experiment_stores_value_truth_and_record(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (o,) = execute(load_spec(experiment="mi", preset="smoke"), tmp_path, quiet=True)
    assert o.status == "finished"
    assert abs(o.metrics["mi"] - o.metrics["mi_truth"]) == pytest.approx(o.metrics["mi_abs_error"])
    assert o.metrics["mi_abs_error"] < 0.1
    with Store(tmp_path, create=False) as s:
        (art,) = [a for a in s.artifacts(o.id) if a["kind"] == "mi"]
    rec = json.loads((tmp_path / art["path"]).read_text())
    assert rec["estimator"] == "auto" and rec["details"]["rule"] and "warnings" in rec["diagnostics"]
    html = (tmp_path / "report.html").read_text()
    assert "Mutual information" in html and "max(gaussian-copula" in html


def test_mi_experiment_on_files_and_bad_specs(tmp_path):
    g = np.random.default_rng(0)
    x = g.normal(size=(500, 2))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "z.npy", x + g.normal(size=(500, 2)))
    spec = load_spec(
        experiment="mi", overrides={"x": str(tmp_path / "x.npy"), "z": str(tmp_path / "z.npy"), "estimator": "ksg"}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (o,) = execute(spec, tmp_path / "out", quiet=True)
    assert o.metrics["mi"] == pytest.approx(np.log(2), abs=0.1)  # 2 × ½ log 2
    with pytest.raises(ConfigError, match="give either task, or both x and z"):
        load_spec(experiment="mi", overrides={"x": "a.npy"})


def test_calibrate_json_schema():
    r = runner.invoke(
        app,
        [
            "mi",
            "calibrate",
            "--n",
            "500",
            "--task",
            "normal-corr0.8-1x1",
            "--task",
            "uniform-gauss-1x1",
            "--estimators",
            "ksg,gaussian",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert set(d) >= {"n", "seed", "tolerance", "rows", "summary"} and d["n"] == 500
    assert len(d["rows"]) == 4
    row = d["rows"][0]
    assert set(row) >= {
        "task",
        "estimator",
        "estimate",
        "truth",
        "abs_error",
        "rel_error",
        "within_tolerance",
        "seconds",
        "dim_x",
        "dim_z",
    }
    assert set(d["summary"]) == {"ksg", "gaussian"}
    assert set(d["summary"]["ksg"]) >= {"tasks", "within", "within_fraction", "mae", "max_abs_error"}
    bad = runner.invoke(app, ["mi", "calibrate", "--estimators", "ksq", "--max-dim", "2"])
    assert bad.exit_code == 2 and "Did you mean 'ksg'" in bad.stderr


def test_mi_tasks_listing():
    r = runner.invoke(app, ["mi", "tasks", "--max-dim", "2", "--json"])
    assert r.exit_code == 0
    tasks = json.loads(r.output)["tasks"]
    assert tasks and all(t["dim_x"] + t["dim_z"] <= 2 for t in tasks)
