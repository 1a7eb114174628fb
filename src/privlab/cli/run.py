"""``privlab run SPEC`` and ``privlab train``: run experiments into an output folder."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

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
    emit_json,
    examples,
    handle_errors,
)
from privlab.errors import ConfigError

HEADLINE_KINDS = ("privacy", "utility")
HEADLINE_MAX = 6


def headline_metrics(
    metrics: dict[str, float], info: dict[str, dict[str, Any]], limit: int = HEADLINE_MAX
) -> list[str]:
    """The metrics worth a place in a run's one-line summary: every metric when there are at most 4, else the first
    ``limit`` whose stored kind (``info[name]["kind"]``, as logged by the pipeline) is privacy or utility, leaving out
    per-step/per-class breakdowns (names with ``/``)."""
    if len(metrics) <= 4:
        return list(metrics)
    return [k for k in metrics if info.get(k, {}).get("kind") in HEADLINE_KINDS and "/" not in k][:limit]


def _metric_info(out: Path) -> dict[str, dict[str, Any]]:
    """Unit, kind and direction of every metric stored in ``out`` (empty when there is no store)."""
    from privlab.store import Store

    if not (out / "runs.sqlite").exists():
        return {}
    with Store(out, create=False) as store:
        return store.metric_info()


def _print_outcomes(outcomes: list[Any], out: Path, json_out: bool) -> None:
    report = out / "report.html"
    if json_out:
        emit_json(
            {
                "runs": [o.as_dict() for o in outcomes],
                "out": str(out),
                "store": str(out / "runs.sqlite"),
                "report": str(report) if report.exists() else None,
            }
        )
        return
    info = _metric_info(out) if any(len(o.metrics) > 4 for o in outcomes) else {}
    for o in outcomes:
        keys = headline_metrics(o.metrics, info)
        shown = ", ".join(
            f"{k} {o.metrics[k]:.2%}" if k.endswith("accuracy") else f"{k} {o.metrics[k]:.4g}" for k in keys
        )
        note = " (already finished: skipped; --force re-runs)" if o.status == "skipped" else ""
        typer.echo(
            f"{o.id}: {o.status}{note}" + (f" — {shown}" if shown else "") + (f" — {o.error}" if o.error else "")
        )
    typer.echo(f"results: {out / 'runs.sqlite'}")
    if report.exists():
        typer.echo(f"report:  {report}")


def finish_runs(outcomes: list[Any], out: Path, json_out: bool) -> None:
    """Print the outcomes of ``run``/``train``/``sweep``/``invert`` (text or JSON); exit 1 when any run failed."""
    _print_outcomes(outcomes, out, json_out)
    if any(o.status == "failed" for o in outcomes):
        raise typer.Exit(1)


@app.command(
    epilog=examples(
        "privlab run examples/train.yaml --out runs/demo",
        "privlab run train --preset smoke --set train.epochs=3 --json",
        "privlab run spec.yaml --out runs/x --force",
    )
)
@handle_errors
def run(
    spec: str = typer.Argument(..., help="YAML spec file, or an experiment name (privlab experiments)"),
    out: OutOption = Path("runs"),
    preset: str | None = typer.Option(None, "--preset", "-p", help="preset to start from: smoke, cpu, paper"),
    set_: list[str] = typer.Option([], "--set", "-s", help="override a key: --set train.epochs=3 (repeatable)"),
    seed: int | None = typer.Option(None, "--seed", min=0, max=2**32 - 1, help="override the spec's seed"),
    force: ForceOption = False,
    device: DeviceOption = "auto",
    data_root: DataRootOption = None,
    download: DownloadOption = False,
    quiet: QuietOption = False,
    json_out: JsonOption = False,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="only load and check the spec: print every sweep point's resolved spec, run nothing"
    ),
) -> None:
    """Run an experiment spec (every point of its sweep) in this process, one run after the other.

    A sweep file (a `specs:` list) runs every spec in it. `privlab sweep` runs the same in parallel worker
    processes or on Ray.

    A run whose spec already finished in the output folder is skipped unless --force. Exit code 0 when every run
    finished, 1 when a run failed, 2 for a bad spec or input.
    """
    from privlab.config import parse_overrides
    from privlab.run import execute

    overrides = parse_overrides(set_)
    if seed is not None:
        overrides["seed"] = seed
    specs = resolve_specs(spec, preset, overrides)
    if dry_run:
        _print_points(specs, json_out)
        return
    outcomes = []
    # with --json, stdout carries only the JSON: whatever a pipeline prints goes to stderr
    with contextlib.redirect_stdout(sys.stderr) if json_out else contextlib.nullcontext():
        for i, loaded in enumerate(specs):
            outcomes += execute(
                loaded,
                out,
                force=force,
                device=device,
                data_root=data_root,
                download=download,
                quiet=quiet or json_out,
                keep_going=True if len(specs) > 1 else None,
                report=i == len(specs) - 1,
            )
    finish_runs(outcomes, out, json_out)


def _print_points(specs: list[Any], json_out: bool) -> None:
    """``--dry-run``: every sweep point of ``specs`` with its spec hash and the values its sweep set; nothing runs."""
    from privlab.run.local import SweepPoint
    from privlab.run.sweep import expand_all

    points = [SweepPoint.of(parent, point) for parent, point in expand_all(specs)]
    if json_out:
        emit_json({"points": [{"experiment": p.point.experiment, "spec_hash": p.hash, "params": p.params,
                               "spec": p.dumped} for p in points]})  # fmt: skip
        return
    for p in points:
        shown = ", ".join(f"{k}={v}" for k, v in p.params.items())
        typer.echo(f"{p.point.experiment} {p.hash[:12]}" + (f" ({shown})" if shown else ""))
    typer.echo(f"{len(points)} run(s); nothing was run (--dry-run)")


def resolve_specs(spec: str, preset: str | None, overrides: dict[str, Any], only: list[str] | None = None) -> list[Any]:
    """The specs named on the command line: a spec file, a sweep file (``specs:``) or an experiment name.

    ``examples/NAME.yaml`` that does not exist in the current folder names privlab's packaged example ``NAME``.
    ``only``: keep the specs of these experiments (``privlab sweep --only``).
    """
    from privlab.examples import resolve_example
    from privlab.pipelines import PIPELINES
    from privlab.run import load_spec, load_specs

    path = resolve_example(spec)  # examples/NAME.yaml: the packaged example when no such file is here
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_specs(path, preset=preset, overrides=overrides, only=only)
    if only is not None and spec not in only:
        raise ConfigError(f"experiment {spec!r} is not one of --only {', '.join(only)}")
    if spec in PIPELINES:
        return [load_spec(experiment=spec, preset=preset, overrides=overrides)]
    raise ConfigError(f"{spec!r} is neither a spec file nor an experiment; experiments: {', '.join(PIPELINES.names())}")


@app.command(
    epilog=examples(
        "privlab train --dataset digits --model lenet5 --epochs 5 --seed 0 --out runs/t1",
        "privlab train --dataset mnist --data-root ~/data --resize 32 --json",
    )
)
@handle_errors
def train(
    dataset: str = typer.Option("digits", "--dataset", "-d", help="data set (privlab datasets)"),
    model: str = typer.Option("lenet5", "--model", "-m", help="model (privlab models)"),
    epochs: int = typer.Option(5, "--epochs", "-e", max=10_000, help="training epochs (≥ 1)"),
    batch_size: int = typer.Option(64, "--batch-size", max=65_536, help="training batch size"),
    lr: float = typer.Option(1e-3, "--lr", max=100, help="learning rate"),
    optimizer: str = typer.Option("adam", "--optimizer", help="adam, adamw, sgd, adadelta"),
    resize: int | None = typer.Option(None, "--resize", max=1024, help="resize images to N×N"),
    limit: int | None = typer.Option(None, "--limit", max=10**9, help="use a seeded subset of N training images"),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="seed of the run"),
    out: OutOption = Path("runs"),
    force: ForceOption = False,
    device: DeviceOption = "auto",
    data_root: DataRootOption = None,
    download: DownloadOption = False,
    quiet: QuietOption = False,
    json_out: JsonOption = False,
) -> None:
    """Train a classifier, evaluate it on the test split, save a safetensors checkpoint and a report.

    The same as `privlab run` on a spec with `experiment: train`; the checkpoint is `OUT/<run id>/model.safetensors`.
    """
    from privlab.run import execute, spec_from_mapping

    data: dict[str, Any] = {
        "experiment": "train",
        "seed": seed,
        "dataset": {"name": dataset, "resize": resize, "train_limit": limit},
        "model": model,
        "train": {"epochs": epochs, "batch_size": batch_size, "lr": lr, "optimizer": optimizer},
    }
    spec = spec_from_mapping(data, source="privlab train options")
    outcomes = execute(
        spec, out, force=force, device=device, data_root=data_root, download=download, quiet=quiet or json_out
    )
    if json_out:
        o = outcomes[0]
        emit_json(
            {
                "run_id": o.id,
                "status": o.status,
                "test_accuracy": o.metrics.get("test_accuracy"),
                "metrics": o.metrics,
                "out": str(out),
                "checkpoint": str(out / o.id / "model.safetensors"),
                "report": str(out / "report.html"),
            }
        )
        return
    finish_runs(outcomes, out, json_out=False)
