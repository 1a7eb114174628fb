"""Shared CLI plumbing: error handling (PrivlabError → one line, exit 2), JSON output, tables."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer

from privlab.errors import PrivlabError
from privlab.store.artifacts import json_safe

F = TypeVar("F", bound=Callable[..., Any])

JSON_HELP = "print a JSON object on stdout instead of text"
QUIET_HELP = "no progress bars"
OUT_HELP = "output folder: runs.sqlite, one folder per run, report.html"
DEVICE_HELP = "auto (CUDA when present), cpu, cuda, cuda:N"
ROOT_HELP = "folder holding on-disk data sets (torchvision layout), e.g. ~/data"
DOWNLOAD_HELP = "allow downloading a missing data set into --data-root (needs internet)"
FORCE_HELP = "run again even if the same spec already finished in this folder"

# The options every command that runs experiments shares (run, train, sweep, invert): `name: XOption = default`.
OutOption = Annotated[Path, typer.Option("--out", "-o", help=OUT_HELP)]
ForceOption = Annotated[bool, typer.Option("--force", help=FORCE_HELP)]
DeviceOption = Annotated[str, typer.Option("--device", help=DEVICE_HELP)]
DataRootOption = Annotated[Optional[Path], typer.Option("--data-root", help=ROOT_HELP)]  # noqa: UP045 (typer)
DownloadOption = Annotated[bool, typer.Option("--download", help=DOWNLOAD_HELP)]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)]
JsonOption = Annotated[bool, typer.Option("--json", help=JSON_HELP)]


def examples(*commands: str) -> str:
    """Help epilog listing example command lines, one per line."""
    return "[bold]Examples[/bold]\n\n" + "\n\n".join(f"  $ {c}" for c in commands)


def emit_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout (NaN → null)."""
    typer.echo(json.dumps(json_safe(obj), indent=2, default=str))


def fail(message: str, code: int = 2) -> None:
    """Print ``error: message`` on stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def handle_errors(fn: F) -> F:
    """Turn a :class:`PrivlabError` into one line on stderr and exit code 2; Ctrl-C into exit 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PrivlabError as e:
            fail(str(e), e.exit_code)
        except KeyboardInterrupt:
            typer.echo("interrupted: finished runs are kept; run the same command again to resume", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def print_table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    """A rich table on stdout (plain text when stdout is not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for i, c in enumerate(columns):
        table.add_column(c, no_wrap=i == 0, overflow="fold")
    for r in rows:
        table.add_row(*["" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v)) for v in r])
    console = Console(file=sys.stdout)
    if not console.is_terminal:  # piped or captured: do not squeeze columns to 80 characters
        console = Console(file=sys.stdout, width=200)
    console.print(table)
