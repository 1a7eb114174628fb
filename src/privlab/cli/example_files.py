"""``privlab examples``: the example spec files shipped inside privlab, listed or copied into a folder to edit."""

from __future__ import annotations

from pathlib import Path

import typer

from privlab.cli import app
from privlab.cli._common import JSON_HELP, emit_json, examples, handle_errors, print_table


def _summary(path: Path) -> str:
    """The first comment line of an example file, without the ``#``."""
    for line in path.read_text("utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
        if line.strip():
            break
    return ""


@app.command(
    "examples",
    epilog=examples(
        "privlab examples",
        "privlab examples --copy my-specs && privlab run my-specs/train.yaml --out runs/t",
        "privlab run examples/train.yaml --out runs/t   # the packaged copy when ./examples/train.yaml is absent",
    ),
)
@handle_errors
def list_examples(
    copy: Path | None = typer.Option(None, "--copy", help="copy every example into this folder (created)"),
    force: bool = typer.Option(False, "--force", help="with --copy: overwrite files that differ"),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List the example spec files shipped with privlab, or copy them into a folder.

    `privlab run` and `privlab sweep` read `examples/NAME.yaml` from the package when that file does not exist in
    the current folder.
    """
    from privlab.errors import ConfigError
    from privlab.examples import example_names, example_path
    from privlab.store import atomic_write_text

    rows = [{"name": n, "path": str(example_path(n)), "summary": _summary(example_path(n))} for n in example_names()]
    copied: list[str] = []
    if copy is not None:
        if copy.exists() and not copy.is_dir():
            raise ConfigError(f"--copy {copy}: not a folder; name a folder to copy the examples into")
        texts = {n: example_path(n).read_text("utf-8") for n in example_names()}
        clash = [
            str(copy / f"{n}.yaml")
            for n, t in texts.items()
            if (copy / f"{n}.yaml").exists() and (copy / f"{n}.yaml").read_text("utf-8") != t
        ]
        if clash and not force:
            raise ConfigError(f"--copy {copy}: {', '.join(clash)} exist and differ; add --force to overwrite them")
        for n, t in texts.items():
            copied.append(str(atomic_write_text(copy / f"{n}.yaml", t)))
    if json_out:
        emit_json({"examples": rows, "copied": copied})
        return
    if copy is not None:
        typer.echo(f"copied {len(copied)} examples into {copy}")
        return
    print_table(
        "examples (privlab run examples/NAME.yaml)", ["name", "summary"], [[r["name"], r["summary"]] for r in rows]
    )
