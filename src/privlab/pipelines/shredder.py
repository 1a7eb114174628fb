"""The ``shredder`` experiment: learn activation noise for split inference and measure what it buys.

Steps (each seeded by the run's seed):

1. load the data set; relabel it for the **public** task (v2: ``greater_than_5``, "digit > 5") and the **private**
   task (``identity``: the digit);
2. train (or load from the model cache ``OUT/cache/models/``) the two victim classifiers with the victim stage
   (:func:`privlab.victim.train_or_load`); the cache key is a hash of everything that determines a victim;
3. cut the public model after ``cut``, freeze it, compute the clean activations once, and train the noise bank
   (:func:`privlab.protect.shredder.train_noise_bank`); the bank is saved as ``noise-bank.safetensors`` with its
   shape, seed, acceptance rule and accuracies;
4. deploy: fresh noise per image (or per batch) from the v1 Laplace fit or the v2 bank draw;
5. measure: public accuracy clean/noisy, the original adversary (private model with the same noise inserted) and a
   retrained adversary (MLP trained on noisy activations), SNR per batch, and MI(X; Z) clean and noisy with
   ``ite-dkl`` (k = 3) through :func:`privlab.pipelines.mi.log_mi`, with the reduction in percent.

Metrics: ``public_accuracy_clean``, ``public_accuracy_noisy``, ``adversary_accuracy_clean``,
``adversary_accuracy_noisy``, ``adversary_retrained_accuracy_clean``, ``adversary_retrained_accuracy_noisy``
(fractions), ``mi_clean_nats``, ``mi_noisy_nats`` (nats), ``mi_reduction`` (%), ``snr`` (ratio), ``snr_db`` (dB),
``bank_size``, ``bank_acceptance_rate`` and costs.
"""

from __future__ import annotations

import hashlib
import math
import time
import warnings
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from privlab.config import ExperimentSpec, Spec
from privlab.context import RunContext
from privlab.data.base import LabelledImages
from privlab.data.relabel import relabel, task_num_classes
from privlab.data.spec import DatasetSpec, load_datasets
from privlab.errors import ConfigError, DataMissingError
from privlab.models import ModelName, build_model
from privlab.models.split import freeze, split_model
from privlab.pipelines import PIPELINES
from privlab.protect.shredder import (
    BankConfig,
    BankSampler,
    DeployedNoise,
    LaplaceFitSampler,
    LossConfig,
    NoiseBank,
    NoiseConfig,
    snr_db,
    snr_per_batch,
    train_noise_bank,
)
from privlab.store import MetricRecord
from privlab.train import TrainConfig
from privlab.victim import train_or_load

__all__ = [
    "AdversarySpec",
    "DeploySpec",
    "ShredderMISpec",
    "ShredderSpec",
    "VictimSpec",
    "compute_activations",
    "get_victim",
    "mi_reduction_above_null",
    "run_shredder",
]


class VictimSpec(Spec):
    """How the victim classifiers are trained (both tasks use the same settings)."""

    train: TrainConfig = Field(default_factory=lambda: TrainConfig(epochs=20, batch_size=64, lr=2e-3))
    normalize: bool = Field(default=False, description="normalize layer first (v2 feeds raw [0, 1] pixels: false)")
    mean: list[float] | None = Field(default=None, description="normalize mean (default: the data set's)")
    std: list[float] | None = Field(default=None, description="normalize std (default: the data set's)")
    edge_weights: str | None = Field(
        default=None, description="local safetensors with pretrained edge weights (AlexNet features); never fetched"
    )
    freeze_edge: bool = Field(default=False, description="train only the cloud part (with pretrained edge weights)")


class DeploySpec(Spec):
    """Inference-time sampling of the noise."""

    sampler: Literal["v1-laplace", "v2-bank"] = Field(default="v2-bank", description="Laplace fit (v1) or bank draw")
    per: Literal["image", "batch"] = Field(default="image", description="fresh noise per image or per batch")
    resample_w: bool = Field(default=True, description="v2: rank-preserving Gaussian resampling of w")
    eval_draws: int = Field(default=1, ge=1, description="noisy passes over the test set averaged for accuracies")


class AdversarySpec(Spec):
    """The retrained adversary (an MLP on noisy activations)."""

    train: TrainConfig = Field(default_factory=lambda: TrainConfig(epochs=30, batch_size=128, lr=1e-3))
    hidden: int = Field(default=84, ge=1, description="hidden width")


