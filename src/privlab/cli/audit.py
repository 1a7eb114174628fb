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


def _did_you_mean(name: str, choices: Any) -> str:
    """`` Did you mean 'x'?`` for the closest of ``choices`` to ``name``, or an empty string."""
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _attack_list(text: str | None, with_references: bool) -> list[str]:
    """The attacks of ``--attacks`` (comma-separated), or every one the inputs allow; names checked."""
    from privlab.attack.mia import MIA_ATTACKS
    from privlab.errors import ConfigError
    from privlab.pipelines.mia import audit_attacks, needs_references

    if text is None:
        return audit_attacks(with_references)
    known = audit_attacks(True)  # every registered MIA attack, the usual ones first
    names = [a.strip() for a in text.split(",") if a.strip()]
    if not names:
        raise ConfigError(f"--attacks: no attack given; choose among {', '.join(known)}")
    for a in names:
        if a not in MIA_ATTACKS:
            hint = _did_you_mean(a, MIA_ATTACKS)
            raise ConfigError(f"--attacks: unknown membership-inference attack {a[:60]!r}.{hint} "
                              f"Registered: {', '.join(known)}")  # fmt: skip
        if needs_references(a) and not with_references:
            free = ", ".join(audit_attacks(False))
            raise ConfigError(f"--attacks: {a} needs reference models; pass --references DIR (see docs/mia.md) "
                              f"or choose among the reference-free attacks: {free}")  # fmt: skip
    return list(dict.fromkeys(names))


def _attack_params(items: list[str], names: list[str]) -> dict[str, dict[str, Any]]:
    """The attack settings of ``--param ATTACK.KEY=VALUE`` (repeatable; VALUE read as a YAML scalar, a later one of
    the same key wins): attack → {key: value}, each checked against the attack's config class."""
    import yaml

    from privlab.attack.base import ATTACKS, attack_config
    from privlab.attack.mia import MIA_ATTACKS
    from privlab.config import ambiguous_scalar
    from privlab.errors import ConfigError
    from privlab.pipelines.mia import audit_attacks

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        src = f"--param {item[:80]!r}" if len(item) <= 80 else f"--param {item[:77]!r}..."
        head, eq, raw = item.partition("=")
        attack, dot, key = head.strip().partition(".")
        attack, key = attack.strip(), key.strip()
        if not (eq and dot and attack and key):
            raise ConfigError(f"{src}: expected ATTACK.KEY=VALUE, e.g. lira-online.shifts=2 or rmia.offline=true")
        if attack not in MIA_ATTACKS:
            hint = _did_you_mean(attack, MIA_ATTACKS)
            raise ConfigError(f"{src}: unknown membership-inference attack {attack[:60]!r}.{hint} "
                              f"Registered: {', '.join(audit_attacks(True))}")  # fmt: skip
        if attack not in names:
            raise ConfigError(f"{src}: {attack} is not among the attacks run ({', '.join(names)}); add it to "
                              "--attacks")  # fmt: skip
        keys = list(ATTACKS.entry(attack).meta["config"].model_fields)
        if not keys:
            raise ConfigError(f"{src}: {attack} has no settings")
        allowed = f"settings of {attack}: {', '.join(keys)}"
        if key not in keys:
            raise ConfigError(f"{src}: {attack} has no setting {key[:60]!r}.{_did_you_mean(key, keys)} The {allowed}")
        why = ambiguous_scalar(raw.strip())
        if why:
            raise ConfigError(f"{src}: {why}")
        try:
            value = yaml.safe_load(raw) if raw.strip() != "" else ""
        except (yaml.YAMLError, RecursionError):
            value = raw
        trial = {**out.get(attack, {}), key: value}
        try:
            cfg = attack_config(attack, trial)
        except ConfigError as e:
            raise ConfigError(f"{src}: {e}; {allowed}") from None
        out[attack] = {k: getattr(cfg, k) for k in trial}  # the values as the config reads them
    return out


