"""One writer per output folder (``<out>/.privlab.lock``), with real concurrent processes.

Two ``privlab sweep``/``privlab run`` into one ``--out`` at once used to store a run's metrics twice and mark the
other's finished runs failed. Now the second is refused (exit 2, one line naming the holder), a lock left by a
killed process is no obstacle (flock dies with its process), and a queued sweep run is marked ``running`` only when
its worker starts.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from privlab.errors import ConfigError
from privlab.plugins import PLUGINS_ENV
from privlab.store.lock import LOCK_FILENAME, output_lock

PLUGIN = str(Path(__file__).parents[1] / "run" / "sleepy_plugin.py")
ENV = {**os.environ, PLUGINS_ENV: PLUGIN, "OMP_NUM_THREADS": "1"}


def _privlab(*args: object) -> list[str]:
    return [sys.executable, "-m", "privlab", *map(str, args)]


def _rows(out: Path) -> list[tuple]:
    with sqlite3.connect(out / "runs.sqlite") as c:
        return c.execute("SELECT id, status FROM runs ORDER BY id").fetchall()


def _wait_for_lock(proc: subprocess.Popen, out: Path, timeout: float = 120) -> str:
    """The lock file's text once ``proc`` holds it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        text = (out / LOCK_FILENAME).read_text() if (out / LOCK_FILENAME).exists() else ""
        if text.startswith(f"pid {proc.pid}:"):
            return text
        time.sleep(0.05)
    raise AssertionError("the first writer never took the lock")


def test_in_process_lock_refuses_a_second_holder_and_is_released(tmp_path: Path) -> None:
    with output_lock(tmp_path, "privlab sweep a.yaml"):
        assert (tmp_path / LOCK_FILENAME).read_text() == f"pid {os.getpid()}: privlab sweep a.yaml\n"
        refused = rf"another privlab process \(pid {os.getpid()}: privlab sweep a.yaml\)"
        with pytest.raises(ConfigError, match=refused), output_lock(tmp_path):
            pass
    with output_lock(tmp_path):  # released
        pass


def test_a_second_writer_is_refused_while_the_first_finishes_its_runs_once(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("experiment: test-sleepy\nseconds: 5\nsweep:\n  seed: [0, 1]\n")
    out = tmp_path / "out"
    first = subprocess.Popen(_privlab("sweep", spec, "--out", out, "--workers", "1", "--quiet"), env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    holder = _wait_for_lock(first, out)
    assert "sweep" in holder
    seconds = [subprocess.Popen(_privlab(*cmd, "--out", out, "--quiet"), env=ENV, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
               for cmd in (("run", spec), ("sweep", spec, "--workers", "1"))]  # fmt: skip
    for second in seconds:
        _, stderr = second.communicate(timeout=120)
        assert second.returncode == 2, stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, lines
        assert f"is being written by another privlab process (pid {first.pid}: " in lines[0]
    assert first.poll() is None, "the first writer finished before the second ones tried: the test proved nothing"
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert [s for _, s in _rows(out)] == ["finished", "finished"]  # nothing marked failed by the second writer
    with sqlite3.connect(out / "runs.sqlite") as c:
        per_run = c.execute("SELECT run_id, COUNT(*) FROM metrics WHERE name='value' GROUP BY run_id").fetchall()
    assert sorted(n for _, n in per_run) == [1, 1]  # each metric stored once
    with output_lock(out):  # released at exit
        pass


def test_kill_9_leaves_one_running_run_and_no_obstacle(tmp_path: Path) -> None:
    """A one-worker sweep killed mid-run shows exactly one run ``running`` (queued runs are not marked), and the
    lock file it leaves does not stop the next writer."""
    spec = tmp_path / "s.yaml"
    spec.write_text("experiment: test-sleepy\nseconds: 30\nsweep:\n  seed: [0, 1, 2]\n")
    out = tmp_path / "out"
    proc = subprocess.Popen(_privlab("sweep", spec, "--out", out, "--workers", "1", "--quiet"), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    _wait_for_lock(proc, out)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any((out / d).is_dir() for d in os.listdir(out) if "sleepy" in d):
        time.sleep(0.05)
    time.sleep(0.5)  # the worker is sleeping in its run
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    statuses = [s for _, s in _rows(out)]
    assert statuses == ["running"], statuses
    assert (out / LOCK_FILENAME).read_text().startswith(f"pid {proc.pid}:")  # stale text, no lock
    spec.write_text("experiment: test-sleepy\nseconds: 0\nsweep:\n  seed: [0, 1, 2]\n")
    done = subprocess.run(_privlab("run", spec, "--out", out, "--quiet"), env=ENV, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
