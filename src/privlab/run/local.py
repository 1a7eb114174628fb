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
from privlab.store import RunRecord, Store
from privlab.store.lock import output_lock

__all__ = ["RunOutcome", "SweepPoint", "error_message", "execute", "sweep_params"]


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


@dataclass(frozen=True)
class SweepPoint:
    """One sweep point as both runners see it: the point's spec, its hash, the values its sweep set, and its JSON
    dump (taken once: stored, reported and read for the sweep values)."""

    point: ExperimentSpec
    hash: str
    params: dict[str, Any]
    full: dict[str, Any]

    @classmethod
    def of(cls, spec: ExperimentSpec, point: ExperimentSpec) -> SweepPoint:
        """``point`` (one of ``expand(spec)``) with its hash and the values ``spec``'s sweep set in it."""
        full = point.model_dump(mode="json")
        return cls(point, spec_hash(point), sweep_params(spec, full), full)

    @property
    def dumped(self) -> dict[str, Any]:
        """The JSON dump without the (always empty) ``sweep`` key."""
        return {k: v for k, v in self.full.items() if k != "sweep"}

    def outcome(
        self,
        run_id: str,
        status: str,
        *,
        experiment: str | None = None,
        metrics: dict[str, float] | None = None,
        dir: str | None = None,
        error: str | None = None,
    ) -> RunOutcome:
        """This point's :class:`RunOutcome`."""
        return RunOutcome(
            run_id,
            experiment or self.point.experiment,
            status,
            metrics or {},
            dir,
            error,
            self.hash,
            self.params,
            self.dumped,
        )

    def skipped(self, done: RunRecord) -> RunOutcome:
        """Outcome of a point whose spec hash already finished as ``done``."""
        return self.outcome(done.id, "skipped", experiment=done.experiment, metrics=done.metrics, dir=done.dir)


def error_message(e: BaseException) -> str:
    """The message stored for a failed run: a PrivlabError's own text, else ``Type: message``."""
    if isinstance(e, PrivlabError):
        return str(e) or type(e).__name__
    return "".join(traceback.format_exception_only(e)).strip() or type(e).__name__


def _build_report(out: Path) -> None:
    from privlab.report import build_report

    build_report(out)


def build_report_or_warn(out: Path) -> None:
    """Rebuild ``out/report.html`` after an interruption or a sweep; a failure is a warning, never an exception
    that would mask the run's own outcome."""
    try:
        _build_report(out)
    except Exception as e:
        warnings.warn(f"could not build the report of {out}: {e}", stacklevel=2)


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
    try:
        with output_lock(out):
            return _execute_points(spec, points, out, store, dev, force, data_root, download, quiet, keep_going, report)
    finally:
        store.close()


def _execute_points(
    spec: ExperimentSpec,
    points: list[ExperimentSpec],
    out: Path,
    store: Store,
    dev: Any,
    force: bool,
    data_root: str | Path | None,
    download: bool,
    quiet: bool,
    keep_going: bool,
    report: bool,
) -> list[RunOutcome]:
    """:func:`execute` once the output folder's lock is held."""
    versions, hardware = environment()
    hardware["device"] = str(dev)
    outcomes: list[RunOutcome] = []
    progress = Progress(quiet=quiet)
    try:
        for point in points:
            p = SweepPoint.of(spec, point)
            done = None if force else store.finished_run(p.hash)
            if done is not None:
                outcomes.append(p.skipped(done))
                continue
            run_id = store.unfinished_run_id(p.hash) or store.new_run_id(point.experiment, p.hash)
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
                spec=p.full,
                spec_hash=p.hash,
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
                msg = error_message(e)
                store.finish_run(run_id, status="failed", error=msg)
                outcomes.append(p.outcome(run_id, "failed", dir=run_id, error=msg))
                if not keep_going or isinstance(e, KeyboardInterrupt):
                    raise
                continue
            store.finish_run(run_id)
            outcomes.append(p.outcome(run_id, "finished", metrics=store.final_metrics(run_id), dir=run_id))
    except BaseException:
        store.close()
        if report and outcomes:  # still show what finished and why one failed; never mask the original error
            build_report_or_warn(out)
        raise
    store.close()
    if report and outcomes:
        _build_report(out)
    return outcomes
