"""``privlab sweep``: run every point of one or more specs in parallel, resumable, into one results store.

The driver (this process) is the only writer of ``<out>/runs.sqlite``. For each sweep point it

1. skips the point when a run with the same spec hash already finished there (and runs a hash only once per sweep),
2. marks it ``running`` under a stable id (``<experiment>-<hash[:8]>``, re-used after a crash),
3. hands a JSON task to a backend — ``local``: one fresh worker process per run, at most ``workers`` at a time
   (fork server, so a worker costs milliseconds to start); ``ray``: one Ray task per run with its CPU/GPU
   request, on a Ray instance the command starts or on an existing cluster (``address``),
4. imports the finished run the worker sends back in ONE transaction (:meth:`Store.import_run`).

A worker that fails records its error and the sweep goes on; a worker that dies (killed, out of memory) is recorded
as failed with its exit status. If the driver itself is killed (even ``kill -9``), its workers die with it, the
store stays valid (SQLite WAL transactions) and the same command finishes the sweep: finished runs are skipped,
the others re-run in emptied folders.

Example:
    >>> import tempfile
    >>> from privlab.run import load_spec
    >>> spec = load_spec(experiment="mi", preset="smoke", overrides={"sweep": {"seed": [0, 1]}})
    >>> outcomes = run_sweep([spec], tempfile.mkdtemp(), workers=1, quiet=True, report=False)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import sys
import types
from collections import deque
from collections.abc import Callable, Iterator
from multiprocessing.connection import wait as mp_wait
from pathlib import Path
from typing import Any

from privlab.config import ExperimentSpec
from privlab.context import environment
from privlab.errors import ConfigError, PrivlabError
from privlab.run.local import RunOutcome, SweepPoint, build_report_or_warn
from privlab.run.sweep import expand_all
from privlab.run.worker import make_task, remove_staging
from privlab.store import Store
from privlab.store.lock import output_lock

__all__ = ["BACKENDS", "LocalBackend", "RayBackend", "run_sweep"]

BACKENDS = ("local", "ray")

# (task index, payload or None, error text or None)
Result = tuple[int, dict[str, Any] | None, str | None]


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "did not exit"
    if code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (killed: out of memory, or by a user)" if -code == 9 else ""
        return f"killed by {name}{hint}"
    return f"exited with code {code}"


@contextlib.contextmanager
def _main_hidden() -> Iterator[None]:
    """Start a worker without re-running the caller's ``__main__`` in it.

    multiprocessing's spawn/forkserver children import the parent's main script (to unpickle functions defined
    there); a user script calling :func:`run_sweep` without an ``if __name__ == "__main__":`` guard would then start
    a sweep inside every worker. The worker's entry point lives in privlab, so the child does not need ``__main__``:
    while a worker starts, ``__main__`` is shown as a bare module (as in an interactive session).
    """
    real = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = real


class LocalBackend:
    """A pool of worker processes on this machine: one fresh process per run, ``workers`` at a time.

    Args:
        workers: runs at the same time (default: CPU cores // threads).
        threads: torch threads per run (default: CPU cores // workers, at least 1). Oversubscribed torch is many
            times slower, so the product stays at the core count.
    """

    name = "local"

    def __init__(self, workers: int | None = None, threads: int | None = None) -> None:
        cores = os.cpu_count() or 1
        if workers is not None and workers < 1:
            raise ConfigError(f"--workers must be ≥ 1, got {workers}")
        if threads is not None and threads < 1:
            raise ConfigError(f"--threads must be ≥ 1, got {threads}")
        self.workers = workers or max(1, cores // (threads or 1))
        self.threads = threads or max(1, cores // self.workers)

    def _context(self) -> Any:
        if "forkserver" in mp.get_all_start_methods():
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(["privlab.run.worker"])
            return ctx
        return mp.get_context("spawn")

    def run(self, tasks: list[dict[str, Any]], on_start: Callable[[int], None] | None = None) -> Iterator[Result]:
        """Run the tasks; yield each result as its worker ends (any order). ``on_start(i)`` is called just before
        task ``i``'s worker starts (the driver marks the run ``running`` then, not while it waits in the queue)."""
        from privlab.run.worker import child_main

        ctx = self._context()
        pending = deque(enumerate(tasks))
        running: dict[Any, tuple[int, Any]] = {}  # connection → (index, process)
        try:
            while pending or running:
                while pending and len(running) < self.workers:
                    i, task = pending.popleft()
                    if on_start is not None:
                        on_start(i)
                    task = {**task, "threads": task.get("threads") or self.threads}
                    recv, send = ctx.Pipe(duplex=False)
                    proc = ctx.Process(target=child_main, args=(task, send), name=f"privlab-{task['run_id']}")
                    with _main_hidden():
                        proc.start()
                    send.close()  # the child holds the only write end: EOF on it means the child is gone
                    running[recv] = (i, proc)
                for conn in mp_wait(list(running), timeout=1.0):
                    i, proc = running.pop(conn)
                    try:
                        status, value = conn.recv()
                    except (EOFError, OSError):
                        proc.join(timeout=10)
                        status, value = "died", f"worker process {_describe_exit(proc.exitcode)}"
                    conn.close()
                    proc.join(timeout=30)
                    if status == "ok":
                        yield i, value, None
                    else:
                        yield i, None, value if status == "died" else f"worker error: {value}"
        finally:  # interrupted (Ctrl-C) or the consumer stopped: stop the workers, their runs stay 'running'
            for conn, (_, proc) in running.items():
                if proc.is_alive():
                    proc.kill()
                proc.join(timeout=10)
                conn.close()


class RayBackend:
    """One Ray task per run (``pip install 'privlab[ray]'``).

    Args:
        address: an existing cluster (``ray://host:10001``, ``host:6379`` or ``auto``); None starts a local Ray
            instance with ``workers`` CPUs for the duration of the sweep.
        workers: CPUs of the local instance (default: all cores).
        cpus_per_run, gpus_per_run: the resource request of each run; torch gets ``cpus_per_run`` threads.

    Workers write artifacts under the sweep's output folder, which must therefore be a path every node can write
    (a shared file system) on a multi-machine cluster; the run's metrics travel back to the driver in the result.
    """

    name = "ray"

    def __init__(
        self, address: str | None = None, workers: int | None = None, cpus_per_run: float = 1, gpus_per_run: float = 0
    ) -> None:
        if workers is not None and workers < 1:
            raise ConfigError(f"--workers must be ≥ 1, got {workers}")
        if cpus_per_run <= 0 or gpus_per_run < 0:
            raise ConfigError(f"--cpus-per-run must be > 0 and --gpus-per-run ≥ 0, got {cpus_per_run}, {gpus_per_run}")
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ConfigError(
                "the Ray backend needs Ray: pip install 'privlab[ray]' (or use --backend local)"
            ) from None
        self.address = address
        self.workers = workers
        self.cpus_per_run = cpus_per_run
        self.gpus_per_run = gpus_per_run

    def run(self, tasks: list[dict[str, Any]], on_start: Callable[[int], None] | None = None) -> Iterator[Result]:
        """Submit every task; yield each result as it completes. ``on_start(i)`` is called as task ``i`` is
        submitted (Ray queues it on the cluster)."""
        import ray

        from privlab.run.worker import run_task

        started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
            if self.address is None:
                kwargs["num_cpus"] = self.workers or os.cpu_count() or 1
            try:
                ray.init(address=self.address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise ConfigError(f"cannot start or reach Ray at {self.address or 'a local instance'}: {e}") from None
            started = True
        try:
            remote = ray.remote(num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run, max_retries=0)(run_task)
            threads = max(1, int(self.cpus_per_run))
            refs = {}
            for i, t in enumerate(tasks):
                if on_start is not None:
                    on_start(i)
                refs[remote.remote({**t, "threads": t.get("threads") or threads})] = i
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1, timeout=1.0)
                for ref in ready:
                    i = refs.pop(ref)
                    try:
                        yield i, ray.get(ref), None
                    except Exception as e:  # the worker died or the task raised (a bug in run_task)
                        yield i, None, f"Ray task failed: {type(e).__name__}: {str(e).strip().splitlines()[-1:]}"
        finally:
            if started:
                ray.shutdown()


class _SweepProgress:
    """Overall progress of a sweep on stderr: runs done / failed / skipped and the ETA (silent when quiet)."""

    def __init__(self, total: int, *, quiet: bool) -> None:
        self.counts = {"finished": 0, "failed": 0, "skipped": 0}
        self._bar: Any = None
        if quiet or total == 0:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._console = Console(stderr=True)
        self._bar = Progress(
            TextColumn("[bold]sweep"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self._console,
        )
        self._bar.start()
        self._task = self._bar.add_task("sweep", total=total, info=self._info())

    def _info(self) -> str:
        c = self.counts
        return f"done {c['finished']} · failed {c['failed']} · skipped {c['skipped']}"

    def update(self, outcome: RunOutcome) -> None:
        self.counts[outcome.status] = self.counts.get(outcome.status, 0) + 1
        if self._bar is not None:
            self._bar.update(self._task, advance=1, info=self._info())
            if outcome.status != "skipped":
                note = f" — {outcome.error}" if outcome.error else ""
                self._bar.console.print(f"{outcome.id}: {outcome.status}{note}", highlight=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def run_sweep(
    specs: list[ExperimentSpec],
    out: str | Path,
    *,
    backend: str = "local",
    workers: int | None = None,
    threads: int | None = None,
    address: str | None = None,
    cpus_per_run: float = 1,
    gpus_per_run: float = 0,
    force: bool = False,
    device: str = "auto",
    data_root: str | Path | None = None,
    download: bool = False,
    quiet: bool = False,
    report: bool = True,
    on_outcome: Callable[[RunOutcome], None] | None = None,
) -> list[RunOutcome]:
    """Run every sweep point of ``specs`` through a backend into ``out``; one :class:`RunOutcome` per point, in the
    order of the points.

    Args:
        specs: validated specs (each may have a ``sweep``), e.g. from :func:`privlab.run.load_specs`.
        out: output folder: ``runs.sqlite``, ``<run id>/`` (artifacts and ``run.log``) and ``report.html``.
        backend: ``local`` (process pool) or ``ray``.
        workers: runs at the same time (local); CPUs of a Ray instance the command starts (ray).
        threads: torch threads per run (local; default cores // workers).
        address: Ray cluster address (ray backend; None starts a local instance).
        cpus_per_run, gpus_per_run: each Ray task's resource request.
        force: run finished specs again (under new ids).
        device, data_root, download: as for ``privlab run``; resolved in each worker.
        quiet: no progress display.
        report: rebuild ``out/report.html`` at the end (also after an interruption).
        on_outcome: called with each outcome as it is known (skipped ones first).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown sweep backend {backend!r}; use one of: {', '.join(BACKENDS)}")
    runner: LocalBackend | RayBackend = (
        LocalBackend(workers, threads)
        if backend == "local"
        else RayBackend(address, workers, cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run)
    )
    out = Path(out)
    points = [SweepPoint.of(spec, point) for spec, point in expand_all(specs)]

    outcomes: dict[int, RunOutcome] = {}
    store = Store(out)
    lock = contextlib.ExitStack()
    try:
        lock.enter_context(output_lock(out))
    except BaseException:
        store.close()
        raise
    progress = _SweepProgress(len(points), quiet=quiet)

    def record(i: int, outcome: RunOutcome) -> None:
        outcomes[i] = outcome
        progress.update(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    try:
        versions, hardware = environment()
        tasks: list[dict[str, Any]] = []
        owners: list[int] = []  # the index of the point behind each task
        first_of_hash: dict[str, int] = {}
        duplicates: list[int] = []
        for index, p in enumerate(points):
            if p.hash in first_of_hash:
                duplicates.append(index)
                continue
            first_of_hash[p.hash] = index
            done = None if force else store.finished_run(p.hash)
            if done is not None:
                record(index, p.skipped(done))
                continue
            run_id = (None if force else store.unfinished_run_id(p.hash)) or store.new_run_id(
                p.point.experiment, p.hash
            )
            tasks.append(
                make_task(
                    p.dumped,
                    run_id=run_id,
                    out=out,
                    spec_hash=p.hash,
                    device=device,
                    data_root=data_root,
                    download=download,
                )
            )
            owners.append(index)

        def start(i: int) -> None:  # marked running as its worker starts: a queued run is not running
            p = points[owners[i]]
            store.start_run(
                tasks[i]["run_id"],
                experiment=p.point.experiment,
                spec=p.dumped,
                spec_hash=p.hash,
                seed=p.point.seed,
                versions=versions,
                hardware=hardware,
                name=p.point.name,
                dir=tasks[i]["run_id"],
            )

        for i, payload, error in runner.run(tasks, on_start=start):
            index, run_id = owners[i], tasks[i]["run_id"]
            p = points[index]
            if payload is not None:
                try:
                    store.import_run(payload)
                except PrivlabError as e:  # a finished run with this id exists: keep the stored one
                    error = str(e)
            if payload is None or error is not None:
                remove_staging(out / run_id)  # what a dead worker left; its run.log stays for diagnosis
                store.finish_run(run_id, status="failed", error=error)
                record(index, p.outcome(run_id, "failed", dir=run_id, error=error))
                continue
            rec = store.get_run(run_id)
            record(
                index,
                p.outcome(
                    run_id, rec.status, experiment=rec.experiment, metrics=rec.metrics, dir=run_id, error=rec.error
                ),
            )
        for index in duplicates:  # the same computation twice in one sweep runs once
            first = outcomes[first_of_hash[points[index].hash]]
            status = "skipped" if first.status == "finished" else first.status
            record(
                index,
                points[index].outcome(
                    first.id,
                    status,
                    experiment=first.experiment,
                    metrics=first.metrics,
                    dir=first.dir,
                    error=first.error,
                ),
            )
    finally:
        progress.close()
        store.close()
        if report and outcomes:
            build_report_or_warn(out)
        lock.close()
    return [outcomes[i] for i in sorted(outcomes)]
