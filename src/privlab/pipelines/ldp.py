"""The ``ldp`` experiment: learn from locally-privatised images and labels; compare with DP-SGD at the same ε.

One run = one (mechanism, ε, learner):

1. **Budget.** ``epsilon`` is the total per-example budget of the run (image and label together, natural log). A
   share ``label_fraction`` goes to the label (unary encoding), the rest to the image; with ``fresh_noise`` the
   image share is split over every fresh release (epochs × views), so the composed ε always equals ``epsilon``
   (basic composition). δ (Gaussian) is split the same way.
2. **Privatise** the training images once with the mechanism (``laplace`` per pixel, ``gaussian`` on L2-normalised
   images, ``rr`` on binarised pixels) and the labels with ``sue``/``oue`` (decoded to one label, see
   :mod:`privlab.protect.ldp_label`). ``mechanism: none`` is the raw-data baseline (ε = ∞); ``noise: false`` is the
   per-mechanism baseline: raw images under the mechanism's public preprocessing only, labels public (ε = ∞).
3. **Learn**: ``cnn_shallow`` / ``cnn_deep`` (``privlab.train.fit`` on privatised images and labels), ``kmeans``
   (clusters labelled by the majority of privatised labels), ``iic`` (unsupervised; Hungarian-matched), or
   ``dpsgd`` (central DP: the shallow CNN trained with DP-SGD on raw data at ε = ``epsilon``; logged as mechanism
   ``dpsgd``).
4. **Evaluate on the raw test split** — never on training data. Test images only get the mechanism's deterministic
   public preprocessing (L2 normalisation for ``gaussian``, binarisation for ``rr``) so they have the form the
   model was trained on; no noise.
5. **Membership probe** (classifiers only: ``cnn_*``, ``dpsgd``; ``mia: {enabled, records}``): the registered LOSS
   attack on ``mia.records`` seeded training records (members) and as many test records (non-members). Members are
   queried as the *raw* records (through the public preprocessing only), never as their noisy release: the record
   is what LDP protects and what an attacker holds; the release is already the aggregator's. Metrics
   ``mia_loss_auc``, ``mia_loss_tpr_at_fpr_0.01`` … (:mod:`privlab.measure.mia.probe`).

Metrics: ``test_accuracy`` (utility), ``test_error``, ``epsilon`` (the run's total), ``epsilon_image`` (per image
and release), ``epsilon_pixel``, ``epsilon_label``, ``epsilon_composed``, ``delta``/``delta_composed``,
``releases``, the noise parameter (``laplace_scale``, ``gaussian_sigma``, ``rr_flip_probability``),
``label_agreement`` (fraction of decoded private labels equal to the truth), ``train_seconds``, ``mia_loss_*``
(membership probe, lower = more private). Artifacts:
``ldp-budget.json`` (allocation and account), ``examples.safetensors`` and ``examples.png`` (clean vs privatised
training images).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from privlab.config import ExperimentSpec, Spec
from privlab.context import RunContext
from privlab.data import LabelledImages
from privlab.data.spec import DatasetSpec, load_datasets
from privlab.errors import ConfigError
from privlab.measure.mia.probe import MembershipProbeSpec, membership_probe, probe_indices, probe_records
from privlab.measure.utility.clustering import hungarian_accuracy, kmeans_classifier
from privlab.models import build_model
from privlab.models.iic import IICConfig, predict_clusters, train_iic
from privlab.pipelines import PIPELINES
from privlab.protect import PROTECTIONS
from privlab.protect.ldp import PixelMechanism, UnaryEncoding, build_ldp_mechanisms, build_pixel_mechanism
from privlab.protect.ldp_budget import Allocation, LDPAccount, account
from privlab.store import MetricRecord, sha256_file
from privlab.train import TrainConfig, evaluate, fit

__all__ = ["DPSGDSpec", "KMeansSpec", "LDPSpec", "build_mechanisms", "run_ldp"]

Mechanism = Literal["laplace", "gaussian", "rr", "none", "dpsgd"]
Learner = Literal["cnn_shallow", "cnn_deep", "kmeans", "iic", "dpsgd"]
_MODEL = {"cnn_shallow": "mnist_cnn_shallow", "cnn_deep": "mnist_cnn_deep", "dpsgd": "mnist_cnn_shallow"}


class KMeansSpec(Spec):
    """k-means learner settings."""

    clusters: int = Field(default=10, ge=2, description="k (the original: 10, one per digit)")
    n_init: int = Field(default=3, ge=1, description="k-means restarts (scikit-learn n_init)")


class DPSGDSpec(Spec):
    """DP-SGD settings (ε and δ come from the run's ``epsilon`` and ``delta``)."""

    model: Literal["cnn_shallow", "cnn_deep"] = Field(default="cnn_shallow", description="the CNN trained")
    epochs: int = Field(default=3, ge=1)
    batch_size: int = Field(default=64, ge=2)
    lr: float = Field(default=0.5, gt=0)
    optimizer: Literal["sgd", "adam"] = "sgd"
    max_grad_norm: float = Field(default=1.0, gt=0)
    accountant: Literal["rdp", "prv", "gdp"] = "rdp"


class LDPSpec(ExperimentSpec):
    """Spec of the ``ldp`` experiment."""

    experiment: Literal["ldp"] = "ldp"
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    mechanism: Mechanism = Field(default="laplace", description="image mechanism; none = raw-data baseline")
    epsilon: float | None = Field(default=100.0, gt=0, description="total ε per training example (image + label)")
    delta: float = Field(default=1e-5, gt=0, lt=1, description="δ of the run (gaussian, dpsgd)")
    calibration: Literal["analytic", "classical"] = Field(default="analytic", description="Gaussian σ calibration")
    strict: bool = Field(default=True, description="classical calibration with ε ≥ 1: error (true) or warn (false)")
    sensitivity: float | None = Field(default=None, gt=0, description="Gaussian L2 sensitivity (default √2)")
    threshold: float = Field(default=0.5, ge=0, lt=1, description="rr: a pixel is 1 when > threshold")
    binarize: Literal["threshold", "dither"] = Field(
        default="threshold",
        description="rr: how pixels become bits — threshold (the original) or Floyd–Steinberg dithering (public)",
    )
    label_mechanism: Literal["sue", "oue", "none"] = Field(default="sue", description="label unary encoding")
    label_fraction: float = Field(default=0.1, ge=0, lt=1, description="share of ε spent on the label")
    label_decode: Literal["map", "sample"] = Field(default="map", description="private bits → training label")
    fresh_noise: bool = Field(default=False, description="new noise every epoch (and view); ε split over releases")
    noise: bool = Field(
        default=True,
        description="false: no noise, only the mechanism's public preprocessing (ε = ∞; the per-mechanism baseline)",
    )
    learner: Learner = Field(default="cnn_shallow", description="what learns from the privatised data")
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(epochs=5, batch_size=64))
    kmeans: KMeansSpec = Field(default_factory=KMeansSpec)
    iic: IICConfig = Field(default_factory=IICConfig)
    dpsgd: DPSGDSpec = Field(default_factory=DPSGDSpec)
    examples: int = Field(default=8, ge=0, le=64, description="training images shown clean vs privatised")
    mia: MembershipProbeSpec = Field(
        default_factory=MembershipProbeSpec,
        description="LOSS membership probe of the trained classifier (cnn_*, dpsgd): raw training vs test records",
    )

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        """Fold settings that cannot matter, so equivalent sweep points share one spec hash (and run once)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("learner") == "dpsgd" or data.get("mechanism") == "dpsgd":
            data["learner"], data["mechanism"], data["label_mechanism"] = "dpsgd", "dpsgd", "none"
            data["fresh_noise"] = False
        if data.get("noise") is False and data.get("mechanism", "laplace") in ("laplace", "none", "dpsgd"):
            data["noise"] = True  # laplace's preprocessing is the identity: its ε = ∞ limit is the raw baseline
            if data.get("mechanism", "laplace") == "laplace":
                data["mechanism"] = "none"
        if data.get("mechanism") == "none" or data.get("noise") is False:
            data["epsilon"], data["label_mechanism"], data["fresh_noise"] = None, "none", False
        if data.get("label_mechanism") == "none":
            data["label_fraction"] = 0.0
        return data

    @model_validator(mode="after")
    def _check(self) -> LDPSpec:
        if self.mechanism != "none" and self.noise and self.epsilon is None:
            raise ValueError(f"mechanism {self.mechanism!r} needs epsilon (> 0)")
        if self.label_mechanism != "none" and self.label_fraction == 0:
            raise ValueError("label_mechanism needs label_fraction > 0 (the share of epsilon spent on labels)")
        return self


def _releases(spec: LDPSpec) -> int:
    if not spec.fresh_noise or spec.learner == "kmeans":
        return 1
    if spec.learner == "iic":
        return spec.iic.epochs * 2 * spec.iic.repeats
    return spec.train.epochs


def build_mechanisms(
    spec: LDPSpec, num_classes: int
) -> tuple[PixelMechanism | None, UnaryEncoding | None, Allocation | None]:
    """The image and label mechanisms of ``spec`` with its budget allocation (Nones for ``none``/``dpsgd``), from
    :func:`privlab.protect.ldp.build_ldp_mechanisms`."""
    if spec.mechanism in ("none", "dpsgd") or not spec.noise:
        return None, None, None
    assert spec.epsilon is not None
    params: dict[str, Any] = {}
    if spec.mechanism == "gaussian":
        params = {"calibration": spec.calibration, "strict": spec.strict, "sensitivity": spec.sensitivity}
    elif spec.mechanism == "rr":
        params = {"threshold": spec.threshold, "binarize": spec.binarize}
    return build_ldp_mechanisms(
        spec.mechanism,
        spec.epsilon,
        label_mechanism=spec.label_mechanism,
        label_fraction=spec.label_fraction,
        releases=_releases(spec),
        delta=spec.delta,
        num_classes=num_classes,
        label_decode=spec.label_decode,
        **params,
    )


def _noise_metrics(mech: PixelMechanism, pixels: int) -> list[MetricRecord]:
    d = mech.budget(pixels).details
    out = []
    if "scale" in d:
        out.append(MetricRecord("laplace_scale", d["scale"], None, "pixel units", "info", None))
    if "sigma" in d:
        out.append(MetricRecord("gaussian_sigma", d["sigma"], None, "normalised units", "info", None))
    if "q" in d:
        out.append(MetricRecord("rr_flip_probability", d["q"], None, "probability", "info", None))
    return out


def _budget_records(acct: LDPAccount | None, spec: LDPSpec, alloc: Allocation | None) -> list[MetricRecord]:
    recs = [
        MetricRecord("epsilon", spec.epsilon if spec.epsilon is not None else math.inf, None, "nats", "privacy", False)
    ]
    if acct is not None and alloc is not None:
        recs += [
            MetricRecord("epsilon_image", acct.per_image.epsilon, None, "nats", "privacy", False),  # type: ignore[union-attr]
            MetricRecord("epsilon_pixel", acct.per_pixel.epsilon, None, "nats", "privacy", False),  # type: ignore[union-attr]
            MetricRecord(
                "epsilon_label", acct.per_label.epsilon if acct.per_label else math.inf, None, "nats", "privacy", False
            ),
            MetricRecord("epsilon_composed", acct.composed.epsilon, None, "nats", "privacy", False),
            MetricRecord("releases", alloc.releases, None, "count", "info", None),
        ]
        if acct.composed.delta is not None:
            recs += [
                MetricRecord("delta", acct.per_image.delta, None, "probability", "privacy", False),  # type: ignore[union-attr]
                MetricRecord("delta_composed", acct.composed.delta, None, "probability", "privacy", False),
            ]
    return recs


def _save_examples(ctx: RunContext, clean: torch.Tensor, private: torch.Tensor, meta: dict[str, Any]) -> None:
    from privlab.store.images import save_grid

    ctx.save_tensors(
        "examples", "examples.safetensors", {"clean": clean.contiguous(), "private": private.contiguous()}, meta
    )
    shown = torch.cat([clean, private])
    if shown.shape[1] == 1 and shown.max() > 0:
        shown = shown / shown.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)  # normalised images are dim
    path = save_grid(ctx.run_dir / "examples.png", shown, nrow=clean.shape[0], scale=4)
    ctx.store.add_artifact(ctx.run_id, "grid", path, sha256_file(path), {"rows": ["clean", "private"], **meta})


def _public_form(spec: LDPSpec, mech: PixelMechanism | None) -> Callable[[torch.Tensor], torch.Tensor]:
    """The deterministic public preprocessing the learner's inputs get (no noise): the mechanism's, the noise-free
    baseline's (``noise: false`` with ``gaussian``/``rr``), or the identity. Test images and the membership probe's
    queries pass through it, so they have the form the model was trained on."""
    if mech is not None:
        return mech.preprocess
    if not spec.noise and spec.mechanism in ("gaussian", "rr"):  # baseline: public preprocessing only, ε = ∞
        extra_params: dict[str, Any] = {"delta": spec.delta}
        if spec.mechanism == "rr":
            extra_params = {"threshold": spec.threshold, "binarize": spec.binarize}
        return build_pixel_mechanism(spec.mechanism, epsilon=1.0, **extra_params).preprocess  # ε unused
    return lambda x: x


def _privatise(
    spec: LDPSpec, ctx: RunContext, train: LabelledImages, test: LabelledImages, mech: PixelMechanism | None,
    label_mech: UnaryEncoding | None, fresh: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[MetricRecord]]:  # fmt: skip
    """Training images and labels as released, and the test images in the same (public) form:
    ``(train_x, train_y, test_x, records)``; records has ``label_agreement`` when labels are privatised."""
    raw_x = train.images
    form = _public_form(spec, mech)
    test_x = form(test.images)
    if mech is None:  # no release: raw images, or the mechanism's public preprocessing only (ε = ∞)
        train_x = form(raw_x)
    else:
        train_x = mech.preprocess(raw_x) if fresh else mech.privatize(raw_x, ctx.generator(1))
    train_y = train.labels
    records: list[MetricRecord] = []
    if label_mech is not None:
        train_y = label_mech.privatize_labels(train.labels, ctx.generator(2))
        agreement = (train_y == train.labels).double().mean().item()
        records.append(MetricRecord("label_agreement", agreement, None, "fraction", "info", None))
    return train_x, train_y, test_x, records


def _learn_kmeans(
    spec: LDPSpec, ctx: RunContext, k: int, train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
    test_y: torch.Tensor,
) -> tuple[float, list[MetricRecord], dict[str, Any]]:  # fmt: skip
    r = kmeans_classifier(
        train_x, train_y, test_x, test_y, num_clusters=spec.kmeans.clusters, num_classes=k, seed=ctx.seed,
        n_init=spec.kmeans.n_init,
    )  # fmt: skip
    records = []
    if r.hungarian_accuracy is not None:
        records.append(MetricRecord("hungarian_accuracy", r.hungarian_accuracy, None, "fraction", "utility", True))
    return r.accuracy, records, {"kmeans": {"mapping": r.mapping, "confusion": r.confusion, "inertia": r.inertia}}


def _learn_iic(
    spec: LDPSpec, ctx: RunContext, k: int, train_x: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
    fresh_mech: PixelMechanism | None,
) -> tuple[float, list[MetricRecord], dict[str, Any]]:  # fmt: skip
    view = (lambda x, g: fresh_mech.privatize(x, g)) if fresh_mech is not None else None
    net, res = train_iic(
        train_x, k, spec.iic, seed=ctx.seed, device=ctx.device, progress=ctx.progress, view_transform=view
    )
    for h in res.history:
        ctx.log_many(
            [
                MetricRecord("iic_loss_a", h["loss_a"], int(h["epoch"]), "nats", "info", False),
                MetricRecord("iic_loss_b", h["loss_b"], int(h["epoch"]), "nats", "info", False),
            ]
        )
    preds = predict_clusters(net, test_x)
    accs = [hungarian_accuracy(p, test_y, k, k)[0] for p in preds]
    records = [
        MetricRecord("iic_subhead_accuracy_min", min(accs), None, "fraction", "info", True),
        MetricRecord("iic_subhead_accuracy_mean", sum(accs) / len(accs), None, "fraction", "info", True),
        MetricRecord("iic_subhead_accuracy_max", max(accs), None, "fraction", "info", True),
        MetricRecord("iic_loss", res.subhead_losses[res.best_subhead], None, "nats", "info", False),
    ]
    extra = {"iic": {"subhead_accuracy": accs, "subhead_loss": res.subhead_losses, "best_subhead": res.best_subhead}}
    return accs[res.best_subhead], records, extra


def _learn_dpsgd(
    spec: LDPSpec, ctx: RunContext, train: LabelledImages, test: LabelledImages
) -> tuple[float, list[MetricRecord], dict[str, Any], nn.Module]:
    """Central DP baseline: the CNN trained with DP-SGD on raw data at the run's ε and δ."""
    assert spec.epsilon is not None
    torch.manual_seed(ctx.seed)
    model = build_model(_MODEL[spec.dpsgd.model], train.num_classes, train.shape, mean=train.mean, std=train.std)
    d, dpsgd = spec.dpsgd, PROTECTIONS.entry("dpsgd")  # a training protection: obj = train(model, data, cfg, …)
    cfg = dpsgd.meta["config"](
        epsilon=spec.epsilon, delta=spec.delta, max_grad_norm=d.max_grad_norm, epochs=d.epochs,
        batch_size=d.batch_size, optimizer=d.optimizer, lr=d.lr, accountant=d.accountant,
    )  # fmt: skip
    model, res_dp = dpsgd.obj(model, train, cfg, seed=ctx.seed, device=ctx.device, progress=ctx.progress)
    acc = evaluate(model, test, device=ctx.device)["accuracy"]
    records = [
        MetricRecord("epsilon_spent", res_dp.epsilon, None, "nats", "privacy", False),
        MetricRecord("noise_multiplier", res_dp.noise_multiplier, None, "σ/C", "info", None),
        MetricRecord("delta", spec.delta, None, "probability", "privacy", False),
    ]
    extra = {"dpsgd": {"budget": res_dp.budget().as_dict(), "history": res_dp.history, "model_fixed": res_dp.fixed}}
    return acc, records, extra, model


