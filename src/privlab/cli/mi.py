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
    k: int = typer.Option(3, "--k", "-k", max=1000, help="nearest neighbours (ITE and the Shredder papers: 3)"),
    repeats: int = typer.Option(1, "--repeats", "-r", max=1000, help="independent draws; mean and 95 % interval"),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="seed of the permutations and jitter"),
    backend: str = typer.Option("auto", "--backend", help="kNN backend: auto, torch, faiss, scipy"),
    jitter: float = typer.Option(0.0, "--jitter", max=1e6, help="std of seeded noise added to break ties (data units)"),
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
    if r.ci95_note and repeats > 1:
        typer.echo(f"note: {r.ci95_note}")
    if r.zero_distance_rows:
        typer.echo(f"warning: {r.zero_distance_rows} rows had zero kNN distances and were left out; try --jitter 1e-6")


@mi_app.command(
    epilog=examples(
        "privlab mi calibrate --max-dim 10",
        "privlab mi calibrate --n 5000 --estimators auto,ksg,ite-dkl --max-dim 50 --json",
        "privlab mi calibrate --task uniform-gauss-512x64 --estimators auto,gaussian,ite-dkl",
        "privlab mi calibrate --n 5000 --max-dim 50 --markdown BENCHMARKS.md --write-table",
    )
)
@handle_errors
def calibrate(
    n: int = typer.Option(5000, "--n", max=1_000_000, help="samples per task"),
    estimators: str = typer.Option(
        "auto,ksg,ite-dkl,gaussian,gaussian-copula", "--estimators", "-e", help="comma-separated estimator names"
    ),
    max_dim: int | None = typer.Option(None, "--max-dim", max=10_000, help="only tasks with d_x + d_z ≤ this"),
    task: list[str] = typer.Option(
        [], "--task", "-t", help="only these tasks (repeatable; privlab mi tasks lists them)"
    ),
    family: list[str] = typer.Option([], "--family", help="only these families (repeatable)"),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="seed of the samples and the estimators"),
    k: int = typer.Option(3, "--k", max=1000, help="neighbours of the kNN estimators"),
    markdown: Path | None = typer.Option(None, "--markdown", help="write the summary as a section of this file"),
    write_table: bool = typer.Option(False, "--write-table", help="update privlab's shipped calibration table"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no per-task lines while running"),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Run MI estimators over ground-truth tasks: estimate, truth, error and time per task, then a summary.

    A task is within tolerance when |estimate − truth| ≤ max(0.1 nats, 10 %).
    """
    from privlab.errors import ConfigError
    from privlab.measure.mi.calibration import calibrate as run_calibration
    from privlab.measure.mi.calibration import summarize, table_from_rows

    names = [e.strip() for e in estimators.split(",") if e.strip()]
    if not names:
        raise ConfigError("--estimators needs at least one name")
    if n < 10:
        raise ConfigError(f"--n must be ≥ 10, got {n}")
    if k < 1:
        raise ConfigError(f"--k must be ≥ 1, got {k}")

    def show(row: dict) -> None:
        if not (quiet or json_out):
            err = row["error"] or f"error {row['abs_error']:.3g} ({'ok' if row['within_tolerance'] else 'off'})"
            typer.echo(
                f"  {row['task']:<34} {row['estimator']:<16} {row['estimate']:>9.4g} / {row['truth']:<9.4g} "
                f"{err}  {row['seconds']:.2g} s",
                err=True,
            )

    rows = run_calibration(
        names, n=n, max_dim=max_dim, tasks=task or None, families=family or None, seed=seed, k=k, on_row=show
    )
    summary = summarize(rows)
    if write_table:
        _write_table(table_from_rows(rows))
    if markdown is not None:
        from privlab.store import replace_section

        replace_section(markdown, "mi-calibration", render_calibration_markdown(rows, summary, n, max_dim))
    if json_out:
        emit_json({"n": n, "seed": seed, "tolerance": "max(0.1 nats, 10 %)", "rows": rows, "summary": summary})
        return
    from privlab.cli._common import print_table

    print_table(
        f"MI calibration: n = {n}, {len({r['task'] for r in rows})} tasks (within = |error| ≤ max(0.1 nats, 10 %))",
        ["estimator", "tasks", "within", "mean |error| nats", "max |error| nats", "seconds"],
        [
            [e, s["tasks"], f"{s['within']} ({s['within_fraction']:.0%})", s["mae"], s["max_abs_error"], s["seconds"]]
            for e, s in summary.items()
        ],
    )


def render_calibration_markdown(rows: list[dict], summary: dict, n: int, max_dim: int | None) -> str:
    """Markdown section: the summary table, then every task's estimates side by side."""
    est_names = list(summary)
    lines = [
        "## Mutual-information calibration",
        "",
        f"Ground-truth tasks of `privlab.measure.mi.tasks` (d_x + d_z ≤ {max_dim or 'any'}), n = {n} samples each; "
        "an estimate is *within* when |estimate − truth| ≤ max(0.1 nats, 10 %). Regenerate with "
        f"`privlab mi calibrate --n {n}{f' --max-dim {max_dim}' if max_dim else ''} --markdown BENCHMARKS.md`.",
        "",
        "| estimator | tasks | within | mean abs error (nats) | max abs error | total seconds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for e, s in summary.items():
        lines.append(
            f"| `{e}` | {s['tasks']} | {s['within']} ({s['within_fraction']:.0%}) | {s['mae']:.3f} | "
            f"{s['max_abs_error']:.3f} | {s['seconds']:.1f} |"
        )
    lines += [
        "",
        "| task | d_x + d_z | truth | " + " | ".join(f"`{e}`" for e in est_names) + " |",
        "|---|---:|---:|" + "---:|" * len(est_names),
    ]
    by_task: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_task.setdefault(r["task"], {})[r["estimator"]] = r
    for t, rs in by_task.items():
        any_row = next(iter(rs.values()))
        cells = []
        for e in est_names:
            r = rs.get(e)
            cells.append(
                "—" if r is None or r["error"] else f"{r['estimate']:.3f}{'' if r['within_tolerance'] else ' ✗'}"
            )
        lines.append(
            f"| {t} | {any_row['dim_x'] + any_row['dim_z']} | {any_row['truth']:.3f} | " + " | ".join(cells) + " |"
        )
    lines += ["", "✗ = outside the tolerance."]
    return "\n".join(lines)


def _write_table(lines: list[dict]) -> None:
    """Merge calibration lines into the shipped table (src/privlab/measure/mi/calibration_table.json)."""
    import json

    from privlab.measure.mi.calibration_table import table_path
    from privlab.store import atomic_write_text

    path = table_path()
    old = json.loads(path.read_text("utf-8"))["lines"] if path.is_file() else []
    keys = {(ln["estimator"], ln["n"], ln["dims"]) for ln in lines}
    merged = [ln for ln in old if (ln["estimator"], ln["n"], ln["dims"]) not in keys] + lines
    merged.sort(key=lambda ln: (ln["estimator"], ln["n"], ln["dims"]))
    doc = {
        "description": "MI estimator calibration on privlab.measure.mi.tasks; made by privlab mi calibrate "
        "--write-table",
        "tolerance": "max(0.1 nats, 10 %)",
        "lines": merged,
    }
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")
    typer.echo(f"calibration table updated: {path}", err=True)


@mi_app.command(epilog=examples("privlab mi tasks", "privlab mi tasks --max-dim 10 --json"))
@handle_errors
def tasks(
    max_dim: int | None = typer.Option(None, "--max-dim", max=10_000, help="only tasks with d_x + d_z ≤ this"),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List the ground-truth MI tasks (known MI) that calibrate runs."""
    from privlab.cli._common import print_table
    from privlab.measure.mi.tasks import suite

    ts = suite(max_dim=max_dim)
    if not ts:
        from privlab.errors import ConfigError

        raise ConfigError(f"no ground-truth MI task has d_x + d_z ≤ {max_dim}; raise --max-dim (the smallest is 2)")
    rows = [
        {
            "name": t.name,
            "family": t.family,
            "transform": t.transform,
            "dim_x": t.dim_x,
            "dim_z": t.dim_z,
            "mi": t.mi,
            "description": t.description,
        }
        for t in ts
    ]
    if json_out:
        emit_json({"tasks": rows})
        return
    print_table(
        "ground-truth MI tasks (nats)",
        ["name", "dims", "MI", "description"],
        [[r["name"], f"{r['dim_x']}+{r['dim_z']}", r["mi"], r["description"]] for r in rows],
    )
