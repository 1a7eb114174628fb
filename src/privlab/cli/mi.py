"""``privlab mi``: estimate the mutual information between two arrays of paired samples."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperGroup

from privlab.cli import app
from privlab.cli._common import JSON_HELP, emit_json, examples, handle_errors


class _DefaultEstimate(TyperGroup):
    """``privlab mi X Z`` means ``privlab mi estimate X Z``; other sub-commands keep their names."""

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["estimate", *args]
        return super().parse_args(ctx, args)


mi_app = typer.Typer(
    cls=_DefaultEstimate,
    help="Mutual information of paired samples (nats); `privlab mi X Z` = `privlab mi estimate X Z`.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(mi_app, name="mi")


@mi_app.command(
    epilog=examples(
        "privlab mi images.npy activations.npy",
        "privlab mi x.npy z.npy --estimator ksg --k 5 --json",
        "privlab mi bank.npz:x bank.npz:z --repeats 5 --seed 0 --jitter 1e-6",
    )
)
@handle_errors
def estimate(
    x: Path = typer.Argument(..., help="samples of X: .npy, .npz or .safetensors (FILE:NAME picks one array)"),
    z: Path = typer.Argument(..., help="samples of Z, row i paired with row i of X"),
    estimator: str = typer.Option("ite-dkl", "--estimator", "-e", help="ite-dkl, ksg or gaussian"),
    k: int = typer.Option(3, "--k", "-k", help="nearest neighbours (ITE and the Shredder papers: 3)"),
    repeats: int = typer.Option(1, "--repeats", "-r", help="independent draws; mean and 95 % interval"),
    seed: int = typer.Option(0, "--seed", help="seed of the permutations and jitter"),
    backend: str = typer.Option("auto", "--backend", help="kNN backend: auto, torch, faiss, scipy"),
    jitter: float = typer.Option(0.0, "--jitter", help="std of seeded noise added to break ties (data units)"),
    split: str = typer.Option("first-half", "--split", help="ite-dkl: first-half (as ITE) or random"),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda"),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Estimate I(X; Z) in nats (and bits). Rows are samples; other axes are flattened.

    Files are read without unpickling (.npy with allow_pickle=False, .npz, .safetensors).
    """
    from privlab.measure.mi import estimate_mi
    from privlab.store import load_array

    xa, za = load_array(x), load_array(z)
    r = estimate_mi(
        xa,
        za,
        estimator,
        k=k,
        repeats=repeats,
        seed=seed,
        backend=backend,  # type: ignore[arg-type]
        jitter=jitter,
        split=split,
        device=device,  # type: ignore[arg-type]
    )
    if json_out:
        emit_json(r.as_dict())
        return
    ci = f", 95 % CI [{r.ci95[0]:.4g}, {r.ci95[1]:.4g}]" if r.ci95 else ""
    typer.echo(f"I(X; Z) = {r.nats:.6g} nats ({r.bits:.6g} bits){ci}")
    typer.echo(
        f"estimator {r.estimator}, k = {r.k}, n = {r.n}, dims = {r.dims[0]} + {r.dims[1]}, repeats = {r.repeats}, "
        f"backend {r.backend or '-'}, {r.seconds:.3g} s"
    )
    if r.zero_distance_rows:
        typer.echo(f"warning: {r.zero_distance_rows} rows had zero kNN distances and were left out; try --jitter 1e-6")