def _save_examples_of(
    spec: LDPSpec, ctx: RunContext, mech: PixelMechanism, raw_x: torch.Tensor, train_x: torch.Tensor, fresh: bool,
    alloc: Allocation,
) -> None:  # fmt: skip
    n = min(spec.examples, len(raw_x))
    shown = mech.privatize(raw_x[:n], ctx.generator(1)) if fresh else train_x[:n]
    meta = {"mechanism": spec.mechanism, "epsilon": spec.epsilon, "epsilon_image": alloc.image_epsilon}
    _save_examples(ctx, mech.preprocess(raw_x[:n]), shown, meta)


@PIPELINES.register(
    "ldp",
    spec=LDPSpec,
    description="local DP on images/labels (laplace, gaussian, rr; sue/oue) → CNN, k-means, IIC; DP-SGD baseline",
)
def run_ldp(spec: LDPSpec, ctx: RunContext) -> None:
    """Privatise the training split, train ``spec.learner`` on it, evaluate on the raw test split, log everything."""
    train, test = load_datasets(spec.dataset, ctx)
    k = train.num_classes
    pixels = math.prod(train.shape)
    mech, label_mech, alloc = build_mechanisms(spec, k)
    fresh = spec.fresh_noise and mech is not None and spec.learner != "kmeans"
    train_x, train_y, test_x, records = _privatise(spec, ctx, train, test, mech, label_mech, fresh)
    acct = None
    if mech is not None:
        assert alloc is not None
        acct = account(mech.budget(pixels), label_mech.budget() if label_mech else None, releases=alloc.releases)
        records += _noise_metrics(mech, pixels)
        if spec.examples:
            _save_examples_of(spec, ctx, mech, train.images, train_x, fresh, alloc)

    # -- learn, evaluate on the raw test split, probe membership with raw records -----------------------------------
    t0 = time.perf_counter()
    acc, learned, extra, model = _learn(spec, ctx, train, test, train_x, train_y, test_x, mech if fresh else None)
    records += learned
    seconds = time.perf_counter() - t0
    if model is not None and spec.mia.enabled:
        records += _probe_membership(spec, ctx, model, train, test, _public_form(spec, mech))
    records += [
        MetricRecord("test_accuracy", acc, None, "fraction", "utility", True),
        MetricRecord("test_error", 1.0 - acc, None, "fraction", "info", False),
        MetricRecord("train_seconds", seconds, None, "s", "cost", False),
        *_budget_records(acct, spec, alloc),
    ]
    ctx.log_many(records)
    budget = {
        "mechanism": spec.mechanism, "learner": spec.learner, "label_mechanism": spec.label_mechanism,
        "epsilon": spec.epsilon, "pixels": pixels, "allocation": None if alloc is None else alloc.__dict__,
        "account": None if acct is None else acct.as_dict(), "test_accuracy": acc, **extra,
    }  # fmt: skip
    ctx.save_json("budget", "ldp-budget.json", budget)


