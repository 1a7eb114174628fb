"""The results store under concurrent writers and under SIGKILL.

Writers are separate processes started with ``multiprocessing`` (spawn: fresh interpreters, as a process-pool sweep
would start them); each runs a small script with ``runpy``. After three processes write runs, metrics and artifacts
into the same ``runs.sqlite`` at once, every row is there exactly once and ``PRAGMA integrity_check`` says ok. A
process killed with SIGKILL in the middle of writing many metrics leaves a valid, readable store in which every
transaction is either complete or absent, the killed run is found again for resume, and writing goes on.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from privlab.store import Store

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and fork-free spawn semantics of POSIX")

WRITER = """
import os, time
from privlab.store import MetricRecord, Store

if GO is not None:  # all writers start together (after their slow imports)
    open(f"{GO}.{WORKER}", "w").close()
    while not os.path.exists(GO):
        time.sleep(0.01)
with Store(OUT) as s:
    for r in range(RUNS):
        rid = f"w{WORKER}-r{r}"
        s.start_run(rid, experiment="x", spec={"worker": WORKER, "run": r}, spec_hash=f"h{WORKER}-{r}", seed=r,
                    versions={}, hardware={})
        for b in range(BATCHES):
            s.log_metrics(rid, [MetricRecord(f"m{i}", float(b * BATCH + i), b) for i in range(BATCH)])
        s.add_artifact(rid, "file", OUT + f"/{rid}.bin", "0" * 64)
        s.finish_run(rid)
        if READY is not None and r == 0:
            open(READY, "w").close()
"""


def spawn_writer(
    out: Path, worker: int, runs: int, batches: int, batch: int, ready: Path | None = None, go: Path | None = None
) -> mp.Process:
    """A writer process (spawn start method) running :data:`WRITER` with these settings."""
    import runpy

    script = out.parent / f"writer{worker}.py"
    script.write_text(WRITER)
    ctx = mp.get_context("spawn")
    params = {"OUT": str(out), "WORKER": worker, "RUNS": runs, "BATCHES": batches, "BATCH": batch,
              "READY": str(ready) if ready else None,
              "GO": str(go) if go else None}  # fmt: skip
    p = ctx.Process(target=runpy.run_path, args=(str(script),), kwargs={"init_globals": params, "run_name": "w"})
    p.start()
    return p


def test_three_processes_writing_one_store_lose_nothing(tmp_path):
    out = tmp_path / "runs"
    Store(out).close()  # the file exists before the writers race to open it
    runs, batches, batch = 4, 20, 25
    go = tmp_path / "go"
    procs = [spawn_writer(out, w, runs, batches, batch, go=go) for w in range(3)]
    deadline = time.monotonic() + 120
    while not all(Path(f"{go}.{w}").exists() for w in range(3)) and time.monotonic() < deadline:
        time.sleep(0.02)
    go.touch()  # release all three at once
    for p in procs:
        p.join(timeout=240)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    with Store(out, create=False) as s:
        assert s.integrity_ok()
        recs = s.runs()
        assert sorted(r.id for r in recs) == sorted(f"w{w}-r{r}" for w in range(3) for r in range(runs))
        assert all(r.status == "finished" for r in recs)
        for r in recs:
            rows = s.metrics(r.id)
            assert len(rows) == batches * batch  # every value exactly once
            assert sorted((m.step, m.name) for m in rows) == sorted(
                (b, f"m{i}") for b in range(batches) for i in range(batch)
            )
            assert sorted(m.value for m in rows) == [float(v) for v in range(batches * batch)]
            assert len(s.artifacts(r.id)) == 1
    with sqlite3.connect(out / "runs.sqlite") as c:  # the same, asked directly
        assert c.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 3 * runs * batches * batch
        assert c.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM runs").fetchone() == (3 * runs, 3 * runs)
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    c.close()


@pytest.mark.parametrize("seed", [0, 1])
def test_a_writer_killed_mid_write_leaves_a_valid_store(tmp_path, seed):
    out = tmp_path / "runs"
    Store(out).close()
    ready = tmp_path / "ready"
    batch = 40
    p = spawn_writer(out, 0, runs=1000, batches=50, batch=batch, ready=ready)  # far more than it can finish
    deadline = time.monotonic() + 120
    while not ready.exists() and time.monotonic() < deadline and p.is_alive():
        time.sleep(0.05)
    assert ready.exists(), "the writer never got going"
    time.sleep(random.Random(seed).uniform(0.05, 0.6))  # a random moment in the middle of writing
    os.kill(p.pid, signal.SIGKILL)
    p.join(timeout=30)
    assert p.exitcode == -signal.SIGKILL
    with Store(out, create=False) as s:
        assert s.integrity_ok()
        recs = s.runs()
        assert recs and recs[0].status == "finished"
        for r in recs:
            n = len(s.metrics(r.id))
            assert n % batch == 0  # each log_metrics call is one transaction: all of its rows or none
            if r.status == "finished":
                assert n == 50 * batch and len(s.artifacts(r.id)) == 1
        last = recs[-1]
        if last.status == "running":  # killed inside a run: found again, so a resumed sweep re-runs it
            assert s.unfinished_run_id(last.spec_hash) == last.id
        # the store takes new writes after the crash (the WAL is recovered)
        s.start_run("after", experiment="x", spec={}, spec_hash="after", seed=0, versions={}, hardware={})
        s.finish_run("after")
        assert s.get_run("after").status == "finished"
        assert s.integrity_ok()
