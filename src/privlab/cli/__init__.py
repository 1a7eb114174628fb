"""The ``privlab`` command line: a thin Typer app over the library.

Every command takes ``--json``; a user-fixable problem prints one ``error: …`` line on stderr and exits with 2.
"""

from __future__ import annotations

import typer

from privlab import __version__

app = typer.Typer(
    name="privlab",
    help="Reproduce, measure and compare privacy attacks and defences on neural networks.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"privlab {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="print the version"),
) -> None:
    """privlab: dataset → model → protection → attack → measurement → results store → report.

    [bold]Examples[/bold]

      privlab datasets

      privlab train --dataset digits --model lenet5 --epochs 5 --out runs/t1

      privlab run examples/train.yaml --out runs/demo

      privlab runs list --out runs/demo

    Your own components: list their modules or .py files in $PRIVLAB_PLUGINS (comma-separated).
    """
    from privlab.errors import PrivlabError
    from privlab.plugins import load_plugins

    try:
        load_plugins()
    except PrivlabError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


from privlab.registry import import_submodules  # noqa: E402

# every module of this folder registers its commands on ``app`` (a command group adds itself with app.add_typer)
import_submodules(__name__, __path__)


def main() -> None:
    """Console-script entry point."""
    app()
