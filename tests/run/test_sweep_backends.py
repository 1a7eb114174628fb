"""``privlab sweep``: the local process pool and Ray give the same results; failures and dead workers are recorded;
a sweep killed with SIGKILL finishes on the next identical command with every run present exactly once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from privlab.cli import app
from privlab.plugins import PLUGINS_ENV, load_plugins
from privlab.run import load_spec, load_specs, run_sweep
from privlab.store import Store

PLUGIN = str(Path(__file__).with_name("sleepy_plugin.py"))


@pytest.fixture
def sleepy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test experiment 'test-sleepy', registered here and in every worker (through $PRIVLAB_PLUGINS)."""
    monkeypatch.setenv(PLUGINS_ENV, PLUGIN)
    load_plugins()


def _rows(out: Path) -> list[tuple]:
    with sqlite3.connect(out / "runs.sqlite") as c:
        return c.execute("SELECT id, spec_hash, status, finished FROM runs ORDER BY id").fetchall()


def test_local_sweep_records_failures_and_dead_workers(tmp_path: Path, sleepy: None) -> None:
    spec = load_spec(
        experiment="test-sleepy",
        overrides={
            "sweep": {
                "zip": {"seed": [0, 1, 2, 3], "fail": [False, True, False, False], "die": [False, False, True, False]}
            }
        },
    )
    outcomes = run_sweep([spec], tmp_path, workers=2, quiet=True)
    assert [o.status for o in outcomes] == ["finished", "failed", "failed", "finished"]
    assert outcomes[1].error == "sleepy was asked to fail (fail: true)"
    assert "killed by SIGKILL" in (outcomes[2].error or "")
    assert outcomes[0].params == {"seed": 0, "fail": False, "die": False}
    assert 0 <= outcomes[0].metrics["value"] <= 1
    with Store(tmp_path, create=False) as store:
        assert store.integrity_ok()
        runs = {r.id: r for r in store.runs()}
        assert {r.status for r in runs.values()} == {"finished", "failed"}
        assert runs[outcomes[1].id].error == outcomes[1].error
        art = store.artifacts(outcomes[0].id)
        assert [a["path"] for a in art] == [f"{outcomes[0].id}/value.json"]  # relative to the sweep folder
        assert runs[outcomes[0].id].hardware["torch_threads"] == 1  # 2 workers on this machine share the cores
    log = (tmp_path / outcomes[1].id / "run.log").read_text()
    assert "Traceback" in log and "sleepy was asked to fail" in log  # per-run log with the traceback
    assert not list(tmp_path.glob("*/.run.sqlite*"))  # staging stores are gone
    assert (tmp_path / "report.html").is_file()
    # same command again: finished runs are skipped, failed ones re-run (and fail again)
    again = run_sweep([spec], tmp_path, workers=2, quiet=True, report=False)
    assert [o.status for o in again] == ["skipped", "failed", "failed", "skipped"]
    assert [o.id for o in again] == [o.id for o in outcomes]


def test_seeded_results_do_not_depend_on_workers(tmp_path: Path, sleepy: None) -> None:
    spec = load_spec(experiment="test-sleepy", overrides={"sweep": {"seed": [0, 1, 2]}})
    one = run_sweep([spec], tmp_path / "a", workers=1, quiet=True, report=False)
    two = run_sweep([spec], tmp_path / "b", workers=2, quiet=True, report=False)
    assert [o.metrics for o in one] == [o.metrics for o in two]
    assert len({o.metrics["value"] for o in one}) == 3


def test_duplicate_points_run_once(tmp_path: Path, sleepy: None) -> None:
    spec = load_spec(experiment="test-sleepy", overrides={"sweep": {"name": ["a", "b"]}})  # name is not hashed
    outcomes = run_sweep([spec], tmp_path, workers=2, quiet=True, report=False)
    assert [o.status for o in outcomes] == ["finished", "skipped"]
    assert outcomes[0].id == outcomes[1].id
    assert len(_rows(tmp_path)) == 1


def _sweep_cmd(spec: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "privlab", "sweep", str(spec), "--out", str(out), "--workers", "2", "--quiet"]


