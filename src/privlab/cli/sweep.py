"""``privlab sweep SPEC``: every point of a spec's (or a sweep file's) sweep, in parallel, resumable."""

from __future__ import annotations

from pathlib import Path

import typer

from privlab.cli import app
from privlab.cli._common import (
    DataRootOption,
    DeviceOption,
    DownloadOption,
    ForceOption,
    JsonOption,
    OutOption,
    QuietOption,
    examples,
    handle_errors,
)
from privlab.cli.run import finish_runs, resolve_specs


@app.command(
    epilog=examples(
        "privlab sweep examples/demo.yaml --out runs/demo --workers 2",
        "privlab sweep examples/ldp-cpu.yaml --out runs/ldp --workers 2 --json",
        "privlab sweep examples/reproduce-cpu.yaml --only ldp --data-root ../shared/data --out runs/ldp-mnist",
        "privlab sweep spec.yaml --out runs/x --backend ray --workers 8",
        "privlab sweep spec.yaml --out /shared/runs --backend ray --address ray://head:10001 --gpus-per-run 1",
    )
)
@handle_errors
def sweep(
    spec: str = typer.Argument(..., help="spec file with a sweep: block, a sweep file (specs: list), or an experiment"),
    out: OutOption = Path("runs"),
    workers: int | None = typer.Option(
        None, "--workers", "-w", max=1024, help="runs at the same time (default: CPU cores // --threads)"
    ),
    backend: str = typer.Option("local", "--backend", "-b", help="local (process pool) or ray"),
    address: str | None = typer.Option(
        None, "--address", help="Ray cluster address (ray://host:10001, host:6379, auto); default: start Ray locally"
    ),
    threads: int | None = typer.Option(
        None, "--threads", max=1024, help="torch threads per run (local; default: CPU cores // workers)"
    ),
    cpus_per_run: float = typer.Option(
        1.0, "--cpus-per-run", max=1024, help="CPUs each Ray task asks for (= its threads)"
    ),
    gpus_per_run: float = typer.Option(
        0.0, "--gpus-per-run", max=64, help="GPUs each Ray task asks for (e.g. 1 or 0.5)"
    ),
    preset: str | None = typer.Option(None, "--preset", "-p", help="preset for every spec: smoke, cpu, paper"),
    set_: list[str] = typer.Option([], "--set", "-s", help="override a key in every spec (repeatable)"),
    only: list[str] = typer.Option(
        [], "--only", help="run only the specs of this experiment (repeatable), e.g. --only ldp"
    ),
    force: ForceOption = False,
    device: DeviceOption = "auto",
    data_root: DataRootOption = None,
    download: DownloadOption = False,
    quiet: QuietOption = False,
    json_out: JsonOption = False,
) -> None:
    """Run every sweep point in parallel into one results store, then write the report.

    Each run gets its own worker process (local) or Ray task, its own folder with a run.log, and lands in
    OUT/runs.sqlite in one transaction. Finished specs are skipped, so after an interruption (Ctrl-C, kill -9, a
    crash) the same command finishes the sweep. A failing run is recorded with its error and the others go on.
    Exit code 0 when every run finished, 1 when one failed, 2 for a bad spec or option.
    """
    from privlab.config import parse_overrides
    from privlab.errors import ConfigError
    from privlab.run import run_sweep

    if backend == "local":
        ray_only = {
            "--address": address is not None,
            "--cpus-per-run": cpus_per_run != 1.0,
            "--gpus-per-run": gpus_per_run,
        }
        given = [k for k, v in ray_only.items() if v]
        if given:
            raise ConfigError(f"{', '.join(given)} applies to --backend ray only; drop it or add --backend ray")
    elif threads is not None:
        raise ConfigError("--threads applies to --backend local only (Ray gives each run --cpus-per-run threads)")
    from privlab.pipelines import PIPELINES

    unknown = [name for name in only if name not in PIPELINES]
    if unknown:
        names = ", ".join(PIPELINES.names())
        raise ConfigError(f"--only {', '.join(unknown)}: not an experiment; experiments: {names}")
    specs = resolve_specs(spec, preset, parse_overrides(set_), only or None)
    outcomes = run_sweep(
        specs,
        out,
        backend=backend,
        workers=workers,
        threads=threads,
        address=address,
        cpus_per_run=cpus_per_run,
        gpus_per_run=gpus_per_run,
        force=force,
        device=device,
        data_root=data_root,
        download=download,
        quiet=quiet or json_out,
    )
    finish_runs(outcomes, out, json_out)
