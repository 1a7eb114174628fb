"""The ``unlearnable`` experiment: make a training set unlearnable, then let an attacker train on it anyway.

One run = one protection (``protection.name``: ``em``, ``error-max``, ``random``, ``tue``), evaluated against every
attacker setting listed in the spec:

1. generate the perturbation bank on the training split (or load one with ``noise_file``: transfer from another run);
   save it as ``perturbation.safetensors`` (noise + budget, kind, backbone, data set, seed);
2. build the poisoned training set (:class:`~privlab.data.wrappers.PoisonedImages`: poison rate, uint8
   re-quantisation inside ε, noise before/after augmentation);
3. **supervised** attackers (``supervised.models``; architectures independent of the noise backbone): train on clean
   and on poisoned data, measure clean test accuracy;
4. **self-supervised** attackers (``ssl.methods``): pre-train on clean and on poisoned data, then linear probe and
   kNN on the clean test split;
5. log the headline metrics (first supervised model, first SSL method) and one ``clean_/poisoned_accuracy/<setting>``
   pair per setting — a row of the transfer matrix (``transfer.json``; the report puts the rows of all runs together);
6. **attacker-side defences** (``countermeasures``): each entry is a list of counter-measure steps
   (:mod:`privlab.attack.countermeasures`: JPEG, grayscale, bit depth, strong augmentation) applied to the poisoned
   training images; the first supervised attacker trains on the washed set and its clean test accuracy is logged as
   ``countermeasure/<label>/poisoned_test_accuracy`` (``[]`` = no defence, the plain poisoned result);
7. **membership probe** (``mia: {enabled, records}``): the registered LOSS attack on the first supervised attacker
   trained on the poisoned set, with ``mia.records`` of its training records queried *clean* (as their owner holds
   them) against as many test records: ``mia_loss_auc``, ``mia_loss_tpr_at_fpr_0.01`` … (lower = more private).

Clean baselines do not depend on the protection; with ``reuse_clean`` they are computed once per output folder and
spec (``<out>/cache/unlearnable-clean-<hash>.json``) and re-used by the other protections of a sweep. A cache file
that cannot be used is reported in a warning naming it and why, then recomputed and overwritten.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from privlab.attack import ATTACKS, Observation, build_attack
from privlab.attack.countermeasures import apply_countermeasures, countermeasure_label
from privlab.config import ExperimentSpec, Spec, deep_merge
from privlab.context import RunContext
from privlab.data.base import LabelledImages
from privlab.data.spec import DatasetSpec, load_datasets
from privlab.data.transforms import build_transform
from privlab.data.wrappers import PoisonedImages
from privlab.errors import ConfigError, PrivlabError
from privlab.measure.functional.image_similarity import psnr
from privlab.measure.mia.probe import MembershipProbeSpec, membership_probe, probe_indices, probe_records
from privlab.measure.utility.ssl_eval import extract_features, knn_accuracy, linear_probe_accuracy
from privlab.models import ModelName
from privlab.pipelines import PIPELINES
from privlab.protect.perturbation import NoiseSpec, PerturbationBank, noise_entry, resolve_noise
from privlab.store import MetricRecord
from privlab.store.artifacts import atomic_write_text
from privlab.store.lock import lock_busy, wait_lock
from privlab.train import TrainConfig, evaluate
from privlab.victim import LOCK_FOLDER

__all__ = [
    "PoisonSpec",
    "SSLEvalSpec",
    "SupervisedEvalSpec",
    "UnlearnableSpec",
    "evaluate_encoder",
    "run_unlearnable",
    "setting_names",
]

# the attackers of this experiment, built by name through ATTACKS
SUPERVISED_ATTACK = "unauthorized-supervised"
SSL_ATTACK = "unauthorized-ssl"


class PoisonSpec(Spec):
    """How the bank is applied to the training set."""

    rate: float = Field(default=1.0, ge=0, le=1, description="fraction of training images poisoned (seeded)")
    quantize: bool = Field(default=True, description="re-quantise poisoned images to uint8 levels inside ε")
    noise_position: Literal["before", "after"] = Field(
        default="before", description="add the noise before (UE main.py) or after (UE QuickStart) augmentation"
    )


class SupervisedEvalSpec(Spec):
    """The supervised attackers: one training recipe, one or more architectures."""

    models: list[ModelName] = Field(
        default_factory=lambda: ["resnet18"], min_length=1, description="attacker architectures"
    )
    augment: Literal["none", "crop", "crop_flip"] = Field(default="crop_flip", description="training augmentation")
    padding: int = Field(default=4, ge=0, description="pad-and-crop padding in pixels")
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(
            epochs=200, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4, scheduler="cosine"
        )
    )


def _ssl_attack_config() -> type[Spec]:
    return ATTACKS.entry(SSL_ATTACK).meta["config"]


class SSLEvalSpec(_ssl_attack_config()):  # type: ignore[misc]
    """The self-supervised attackers: the attacker's recipe (``unauthorized-ssl``'s config: the SSL model settings
    ``encoder`` … and the schedule) for each method in ``methods``, and how its encoder is measured."""

    methods: list[Literal["simclr", "moco", "simsiam"]] = Field(
        default_factory=lambda: ["simclr"], description="SSL methods to run (empty: no SSL evaluation)"
    )
    probe_data: Literal["poisoned", "clean"] = Field(
        default="poisoned", description="images the linear probe is fit on"
    )
    probe_c: float = Field(default=1.0, gt=0, description="inverse L2 strength of the logistic-regression probe")
    knn_k: int = Field(default=200, ge=1, description="kNN neighbours (capped at the bank size)")
    knn_temperature: float = Field(default=0.5, gt=0, description="kNN vote temperature τ")

    @model_validator(mode="after")
    def _methods_not_method(self) -> SSLEvalSpec:
        if "method" in self.model_fields_set and self.method != "simclr":
            raise ConfigError(f"ssl.method ({self.method}) is not used here: list the methods in ssl.methods")
        return self

    def attack_config(self, method: str) -> Spec:
        """The ``unauthorized-ssl`` config for ``method``."""
        fields = _ssl_attack_config().model_fields
        return _ssl_attack_config()(**{k: v for k, v in self.model_dump().items() if k in fields} | {"method": method})


def _defaults_for(defaults: dict[str, Any], name: str, kind: Any = None) -> dict[str, Any]:
    """The ``protection_defaults`` settings of protection ``name`` for noise ``kind``: the name's block with its
    ``name:kind`` block (e.g. ``em:class``) merged over it; {} when neither is there. ``kind=None``: the kind the
    name's block sets, else ``"sample"``."""
    base = defaults.get(name) if isinstance(defaults.get(name), dict) else {}
    kind = base.get("kind", "sample") if kind is None else kind
    per_kind = defaults.get(f"{name}:{kind}") if isinstance(kind, str) else None
    return deep_merge(base, per_kind) if isinstance(per_kind, dict) else base


