"""The audit-dp experiment in several-runs mode end to end on tiny digits, and the spec's new keys."""

import hashlib
import json

from typer.testing import CliRunner

from privlab.cli import app
from privlab.config import spec_hash
from privlab.measure.mia import epsilon_lower_bound_multi
from privlab.run import execute, load_spec

runner = CliRunner()


def _audit_json(out, run):
    return json.loads((out / run["dir"] / "audit.json").read_text("utf-8"))


def test_smoke_several_runs_bound_below_accountant(tmp_path):
    r = runner.invoke(app, ["audit", "dp", "--preset", "smoke", "--mode", "several-runs", "--runs", "6",
                            "--out", str(tmp_path), "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    run = json.loads(r.stdout)["runs"][0]
    m = run["metrics"]
    assert 0 <= m["epsilon_lower_bound"] <= m["epsilon"] <= 4.05 and m["epsilon"] > 3.5
    assert 0 <= m["false_positive_rate"] <= 1 and 0 <= m["false_negative_rate"] <= 1
    assert "guess_accuracy" not in m
    a = _audit_json(tmp_path, run)
    # 6 runs: 0–2 choose the threshold, 3–5 (with, without, with the canary) are counted
    assert a["mode"] == "several-runs" and a["included"] == [False, True] * 3
    assert a["selection"] == [True] * 3 + [False] * 3
    assert (a["counts"]["positives"], a["counts"]["negatives"]) == (2, 1) and len(a["scores"]) == 6
    assert a["epsilon"] == m["epsilon_lower_bound"] and a["delta"] == 1e-5 and a["confidence"] == 0.95


def test_plain_control_is_detected(tmp_path):
    """Without DP a noise canary is memorised: 40 plain trainings give a positive bound (20 counted runs)."""
    spec = load_spec(experiment="audit-dp", overrides={
        "dataset": {"name": "digits", "train_limit": 100, "test_limit": 50}, "train": {"epochs": 8, "lr": 0.003,
        "batch_size": 32}, "target": {"kind": "plain"}, "canary": "ood", "mode": "several-runs", "runs": 40,
        "canaries": 40, "guesses": 10})  # fmt: skip
    o = execute(spec, tmp_path, quiet=True)[0]
    assert o.status == "finished", o.error
    m = o.metrics
    assert 0 < m["epsilon_lower_bound"] <= epsilon_lower_bound_multi(0, 10, 0, 10).epsilon
    assert "epsilon" not in m  # no accountant without DP-SGD


def test_new_keys_at_their_defaults_keep_the_one_run_hash():
    spec = load_spec(experiment="audit-dp", preset="smoke")
    assert spec.mode == "one-run" and spec.runs == 32
    old = spec.model_dump(mode="json", exclude={"name", "sweep", "reference", "mode", "runs"})
    canon = json.dumps(old, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert spec_hash(spec) == hashlib.sha256(canon.encode()).hexdigest()
    several = spec.model_copy(update={"mode": "several-runs"})
    assert spec_hash(several) != spec_hash(spec)
    assert spec_hash(several.model_copy(update={"runs": 64})) != spec_hash(several)
    assert spec_hash(spec.model_copy(update={"runs": 64})) != spec_hash(spec)
