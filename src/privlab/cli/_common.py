"""Shared CLI plumbing: error handling (PrivlabError → one line, exit 2), JSON output, tables."""

from __future__ import annotations

import functools
import inspect
import json
import math
import os
import stat
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


#: Longest text a command accepts in one option or argument (names, devices, keys; a path is capped by the OS).
MAX_TEXT = 4096


def _shown(value: str, limit: int = 60) -> str:
    """``value`` quoted, cut to ``limit`` characters (an error line never echoes a megabyte of input)."""
    return repr(value) if len(value) <= limit else repr(value[:limit]) + f"… ({len(value)} characters)"


def _option_name(fn: Callable[..., Any], name: str) -> str:
    """The option string of parameter ``name`` of a command (``--epsilon``), or its metavar for an argument."""
    try:
        default = inspect.signature(fn).parameters[name].default
    except (KeyError, ValueError, TypeError):
        default = None
    decls = getattr(default, "param_decls", None) or ()
    longs = [d for d in decls if d.startswith("--")]
    if longs:
        return longs[0]
    if default is not None and type(default).__name__ == "ArgumentInfo":
        return getattr(default, "metavar", None) or name.upper()
    return "--" + name.rstrip("_").replace("_", "-")


def check_inputs(fn: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    """Refuse, before any work, values no command can use, whatever the option: the structural checks.

    A float that is nan or ±inf; text longer than :data:`MAX_TEXT` characters or holding a control character (a
    newline, NUL, …); a path longer than the system allows; an existing path that is neither a regular file nor a
    folder (a fifo would block the reader forever, a device is not data); a ``--device`` that is not here.
    Ranges of single options are declared beside each option (``min=``/``max=``) and checked by the parser.

    Raises:
        ConfigError: naming the option and the value.
    """
    from privlab.errors import ConfigError

    for name, value in kwargs.items():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{_option_name(fn, name)}: must be a finite number, got {v}")
            if isinstance(v, (str, Path)):
                text = str(v)
                if len(text) > MAX_TEXT:
                    raise ConfigError(f"{_option_name(fn, name)}: {_shown(text)} is too long (at most {MAX_TEXT})")
                if any(ord(c) < 32 or ord(c) == 127 for c in text):
                    raise ConfigError(f"{_option_name(fn, name)}: {_shown(text)} holds a control character "
                                      "(a newline, tab or NUL); remove it")  # fmt: skip
            if name == "device" and isinstance(v, str):
                from privlab.context import resolve_device

                resolve_device(v)  # an unknown or absent device is refused here, not in every worker
            if isinstance(v, Path):
                if any(len(os.fsencode(part)) > 255 for part in v.parts):
                    raise ConfigError(f"{_option_name(fn, name)}: {_shown(str(v))}: a file name is longer than 255 "
                                      "bytes")  # fmt: skip
                try:
                    mode = v.stat().st_mode
                except OSError:
                    continue  # missing (an output to create) or unreadable: the command words it
                if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    raise ConfigError(
                        f"{_option_name(fn, name)}: {v} is not a regular file or folder (a fifo, socket or device); "
                        "privlab reads and writes plain files"
                    )


def handle_errors(fn: F) -> F:
    """Check the inputs (:func:`check_inputs`), then run the command.

    A :class:`PrivlabError` becomes one line on stderr and exit code 2; so does an ``OSError`` naming a file (a
    full disk, a permission, a name the file system refuses) and a ``MemoryError`` (with the advice to ask for less).
    Ctrl-C becomes exit 130.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            check_inputs(fn, kwargs)
            return fn(*args, **kwargs)
        except PrivlabError as e:
            fail(str(e), e.exit_code)
        except MemoryError:
            fail("not enough memory for this command's sizes; ask for less (fewer repeats, rows, classes or pixels)")
        except OSError as e:
            if e.filename is None:
                raise
            fail(f"{_shown(str(e.filename), 200)}: {e.strerror or e}")
        except KeyboardInterrupt:
            typer.echo("interrupted: finished runs are kept; run the same command again to resume", err=True)
            raise typer.Exit(130) from None

    wrapper.privlab_handles_errors = True  # type: ignore[attr-defined]
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