class UnlearnableSpec(ExperimentSpec):
    """Spec of the ``unlearnable`` experiment."""

    experiment: Literal["unlearnable"] = "unlearnable"
    dataset: DatasetSpec = Field(default_factory=lambda: DatasetSpec(name="digits", resize=32))
    protection: NoiseSpec = Field(
        default_factory=lambda: resolve_noise(None), description="em, error-max, random, tue or any noise protection"
    )
    noise_file: str | None = Field(
        default=None, description="use this saved bank instead of generating one (noise transfer between runs)"
    )
    poison: PoisonSpec = Field(default_factory=PoisonSpec)
    supervised: SupervisedEvalSpec = Field(default_factory=SupervisedEvalSpec)
    ssl: SSLEvalSpec = Field(default_factory=SSLEvalSpec)
    protection_defaults: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="per protection name, settings merged under `protection` (presets set all four; a spec then "
        "switches protection with just `protection: {name: tue}`); a `name:kind` entry (e.g. `em:class`) goes over "
        "the name's settings for that kind",
    )
    countermeasures: list[list[str | dict[str, Any]]] = Field(
        default_factory=list,
        description="attacker defences, one per entry: counter-measure steps applied to the poisoned training set "
        "before the first supervised attacker trains on it, e.g. [[], [{name: jpeg, quality: 10}], [grayscale]]",
    )
    reuse_clean: bool = Field(default=True, description="compute clean baselines once per output folder and re-use")
    mia: MembershipProbeSpec = Field(
        default_factory=MembershipProbeSpec,
        description="LOSS membership probe of the first supervised attacker trained on the poisoned set",
    )
    grid_images: int = Field(default=10, ge=0, le=64, description="images in the report's perturbation grid")

    @model_validator(mode="before")
    @classmethod
    def _merge_protection_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        prot, defaults = data.get("protection"), data.get("protection_defaults")
        if isinstance(prot, dict) and isinstance(defaults, dict) and isinstance(prot.get("name", "em"), str):
            name = prot.get("name", "em")  # a non-string name is left to the field's own check
            base = _defaults_for(defaults, name, prot.get("kind"))
            if base:
                data = {**data, "protection": deep_merge(base, prot)}
        return data

    @model_validator(mode="after")
    def _check_countermeasures(self) -> UnlearnableSpec:
        labels = [countermeasure_label(steps) for steps in self.countermeasures]  # bad names/parameters fail here
        if len(set(labels)) != len(labels):
            raise ConfigError(f"countermeasures: an entry is listed twice ({labels}); list each defence once")
        if self.countermeasures and self.poison.noise_position == "after":
            raise ConfigError(
                "countermeasures need poison.noise_position: before (with 'after' the noise is added during training, "
                "so there is no released image set to wash)"
            )
        return self

    @model_validator(mode="after")
    def _check_defaults(self) -> UnlearnableSpec:
        for key, block in self.protection_defaults.items():
            name, _, kind = key.partition(":")
            # a `name:kind` block is checked as the merge would use it: over the name's block, with that kind
            full = {**_defaults_for(self.protection_defaults, name, kind), "kind": kind} if kind else dict(block)
            try:
                resolve_noise({**full, "name": name})
            except PrivlabError as e:
                raise ConfigError(f"protection_defaults.{key}: {e}") from None
        for key in _sweep_keys(self.sweep):
            if key.startswith("protection_defaults."):
                field = key.split(".")[-1]
                raise ConfigError(
                    f"sweep key {key!r}: protection_defaults only fill `protection` before a sweep expands, so the "
                    f"swept value would never reach a run; sweep over protection.{field} instead"
                )
        return self