@audit_app.command(
    "mia",
    epilog=examples(
        "privlab audit mia --model runs/t1/train-xxxx/model.safetensors --dataset digits --members members.npy",
        "privlab audit mia --model my_lenet.safetensors --arch lenet5 --members members.npy --json",
        "privlab audit mia --model target.safetensors --arch lenet5 --members members.npy --references refs/ "
        "--attacks loss,lira-online,rmia --scores scores.csv",
        "privlab audit mia --model target.safetensors --arch lenet5 --members members.npy --references refs/ "
        "--attacks lira-online,rmia --param lira-online.shifts=2 --param rmia.offline=true --scores scores.parquet",
    ),
)
@handle_errors
def audit_mia(
    model: Path = typer.Option(
        ...,
        "--model",
        help="privlab checkpoint (model.safetensors of privlab train), or with --arch a plain "
        "safetensors state dict (safetensors.torch.save_file(model.state_dict(), FILE))",
    ),
    arch: str | None = typer.Option(
        None,
        "--arch",
        help="registered architecture (privlab models) of a state dict: built with build_model "
        "for the data set's image shape and classes, then the file is loaded into it",
    ),
    normalize: bool | None = typer.Option(
        None,
        "--normalize/--no-normalize",
        help="with --arch: put a normalize layer with the data set's mean/std "
        "first (the model was trained on standardised inputs) / none (it takes [0, 1] images); default: the file "
        "decides (a normalize layer exactly when it holds normalize.mean and normalize.std)",
    ),
    dataset: str = typer.Option("digits", "--dataset", help="registered data set; records = its --split"),
    members: Path = typer.Option(..., "--members", help=".npy/.npz/.safetensors: 0/1 mask or member indices"),
    split: str = typer.Option("train", "--split", help="split holding the candidates"),
    references: Path | None = typer.Option(
        None,
        "--references",
        help="folder of reference models (same kind of file as --model): NAME.safetensors + "
        "NAME.members.npy (0/1 mask of the candidates or member indices); enables lira-online, lira-offline, rmia",
    ),
    attacks: str | None = typer.Option(
        None,
        "--attacks",
        help="comma-separated MIA attacks (default: all that the inputs allow: loss, confidence, "
        "entropy, modified-entropy, label-only; with --references also lira-online, lira-offline, rmia)",
    ),
    param: list[str] = typer.Option(
        [],
        "--param",
        help="an attack setting ATTACK.KEY=VALUE (repeatable; VALUE read as YAML), e.g. "
        "lira-online.shifts=2, lira-online.flip=true, rmia.offline=true, rmia.gamma=1.5 (see docs/mia.md)",
    ),
    scores: Path | None = typer.Option(
        None,
        "--scores",
        help="write per-record scores to this file, CSV or Parquet by its suffix (.csv, .parquet): "
        "index, label, member, one column per attack",
    ),
    data_root: DataRootOption = None,
    json_out: JsonOption = False,
) -> None:
    """Membership inference against a model trained elsewhere: reference-free attacks, and with --references also
    LiRA and RMIA (population = the data set's other split). Metrics per attack: AUC, balanced accuracy, TPR at
    0.1 % and 1 % FPR."""
    from privlab.data import load_dataset
    from privlab.errors import ConfigError
    from privlab.pipelines.mia import audit_model, check_scores_path, load_references, read_membership, write_scores
    from privlab.victim import load_model_file

    names = _attack_list(attacks, references is not None)
    settings = _attack_params(param, names)
    if split not in ("train", "test"):
        raise ConfigError(f"--split: must be 'train' or 'test', got {split[:60]!r}")
    if scores is not None:
        check_scores_path(scores)
    data = load_dataset(dataset, split, root=data_root)

    def load(path: Path) -> Any:
        return load_model_file(path, data, dataset=dataset, arch=arch, normalize=normalize)

    net = load(model)
    truth = read_membership(members, len(data))
    refs, ref_in, population = None, None, None
    if references is not None:
        refs, ref_in = load_references(references, len(data), load)
        if "rmia" in names:
            population = load_dataset(dataset, "test" if split == "train" else "train", root=data_root)
    results = audit_model(net, data, truth, names, references=refs, reference_in=ref_in, population=population,
                          params=settings)  # fmt: skip
    rows = {name: r["score"].metrics() for name, r in results.items()}
    if scores is not None:
        write_scores(scores, data.labels, truth, results)
    if json_out:
        emit_json({"model": str(model), "arch": arch, "dataset": dataset, "split": split, "references": len(refs or []),
                   "params": settings, "scores": str(scores) if scores else None, "attacks": rows})  # fmt: skip
        return
    cols = ["auc", "balanced_accuracy", "tpr_at_fpr_0.001", "tpr_at_fpr_0.01"]
    print_table("membership inference", ["attack", *cols], [[k, *(v[c] for c in cols)] for k, v in rows.items()])
    if scores is not None:
        typer.echo(f"per-record scores: {scores}", err=True)


@audit_app.command(
    "dp",
    epilog=examples(
        "privlab audit dp --preset smoke --out runs/audit",
        "privlab audit dp --epsilon 1 --epsilon 4 --epsilon 16 --canaries 200 --out runs/audit --json",
        "privlab audit dp --preset smoke --mode several-runs --runs 64 --out runs/audit-runs",
        "privlab audit dp --canary gradient --canaries 1000 --out runs/audit-white-box",
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
    canary: str | None = typer.Option(
        None,
        "--canary",
        help="mislabel or ood (input-space records, black box) or gradient (Dirac gradient canaries "
        "inserted into DP-SGD's steps, white box)",
    ),
    mode: str | None = typer.Option(
        None,
        "--mode",
        help="one-run (m canaries, one training; the default) or several-runs (one canary, --runs "
        "trainings, Clopper–Pearson)",
    ),
    runs: int | None = typer.Option(
        None, "--runs", min=4, max=10_000, help="several-runs: number of trainings (half with the canary)"
    ),
    force: ForceOption = False,
    data_root: DataRootOption = None,
    quiet: QuietOption = False,
    json_out: JsonOption = False,
) -> None:
    """Audit DP-SGD: an empirical ε lower bound beside the accountant's ε, per ε — from one training with many
    canaries (one-run, Steinke et al. 2023) or from --runs trainings with and without one canary (several-runs,
    Jagielski et al. 2020)."""
    from privlab.cli.run import finish_runs
    from privlab.run import execute, load_spec

    overrides: dict[str, Any] = {}
    if canaries is not None:
        overrides["canaries"] = canaries
    if canary is not None:
        overrides["canary"] = canary
    if mode is not None:
        overrides["mode"] = mode
    if runs is not None:
        overrides["runs"] = runs
    if epsilon:
        overrides["sweep"] = {"target.epsilon": list(epsilon)}
    spec = load_spec(experiment="audit-dp", preset=preset, overrides=overrides)
    with contextlib.redirect_stdout(sys.stderr) if json_out else contextlib.nullcontext():
        outcomes = execute(spec, out, force=force, data_root=data_root, quiet=quiet or json_out, keep_going=True)
    finish_runs(outcomes, out, json_out)
