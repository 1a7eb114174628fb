"""The ``mia`` experiment: train a target (plain, DP-SGD or on LDP-privatised data) on a seeded half of a data
pool, train reference models on seeded random halves of the same pool, run every membership-inference attack and
measure it against the truth (ROC AUC, balanced accuracy, TPR at 0.1 % / 1 % FPR).

Target and reference models go through the common victim stage (:func:`privlab.victim.train_or_load`: one cache,
``OUT/cache/models/<role>-<key>.safetensors`` with roles ``mia-target`` / ``mia-reference``, keyed by everything that
determines them, one bad-entry policy) and are reused across attacks, targets and runs; with ``workers > 1`` the
references train in a process pool, one torch thread each.

:func:`audit_model` runs the same attacks on a model trained elsewhere (``privlab audit mia``), with reference
models read from a folder by :func:`load_references` (``NAME.safetensors`` + ``NAME.members.npy``).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from privlab import victim
from privlab.attack.mia import MIA_ATTACKS, MIAObservation, QueryModel, run_mia_attack
from privlab.config import ExperimentSpec, Spec
from privlab.context import Progress, RunContext
from privlab.data import load_dataset
from privlab.data.base import LabelledImages
from privlab.data.spec import DatasetSpec
from privlab.errors import ConfigError
from privlab.measure.mia import roc_curve, score_attack
from privlab.models import ModelName, build_model
from privlab.pipelines import PIPELINES
from privlab.store import MetricRecord
from privlab.store.artifacts import atomic_write_bytes, atomic_write_text
from privlab.train import TrainConfig, evaluate, fit

__all__ = [
    "REFERENCE_MEMBERS_SUFFIX",
    "SCORE_SUFFIXES",
    "AttackSpec",
    "MIASpec",
    "TargetSpec",
    "audit_attacks",
    "audit_model",
    "check_scores_path",
    "initial_model",
    "load_pool",
    "load_references",
    "needs_references",
    "read_membership",
    "run_mia",
    "scores_columns",
    "scores_csv",
    "scores_parquet",
    "train_or_load",
    "write_scores",
]


class TargetSpec(Spec):
    """How the target model is trained: plainly, with DP-SGD at ``epsilon``, or on LDP-privatised images."""

    kind: Literal["plain", "dpsgd", "ldp"] = Field(default="plain", description="training-time protection")
    epsilon: float | None = Field(default=None, gt=0, description="dpsgd: ε per example; ldp: ε per image")
    delta: float = Field(default=1e-5, gt=0, lt=1, description="dpsgd: δ")
    mechanism: str = Field(default="laplace", description="ldp: pixel mechanism (laplace, gaussian, rr)")
    dpsgd_lr: float = Field(default=1.0, gt=0, description="dpsgd: SGD learning rate")
    dpsgd_batch_size: int = Field(default=64, ge=1, description="dpsgd: expected batch size")
    max_grad_norm: float = Field(default=1.0, gt=0, description="dpsgd: clipping norm")


class AttackSpec(Spec):
    """One attack to run: a registered MIA attack, a label for its metrics and its config values."""

    attack: str = Field(description=f"registered MIA attack ({', '.join(sorted(MIA_ATTACKS))})")
    label: str | None = Field(default=None, description="metric prefix (default: the attack name)")
    params: dict[str, Any] = Field(default_factory=dict, description="the attack's config values")


def _default_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(attack=a)
        for a in (
            "loss",
            "confidence",
            "entropy",
            "modified-entropy",
            "lira-online",
            "lira-offline",
            "rmia",
            "label-only",
        )
    ]


class MIASpec(ExperimentSpec):
    """Spec of the ``mia`` experiment."""

    experiment: Literal["mia"] = "mia"
    dataset: DatasetSpec = Field(default_factory=DatasetSpec, description="pool = train split; population = test")
    model: ModelName = Field(default="lenet5", description="registered model of target and references")
    train: TrainConfig = Field(default_factory=TrainConfig, description="training of the references (and target)")
    target: TargetSpec = Field(default_factory=TargetSpec)
    references: int = Field(default=8, ge=1, le=1024, description="reference models on seeded random halves")
    workers: int = Field(default=1, ge=1, le=64, description="processes training references (1: in-process)")
    attacks: list[AttackSpec] = Field(default_factory=_default_attacks, min_length=1)
    top_records: int = Field(default=16, ge=0, le=256, description="most exposed records saved for the report")


# ------------------------------------------------------------------------------------------------ train or load
def _fitter(
    train: TrainConfig,
    target: TargetSpec,
    seed: int,
    device: torch.device | str,
    dirac_canaries: torch.Tensor | None = None,
) -> Callable[[nn.Module, LabelledImages], dict[str, Any]]:
    """The victim stage's ``fit_fn`` for ``target``: plain ``fit``, DP-SGD (with white-box gradient canaries when
    ``dirac_canaries`` is given), or ``fit`` on LDP-privatised images."""
    if target.kind in ("dpsgd", "ldp") and target.epsilon is None:
        raise ConfigError(f"target.kind: {target.kind} needs target.epsilon (e.g. --set target.epsilon=1)")
    if dirac_canaries is not None and target.kind != "dpsgd":
        raise ConfigError(
            f"gradient canaries are inserted into DP-SGD's steps; target.kind is {target.kind}, "
            "set target.kind: dpsgd (and target.epsilon)"
        )

    def fit_fn(model: nn.Module, data: LabelledImages) -> dict[str, Any]:
        if target.kind == "dpsgd":
            from privlab.protect.dpsgd import DPSGDConfig, train_dpsgd

            cfg = DPSGDConfig(
                epsilon=target.epsilon,
                delta=target.delta,
                epochs=train.epochs,
                lr=target.dpsgd_lr,
                batch_size=target.dpsgd_batch_size,
                max_grad_norm=target.max_grad_norm,
            )
            trained, res = train_dpsgd(model, data, cfg, seed=seed, device=device, dirac_canaries=dirac_canaries)
            if trained is not model:
                model.load_state_dict(trained.state_dict())
            facts = {"epsilon": res.epsilon, "delta": res.delta, "noise_multiplier": res.noise_multiplier}
            return {**facts, "canary_insertions": res.canary_insertions} if dirac_canaries is not None else facts
        if target.kind == "ldp":
            from privlab.protect.ldp_pixel import build_pixel_mechanism

            mech = build_pixel_mechanism(target.mechanism, epsilon=target.epsilon)
            data = data.with_images(mech.privatize(data.images, torch.Generator().manual_seed(seed)))
        fit(model, data, train, seed=seed, device=device)
        return {"epsilon": target.epsilon}

    return fit_fn


def _factory(data: LabelledImages, model_name: str, target: TargetSpec) -> Callable[[], nn.Module]:
    def factory() -> nn.Module:
        model = build_model(model_name, data.num_classes, data.shape, mean=data.mean, std=data.std)
        if target.kind == "dpsgd":
            from privlab.protect.dpsgd import prepare_model

            model = prepare_model(model)[0]
        return model

    return factory


def initial_model(data: LabelledImages, model_name: str, target: TargetSpec, *, seed: int) -> nn.Module:
    """The untrained model :func:`train_or_load` starts from for the same ``data``, ``model_name``, ``target`` and
    ``seed`` (the same initial weights, on the CPU): θ₀ of a white-box audit."""
    torch.manual_seed(seed)
    return _factory(data, model_name, target)()


def train_or_load(
    ctx: RunContext,
    role: str,
    data: LabelledImages,
    idx: torch.Tensor,
    model_name: str,
    train: TrainConfig,
    target: TargetSpec,
    *,
    seed: int,
    dataset_key: dict[str, Any],
    dirac_canaries: torch.Tensor | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """``(model trained on data.subset(idx) as target says, facts of its training)`` via the common victim stage
    (:func:`privlab.victim.train_or_load`, cache ``OUT/cache/models/<role>-<key>.safetensors``); ``facts`` has
    ``epsilon`` (the accountant's for DP-SGD, the LDP budget, or None).

    ``dirac_canaries``: flat coordinates of white-box gradient canaries inserted into DP-SGD
    (:func:`privlab.protect.dpsgd.train_dpsgd`); they enter the cache key (SHA-256 of the indices)."""
    key_parts = {
        "data": dataset_key,
        "idx": hashlib.sha256(idx.numpy().tobytes()).hexdigest(),
        "model": model_name,
        "train": train.model_dump(mode="json"),
        "target": target.model_dump(mode="json"),
        "seed": seed,
    }
    if dirac_canaries is not None:
        coords = dirac_canaries.to(torch.int64).contiguous()
        key_parts["dirac_canaries"] = {
            "count": int(coords.numel()),
            "sampling": "poisson-rate",
            "sha256": hashlib.sha256(coords.numpy().tobytes()).hexdigest(),
        }
    model, info = victim.train_or_load(
        ctx,
        role=role,
        model_factory=_factory(data, model_name, target),
        train_data=data.subset(idx),
        train_config=train,
        key_parts=key_parts,
        init_seed=seed,
        fit_fn=_fitter(train, target, seed, ctx.device, dirac_canaries),
    )
    return model, info["fit"]


def _worker_context(out: Path) -> RunContext:
    """A run context for a process-pool worker: the victim stage uses only its ``out``, ``seed``, ``device`` and
    ``progress`` (no store is opened in the worker)."""
    return RunContext(
        run_id="reference-worker",
        out=out,
        run_dir=out,
        store=None,  # type: ignore[arg-type]
        progress=Progress(quiet=True),
    )


def _reference_job(args: tuple[Any, ...]) -> None:
    """Process-pool worker: one torch thread, train (or find) one reference model in the cache."""
    torch.set_num_threads(1)
    out, ds, idx, model_name, train, seed, root = args
    pool, _ = load_pool(ds, None if root is None else Path(root), False, seed=0)
    train_or_load(
        _worker_context(Path(out)),
        "mia-reference",
        pool,
        idx,
        model_name,
        train,
        TargetSpec(),
        seed=seed,
        dataset_key=ds.model_dump(mode="json"),
    )


# ------------------------------------------------------------------------------------------------------ steps
def load_pool(
    ds: DatasetSpec, root: Path | None, download: bool, *, seed: int
) -> tuple[LabelledImages, LabelledImages]:
    """``(candidate pool = the train split, population = the test split)`` of the data set."""
    kw = {"root": root, "download": download, "resize": ds.resize, "seed": seed}
    return (
        load_dataset(ds.name, "train", limit=ds.train_limit, **kw),
        load_dataset(ds.name, "test", limit=ds.test_limit, **kw),
    )


def halves(n: int, count: int, seed: int) -> torch.Tensor:
    """``count×n`` bools: seeded random halves (each row holds exactly ⌊n/2⌋ records)."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.zeros(count, n, dtype=torch.bool)
    for r in range(count):
        rows[r, torch.randperm(n, generator=g)[: n // 2]] = True
    return rows


def train_references(spec: MIASpec, ctx: RunContext, pool: LabelledImages) -> tuple[list[nn.Module], torch.Tensor]:
    """The reference models (``spec.references`` of them) and their ``R×N`` membership matrix."""
    ref_in = halves(len(pool), spec.references, seed=10_000 + spec.seed)
    root = None if ctx.data_root is None else str(ctx.data_root)
    jobs = [
        (str(ctx.out), spec.dataset, torch.nonzero(ref_in[r]).view(-1), spec.model, spec.train, 1 + r, root)
        for r in range(spec.references)
    ]
    if spec.workers > 1:
        import multiprocessing as mp

        with ProcessPoolExecutor(spec.workers, mp_context=mp.get_context("spawn")) as ex:
            list(ex.map(_reference_job, jobs))
    models = []
    with ctx.progress.task("references", total=len(jobs)) as advance:
        for job in jobs:
            models.append(
                train_or_load(
                    ctx,
                    "mia-reference",
                    pool,
                    job[2],
                    spec.model,
                    spec.train,
                    TargetSpec(),
                    seed=job[5],
                    dataset_key=spec.dataset.model_dump(mode="json"),
                )[0]
            )
            advance(1)
    return models, ref_in


def run_attacks(spec: MIASpec, obs: MIAObservation, members: np.ndarray) -> dict[str, dict[str, Any]]:
    """Every attack of ``spec``: label → scores, score, ROC and seconds."""
    return score_attacks(spec.attacks, obs, members)


def score_attacks(attacks: list[AttackSpec], obs: MIAObservation, members: np.ndarray) -> dict[str, dict[str, Any]]:
    """Run each attack on ``obs`` and measure it against ``members`` (``N`` bools): label → ``scores`` (``N``),
    ``score`` (:class:`~privlab.measure.mia.MIAScore`), ROC ``fpr``/``tpr`` and ``seconds``."""
    import time

    out: dict[str, dict[str, Any]] = {}
    for a in attacks:
        t0 = time.perf_counter()
        scores = run_mia_attack(a.attack, obs, **a.params).numpy()
        seconds = time.perf_counter() - t0
        fpr, tpr, _ = roc_curve(scores, members)
        out[a.label or a.attack] = {
            "scores": scores,
            "score": score_attack(scores, members),
            "fpr": fpr,
            "tpr": tpr,
            "seconds": seconds,
        }
    return out


def scores_columns(
    labels: torch.Tensor, members: np.ndarray, results: dict[str, dict[str, Any]]
) -> dict[str, np.ndarray]:
    """Per-record scores as columns of ``N`` values: ``index``, ``label`` (int64), ``member`` (int8, 0/1), then one
    float64 column per attack label (higher = more likely a member), in the order of ``results``."""
    n = len(members)
    cols = {"index": np.arange(n, dtype=np.int64), "label": labels[:n].numpy().astype(np.int64),
            "member": np.asarray(members).astype(np.int8)}  # fmt: skip
    for k, r in results.items():
        cols[k] = np.asarray(r["scores"], dtype=np.float64)
    return cols


def scores_parquet(labels: torch.Tensor, members: np.ndarray, results: dict[str, dict[str, Any]]) -> bytes:
    """Per-record scores as a Parquet file (bytes): the columns of :func:`scores_columns` (the attack labels as
    given, the scores at full float64 precision)."""
    from privlab.store.export import parquet_bytes

    return parquet_bytes(scores_columns(labels, members, results))


SCORE_SUFFIXES = (".csv", ".parquet")
"""The file formats of per-record scores, picked by the file's suffix."""


def check_scores_path(path: Path, option: str = "--scores") -> None:
    """Refuse a scores path that is a folder or whose suffix is not one of :data:`SCORE_SUFFIXES` (ConfigError)."""
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a folder; give the path of a .csv or .parquet file to write")
    if path.suffix.lower() not in SCORE_SUFFIXES:
        got = repr(path.suffix[:20]) if path.suffix else "no suffix"
        raise ConfigError(f"{option} {path}: the suffix picks the format; use {' or '.join(SCORE_SUFFIXES)} "
                          f"(got {got})")  # fmt: skip


def write_scores(
    path: str | Path, labels: torch.Tensor, members: np.ndarray, results: dict[str, dict[str, Any]]
) -> Path:
    """Write per-record scores atomically to ``path``, as CSV (:func:`scores_csv`) or Parquet
    (:func:`scores_parquet`) by its suffix.

    Raises:
        ConfigError: a folder, or a suffix other than ``.csv`` / ``.parquet``.
    """
    p = Path(path)
    check_scores_path(p)
    if p.suffix.lower() == ".parquet":
        return atomic_write_bytes(p, scores_parquet(labels, members, results))
    return atomic_write_text(p, scores_csv(labels, members, results))


def scores_csv(labels: torch.Tensor, members: np.ndarray, results: dict[str, dict[str, Any]]) -> str:
    """Per-record scores as CSV text: ``index, label, member`` (0/1), then one column per attack label (6
    significant digits); header cells are CSV-safe (:func:`privlab.store.export.csv_cell`)."""
    from privlab.store.export import csv_cell

    buf = io.StringIO()
    w = csv.writer(buf)
    names = list(results)
    w.writerow(["index", "label", "member", *(csv_cell(k) for k in names)])
    for i in range(len(members)):
        w.writerow([i, int(labels[i]), int(members[i]), *(f"{results[k]['scores'][i]:.6g}" for k in names)])
    return buf.getvalue()


def log_results(ctx: RunContext, results: dict[str, dict[str, Any]], target_acc: float, meta: dict[str, Any]) -> None:
    """Per attack metrics ``<label>/auc`` …; headline ``mia_auc`` / ``mia_tpr_at_fpr_0.01`` (best attack)."""
    recs = [MetricRecord("test_accuracy", target_acc, None, "fraction", "utility", True)]
    for label, r in results.items():
        for k, v in r["score"].metrics().items():
            recs.append(MetricRecord(f"{label}/{k}", v, None, "fraction", "privacy", False))
        recs.append(MetricRecord(f"{label}/seconds", r["seconds"], None, "s", "cost", False))
    for k in ("auc", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001"):
        recs.append(
            MetricRecord(
                f"mia_{k}", max(r["score"].metrics()[k] for r in results.values()), None, "fraction", "privacy", False
            )
        )
    if meta.get("epsilon") is not None:
        recs.append(MetricRecord("epsilon", float(meta["epsilon"]), None, "nats", "privacy", False))
    ctx.log_many(recs)


def save_results(
    ctx: RunContext, spec: MIASpec, pool: LabelledImages, members: np.ndarray, results: dict[str, dict[str, Any]]
) -> None:
    """Per-record scores (CSV and Parquet), ROC curves and scores (JSON), the most exposed records (safetensors)."""
    from privlab.store.artifacts import sha256_file

    for kind, name in (("mia_scores", "scores.csv"), ("mia_scores_parquet", "scores.parquet")):
        path = write_scores(ctx.run_dir / name, pool.labels, members, results)
        ctx.store.add_artifact(ctx.run_id, kind, path, sha256_file(path), {"format": path.suffix[1:]})
    ctx.save_json(
        "mia_roc",
        "roc.json",
        {k: {"fpr": r["fpr"].tolist(), "tpr": r["tpr"].tolist(), **r["score"].as_dict()} for k, r in results.items()},
    )
    if spec.top_records:
        best = max(results, key=lambda k: results[k]["score"].tpr_at_fpr_001)
        s = results[best]["scores"]
        top = torch.from_numpy(np.argsort(-s, kind="mergesort")[: spec.top_records].copy())
        ctx.save_tensors(
            "mia_exposed",
            "exposed.safetensors",
            {"images": pool.images[top].contiguous(), "index": top, "labels": pool.labels[top]},
            {"attack": best, "members": [int(members[i]) for i in top]},
        )


@PIPELINES.register("mia", spec=MIASpec, description="membership inference: target, references, LOSS/LiRA/RMIA/…")
def run_mia(spec: MIASpec, ctx: RunContext) -> None:
    """Train the target and references, run every attack, log and save the measurements."""
    for a in spec.attacks:
        if a.attack not in MIA_ATTACKS:
            raise ConfigError(
                f"attacks: {a.attack!r} is not a membership-inference attack; use one of "
                f"{', '.join(sorted(MIA_ATTACKS))}"
            )
    pool, population = load_pool(spec.dataset, ctx.data_root, ctx.download, seed=0)
    members = halves(len(pool), 1, seed=spec.seed)[0]
    target, meta = train_or_load(
        ctx,
        "mia-target",
        pool,
        torch.nonzero(members).view(-1),
        spec.model,
        spec.train,
        spec.target,
        seed=spec.seed,
        dataset_key=spec.dataset.model_dump(mode="json"),
    )
    target_acc = evaluate(target, population)["accuracy"]
    references, ref_in = train_references(spec, ctx, pool)
    obs = MIAObservation(
        data=pool.images,
        labels=pool.labels,
        target=QueryModel(target),
        references=[QueryModel(m) for m in references],
        reference_in=ref_in,
        population=(population.images, population.labels),
    )
    results = run_attacks(spec, obs, members.numpy())
    log_results(ctx, results, target_acc, meta)
    save_results(ctx, spec, pool, members.numpy(), results)


# ------------------------------------------------------------------------------ a model trained elsewhere (audit)
REFERENCE_MEMBERS_SUFFIX = ".members.npy"
"""A reference model ``DIR/NAME.safetensors`` has its membership in ``DIR/NAME.members.npy``."""


def read_membership(path: str | Path, n: int) -> np.ndarray:
    """``n`` membership bools from a file (``.npy``/``.npz``/``.safetensors``): a bool or 0/1 mask of length ``n``,
    or a list of member indices (integers in ``[0, n)``).

    Raises:
        ConfigError: a mask of another length, or indices out of range. DataMissingError / FileFormatError: as
        :func:`privlab.store.artifacts.load_array`.
    """
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


def load_references(
    folder: str | Path, n: int, load: Callable[[Path], nn.Module]
) -> tuple[list[nn.Module], torch.Tensor]:
    """The reference models of ``folder`` and their ``R×n`` membership matrix over the ``n`` candidates.

    Every ``NAME.safetensors`` in ``folder`` (sorted by name) is a reference model, read with ``load(path)``; its
    membership is ``NAME.members.npy`` beside it (a 0/1 mask of length ``n`` or member indices, as
    :func:`read_membership`).

    Raises:
        DataMissingError: no such folder, or a model without its membership file. ConfigError: no model in the
        folder.
    """
    from privlab.errors import DataMissingError

    d = Path(folder)
    if not d.is_dir():
        raise DataMissingError(f"--references {d}: not a folder; give a folder of NAME.safetensors + "
                               f"NAME{REFERENCE_MEMBERS_SUFFIX} files")  # fmt: skip
    files = sorted(p for p in d.glob("*.safetensors") if p.is_file())
    if not files:
        raise ConfigError(f"--references {d}: no reference model (*.safetensors) in the folder")
    models, rows = [], []
    for f in files:
        mf = f.with_name(f.name.removesuffix(".safetensors") + REFERENCE_MEMBERS_SUFFIX)
        if not mf.is_file():
            raise DataMissingError(
                f"{mf}: missing; reference model {f.name} needs its membership file (a 0/1 mask of the {n} "
                "candidates or the indices of its training records)"
            )
        rows.append(torch.from_numpy(read_membership(mf, n)))
        models.append(load(f))
    return models, torch.stack(rows)


def audit_attacks(with_references: bool) -> list[str]:
    """The attacks :func:`audit_model` runs by default: those of the ``mia`` experiment (in its order), then any
    other registered MIA attack; without references only those that need none."""
    order = [a.attack for a in _default_attacks()]
    names = [*order, *(a for a in MIA_ATTACKS if a not in order)]
    return [a for a in names if a in MIA_ATTACKS and (with_references or not needs_references(a))]


def needs_references(attack: str) -> bool:
    """Whether the registered MIA attack needs reference models (its ``requires`` names ``references``)."""
    from privlab.attack import ATTACKS

    return "references" in ATTACKS.entry(attack).meta.get("requires", ())


def audit_model(
    target: nn.Module,
    candidates: LabelledImages,
    members: np.ndarray,
    attacks: list[str],
    *,
    references: list[nn.Module] | None = None,
    reference_in: torch.Tensor | None = None,
    population: LabelledImages | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Membership inference on a given model: run ``attacks`` (registered MIA attacks) against ``target`` on the
    ``N`` candidate records and measure each against ``members`` (``N`` bools, the truth).

    Args:
        references: the attacker's reference models (LiRA, RMIA); ``reference_in`` their ``R×N`` membership.
        population: records known to be outside the target's training set (RMIA's ``z`` samples).
        params: attack → its config values (e.g. ``{"lira-online": {"shifts": 2}}``, validated by the attack's
            config class); an attack not named here runs with its default settings.

    Returns:
        attack → ``scores`` (``N``), ``score`` (:class:`~privlab.measure.mia.MIAScore`), ``fpr``/``tpr``,
        ``seconds``.

    Raises:
        ConfigError: an unknown attack, or one that needs references (or population data) that are not given;
        settings for an attack not in ``attacks``, or an unknown or bad setting.
    """
    from privlab.attack.base import attack_config

    params = params or {}
    for a in params:
        if a not in attacks:
            raise ConfigError(f"settings given for {a[:60]!r}, which is not among the attacks run: "
                              f"{', '.join(attacks)}")  # fmt: skip
    for a in attacks:
        if a not in MIA_ATTACKS:
            raise ConfigError(f"{a!r} is not a membership-inference attack; use one of "
                              f"{', '.join(audit_attacks(True))}")  # fmt: skip
        if needs_references(a) and not references:
            raise ConfigError(f"attack {a} needs reference models; give some or choose among "
                              f"{', '.join(audit_attacks(False))}")  # fmt: skip
        attack_config(a, dict(params.get(a, {})))  # every setting checked before any attack runs
    obs = MIAObservation(
        data=candidates.images,
        labels=candidates.labels,
        target=QueryModel(target),
        references=[QueryModel(m) for m in references or []],
        reference_in=reference_in,
        population=(population.images, population.labels) if population is not None else None,
    )
    return score_attacks([AttackSpec(attack=a, params=dict(params.get(a, {}))) for a in attacks], obs, members)
