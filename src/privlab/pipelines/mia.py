"""The ``mia`` experiment: train a target (plain, DP-SGD or on LDP-privatised data) on a seeded half of a data
pool, train reference models on seeded random halves of the same pool, run every membership-inference attack and
measure it against the truth (ROC AUC, balanced accuracy, TPR at 0.1 % / 1 % FPR).

Reference models are cached under ``OUT/cache/models/`` (safetensors, keyed by everything that determines them) and
reused across attacks, targets and runs; with ``workers > 1`` they train in a process pool, one torch thread each.
:func:`train_or_load` is the one place that trains or loads a model (to be replaced by a common victim stage).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from privlab.attack.mia import MIA_ATTACKS, MIAObservation, QueryModel, run_mia_attack
from privlab.config import ExperimentSpec, Spec
from privlab.context import RunContext
from privlab.data import load_dataset
from privlab.data.base import LabelledImages
from privlab.data.spec import DatasetSpec
from privlab.errors import ConfigError
from privlab.measure.mia import roc_curve, score_attack
from privlab.models import build_model
from privlab.pipelines import PIPELINES
from privlab.store import MetricRecord, load_tensors, save_tensors
from privlab.store.artifacts import atomic_write_text
from privlab.train import TrainConfig, evaluate, fit

__all__ = ["AttackSpec", "MIASpec", "TargetSpec", "load_pool", "run_mia", "train_or_load"]


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
    model: str = Field(default="lenet5", description="registered model of target and references")
    train: TrainConfig = Field(default_factory=TrainConfig, description="training of the references (and target)")
    target: TargetSpec = Field(default_factory=TargetSpec)
    references: int = Field(default=8, ge=1, le=1024, description="reference models on seeded random halves")
    workers: int = Field(default=1, ge=1, le=64, description="processes training references (1: in-process)")
    attacks: list[AttackSpec] = Field(default_factory=_default_attacks, min_length=1)
    top_records: int = Field(default=16, ge=0, le=256, description="most exposed records saved for the report")


# ------------------------------------------------------------------------------------------------ train or load
def _key(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def train_or_load(
    cache: Path,
    data: LabelledImages,
    idx: torch.Tensor,
    model_name: str,
    train: TrainConfig,
    target: TargetSpec,
    *,
    seed: int,
    dataset_key: dict[str, Any],
) -> tuple[nn.Module, dict[str, Any]]:
    """The model trained on ``data.subset(idx)`` as ``target`` says, from ``cache`` when there (safetensors).

    A cache entry that cannot be read or does not fit is warned about and rebuilt.
    """
    norm = {"mean": data.mean, "std": data.std}
    key = _key(
        {
            "data": dataset_key,
            "idx": hashlib.sha256(idx.numpy().tobytes()).hexdigest(),
            "model": model_name,
            "train": train.model_dump(),
            "target": target.model_dump(),
            "seed": seed,
        }
    )
    path = cache / f"{key}.safetensors"
    model = build_model(model_name, data.num_classes, data.shape, **norm)
    if target.kind == "dpsgd":
        from privlab.protect.dpsgd import prepare_model

        model = prepare_model(model)[0]
    if path.exists():
        try:
            tensors, meta = load_tensors(path)
            model.load_state_dict(tensors)
            return model.eval(), meta
        except Exception as e:  # any damage: rebuild
            warnings.warn(f"model cache entry {path} is unusable ({e}); training it again", stacklevel=2)
    model, meta = _train(model, data.subset(idx), train, target, seed)
    cache.mkdir(parents=True, exist_ok=True)
    save_tensors(path, model.state_dict(), meta)
    return model.eval(), meta


def _train(
    model: nn.Module, data: LabelledImages, train: TrainConfig, target: TargetSpec, seed: int
) -> tuple[nn.Module, dict[str, Any]]:
    torch.manual_seed(seed)
    if target.kind == "dpsgd":
        from privlab.protect.dpsgd import DPSGDConfig, train_dpsgd

        if target.epsilon is None:
            raise ConfigError("target.kind: dpsgd needs target.epsilon")
        cfg = DPSGDConfig(
            epsilon=target.epsilon,
            delta=target.delta,
            epochs=train.epochs,
            lr=target.dpsgd_lr,
            batch_size=target.dpsgd_batch_size,
            max_grad_norm=target.max_grad_norm,
        )
        model, res = train_dpsgd(model, data, cfg, seed=seed)
        return model, {"epsilon": res.epsilon, "delta": res.delta, "noise_multiplier": res.noise_multiplier}
    if target.kind == "ldp":
        from privlab.protect.ldp_pixel import build_pixel_mechanism

        if target.epsilon is None:
            raise ConfigError("target.kind: ldp needs target.epsilon")
        mech = build_pixel_mechanism(target.mechanism, epsilon=target.epsilon)
        data = data.with_images(mech.privatize(data.images, torch.Generator().manual_seed(seed)))
    fit(model, data, train, seed=seed)
    return model, {"epsilon": target.epsilon}


def _reference_job(args: tuple[Any, ...]) -> None:
    """Process-pool worker: one torch thread, train (or find) one reference model in the cache."""
    torch.set_num_threads(1)
    cache, ds, idx, model_name, train, seed = args
    pool, _ = load_pool(ds, None, False, seed=0)
    train_or_load(Path(cache), pool, idx, model_name, train, TargetSpec(), seed=seed, dataset_key=ds.model_dump())


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
    cache = ctx.out / "cache" / "models"
    jobs = [
        (str(cache), spec.dataset, torch.nonzero(ref_in[r]).view(-1), spec.model, spec.train, 1 + r)
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
                    cache,
                    pool,
                    job[2],
                    spec.model,
                    spec.train,
                    TargetSpec(),
                    seed=job[5],
                    dataset_key=spec.dataset.model_dump(),
                )[0]
            )
            advance(1)
    return models, ref_in


def run_attacks(spec: MIASpec, obs: MIAObservation, members: np.ndarray) -> dict[str, dict[str, Any]]:
    """Every attack of ``spec``: label → scores, score, ROC and seconds."""
    import time

    out: dict[str, dict[str, Any]] = {}
    for a in spec.attacks:
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
    """Per-record scores (CSV), ROC curves and scores (JSON), the most exposed records (safetensors)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    labels = list(results)
    w.writerow(["index", "label", "member", *labels])
    for i in range(len(pool)):
        w.writerow([i, int(pool.labels[i]), int(members[i]), *(f"{results[k]['scores'][i]:.6g}" for k in labels)])
    path = ctx.run_dir / "scores.csv"
    atomic_write_text(path, buf.getvalue())
    from privlab.store.artifacts import sha256_file

    ctx.store.add_artifact(ctx.run_id, "mia_scores", path, sha256_file(path), {"format": "csv"})
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
        ctx.out / "cache" / "models",
        pool,
        torch.nonzero(members).view(-1),
        spec.model,
        spec.train,
        spec.target,
        seed=spec.seed,
        dataset_key=spec.dataset.model_dump(),
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
