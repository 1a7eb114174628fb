import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from privlab import __version__
from privlab.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_version_and_help():
    r = invoke("--version")
    assert r.exit_code == 0 and r.output.strip() == f"privlab {__version__}"
    r = invoke("--help")
    assert r.exit_code == 0
    for cmd in ("train", "run", "runs", "datasets", "models", "experiments", "report", "bench", "mi"):
        assert cmd in r.output


@pytest.mark.parametrize(
    "cmd",
    [
        ["train"],
        ["run"],
        ["datasets"],
        ["models"],
        ["experiments"],
        ["report"],
        ["bench"],
        ["runs", "list"],
        ["runs", "show"],
        ["runs", "export"],
    ],
)
def test_every_command_has_help_with_examples(cmd):
    r = invoke(*cmd, "--help")
    assert r.exit_code == 0
    assert "Examples" in r.output and "--json" in r.output


def test_datasets_and_models_json():
    data = json.loads(invoke("datasets", "--json").output)
    digits = next(d for d in data["datasets"] if d["name"] == "digits")
    assert digits == digits | {"shape": [1, 8, 8], "num_classes": 10, "needs_root": False}
    assert next(d for d in data["datasets"] if d["name"] == "mnist")["needs_root"] is True
    cifar = next(d for d in data["datasets"] if d["name"] == "cifar10")
    assert cifar["class_names"][:3] == ["airplane", "automobile", "bird"] and len(cifar["class_names"]) == 10
    assert next(d for d in data["datasets"] if d["name"] == "image_folder")["class_names"] is None  # from the files
    assert "airplane, automobile, bird" in invoke("datasets").output
    models = {m["name"]: m for m in json.loads(invoke("models", "--json").output)["models"]}
    assert models["lenet5"]["input_hw"] == [32, 32] and "c5" in models["lenet5"]["layers"]
    assert models["lenet5"]["parameters_10_classes"] == 61706


