"""``privlab runs list|show|export``: read a results store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from privlab.cli._common import JSON_HELP, emit_json, examples, handle_errors, print_table
from privlab.errors import ConfigError

app = typer.Typer(help="Read the results store of an output folder (runs.sqlite).", no_args_is_help=True)
OUT_HELP = "output folder holding runs.sqlite"


def _when(t: float | None) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t else ""


@app.command("list", epilog=examples("privlab runs list --out runs/demo", "privlab runs list --out runs --csv"))
@handle_errors
def list_(
    out: Path = typer.Option(Path("runs"), "--out", "-o", help=OUT_HELP),
    experiment: str | None = typer.Option(None, "--experiment", help="only runs of this experiment"),
    status: str | None = typer.Option(None, "--status", help="only runs with this status: finished, failed, running"),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
    csv_out: bool = typer.Option(False, "--csv", help="print CSV (one row per run, spec and metrics flattened)"),
) -> None:
    """List the runs of an output folder with their final metrics."""
    from privlab.store import Store
    from privlab.store.export import runs_to_csv

    with Store(out, create=False) as store:
        runs = store.runs(experiment=experiment, status=status)
    if json_out:
        emit_json({"runs": [r.as_dict() for r in runs]})
    elif csv_out:
        typer.echo(runs_to_csv(runs), nl=False)
    else:
        names = sorted({k for r in runs for k in r.metrics})[:6]
        print_table(
            f"runs in {out}",
            ["id", "experiment", "status", "seed", "started", *names],
            [
                [r.id, r.experiment, r.status, r.seed, _when(r.started), *[r.metrics.get(n) for n in names]]
                for r in runs
            ],
        )


@app.command(epilog=examples("privlab runs show train-1a2b3c4d --out runs/demo", "privlab runs show train --json"))
@handle_errors
def show(
    run_id: str = typer.Argument(..., help="run id (a unique prefix is enough)"),
    out: Path = typer.Option(Path("runs"), "--out", "-o", help=OUT_HELP),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show one run: spec, status, environment, final metrics, per-step history and artifacts."""
    from privlab.store import Store
    from privlab.store.export import runs_to_json

    with Store(out, create=False) as store:
        rec = store.get_run(run_id)
        data = runs_to_json(store, [rec])["runs"][0]
    if json_out:
        emit_json(data)
        return
    typer.echo(f"run {rec.id}  experiment {rec.experiment}  status {rec.status}  seed {rec.seed}")
    typer.echo(f"started {_when(rec.started)}  finished {_when(rec.finished)}  spec hash {rec.spec_hash[:16]}")
    if rec.error:
        typer.echo(f"error: {rec.error}")
    print_table(
        "final metrics",
        ["metric", "value"],
        [[k, f"undefined: {rec.undefined[k]}" if k in rec.undefined else v] for k, v in rec.metrics.items()],
    )
    if data["reference"]:
        print_table(
            "published vs measured",
            ["metric", "published", "measured", "difference", "tolerance", "verdict", "source"],
            [
                [r["metric"], r["published"], r["measured"], r["difference"], r["allowed"], r["status"], r["source"]]
                for r in data["reference"]
            ],
        )
    print_table(
        "artifacts", ["kind", "path", "sha256"], [[a["kind"], a["path"], a["sha256"][:16]] for a in data["artifacts"]]
    )
    import json

    typer.echo("spec: " + json.dumps(rec.spec, sort_keys=True))
    typer.echo("versions: " + json.dumps(rec.versions, sort_keys=True))


@app.command(
    epilog=examples(
        "privlab runs export --out runs/demo --csv --to results.csv",
        "privlab runs export --out runs/demo --json",
        "privlab runs export --out runs/demo --parquet --to results.parquet",
    )
)
@handle_errors
def export(
    out: Path = typer.Option(Path("runs"), "--out", "-o", help=OUT_HELP),
    json_out: bool = typer.Option(False, "--json", help="export JSON: every run with spec, metrics, history"),
    csv_out: bool = typer.Option(False, "--csv", help="export CSV: one row per run (the default)"),
    parquet_out: bool = typer.Option(
        False, "--parquet", help="export Parquet (needs --to): the CSV's columns, typed; undefined values are null"
    ),
    to: Path | None = typer.Option(None, "--to", help="write to this file instead of stdout"),
) -> None:
    """Export every run of an output folder as CSV, JSON or Parquet, to stdout or a file."""
    import json

    from privlab.store import Store
    from privlab.store.artifacts import atomic_write_bytes, json_safe
    from privlab.store.export import runs_to_csv, runs_to_json, runs_to_parquet

    if json_out + csv_out + parquet_out > 1:
        raise ConfigError("choose one of --json, --csv and --parquet")
    if parquet_out and to is None:
        raise ConfigError("--parquet writes a binary file; give its path with --to FILE.parquet")
    with Store(out, create=False) as store:
        runs = store.runs()
        if parquet_out:
            data = runs_to_parquet(runs)
        elif json_out:
            data = (json.dumps(json_safe(runs_to_json(store, runs)), indent=2) + "\n").encode()
        else:
            data = runs_to_csv(runs).encode()
    if to is None:
        typer.echo(data.decode(), nl=False)
    else:
        atomic_write_bytes(to, data)
        typer.echo(f"wrote {len(runs)} runs to {to}", err=True)


def _register() -> None:
    from privlab.cli import app as root

    root.add_typer(app, name="runs")


_register()