def _sweep_keys(sweep: dict[str, Any] | None) -> list[str]:
    """The dotted keys of a sweep block (grid keys and the keys of ``zip`` groups)."""
    keys: list[str] = []
    for key, values in (sweep or {}).items():
        if key == "zip":
            for group in values if isinstance(values, list) else [values]:
                keys += list(group) if isinstance(group, dict) else []
        else:
            keys.append(key)
    return keys


def setting_names(spec: UnlearnableSpec) -> list[str]:
    """Column names of the transfer matrix: ``supervised:<model>``, ``<method>-probe:<encoder>``, ``<method>-knn:…``."""
    cols = [f"supervised:{m}" for m in spec.supervised.models]
    for m in spec.ssl.methods:
        cols += [f"{m}-probe:{spec.ssl.encoder}", f"{m}-knn:{spec.ssl.encoder}"]
    return cols


def protection_label(spec: UnlearnableSpec) -> str:
    """A short row label: ``em sample-wise (lenet5)``, ``tue-simclr sample-wise (lenet5)``, ``random class-wise``."""
    label = spec.protection.label()
    return label + (f" from {Path(spec.noise_file).name}" if spec.noise_file else "")


def _acc(name: str, value: float, step: int | None = None) -> MetricRecord:
    return MetricRecord(name, float(value), step, "fraction", "utility", True)