def test_train_json_then_runs_commands(tmp_path):
    out = tmp_path / "t1"
    r = invoke(
        "train",
        "--dataset",
        "digits",
        "--model",
        "lenet5",
        "--epochs",
        "3",
        "--limit",
        "300",
        "--batch-size",
        "16",
        "--lr",
        "0.003",
        "--seed",
        "0",
        "--out",
        out,
        "--json",
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["out"] == str(out) and 0.5 < data["test_accuracy"] <= 1.0
    run_id = data["run_id"]
    assert (out / "runs.sqlite").is_file() and (out / "report.html").is_file()
    assert (out / run_id / "model.safetensors").is_file()

    listed = json.loads(invoke("runs", "list", "--out", out, "--json").output)["runs"]
    assert [r["id"] for r in listed] == [run_id]
    shown = json.loads(invoke("runs", "show", run_id, "--out", out, "--json").output)
    assert shown["metrics"]["test_accuracy"] == data["test_accuracy"]
    assert len([h for h in shown["history"] if h["name"] == "train_loss"]) == 3
    csv_text = invoke("runs", "export", "--out", out, "--csv").output
    header, row = csv_text.splitlines()[:2]
    assert "metric.test_accuracy" in header and "spec.train.epochs" in header and run_id in row
    invoke("runs", "export", "--out", out, "--json", "--to", tmp_path / "x.json")
    assert json.loads((tmp_path / "x.json").read_text())["runs"][0]["id"] == run_id
    assert "report:" in invoke("report", out).output

    text = invoke("runs", "list", "--out", out).output
    assert run_id in text and "finished" in text


def test_run_spec_json_contract(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("experiment: train\npreset: smoke\ntrain: {epochs: 1}\ndataset: {train_limit: 100}\n")
    r = invoke("run", spec, "--out", tmp_path / "o", "--json")
    assert r.exit_code == 0, r.output
    (run,) = json.loads(r.output)["runs"]
    assert set(run) >= {"id", "experiment", "status", "metrics"}
    assert run["experiment"] == "train" and run["status"] == "finished"
    assert 0 <= run["metrics"]["test_accuracy"] <= 1
    again = json.loads(invoke("run", spec, "--out", tmp_path / "o", "--json").output)["runs"][0]
    assert again["status"] == "skipped" and again["id"] == run["id"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("experiment: train\ntrain: {epoch: 3}\n", "unknown key 'train.epoch'. Did you mean 'epochs'?"),
        ("experiment: train\ntrain: {epochs: -2}\n", "train.epochs: Input should be greater than or equal to 1"),
        ("experiment: train\nmodel: lenet\n", "unknown model 'lenet'. Did you mean 'lenet5'?"),
        ("experiment: train\ndataset: {name: mnist}\n", "needs a data root: pass --data-root"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, content, message):
    spec = tmp_path / "bad.yaml"
    spec.write_text(content)
    r = runner.invoke(app, ["run", str(spec), "--out", str(tmp_path / "o"), "--quiet"])
    assert r.exit_code == 2
    assert message in r.stderr
    assert "Traceback" not in r.output + r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_missing_spec_file_and_store(tmp_path):
    r = runner.invoke(app, ["run", str(tmp_path / "none.yaml")])
    assert r.exit_code == 2 and "spec file not found" in r.stderr
    r = runner.invoke(app, ["runs", "list", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "no results store" in r.stderr
    r = runner.invoke(app, ["train", "--epochs", "-1", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "train.epochs" in r.stderr


def test_real_subprocess_run(tmp_path):
    """The installed command as a user runs it: a real process, exit codes and JSON on stdout."""
    cmd = [
        sys.executable,
        "-m",
        "privlab",
        "run",
        "train",
        "--preset",
        "smoke",
        "--set",
        "train.epochs=1",
        "--set",
        "dataset.train_limit=100",
        "--out",
        str(tmp_path),
        "--json",
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    (run,) = json.loads(p.stdout)["runs"]
    assert run["status"] == "finished"
    bad = subprocess.run(
        [sys.executable, "-m", "privlab", "run", "train", "--set", "train.epochs=0", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "train.epochs" in bad.stderr


def test_run_summary_line_shows_privacy_and_utility_metrics_by_their_stored_kind(tmp_path, capsys):
    """The one-line summary of a run picks metrics by the kind the pipeline logged, not by a list of names."""
    from privlab.cli.run import finish_runs, headline_metrics
    from privlab.run.local import RunOutcome
    from privlab.store import MetricRecord, Store

    records = [
        MetricRecord("bank_seconds", 3.0, None, "s", "cost", False),
        MetricRecord("leak_score", 0.25, None, "ratio", "privacy", False),  # a name no list ever held
        MetricRecord("test_accuracy", 0.875, None, "fraction", "utility", True),
        MetricRecord("per_class/0", 0.5, None, "fraction", "utility", True),
        MetricRecord("bank_size", 3.0, None, "samples", "info", None),
        MetricRecord("mi_reduction_ci_low", 10.0, None, "%", "info", True),
    ]
    with Store(tmp_path) as store:
        run_id = store.new_run_id("custom", "h")
        store.start_run(run_id, experiment="custom", spec={}, spec_hash="h", seed=0, versions={}, hardware={})
        store.log_metrics(run_id, records)
        info = store.metric_info()
    metrics = {r.name: r.value for r in records}
    assert headline_metrics(metrics, info) == ["leak_score", "test_accuracy"]
    assert headline_metrics(metrics, info, limit=1) == ["leak_score"]
    assert headline_metrics({"a": 1.0, "b": 2.0}, {}) == ["a", "b"]  # ≤ 4 metrics: all of them
    finish_runs([RunOutcome(id=run_id, experiment="custom", status="finished", metrics=metrics)], tmp_path, False)
    line = capsys.readouterr().out.splitlines()[0]
    assert line == f"{run_id}: finished — leak_score 0.25, test_accuracy 87.50%"
