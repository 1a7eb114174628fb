"""Report rendering on a large results store.

- ``report_large_store``: :func:`privlab.report.render_report` on a store of 5 000 finished ``train`` runs (a
  learning-rate × seed sweep: 8 final metrics and 10 per-epoch losses each, 90 000 metric rows, one artifact per
  run), vs the bare minimum a page of the same runs needs: every run row, final metric and artifact read with plain
  ``sqlite3`` and written as one HTML table. Goal: the page renders in ≤ 10 s, so that the report of any store a
  sweep makes on this machine opens in seconds.
"""

from __future__ import annotations

import html
import json
import sqlite3
import tempfile
from pathlib import Path

from privlab.bench import Benchmark
from privlab.report import render_report
from privlab.store import MetricRecord, Store

RUNS = 5_000
_STATE: dict[str, object] = {}


def _setup() -> None:
    if "store" in _STATE:
        return
    folder = Path(tempfile.mkdtemp(prefix="privlab-bench-report-"))
    store = Store(folder)
    for i in range(RUNS):
        rid = f"train-{i:05d}"
        lr, seed = 10.0 ** -(1 + i % 50 / 10), i // 50
        spec = {"experiment": "train", "seed": seed, "dataset": {"name": "digits"}, "model": "lenet5",
                "train": {"epochs": 10, "lr": lr}}  # fmt: skip
        store.start_run(rid, experiment="train", spec=spec, spec_hash=f"{i:064x}", seed=seed,
                        versions={"torch": "2.14.1"}, hardware={"cpu_count": 2}, dir=rid)  # fmt: skip
        recs = [MetricRecord("train_loss", 2.3 / (e + 1), e, None, "info", False) for e in range(10)]
        recs += [
            MetricRecord("test_accuracy", 0.5 + (i % 97) / 200, None, "fraction", "utility", True),
            MetricRecord("train_accuracy", 0.6 + (i % 89) / 250, None, "fraction", "utility", True),
            MetricRecord("test_loss", 1.0 / (1 + i % 13), None, None, "info", False),
            MetricRecord("train_seconds", 3.0 + i % 7, None, "s", "cost", False),
            MetricRecord("params", 61_706, None, "count", "info", None),
            MetricRecord("epochs_run", 10, None, "epochs", "info", None),
            MetricRecord("best_epoch", i % 10, None, "epoch", "info", None),
            MetricRecord("final_lr", lr, None, None, "info", None),
        ]
        store.log_metrics(rid, recs)
        store.add_artifact(rid, "model", folder / rid / "model.safetensors", "0" * 64, {})
        store.finish_run(rid)
    _STATE["store"] = store
    _STATE["path"] = store.path


def privlab_report() -> str:
    """The whole report page of the 5 000-run store."""
    return render_report(_STATE["store"])  # type: ignore[arg-type]


def bare_table() -> str:
    """Every run, final metric and artifact read with sqlite3 and written as one HTML table."""
    conn = sqlite3.connect(str(_STATE["path"]))
    try:
        finals: dict[str, dict[str, float]] = {}
        for rid, name, value in conn.execute("SELECT run_id, name, value FROM metrics WHERE step IS NULL"):
            finals.setdefault(rid, {})[name] = value
        arts = dict(conn.execute("SELECT run_id, path FROM artifacts"))
        rows = [
            f"<tr><td>{html.escape(rid)}</td><td>{html.escape(spec)}</td>"
            + "".join(f"<td>{v:.4g}</td>" for v in finals.get(rid, {}).values())
            + f"<td>{html.escape(arts.get(rid, ''))}</td></tr>"
            for rid, spec in conn.execute("SELECT id, spec_json FROM runs ORDER BY started, id")
        ]
        return "<table>" + "".join(rows) + "</table>" + json.dumps(len(rows))
    finally:
        conn.close()


BENCHMARK = Benchmark(
    name="report_large_store",
    description=f"render_report on a store of {RUNS} train runs (90 000 metric rows) vs one bare sqlite3 HTML table",
    candidate=privlab_report,
    baseline=bare_table,
    setup=_setup,
    repeats=3,
    warmup=1,
    goal=f"the report of a {RUNS}-run store renders in ≤ 10 s",
    max_candidate_s=10.0,
)
