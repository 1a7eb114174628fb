"""``privlab report DIR``: (re)build the HTML report of an output folder."""

from __future__ import annotations

from pathlib import Path

import typer

from privlab.cli import app
from privlab.cli._common import JSON_HELP, emit_json, examples, handle_errors
from privlab.report.budget import DEFAULT_MAX_FIGURES


@app.command(
    epilog=examples(
        "privlab report runs/demo", "privlab report runs/sweep --max-figures 500", "privlab report runs/demo --json"
    )
)
@handle_errors
def report(
    out: Path = typer.Argument(Path("runs"), help="output folder holding runs.sqlite"),
    max_figures: int = typer.Option(
        DEFAULT_MAX_FIGURES,
        "--max-figures",
        min=0,
        max=100_000,
        help="per-run figures (training curves, image grids) drawn at most; tables always list every run",
    ),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Write OUT/report.html: a self-contained page (opens from disk, no server, no internet)."""
    from privlab.report import build_report

    path = build_report(out, max_figures=max_figures)
    if json_out:
        emit_json({"report": str(path)})
    else:
        typer.echo(f"report: {path}")