def test_kill_9_mid_sweep_then_resume_completes_exactly_once(tmp_path: Path) -> None:
    spec = tmp_path / "sweep.yaml"
    spec.write_text("experiment: test-sleepy\nseconds: 0.6\nsweep:\n  seed: [0, 1, 2, 3, 4, 5, 6, 7]\n")
    out = tmp_path / "out"
    env = {**os.environ, PLUGINS_ENV: PLUGIN, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_sweep_cmd(spec, out), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    finished_before: list[tuple] = []
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
        if (out / "runs.sqlite").exists():
            try:
                finished_before = [r for r in _rows(out) if r[2] == "finished"]
            except sqlite3.OperationalError:  # the driver is creating the schema
                continue
            if len(finished_before) >= 2:
                break
    assert proc.poll() is None, f"the sweep ended before it could be killed: {proc.communicate()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    rows = _rows(out)
    assert any(r[2] == "running" for r in rows), "no run was in flight when the driver was killed"
    # the workers of the killed driver die with it
    pids = [
        int(line.split()[-1])
        for log in out.glob("*/run.log")
        for line in log.read_text().splitlines()
        if line.startswith("sleepy pid")
    ]
    time.sleep(2.5)
    alive = [p for p in pids if Path(f"/proc/{p}").exists() and "zombie" not in _state(p)]
    assert not alive, f"orphaned workers still running: {alive}"
    # the same command completes the sweep
    done = subprocess.run(_sweep_cmd(spec, out), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = _rows(out)
    assert len(rows) == 8 and {r[2] for r in rows} == {"finished"}
    assert len({r[1] for r in rows}) == 8  # every spec hash exactly once
    assert {r for r in rows if r[0] in {f[0] for f in finished_before}} == set(finished_before)  # not re-run
    with sqlite3.connect(out / "runs.sqlite") as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        per_run = c.execute("SELECT run_id, COUNT(*) FROM metrics WHERE name='value' GROUP BY run_id").fetchall()
    assert sorted(n for _, n in per_run) == [1] * 8  # no metric logged twice by a killed attempt


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "gone"


def test_ray_and_local_backends_agree(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the Ray backend is optional: pip install 'privlab[ray]'")
    spec = load_spec(experiment="mi", preset="smoke", overrides={"n": 300, "sweep": {"seed": [0, 1]}})
    local = run_sweep([spec], tmp_path / "local", workers=2, quiet=True, report=False)
    ray_out = run_sweep([spec], tmp_path / "ray", backend="ray", workers=2, quiet=True, report=False)
    assert [o.status for o in ray_out] == ["finished", "finished"]

    def same(outcomes: list) -> list[dict]:  # timings (kind 'cost') differ between any two runs
        return [{k: v for k, v in o.metrics.items() if not k.endswith("_seconds")} for o in outcomes]

    assert same(ray_out) == same(local)
    assert len(same(local)[0]) >= 3
    with Store(tmp_path / "ray", create=False) as store:
        assert store.integrity_ok()
        assert all(r.hardware["torch_threads"] == 1 for r in store.runs())


def test_cli_sweep_json_and_bad_options(tmp_path: Path, sleepy: None) -> None:
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text(
        "specs:\n  - {experiment: test-sleepy, sweep: {seed: [0, 1]}}\n  - {experiment: test-sleepy, scale: 0.5}\n"
    )
    runner = CliRunner()
    res = runner.invoke(app, ["sweep", str(sweep_file), "--out", str(tmp_path / "o"), "--workers", "2", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [r["status"] for r in data["runs"]] == ["finished"] * 3
    assert data["runs"][2]["spec"]["scale"] == 0.5
    assert data["report"].endswith("report.html")
    for args, message in [
        (["--backend", "dask"], "unknown sweep backend 'dask'"),
        (["--workers", "0"], "--workers must be ≥ 1"),
    ]:
        res = runner.invoke(app, ["sweep", str(sweep_file), "--out", str(tmp_path / "o"), *args])
        assert res.exit_code == 2
        assert message in res.stderr and "Traceback" not in res.output


def test_sweep_files_run_in_process_too(tmp_path: Path, sleepy: None) -> None:
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text("specs:\n  - {experiment: test-sleepy}\n  - {experiment: test-sleepy, seed: 4}\n")
    res = CliRunner().invoke(app, ["run", str(sweep_file), "--out", str(tmp_path / "o"), "--json"])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)["runs"]) == 2
    assert len(load_specs(sweep_file)) == 2


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_killed_at_random_moments_then_resumed(tmp_path: Path, command: str) -> None:
    """SIGKILL at three seeded random moments (start-up, mid-run, mid-write); the store is valid after each, and
    the same command then completes every run exactly once."""
    import random

    spec = tmp_path / "sweep.yaml"
    spec.write_text("experiment: test-sleepy\nseconds: 0.4\nsweep:\n  seed: [0, 1, 2, 3, 4]\n")
    out = tmp_path / "out"
    env = {**os.environ, PLUGINS_ENV: PLUGIN, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "privlab", command, str(spec), "--out", str(out), "--quiet"]
    rng = random.Random(7)
    for _ in range(3):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(2.0, 8.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if (out / "runs.sqlite").exists():
            with sqlite3.connect(out / "runs.sqlite") as c:
                assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = _rows(out)
    assert len(rows) == 5 and {r[2] for r in rows} == {"finished"}
    with sqlite3.connect(out / "runs.sqlite") as c:
        counts = c.execute("SELECT COUNT(*) FROM metrics WHERE name = 'value' GROUP BY run_id").fetchall()
    assert sorted(n for (n,) in counts) == [1] * 5
