"""``privlab bench``: run benchmarks (candidate vs baseline side by side) and record the ratios."""

from __future__ import annotations

from pathlib import Path

import typer

from privlab.cli import app
from privlab.cli._common import JSON_HELP, emit_json, examples, handle_errors, print_table
from privlab.errors import DataMissingError


@app.command(epilog=examples("privlab bench", "privlab bench train_loop_overhead --repeats 3 --json", "make bench"))
@handle_errors
def bench(
    names: list[str] = typer.Argument(None, help="benchmarks to run (default: all)"),
    path: Path = typer.Option(Path("benchmarks"), "--dir", help="folder of bench_*.py files"),
    repeats: int | None = typer.Option(
        None, "--repeats", max=1000, help="timed repeats per side (default: each benchmark's)"
    ),
    markdown: Path | None = typer.Option(None, "--markdown", help="also write this Markdown summary (BENCHMARKS.md)"),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Run benchmarks: each times its candidate and a baseline in this process and reports the ratio.

    Results go to DIR/results/<name>.json; --markdown writes the table for BENCHMARKS.md from the latest result of
    every benchmark (so running a few updates their rows and keeps the others).
    """
    from privlab.bench import latest_results, render_markdown, run_all, write_results
    from privlab.store import replace_section

    if not path.is_dir():
        raise DataMissingError(f"no benchmarks folder {path}; run from the project root or pass --dir")
    results = run_all(names or None, path, repeats=repeats)
    write_results(results, path / "results")
    if markdown is not None:  # every benchmark's latest result: running a few keeps the other rows
        replace_section(markdown, "benchmarks", render_markdown(latest_results(path / "results", results)))
    if json_out:
        emit_json({"benchmarks": results})
        return
    print_table(
        "benchmarks (ratio = candidate / baseline time; lower is better)",
        ["name", "candidate s", "baseline s", "ratio", "goal", "passed"],
        [[r["name"], r["candidate_s"], r["baseline_s"], r["ratio"], r["goal"], r["passed"]] for r in results],
    )