def _attack_settings(
    spec: UnlearnableSpec,
    train: LabelledImages,
    clean_train: LabelledImages,
    test: LabelledImages,
    ctx: RunContext,
    tag: str,
) -> tuple[dict[str, Any], nn.Module]:
    """Run every attacker setting on ``train``; returns ``({"accuracy": {setting: acc}, "curves": {...}}, the first
    supervised attacker's trained model)``."""
    acc: dict[str, float] = {}
    first: nn.Module | None = None
    curves: dict[str, list[float]] = {}
    if train.shape != test.shape:
        raise ConfigError(f"training images {train.shape} and test images {test.shape} differ in shape")
    released = Observation.granted(("data", "labels"), data=train, labels=train.labels)
    for i, m in enumerate(spec.supervised.models):
        curve, model = _supervised_curve(spec, m, train, test, ctx, seed=ctx.seed + i)
        acc[f"supervised:{m}"], curves[f"supervised:{m}"] = curve[-1], curve
        first = model if first is None else first
    for j, method in enumerate(spec.ssl.methods):
        cfg_ssl = spec.ssl.attack_config(method)
        attack = ATTACKS.get(SSL_ATTACK)(cfg_ssl)
        obs = Observation.granted(attack.requires, data=released.data, labels=released.labels)
        out = attack.run(obs, seed=ctx.seed + 100 + j, device=ctx.device, progress=ctx.progress)
        probe = train if spec.ssl.probe_data == "poisoned" else clean_train
        ev = evaluate_encoder(out.model, probe, clean_train, test, spec.ssl, device=ctx.device)
        acc[f"{method}-probe:{spec.ssl.encoder}"] = ev["linear_probe_accuracy"]
        acc[f"{method}-knn:{spec.ssl.encoder}"] = ev["knn_accuracy"]
        curves[f"{method}-ssl_loss"] = [h["ssl_loss"] for h in out.stats["history"]]
    assert first is not None  # supervised.models has at least one entry
    return {"accuracy": acc, "curves": curves, "tag": tag}, first


def _supervised_curve(
    spec: UnlearnableSpec, model: str, train: LabelledImages, test: LabelledImages, ctx: RunContext, *, seed: int
) -> tuple[list[float], nn.Module]:
    """Train supervised attacker ``model`` on ``train`` (the spec's recipe): ``(clean test accuracy after each
    epoch, the trained classifier)``."""

    def test_accuracy(epoch: int, stats: dict[str, float], net: Any) -> dict[str, float]:
        return {"test_accuracy": evaluate(net, test, device=ctx.device)["accuracy"]}

    cfg = {"model": model, "augment": spec.supervised.augment, "padding": spec.supervised.padding}
    attack = build_attack(SUPERVISED_ATTACK, {**cfg, "train": spec.supervised.train}, on_epoch=test_accuracy)
    obs = Observation.granted(attack.requires, data=train, labels=train.labels)
    out = attack.run(obs, seed=seed, device=ctx.device, progress=ctx.progress)
    return [h["test_accuracy"] for h in out.stats["history"]], out.model


def _defences(
    spec: UnlearnableSpec, poisoned: PoisonedImages, test: LabelledImages, ctx: RunContext, pois: dict[str, Any]
) -> dict[str, float]:
    """Clean test accuracy of the first supervised attacker trained on the poisoned set washed by each entry of
    ``countermeasures`` (``{label: accuracy}``; ``[]`` re-uses the plain poisoned result)."""
    model = spec.supervised.models[0]
    acc: dict[str, float] = {}
    for steps in spec.countermeasures:
        label = countermeasure_label(steps)
        if steps:
            washed = apply_countermeasures(poisoned, steps, seed=ctx.seed)
            acc[label] = _supervised_curve(spec, model, washed, test, ctx, seed=ctx.seed)[0][-1]
        else:
            acc[label] = pois["accuracy"][f"supervised:{model}"]
        ctx.log_many([_acc(f"countermeasure/{label}/poisoned_test_accuracy", acc[label])])
    return acc