class ShredderMISpec(Spec):
    """MI(X; Z): X = flattened input image in [0, 1], Z = activation at the cut (clean vs noisy)."""

    estimator: str = Field(default="ite-dkl", description="MI estimator (the papers: ite-dkl, k = 3)")
    k: int = Field(default=3, ge=1)
    repeats: int = Field(default=3, ge=1, description="permutation draws (≥ 2 gives the reduction an interval)")
    rows: Literal["test", "all"] = Field(default="test", description="test split, or train + test images")
    limit: int | None = Field(default=None, ge=10, description="use at most this many rows")
    x_dims: int | None = Field(default=None, ge=1, description="keep the first x_dims input values (v1: 51984)")
    preprocess: Literal["none", "standardize", "copula"] = "none"
    null: bool = Field(
        default=True, description="also estimate the permutation-null floor (Z rows shuffled) of clean and noisy MI"
    )


class ShredderSpec(ExperimentSpec):
    """Spec of the ``shredder`` experiment."""

    experiment: Literal["shredder"] = "shredder"
    dataset: DatasetSpec = Field(default_factory=lambda: DatasetSpec(name="digits", resize=32))
    model: ModelName = Field(default="lenet5", description="victim architecture (lenet5, alexnet)")
    cut: str = Field(default="relu5", description="layer after which the noise sits (lenet5: relu5 → 120×1×1)")
    public_task: str = Field(default="greater_than_5", description="task the cloud serves (identity, greater_than_K)")
    private_task: str | None = Field(default="identity", description="task the adversary wants (None: no adversary)")
    victim: VictimSpec = Field(default_factory=VictimSpec)
    noise: NoiseConfig = Field(default_factory=NoiseConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    bank: BankConfig = Field(default_factory=BankConfig)
    deploy: DeploySpec = Field(default_factory=DeploySpec)
    adversary: AdversarySpec = Field(default_factory=AdversarySpec)
    mi: ShredderMISpec = Field(default_factory=ShredderMISpec)


# -- victims ------------------------------------------------------------------------------------------------------
def _resolve_weights(path: str, ctx: RunContext) -> Path:
    p = Path(path).expanduser()
    candidates = [p] if p.is_absolute() else [Path.cwd() / p] + ([ctx.data_root / p] if ctx.data_root else [])
    for c in candidates:
        if c.is_file():
            return c
    from privlab.models.alexnet import HOW_TO_GET_WEIGHTS

    where = " or ".join(f"'{c}'" for c in candidates)
    raise DataMissingError(
        f"victim.edge_weights: file not found at {where} (relative paths are tried in the working directory, then "
        f"under --data-root). {HOW_TO_GET_WEIGHTS}; then --set victim.edge_weights=PATH"
    )


def _build_victim(spec: ShredderSpec, num_classes: int, data: LabelledImages, weights: Path | None) -> nn.Sequential:
    v = spec.victim
    norm = {"mean": v.mean or data.mean, "std": v.std or data.std} if v.normalize else {}
    model = build_model(spec.model, num_classes, data.shape, **norm)
    if weights is not None:
        if spec.model != "alexnet":
            raise ConfigError(f"victim.edge_weights is only supported for model 'alexnet', not {spec.model!r}")
        from privlab.models.alexnet import load_alexnet_features

        load_alexnet_features(model, weights)
    return model


def get_victim(
    spec: ShredderSpec, ctx: RunContext, task: str, train: LabelledImages
) -> tuple[nn.Sequential, dict[str, Any]]:
    """The victim classifier for ``task`` (``train`` already relabelled), from the victim stage
    (:func:`privlab.victim.train_or_load`, role ``shredder-<task>``): cached, or trained and cached.

    The cache key hashes the data set, model, task, victim settings (and the edge weights' SHA-256) and seed.

    Returns:
        ``(model in eval mode, info)``: info has ``cached`` (bool), ``path``, ``key`` and ``train_seconds``.
    """
    weights = _resolve_weights(spec.victim.edge_weights, ctx) if spec.victim.edge_weights else None
    key_parts = {
        "dataset": spec.dataset.model_dump(mode="json"),
        "model": spec.model,
        "task": task,
        "num_classes": train.num_classes,
        "victim": spec.victim.model_dump(mode="json", exclude={"edge_weights"}),
        "cut": spec.cut if spec.victim.freeze_edge else None,
        "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest() if weights else None,
        "seed": spec.seed,
    }
    model, info = train_or_load(
        ctx,
        role=f"shredder-{task}",
        model_factory=lambda: _build_victim(spec, train.num_classes, train, weights),
        train_data=train,
        train_config=spec.victim.train,
        key_parts=key_parts,
        init_seed=ctx.seed + 7 * len(task),
        before_fit=(lambda m: freeze(split_model(m, spec.cut)[0])) if spec.victim.freeze_edge else None,
    )
    return model, info  # type: ignore[return-value]


@torch.no_grad()
def compute_activations(
    edge: nn.Module, images: torch.Tensor, *, device: torch.device | str = "cpu", batch_size: int = 512
) -> torch.Tensor:
    """``edge(images)`` in eval mode, batched, returned on the CPU: ``(N, *activation shape)``."""
    edge.to(device).eval()
    out = [edge(images[i : i + batch_size].to(device)).cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(out)


@torch.no_grad()
def _accuracy(cloud: nn.Module, z: torch.Tensor, y: torch.Tensor, device: torch.device, batch: int) -> float:
    correct = 0
    for i in range(0, len(z), batch):
        correct += int((cloud(z[i : i + batch].to(device)).argmax(1).cpu() == y[i : i + batch]).sum())
    return correct / max(len(z), 1)


@torch.no_grad()
def _noisy(deployed: DeployedNoise, acts: torch.Tensor, device: torch.device, batch: int, seed: int) -> torch.Tensor:
    deployed.reseed(seed)
    return torch.cat([deployed(acts[i : i + batch].to(device)).cpu() for i in range(0, len(acts), batch)])


# -- stages of the experiment ----------------------------------------------------------------------------------
def _eval_seed(ctx: RunContext) -> int:
    return ctx.seed * 1_000_003 + 11


def _check_tasks(spec: ShredderSpec, num_classes: int) -> None:
    task_num_classes(spec.public_task, num_classes)
    if spec.private_task is not None:
        task_num_classes(spec.private_task, num_classes)


def _cut(
    spec: ShredderSpec, ctx: RunContext, model: nn.Sequential, train: LabelledImages, test: LabelledImages
) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """Split ``model`` after ``spec.cut``, freeze both parts: ``(cloud, train activations, test activations)``."""
    edge, cloud = split_model(model, spec.cut)
    freeze(edge)
    freeze(cloud)
    eb = spec.victim.train.eval_batch_size
    a_train = compute_activations(edge, train.images, device=ctx.device, batch_size=eb)
    a_test = compute_activations(edge, test.images, device=ctx.device, batch_size=eb)
    return cloud, a_train, a_test


def _train_bank(
    spec: ShredderSpec, ctx: RunContext, cloud: nn.Module, a_train: torch.Tensor, labels: torch.Tensor
) -> NoiseBank:
    """Train, log and save the noise bank; an empty bank (nothing accepted) is a :class:`ConfigError`."""

    def on_restart(rec: dict[str, Any]) -> None:
        ctx.log_many(
            [
                MetricRecord("bank_val_accuracy", rec["val_accuracy"], rec["restart"], "fraction", "utility", True),
                MetricRecord("bank_train_snr", rec["train_snr"], rec["restart"], "ratio", "privacy", False),
                MetricRecord("bank_accepted", float(rec["accepted"]), rec["restart"], None, "info", None),
                MetricRecord("bank_elapsed_seconds", rec["elapsed_s"], rec["restart"], "s", "cost", False),
            ]
        )

    t0 = time.perf_counter()
    bank = train_noise_bank(
        cloud, a_train, labels, spec.noise, spec.loss, spec.bank,
        seed=ctx.seed, device=ctx.device, progress=ctx.progress, on_restart=on_restart,
    )  # fmt: skip
    bank_seconds = time.perf_counter() - t0
    tried = len(bank.records)
    ctx.log_many(
        [
            MetricRecord("bank_size", len(bank), None, "samples", "info", None),
            MetricRecord("bank_acceptance_rate", len(bank) / max(tried, 1), None, "fraction", "info", True),
            MetricRecord("bank_seconds", bank_seconds, None, "s", "cost", False),
        ]
    )
    if len(bank) == 0:
        best = max((r["val_accuracy"] for r in bank.records), default=math.nan)
        raise ConfigError(
            f"no noise sample passed the acceptance rule ({bank.meta['acceptance']}); the best validation accuracy "
            f"was {best:.4f}: lower bank.accuracy_threshold, raise bank.max_epochs/max_restarts, or lower "
            f"noise.laplace_scale / loss.magnitude_weight"
        )
    ctx.save_tensors("noise_bank", "noise-bank.safetensors", bank.tensors(), bank.full_meta())
    return bank


def _deploy(spec: ShredderSpec, ctx: RunContext, bank: NoiseBank) -> DeployedNoise:
    """The inference-time noise: a v1 Laplace fit or v2 bank draws, fresh per image or per batch."""
    sampler = (
        LaplaceFitSampler(bank)
        if spec.deploy.sampler == "v1-laplace"
        else BankSampler(bank, resample_w=spec.deploy.resample_w)
    )
    return DeployedNoise(sampler.to(ctx.device), spec.deploy.per, seed=ctx.seed)


def _public_utility(
    spec: ShredderSpec, ctx: RunContext, cloud: nn.Module, deployed: DeployedNoise, a_test: torch.Tensor,
    labels: torch.Tensor,
) -> tuple[dict[str, float], torch.Tensor, list[float]]:  # fmt: skip
    """Public accuracy clean/noisy (averaged over ``eval_draws``) and SNR per batch: ``(values, the first noisy
    test activations, SNR per batch)``; values has ``public_clean``, ``public_noisy`` and ``snr``."""
    dev, eb = ctx.device, spec.victim.train.eval_batch_size
    acc_clean = _accuracy(cloud, a_test, labels, dev, eb)
    noisy_draws = [_noisy(deployed, a_test, dev, eb, _eval_seed(ctx) + d) for d in range(spec.deploy.eval_draws)]
    acc_noisy = sum(_accuracy(cloud, z, labels, dev, eb) for z in noisy_draws) / len(noisy_draws)
    snrs = snr_per_batch(a_test, noisy_draws[0], eb)
    return {"public_clean": acc_clean, "public_noisy": acc_noisy, "snr": sum(snrs) / len(snrs)}, noisy_draws[0], snrs


def _utility_records(values: dict[str, float], pub_info: dict[str, Any]) -> list[MetricRecord]:
    acc_clean, acc_noisy, snr_mean = values["public_clean"], values["public_noisy"], values["snr"]
    return [
        MetricRecord("public_accuracy_clean", acc_clean, None, "fraction", "utility", True),
        MetricRecord("public_accuracy_noisy", acc_noisy, None, "fraction", "utility", True),
        MetricRecord("public_accuracy_loss_points", 100 * (acc_clean - acc_noisy), None, "points", "utility", False),
        MetricRecord("snr", snr_mean, None, "ratio", "privacy", False),
        MetricRecord("snr_db", snr_db(snr_mean), None, "dB", "privacy", False),
        MetricRecord("victim_public_cached", float(pub_info["cached"]), None, None, "info", None),
        MetricRecord("victim_train_seconds", pub_info["train_seconds"], None, "s", "cost", False),
    ]


def _adversaries(
    spec: ShredderSpec, ctx: RunContext, deployed: DeployedNoise, train: LabelledImages, test: LabelledImages,
    acts: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> tuple[dict[str, float], list[MetricRecord]]:  # fmt: skip
    """The original adversary (private victim with the noise inserted) and a retrained one (MLP on activations),
    clean and noisy; ``acts`` = (train, test, noisy test) activations. Returns ``(accuracies, records)``."""
    from privlab.attack import Observation, build_attack
    from privlab.measure.utility.accuracy import classifier_accuracy, predict_labels

    assert spec.private_task is not None
    a_train, a_test, z_test = acts
    dev, eb, eval_seed = ctx.device, spec.victim.train.eval_batch_size, _eval_seed(ctx)
    priv_train, priv_test = relabel(train, spec.private_task), relabel(test, spec.private_task)
    private_model, priv_info = get_victim(spec, ctx, spec.private_task, priv_train)
    freeze(private_model)
    original = build_attack("original_adversary")
    adv: dict[str, float] = {}
    for key, noise in (("clean", None), ("noisy", deployed)):
        if noise is not None:
            deployed.reseed(eval_seed + 101)
        obs = Observation.granted(original.requires, {"cut": spec.cut, "noise": noise}, model=private_model)
        model = original.run(obs, seed=ctx.seed, device=dev).model
        adv[f"adversary_accuracy_{key}"] = classifier_accuracy(
            model, test.images, priv_test.labels, device=dev, batch_size=eb
        )
    t0 = time.perf_counter()
    retrained = build_attack("activation_adversary", spec.adversary.model_dump())
    for key, noise, eval_acts in (("clean", None, a_test), ("noisy", deployed, z_test)):
        if noise is not None:
            deployed.reseed(eval_seed + 202)
        meta = {"num_classes": priv_train.num_classes, "noise": noise}  # it can sample the noise, not its draws
        obs = Observation.granted(retrained.requires, meta, activations=a_train, labels=priv_train.labels)
        model = retrained.run(obs, seed=ctx.seed, device=dev).model
        pred = predict_labels(model, eval_acts, device=dev)
        adv[f"adversary_retrained_accuracy_{key}"] = float((pred == priv_test.labels.cpu()).float().mean())
    records = [MetricRecord(k, v, None, "fraction", "privacy", False) for k, v in adv.items()]
    records += [
        MetricRecord("adversary_seconds", time.perf_counter() - t0, None, "s", "cost", False),
        MetricRecord("victim_private_cached", float(priv_info["cached"]), None, None, "info", None),
    ]
    return adv, records


def _mutual_information(
    spec: ShredderSpec, ctx: RunContext, deployed: DeployedNoise, images: tuple[torch.Tensor, torch.Tensor],
    acts: tuple[torch.Tensor, torch.Tensor],
) -> dict[str, float]:  # fmt: skip
    """MI(X; Z) clean and noisy (logged as ``mi_clean_nats``, ``mi_noisy_nats``, ``mi_reduction``) and, with
    ``mi.null``, their permutation-null floors (``mi_clean_null_nats``, ``mi_null_nats``: Z rows shuffled, true MI 0)
    and the reduction above the floor (``mi_reduction_above_null``, %); ``images`` and ``acts`` are (train, test).
    Returns ``clean``, ``noisy`` (nats), ``reduction`` (dict), the nulls and ``seconds``."""
    from privlab.measure.mi import estimate_mi
    from privlab.measure.mi.reduction import log_mi_reduction
    from privlab.pipelines.mi import log_mi

    if spec.mi.rows == "all":
        x_mi, a_mi = torch.cat(images), torch.cat(acts)
    else:
        x_mi, a_mi = images[1], acts[1]
    if spec.mi.limit is not None and spec.mi.limit < len(x_mi):
        keep = torch.randperm(len(x_mi), generator=ctx.generator(31))[: spec.mi.limit].sort().values
        x_mi, a_mi = x_mi[keep], a_mi[keep]
    x_flat = x_mi.flatten(1)
    if spec.mi.x_dims is not None:
        x_flat = x_flat[:, : spec.mi.x_dims]
    z_noisy = _noisy(deployed, a_mi, ctx.device, spec.victim.train.eval_batch_size, _eval_seed(ctx) + 303)
    mi_kw: dict[str, Any] = {
        "k": spec.mi.k, "repeats": spec.mi.repeats, "seed": ctx.seed, "preprocess": spec.mi.preprocess,
        "device": str(ctx.device),
    }  # fmt: skip
    t0 = time.perf_counter()
    shuffle = torch.randperm(len(x_flat), generator=ctx.generator(37))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the diagnostics carry the warnings into the record
        clean = estimate_mi(x_flat, a_mi.flatten(1), spec.mi.estimator, **mi_kw)
        noisy = estimate_mi(x_flat, z_noisy.flatten(1), spec.mi.estimator, **mi_kw)
        # permutation nulls: the same estimator on Z with its rows shuffled (true MI 0) — the estimator's floor
        clean_null = noisy_null = None
        if spec.mi.null:
            clean_null = estimate_mi(x_flat, a_mi.flatten(1)[shuffle], spec.mi.estimator, **mi_kw)
            noisy_null = estimate_mi(x_flat, z_noisy.flatten(1)[shuffle], spec.mi.estimator, **mi_kw)
    log_mi(ctx, "mi_clean_nats", clean)
    log_mi(ctx, "mi_noisy_nats", noisy)
    red = log_mi_reduction(ctx, "mi_reduction", clean, noisy)
    out = {"clean": clean.nats, "noisy": noisy.nats, "reduction": red}
    if clean_null is not None and noisy_null is not None:
        log_mi(ctx, "mi_clean_null_nats", clean_null)
        log_mi(ctx, "mi_null_nats", noisy_null)
        above = mi_reduction_above_null(clean.nats, noisy.nats, clean_null.nats, noisy_null.nats)
        ctx.log(
            "mi_reduction_above_null",
            above,
            unit="%",
            kind="privacy",
            higher_is_better=True,
            note=f"the clean MI estimate ({clean.nats:.4g} nats) does not exceed its permutation-null floor "
            f"({clean_null.nats:.4g} nats): nothing measurable to reduce at this n and dimension",
        )
        out |= {"clean_null": clean_null.nats, "noisy_null": noisy_null.nats, "reduction_above_null": above}
    return out | {"seconds": time.perf_counter() - t0}


def mi_reduction_above_null(clean: float, noisy: float, clean_null: float, noisy_null: float) -> float:
    """Reduction (%) of the MI *above the estimator's floor*: ``100 · (1 − (noisy − noisy_null) / (clean −
    clean_null))``, each null being the estimate with Z's rows shuffled (true MI 0). NaN when the clean estimate does
    not exceed its null (nothing measurable to reduce).

    Example:
        >>> mi_reduction_above_null(300.0, 110.0, 20.0, 40.0)  # 280 above the floor → 70 above it
        75.0
    """
    base = clean - clean_null
    return math.nan if not base > 0 else 100 * (1 - (noisy - noisy_null) / base)


def _save_summary(
    spec: ShredderSpec, ctx: RunContext, bank: NoiseBank, a_test: torch.Tensor, accuracy: dict[str, float],
    snrs: list[float], snr: float, mi: dict[str, float],
) -> None:  # fmt: skip
    """``shredder-summary.json``: settings, accuracies, SNR, MI and noise statistics for the report."""
    flat_n = bank.n.flatten() if bank.n is not None else None
    flat_w = bank.w.flatten() if bank.w is not None else None
    ctx.save_json(
        "shredder",
        "shredder-summary.json",
        {
            "public_task": spec.public_task,
            "private_task": spec.private_task,
            "model": spec.model,
            "cut": spec.cut,
            "activation_shape": list(a_test.shape[1:]),
            "sampler": spec.deploy.sampler,
            "per": spec.deploy.per,
            "loss": spec.loss.model_dump(),
            "noise": spec.noise.model_dump(),
            "accuracy": accuracy,
            "snr_per_batch": snrs,
            "snr": snr,
            "mi": {k: v for k, v in mi.items() if k != "seconds"},
            "bank": {"size": len(bank), "records": bank.records, "acceptance": bank.meta["acceptance"]},
            "noise_stats": {
                "n_mean_abs": float(flat_n.abs().mean()) if flat_n is not None else None,
                "n_std": float(flat_n.std()) if flat_n is not None else None,
                "w_mean": float(flat_w.mean()) if flat_w is not None else None,
                "w_std": float(flat_w.std()) if flat_w is not None else None,
                "activation_rms": float(a_test.pow(2).mean().sqrt()),
            },
        },
    )


# -- the experiment -----------------------------------------------------------------------------------------------
@PIPELINES.register(
    "shredder", spec=ShredderSpec, description="Shredder: learned activation noise for split inference (v1/v2)"
)
def run_shredder(spec: ShredderSpec, ctx: RunContext) -> None:
    """Run the Shredder experiment described in the module docstring."""
    t_start = time.perf_counter()
    train, test = load_datasets(spec.dataset, ctx)
    _check_tasks(spec, train.num_classes)
    pub_train, pub_test = relabel(train, spec.public_task), relabel(test, spec.public_task)
    public_model, pub_info = get_victim(spec, ctx, spec.public_task, pub_train)
    cloud, a_train, a_test = _cut(spec, ctx, public_model, train, test)
    bank = _train_bank(spec, ctx, cloud, a_train, pub_train.labels)
    deployed = _deploy(spec, ctx, bank)
    utility, z_test, snrs = _public_utility(spec, ctx, cloud, deployed, a_test, pub_test.labels)
    records = _utility_records(utility, pub_info)
    adv: dict[str, float] = {}
    if spec.private_task is not None:
        adv, adv_records = _adversaries(spec, ctx, deployed, train, test, (a_train, a_test, z_test))
        records += adv_records
    ctx.log_many(records)
    mi = _mutual_information(spec, ctx, deployed, (train.images, test.images), (a_train, a_test))
    ctx.log_many(
        [
            MetricRecord("mi_seconds", mi["seconds"], None, "s", "cost", False),
            MetricRecord("total_seconds", time.perf_counter() - t_start, None, "s", "cost", False),
        ]
    )
    accuracy = {"public_clean": utility["public_clean"], "public_noisy": utility["public_noisy"], **adv}
    _save_summary(spec, ctx, bank, a_test, accuracy, snrs, utility["snr"], mi)
