"""One sweep run, executed away from the sweep's driver (a local worker process or a Ray task).

A worker never writes the sweep's ``runs.sqlite``. It runs the pipeline with a *staging* store
``<out>/<run id>/.run.sqlite`` (artifact paths stay relative to ``<out>``), sends the whole run back as a payload
(:meth:`privlab.store.Store.export_run`), and the driver — the only writer of the sweep's store — imports it in one
transaction. So a sweep killed at any moment leaves a valid store in which every run is either finished (exactly
once) or not, and the same command re-runs what is missing.

The task and the payload are plain JSON-ready dicts, so they cross process and machine boundaries unchanged.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

import privlab.pipelines  # noqa: F401  (registers every experiment; preloaded by the local backend's fork server)
from privlab.context import Progress, RunContext, environment, resolve_device, seed_everything
from privlab.errors import PrivlabError
from privlab.pipelines import PIPELINES, pipeline_spec_class
from privlab.plugins import load_plugins, plugin_names
from privlab.run.local import error_message
from privlab.store import Store

__all__ = ["LOG_FILENAME", "STAGING_FILENAME", "make_task", "remove_staging", "run_task"]

LOG_FILENAME = "run.log"
STAGING_FILENAME = ".run.sqlite"


def make_task(
    point: dict[str, Any],
    *,
    run_id: str,
    out: str | Path,
    spec_hash: str,
    device: str = "auto",
    data_root: str | Path | None = None,
    download: bool = False,
    threads: int | None = None,
) -> dict[str, Any]:
    """A run as a JSON-ready task for :func:`run_task` (``point`` is the sweep point's JSON dump)."""
    return {
        "point": point,
        "run_id": run_id,
        "out": str(Path(out).resolve()),
        "spec_hash": spec_hash,
        "device": device,
        "data_root": None if data_root is None else str(data_root),
        "download": download,
        "threads": threads,
        "driver_pid": os.getpid(),
        "plugins": plugin_names(),
    }


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors 1 and 2, so C libraries too) to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    with open(path, "ab", buffering=0) as log:
        saved = [os.dup(1), os.dup(2)]
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def remove_staging(run_dir: Path) -> None:
    """Delete a run folder's staging store (and its WAL files) once the driver has the run."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            (run_dir / (STAGING_FILENAME + suffix)).unlink()


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """Run one sweep point in this process and return the run as a payload for ``Store.import_run``.

    The run's folder ``<out>/<run id>`` is emptied first (it may hold a killed attempt), its output goes to
    ``run.log`` there, and a failing pipeline becomes a payload with status ``failed`` and the error message (the
    traceback is in ``run.log``). Only a bug in this function itself raises.
    """
    load_plugins(task.get("plugins") or [])
    out = Path(task["out"])
    run_id = task["run_id"]
    run_dir = out / run_id
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    if task.get("threads"):
        torch.set_num_threads(int(task["threads"]))
    staging = Store(out, filename=f"{run_id}/{STAGING_FILENAME}")
    try:
        with _output_to(run_dir / LOG_FILENAME):
            print(f"[privlab] run {run_id} started {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}", flush=True)
            _run_point(task, staging, run_dir)
        return staging.export_run(run_id)
    finally:
        staging.close()
        remove_staging(run_dir)


def _run_point(task: dict[str, Any], staging: Store, run_dir: Path) -> None:
    point_data = task["point"]
    run_id = task["run_id"]
    versions, hardware = environment()
    invalid: PrivlabError | None = None
    try:
        dev = resolve_device(task.get("device") or "auto")
        hardware["device"] = str(dev)
        spec = pipeline_spec_class(point_data["experiment"]).model_validate(point_data)
    except PrivlabError as e:  # a device that is missing on this machine, a name unknown to this privlab
        invalid = e
    staging.start_run(  # the point is the JSON dump of a validated spec: its fields are the spec's
        run_id,
        experiment=str(point_data.get("experiment")),
        spec=point_data,
        spec_hash=task["spec_hash"],
        seed=point_data.get("seed"),
        versions=versions,
        hardware=hardware,
        name=point_data.get("name"),
        dir=run_id,
    )
    if invalid is not None:
        staging.finish_run(run_id, status="failed", error=error_message(invalid))
        return
    ctx = RunContext(
        run_id=run_id,
        out=Path(task["out"]),
        run_dir=run_dir,
        store=staging,
        device=dev,
        seed=spec.seed,
        data_root=Path(task["data_root"]) if task.get("data_root") else None,
        download=bool(task.get("download")),
        progress=Progress(quiet=True),
    )
    seed_everything(spec.seed)
    try:
        PIPELINES.get(spec.experiment)(spec, ctx)
    except Exception as e:
        traceback.print_exc()
        staging.finish_run(run_id, status="failed", error=error_message(e))
        print(f"[privlab] run {run_id} failed: {error_message(e)}", flush=True)
        return
    staging.finish_run(run_id)
    print(f"[privlab] run {run_id} finished {time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)


# -- the local backend's child process ------------------------------------------------------------------------------
def _die_with_driver(driver_pid: int | None) -> None:
    """Never outlive the sweep's driver: SIGKILL on parent death (Linux) and a watchdog on the driver's pid."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if driver_pid is None:
        return

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(driver_pid, 0)
            except ProcessLookupError:
                os._exit(137)
            except PermissionError:
                pass

    threading.Thread(target=watch, name="privlab-driver-watchdog", daemon=True).start()


def child_main(task: dict[str, Any], conn: Any) -> None:
    """Entry point of a local worker process: run the task, send ``("ok", payload)`` or ``("error", text)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle; it stops the workers
    _die_with_driver(task.get("driver_pid"))
    try:
        result: tuple[str, Any] = ("ok", run_task(task))
    except BaseException:
        result = ("error", traceback.format_exc(limit=8))
    try:
        conn.send(result)
    finally:
        conn.close()