def evaluate_encoder(
    model: Any,
    probe_train: LabelledImages,
    clean_train: LabelledImages,
    test: LabelledImages,
    cfg: SSLEvalSpec,
    *,
    device: Any = "cpu",
) -> dict[str, float]:
    """Measure an SSL model's encoder (``model.encoder``): ``linear_probe_accuracy`` (probe fit on ``probe_train``)
    and ``knn_accuracy`` (bank = ``clean_train``), both on the clean ``test`` split, as fractions."""
    f_probe = extract_features(model.encoder, probe_train, device=device)
    f_test = extract_features(model.encoder, test, device=device)
    f_bank = f_probe if probe_train is clean_train else extract_features(model.encoder, clean_train, device=device)
    return {
        "linear_probe_accuracy": linear_probe_accuracy(f_probe, probe_train.labels, f_test, test.labels, c=cfg.probe_c),
        "knn_accuracy": knn_accuracy(
            f_bank,
            clean_train.labels,
            f_test,
            test.labels,
            num_classes=test.num_classes,
            k=cfg.knn_k,
            temperature=cfg.knn_temperature,
        ),
    }


def _clean_key(spec: UnlearnableSpec, seed: int, device: str) -> str:
    data = {
        "dataset": spec.dataset.model_dump(mode="json"),
        "supervised": spec.supervised.model_dump(mode="json"),
        "ssl": spec.ssl.model_dump(mode="json"),
        "seed": seed,
        "device": device,
        "format": 1,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _clean_path(spec: UnlearnableSpec, ctx: RunContext) -> Path:
    return ctx.out / "cache" / f"unlearnable-clean-{_clean_key(spec, ctx.seed, torch.device(ctx.device).type)}.json"


def _clean_lock(path: Path, ctx: RunContext) -> Path:
    return ctx.out / LOCK_FOLDER / f"{path.stem}.lock"


def _clean_busy(spec: UnlearnableSpec, ctx: RunContext) -> bool:
    """Another process is computing this run's clean baselines right now (so this one should not wait for them yet)."""
    if not spec.reuse_clean:
        return False
    path = _clean_path(spec, ctx)
    return not path.is_file() and lock_busy(_clean_lock(path, ctx))


def _clean_baselines(
    spec: UnlearnableSpec, train: LabelledImages, test: LabelledImages, ctx: RunContext
) -> dict[str, Any]:
    path = _clean_path(spec, ctx)
    if not spec.reuse_clean:
        return _attack_settings(spec, train, train, test, ctx, "clean")[0]

    def waiting() -> None:
        print(f"[privlab] waiting for another process that computes the same clean baselines ({path})", file=sys.stderr)

    # one computer per entry: a second sweep worker that needs the same baselines waits, then reads the first's file
    with wait_lock(_clean_lock(path, ctx), on_wait=waiting):
        if path.is_file():
            try:
                cached = json.loads(path.read_text("utf-8"))
                got = set(cached.get("accuracy", {})) if isinstance(cached, dict) else set()
                if got == set(setting_names(spec)):
                    return cached
                why = f"it holds settings {sorted(got)}, not {sorted(setting_names(spec))}"
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError) as e:
                why = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
            warnings.warn(
                f"clean-baseline cache {path} is unusable ({why}); recomputing it and overwriting the file",
                stacklevel=2,
            )
        result, _ = _attack_settings(spec, train, train, test, ctx, "clean")
        atomic_write_text(path, json.dumps(result, sort_keys=True))
        return result


def _make_bank(spec: UnlearnableSpec, train: LabelledImages, test: LabelledImages, ctx: RunContext) -> PerturbationBank:
    p = spec.protection
    expected = (len(train) if p.kind == "sample" else train.num_classes, *train.shape)
    if spec.noise_file:
        bank = PerturbationBank.load(spec.noise_file, expected_shape=expected, kind=p.kind)
        if bank.epsilon > p.epsilon + 1e-9:
            bank.noise = bank.noise.clamp(-p.epsilon, p.epsilon)
        bank.epsilon = min(bank.epsilon, p.epsilon)
        return bank
    generator = noise_entry(p.name).obj(p)

    def on_round(rnd: int, stats: dict[str, float]) -> None:
        recs = []
        for k, v in stats.items():
            unit = {"train_loss": "nats", "ssl_loss": "nats", "seconds": "s", "perturbed_error": "fraction"}.get(k)
            recs.append(MetricRecord(f"noise_{k}", float(v), rnd, unit, "info", None))
        ctx.log_many(recs)

    def monitor(encoder: Any) -> dict[str, float]:  # the defender's own progress measure (TUE's knn_monitor)
        bank = extract_features(encoder, train, device=ctx.device)
        feats = extract_features(encoder, test, device=ctx.device)
        k, n = getattr(p, "knn_k", 200), train.num_classes
        return {"knn_accuracy": knn_accuracy(bank, train.labels, feats, test.labels, num_classes=n, k=k)}

    return generator.generate(
        train, seed=ctx.seed, device=ctx.device, progress=ctx.progress, on_round=on_round, monitor=monitor
    )


