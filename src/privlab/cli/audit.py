"""``privlab audit``: membership inference against a model trained elsewhere, and empirical DP auditing."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import typer

from privlab.cli import app
from privlab.cli._common import (
    DataRootOption,
    ForceOption,
    JsonOption,
    OutOption,
    QuietOption,
    emit_json,
    examples,
    handle_errors,
    print_table,
)

audit_app = typer.Typer(
    help="Membership inference on a given model; empirical lower bounds on ε (privacy auditing).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(audit_app, name="audit")

_NO_REF_ATTACKS = ("loss", "confidence", "entropy", "modified-entropy", "label-only")


def read_members(path: Path, n: int) -> Any:
    """``n`` membership bools from a file: a bool/0-1 mask of length ``n`` or a list of member indices (< n)."""
    import numpy as np

    from privlab.errors import ConfigError
    from privlab.store.artifacts import load_array

    a = load_array(path).reshape(-1)
    if a.dtype == bool or (a.size == n and set(np.unique(a).tolist()) <= {0, 1}):
        if a.size != n:
            raise ConfigError(f"{path}: a membership mask of {a.size} entries, but the data set has {n} records")
        return a.astype(bool)
    if not np.issubdtype(a.dtype, np.integer) or a.size == 0 or a.min() < 0 or a.max() >= n:
        raise ConfigError(
            f"{path}: member indices must be integers in [0, {n}) (the data set has {n} records); "
            "give a 0/1 mask of that length or the indices of the members"
        )
    mask = np.zeros(n, bool)
    mask[a] = True
    return mask


@audit_app.command(
    "mia",
    epilog=examples(
        "privlab audit mia --model runs/t1/train-xxxx/model.safetensors --dataset digits --members members.npy",
    ),
)
@handle_errors
def audit_mia(
    model: Path = typer.Option(..., "--model", help="privlab checkpoint (model.safetensors of privlab train)"),
    dataset: str = typer.Option("digits", "--dataset", help="registered data set; records = its train split"),
    members: Path = typer.Option(..., "--members", help=".npy/.npz/.safetensors: 0/1 mask or member indices"),
    split: str = typer.Option("train", "--split", help="split holding the candidates"),
    data_root: DataRootOption = None,
    json_out: JsonOption = False,
) -> None:
    """Reference-free attacks (LOSS, confidence, entropy, modified entropy, label-only) against a checkpoint."""
    from privlab.attack.mia import MIAObservation, QueryModel, run_mia_attack
    from privlab.data import load_dataset
    from privlab.measure.mia import score_attack
    from privlab.victim import load_checkpoint

    net, meta = load_checkpoint(model)
    data = load_dataset(dataset, split, root=data_root)
    if tuple(meta["in_shape"]) != tuple(data.shape) or meta["num_classes"] != data.num_classes:
        from privlab.errors import ConfigError

        raise ConfigError(
            f"{model}: trained on {meta['in_shape']} images with {meta['num_classes']} classes, but "
            f"{dataset} has {list(data.shape)} with {data.num_classes}; pass its data set"
        )
    truth = read_members(members, len(data))
    obs = MIAObservation(data=data.images, labels=data.labels, target=QueryModel(net))
    rows = {name: score_attack(run_mia_attack(name, obs).numpy(), truth).metrics() for name in _NO_REF_ATTACKS}
    if json_out:
        emit_json({"model": str(model), "dataset": dataset, "attacks": rows})
        return
    cols = ["auc", "balanced_accuracy", "tpr_at_fpr_0.001", "tpr_at_fpr_0.01"]
    print_table("membership inference", ["attack", *cols], [[k, *(v[c] for c in cols)] for k, v in rows.items()])


@audit_app.command(
    "dp",
    epilog=examples(
        "privlab audit dp --preset smoke --out runs/audit",
        "privlab audit dp --epsilon 1 --epsilon 4 --epsilon 16 --canaries 200 --out runs/audit --json",
    ),
)
@handle_errors
def audit_dp(
    out: OutOption = Path("runs"),
    preset: str = typer.Option("cpu", "--preset", "-p", help="audit-dp preset: smoke, cpu"),
    epsilon: list[float] = typer.Option(
        [], "--epsilon", "-e", min=1e-3, max=1e4, help="DP-SGD ε to audit (repeatable: a sweep)"
    ),
    canaries: int | None = typer.Option(None, "--canaries", min=1, max=100_000, help="number of canaries m"),
    canary: str | None = typer.Option(None, "--canary", help="mislabel or ood"),
    force: ForceOption = False,
    data_root: DataRootOption = None,
    quiet: QuietOption = False,
    json_out: JsonOption = False,
) -> None:
    """One-run audit of DP-SGD (Steinke et al. 2023): ε lower bound beside the accountant's ε, per ε."""
    from privlab.cli.run import finish_runs
    from privlab.run import execute, load_spec

    overrides: dict[str, Any] = {}
    if canaries is not None:
        overrides["canaries"] = canaries
    if canary is not None:
        overrides["canary"] = canary
    if epsilon:
        overrides["sweep"] = {"target.epsilon": list(epsilon)}
    spec = load_spec(experiment="audit-dp", preset=preset, overrides=overrides)
    with contextlib.redirect_stdout(sys.stderr) if json_out else contextlib.nullcontext():
        outcomes = execute(spec, out, force=force, data_root=data_root, quiet=quiet or json_out, keep_going=True)
    finish_runs(outcomes, out, json_out)
