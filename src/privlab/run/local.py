"""Run specs into an output folder, one after the other, skipping finished spec hashes."""

from __future__ import annotations

import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from privlab.config import ExperimentSpec, spec_hash
from privlab.context import Progress, RunContext, environment, resolve_device, seed_everything
from privlab.errors import PrivlabError
from privlab.pipelines import PIPELINES
from privlab.run.sweep import expand
from privlab.store import Store

__all__ = ["RunOutcome", "execute", "sweep_params"]


@dataclass
class RunOutcome:
    """What became of one spec: ``status`` is finished, failed or skipped (already finished earlier)."""

    id: str
    experiment: str
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    dir: str | None = None
    error: str | None = None
    spec_hash: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``--json`` output of ``privlab run``)."""
        return {
            "id": self.id,
            "experiment": self.experiment,
            "status": self.status,
            "metrics": self.metrics,
            "dir": self.dir,
            "error": self.error,
            "spec_hash": self.spec_hash,
            "params": self.params,
            "spec": self.spec,
        }


def _dotted(data: Any, key: str) -> Any:
    for part in key.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def sweep_params(spec: ExperimentSpec, point: dict[str, Any]) -> dict[str, Any]:
    """The values that the sweep of ``spec`` set in ``point`` (a sweep point's JSON dump; dotted key → value);
    empty without a sweep."""
    from privlab.run.sweep import sweep_keys

    return {key: _dotted(point, key) for key in sweep_keys(spec)}


def _build_report(out: Path) -> None:
    from privlab.report import build_report

    build_report(out)


def execute(
    spec: ExperimentSpec,
    out: str | Path,
    *,
    force: bool = False,
    device: str = "auto",
    data_root: str | Path | None = None,
    download: bool = False,
    quiet: bool = False,
    keep_going: bool | None = None,
    report: bool = True,
) -> list[RunOutcome]:
    """Run ``spec`` (every point of its sweep) into ``out``; return one outcome per point.

    Args:
        spec: a validated experiment spec.
        out: output folder (created); holds ``runs.sqlite``, one folder per run and ``report.html``.
        force: run again even if a run with the same spec hash already finished.
        device: ``auto``, ``cpu``, ``cuda`` …
        data_root: folder of on-disk data sets.
        download: allow data-set downloads into ``data_root``.
        quiet: no progress bars.
        keep_going: record a failing point and continue (default: True for sweeps, False for a single run, where
            the error is re-raised after being recorded).
        report: rebuild ``out/report.html`` at the end.
    """
    dev = resolve_device(device)
    points = expand(spec)
    keep_going = len(points) > 1 if keep_going is None else keep_going
    out = Path(out)
    store = Store(out)
    versions, hardware = environment()
    hardware["device"] = str(dev)
    outcomes: list[RunOutcome] = []
    progress = Progress(quiet=quiet)
    try:
        for point in points:
            h = spec_hash(point)
            full = point.model_dump(mode="json")  # dumped once: stored, reported and read for the sweep values
            params = sweep_params(spec, full)
            dumped = {k: v for k, v in full.items() if k != "sweep"}
            done = None if force else store.finished_run(h)
            if done is not None:
                outcomes.append(
                    RunOutcome(done.id, done.experiment, "skipped", done.metrics, done.dir, None, h, params, dumped)
                )
                continue
            run_id = store.unfinished_run_id(h) or store.new_run_id(point.experiment, h)
            run_dir = out / run_id
            ctx = RunContext(
                run_id=run_id,
                out=out,
                run_dir=run_dir,
                store=store,
                device=dev,
                seed=point.seed,
                data_root=Path(data_root) if data_root is not None else None,
                download=download,
                progress=progress,
            )
            store.start_run(
                run_id,
                experiment=point.experiment,
                spec=full,
                spec_hash=h,
                seed=point.seed,
                versions=versions,
                hardware=hardware,
                name=point.name,
                dir=run_id,
            )
            try:
                run_dir.mkdir(parents=True, exist_ok=True)
                seed_everything(point.seed)  # as a sweep worker does: same results from `run` and `sweep`
                PIPELINES.get(point.experiment)(point, ctx)
            except (Exception, KeyboardInterrupt) as e:  # PrivlabError included
                msg = str(e) if isinstance(e, PrivlabError) else "".join(traceback.format_exception_only(e)).strip()
                store.finish_run(run_id, status="failed", error=msg or type(e).__name__)
                outcomes.append(RunOutcome(run_id, point.experiment, "failed", {}, run_id, msg, h, params, dumped))
                if not keep_going or isinstance(e, KeyboardInterrupt):
                    raise
                continue
            store.finish_run(run_id)
            outcomes.append(
                RunOutcome(
                    run_id, point.experiment, "finished", store.final_metrics(run_id), run_id, None, h, params, dumped
                )
            )
    except BaseException:
        store.close()
        if report and outcomes:  # still show what finished and why one failed; never mask the original error
            try:
                _build_report(out)
            except Exception as e:
                warnings.warn(f"could not build the report after a failed run: {e}", stacklevel=2)
        raise
    store.close()
    if report and outcomes:
        _build_report(out)
    return outcomes