def _learn(
    spec: LDPSpec, ctx: RunContext, train: LabelledImages, test: LabelledImages, train_x: torch.Tensor,
    train_y: torch.Tensor, test_x: torch.Tensor, fresh_mech: PixelMechanism | None,
) -> tuple[float, list[MetricRecord], dict[str, Any], nn.Module | None]:  # fmt: skip
    """Train ``spec.learner`` on the released data: ``(test accuracy, records, extra facts, the classifier)``; the
    classifier is None for the clustering learners (k-means, IIC), which the membership probe leaves out."""
    k = train.num_classes
    if spec.learner in ("cnn_shallow", "cnn_deep"):
        acc, model = _run_cnn(spec, ctx, train, train_x, train_y, test_x, test.labels, fresh_mech)
        return acc, [], {}, model
    if spec.learner == "kmeans":
        return (*_learn_kmeans(spec, ctx, k, train_x, train_y, test_x, test.labels), None)
    if spec.learner == "iic":
        return (*_learn_iic(spec, ctx, k, train_x, test_x, test.labels, fresh_mech), None)
    return _learn_dpsgd(spec, ctx, train, test)


def _probe_membership(
    spec: LDPSpec, ctx: RunContext, model: nn.Module, train: LabelledImages, test: LabelledImages,
    form: Callable[[torch.Tensor], torch.Tensor],
) -> list[MetricRecord]:  # fmt: skip
    """LOSS membership probe: ``spec.mia.records`` raw training records (members: the records whose privacy the
    mechanism protects, queried as the attacker holds them — never the noisy release) vs as many raw test records,
    both through the public preprocessing ``form`` the model's inputs get."""
    members, nonmembers = probe_indices(len(train), len(test), spec.mia.records, ctx.generator(91))
    (xm, ym), (xn, yn) = train.batch(members), test.batch(nonmembers)
    score = membership_probe(model, (form(xm).clamp(0, 1), ym), (form(xn).clamp(0, 1), yn), device=ctx.device)
    return probe_records(score)


