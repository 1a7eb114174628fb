"""``privlab bench``: run benchmarks (candidate vs baseline side by side) and record the ratios."""

from __future__ import annotations

from pathlib import Path

import typer

from privlab.cli import app
from privlab.cli._common import JSON_HELP, emit_json, examples, handle_errors, print_table
from privlab.errors import DataMissingError


@app.command(
    epilog=examples(
        "privlab bench",
        "privlab bench train_loop_overhead --repeats 3 --json",
        "privlab bench --results /tmp/bench-results  (leave the tracked benchmarks/results/ untouched)",
        "make bench",
    )
)
@handle_errors
def bench(
    names: list[str] = typer.Argument(None, help="benchmarks to run (default: all)"),
    path: Path = typer.Option(Path("benchmarks"), "--dir", help="folder of bench_*.py files"),
    repeats: int | None = typer.Option(
        None, "--repeats", max=1000, help="timed repeats per side (default: each benchmark's)"
    ),
    results_dir: Path | None = typer.Option(
        None, "--results", help="folder for the <name>.json results (default: DIR/results, tracked in git)"
    ),
    markdown: Path | None = typer.Option(None, "--markdown", help="also write this Markdown summary (BENCHMARKS.md)"),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Run benchmarks: each times its candidate and a baseline in this process and reports the ratio.

    Results go to DIR/results/<name>.json (tracked in git; --results FOLDER writes FOLDER/<name>.json instead);
    --markdown writes the table for BENCHMARKS.md from the latest result of every benchmark in that folder (so running
    a few updates their rows and keeps the others).
    """
    from privlab.bench import latest_results, render_markdown, run_all, write_results
    from privlab.store import replace_section

    if not path.is_dir():
        raise DataMissingError(f"no benchmarks folder {path}; run from the project root or pass --dir")
    out_dir = results_dir if results_dir is not None else path / "results"
    if out_dir.exists() and not out_dir.is_dir():
        raise DataMissingError(f"--results {out_dir} is a file; pass a folder (created if missing)")
    results = run_all(names or None, path, repeats=repeats)
    write_results(results, out_dir)
    if markdown is not None:  # every benchmark's latest result: running a few keeps the other rows
        replace_section(markdown, "benchmarks", render_markdown(latest_results(out_dir, results)))
    if json_out:
        emit_json({"benchmarks": results})
        return
    print_table(
        "benchmarks (ratio = candidate / baseline time; lower is better)",
        ["name", "candidate s", "baseline s", "ratio", "goal", "passed"],
        [[r["name"], r["candidate_s"], r["baseline_s"], r["ratio"], r["goal"], r["passed"]] for r in results],
    )