def _poison(spec: UnlearnableSpec, ctx: RunContext, train: LabelledImages, bank: PerturbationBank) -> PoisonedImages:
    """The released training set: ``train`` with the bank's noise on a ``poison.rate`` share of the images."""
    transform = build_transform(spec.supervised.augment, channels=train.shape[0], padding=spec.supervised.padding)
    return PoisonedImages(
        train,
        bank.noise,
        kind=bank.kind,
        epsilon=bank.epsilon,
        poison_rate=spec.poison.rate,
        quantize=spec.poison.quantize,
        noise_position=spec.poison.noise_position,
        transform=transform if spec.poison.noise_position == "after" else None,
        seed=ctx.seed,
    )


def _release_records(
    spec: UnlearnableSpec, train: LabelledImages, poisoned: PoisonedImages, bank: PerturbationBank, gen_seconds: float
) -> list[MetricRecord]:
    """How visible and how large the protection is (PSNR, L∞ in 1/255), its budget and generation cost."""
    linf = float((poisoned.images - train.images).abs().max()) if len(train) else 0.0
    # how visible the protection is to the data owner: PSNR of released vs clean images (the plane's utility)
    per_image = psnr(train.images, poisoned.images)
    finite = per_image[torch.isfinite(per_image)]
    protected_psnr = float(finite.mean()) if len(finite) else float("inf")
    records = [
        MetricRecord("protected_psnr", protected_psnr, None, "dB", "utility", True),
        MetricRecord("noise_linf", float(bank.noise.abs().max()) * 255, None, "1/255", "info", None),
        MetricRecord("poisoned_linf", linf * 255, None, "1/255", "info", None),
        MetricRecord("budget_epsilon", bank.epsilon * 255, None, "1/255", "privacy", None),
        MetricRecord("poison_rate", spec.poison.rate, None, "fraction", "info", None),
        MetricRecord("generation_seconds", gen_seconds, None, "s", "cost", False),
    ]
    if bank.meta.get("images_per_second"):
        ips = bank.meta["images_per_second"]
        records.append(MetricRecord("generation_images_per_second", ips, None, "images/s", "cost", True))
    return records


def _save_examples(
    spec: UnlearnableSpec, ctx: RunContext, train: LabelledImages, poisoned: PoisonedImages, bank: PerturbationBank
) -> None:
    """The first ``grid_images`` training images clean, their noise and poisoned (``examples.safetensors``)."""
    k = min(spec.grid_images, len(train))
    idx = torch.arange(k)
    ctx.save_tensors(
        "unlearnable-examples",
        "examples.safetensors",
        {"clean": train.batch(idx)[0], "noise": poisoned.noise_for(idx), "poisoned": poisoned.batch(idx)[0]},
        {"epsilon": bank.epsilon, "kind": bank.kind, "label": protection_label(spec)},
    )