def _run_cnn(
    spec: LDPSpec,
    ctx: RunContext,
    train: LabelledImages,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    fresh_mech: PixelMechanism | None,
) -> tuple[float, nn.Module]:
    """Train the CNN on the released images and labels: ``(accuracy on the test images, the model)``."""
    if fresh_mech is not None:  # data-independent normalisation: statistics of one release would cost budget
        mean, std = (0.5,) * train.shape[0], (0.5,) * train.shape[0]
    else:
        flat = train_x.transpose(0, 1).flatten(1)
        mean = tuple(float(v) for v in flat.mean(1))
        std = tuple(max(float(v), 1e-6) for v in flat.std(1))
    data = LabelledImages(train_x, train_y, train.num_classes, name=f"{train.name}-private", mean=mean, std=std)
    torch.manual_seed(ctx.seed)
    model = build_model(_MODEL[spec.learner], train.num_classes, train.shape, mean=mean, std=std)

    def on_epoch(epoch: int, stats: dict[str, float]) -> None:
        ctx.log_many(
            [
                MetricRecord(f"cnn_{k}", v, epoch, None, "info", None)
                for k, v in stats.items()
                if k in ("train_loss", "train_accuracy")
            ]
        )

    transform = (lambda x, g: fresh_mech.privatize(x, g)) if fresh_mech is not None else None
    fit(
        model,
        data,
        spec.train,
        seed=ctx.seed,
        device=ctx.device,
        progress=ctx.progress,
        on_epoch_end=on_epoch,
        transform=transform,
    )
    if len(test_y) == 0:
        raise ConfigError("the test split is empty")
    test = LabelledImages(test_x.clamp(0, 1), test_y, train.num_classes, name=f"{train.name}-test")
    return evaluate(model, test, device=ctx.device, batch_size=spec.train.eval_batch_size)["accuracy"], model