def _transfer_records(spec: UnlearnableSpec, clean: dict[str, Any], pois: dict[str, Any]) -> list[MetricRecord]:
    """Clean vs poisoned accuracy of every attacker setting, the headline drops and the supervised curves."""
    records: list[MetricRecord] = []
    for setting in setting_names(spec):
        c, p = clean["accuracy"][setting], pois["accuracy"][setting]
        records += [_acc(f"clean_accuracy/{setting}", c), _acc(f"poisoned_accuracy/{setting}", p)]
    sup0 = f"supervised:{spec.supervised.models[0]}"
    drop = clean["accuracy"][sup0] - pois["accuracy"][sup0]
    records += [
        _acc("clean_train_test_accuracy", clean["accuracy"][sup0]),
        _acc("poisoned_train_test_accuracy", pois["accuracy"][sup0]),
        MetricRecord("supervised_accuracy_drop", drop, None, "fraction", "privacy", True),
    ]
    for e, (cv, pv) in enumerate(zip(clean["curves"][sup0], pois["curves"][sup0], strict=False), start=1):
        records += [_acc("clean_train_test_accuracy", cv, e), _acc("poisoned_train_test_accuracy", pv, e)]
    if spec.ssl.methods:
        m0 = f"{spec.ssl.methods[0]}-probe:{spec.ssl.encoder}"
        k0 = f"{spec.ssl.methods[0]}-knn:{spec.ssl.encoder}"
        probe_drop = clean["accuracy"][m0] - pois["accuracy"][m0]
        records += [
            _acc("clean_linear_probe_accuracy", clean["accuracy"][m0]),
            _acc("poisoned_linear_probe_accuracy", pois["accuracy"][m0]),
            MetricRecord("linear_probe_accuracy_drop", probe_drop, None, "fraction", "privacy", True),
            _acc("clean_knn_accuracy", clean["accuracy"][k0]),
            _acc("poisoned_knn_accuracy", pois["accuracy"][k0]),
        ]
    return records


def _probe_membership(
    spec: UnlearnableSpec, ctx: RunContext, victim: nn.Module, train: LabelledImages, test: LabelledImages
) -> list[MetricRecord]:
    """LOSS membership probe of the model trained on the poisoned set: ``spec.mia.records`` of its training records
    as the owner holds them (clean, without the protective noise: the realistic query) vs as many test records."""
    members, nonmembers = probe_indices(len(train), len(test), spec.mia.records, ctx.generator(91))
    score = membership_probe(
        victim,
        train.batch(members),
        test.batch(nonmembers),
        device=ctx.device,
    )
    return probe_records(score)


@PIPELINES.register(
    "unlearnable",
    spec=UnlearnableSpec,
    description="unlearnable examples (EM, TUE/CSD, baselines) vs supervised and self-supervised unauthorized training",
)
def run_unlearnable(spec: UnlearnableSpec, ctx: RunContext) -> None:
    """Generate (or load) the protection, poison the training set, train the attackers; log metrics and artifacts."""
    train, test = load_datasets(spec.dataset, ctx)
    t0 = time.perf_counter()
    bank = _make_bank(spec, train, test, ctx)
    gen_seconds = time.perf_counter() - t0
    bank.meta.setdefault("dataset", spec.dataset.name)
    ctx.save_tensors("perturbation", "perturbation.safetensors", {"noise": bank.noise}, bank.metadata())
    poisoned = _poison(spec, ctx, train, bank)
    ctx.log_many(_release_records(spec, train, poisoned, bank, gen_seconds))
    if spec.grid_images:
        _save_examples(spec, ctx, train, poisoned, bank)
    # Clean baselines first, unless another sweep worker is computing them right now: then this run trains its own
    # attackers first and reads them afterwards instead of idling on the lock (every attacker is seeded on its own,
    # so the order changes no number; measured sweep of 5 CIFAR-10 protections: a worker had idled 9 minutes).
    clean = None if _clean_busy(spec, ctx) else _clean_baselines(spec, train, test, ctx)
    pois, victim = _attack_settings(spec, poisoned, train, test, ctx, "poisoned")
    if spec.mia.enabled:
        ctx.log_many(_probe_membership(spec, ctx, victim, train, test))
    defences = _defences(spec, poisoned, test, ctx, pois)
    if clean is None:
        clean = _clean_baselines(spec, train, test, ctx)
    ctx.log_many(_transfer_records(spec, clean, pois))
    ctx.save_json(
        "unlearnable-transfer",
        "transfer.json",
        {
            "protection": protection_label(spec),
            "kind": bank.kind,
            "backbone": bank.meta.get("backbone"),
            "epsilon": bank.epsilon,
            "settings": setting_names(spec),
            "clean": clean["accuracy"],
            "poisoned": pois["accuracy"],
            "curves": {"clean": clean["curves"], "poisoned": pois["curves"]},
            "generation_history": bank.history,
            "countermeasures": defences,
        },
    )
