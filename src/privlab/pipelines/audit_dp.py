"""The ``audit-dp`` experiment: an empirical lower bound on ε beside the accountant's ε, from one training run
(``mode: one-run``, Steinke, Nasr & Jagielski 2023) or from many (``mode: several-runs``, Jagielski, Ullman & Oprea
2020).

``canaries`` records of the pool become input-space canaries (``mislabel``: their label replaced by another class;
``ood``: uniform-noise images with random labels) — a black-box audit. Each canary is included in the training set
independently with probability ½; the target is trained (DP-SGD at ``target.epsilon``, or plainly as a control);
the attacker scores every canary by minus its loss, guesses "in" for the ``guesses`` highest and "out" for the
``guesses`` lowest, and :func:`~privlab.measure.mia.epsilon_lower_bound_one_run` turns the number of correct guesses
into ε_lb at ``confidence``.

``canary: gradient`` (white-box, DP-SGD only): the m canaries are m distinct coordinates of the model's trainable
parameters, drawn at random (seeded) among all of them; each is included with probability ½. An included canary is
a record whose clipped per-example gradient is the Dirac vector ``max_grad_norm · e_c``; at every DP-SGD step it
joins the batch with the Poisson sampling rate (as every record does, so the accountant's ε applies to it) and is
added to the summed clipped gradient before the noise (:func:`privlab.protect.dpsgd.train_dpsgd`). The whole pool is
the training set. The score of canary c is ``−(θ_T − θ_0)[c]``, how far its coordinate moved against the canary's
direction (an included canary pushes it down by ``lr · max_grad_norm / batch_size`` per inclusion); the real data's
gradient on that coordinate and the noise blur the score. The same guesses and bound follow.

``several-runs``: one canary of the same kinds (``gradient``: one coordinate); ``runs`` targets are trained, each
with its own seed, the odd-numbered ones with the canary; the canary's score (minus its loss; for a gradient canary
its coordinate's movement as above) on each target is the test statistic. The threshold is chosen on the first
⌊runs/2⌋ targets and the false positives / negatives of that fixed test on the others give ε_lb by Clopper–Pearson
(:func:`~privlab.measure.mia.several_runs_bound`, with the target's δ).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from privlab.config import ExperimentSpec
from privlab.context import RunContext
from privlab.data.base import LabelledImages
from privlab.data.spec import DatasetSpec
from privlab.errors import ConfigError
from privlab.measure.mia import epsilon_lower_bound_one_run, one_run_guesses, several_runs_bound
from privlab.models import ModelName
from privlab.models.params import flat_parameters, trainable_parameters
from privlab.pipelines import PIPELINES
from privlab.pipelines.mia import TargetSpec, initial_model, load_pool, train_or_load
from privlab.store import MetricRecord
from privlab.train import TrainConfig, evaluate

__all__ = ["AuditDPSpec", "choose_coordinates", "make_canaries", "run_audit_dp"]


class AuditDPSpec(ExperimentSpec):
    """Spec of the ``audit-dp`` experiment."""

    experiment: Literal["audit-dp"] = "audit-dp"
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    model: ModelName = Field(default="lenet5", description="registered model")
    train: TrainConfig = Field(default_factory=TrainConfig, description="epochs (and plain-training settings)")
    target: TargetSpec = Field(default_factory=lambda: TargetSpec(kind="dpsgd", epsilon=4.0))
    canaries: int = Field(default=200, ge=2, description="number of canaries m")
    canary: Literal["mislabel", "ood", "gradient"] = Field(
        default="mislabel",
        description="canary kind: mislabel, ood (input space, black box) or gradient (Dirac "
        "gradient canaries in DP-SGD's steps, white box; needs target.kind: dpsgd)",
    )
    guesses: int = Field(default=50, ge=1, description="guesses on each side (r = 2·guesses)")
    confidence: float = Field(default=0.95, gt=0.5, lt=1, description="confidence of the lower bound")
    mode: Literal["one-run", "several-runs"] = Field(
        default="one-run", description="one-run: m canaries in one training; several-runs: one canary, `runs` trainings"
    )
    runs: int = Field(
        default=32,
        ge=4,
        le=10_000,
        description="several-runs: number of trained targets (half with "
        "the canary; half of them choose the threshold, the other half are counted)",
    )

    #: added after the first runs: left out of the spec hash at their defaults, so earlier one-run hashes still hold
    hash_omit_defaults: ClassVar[tuple[str, ...]] = ("mode", "runs")

    @model_validator(mode="after")
    def _check(self) -> AuditDPSpec:
        if 2 * self.guesses > self.canaries:
            raise ConfigError(f"guesses ({self.guesses}) on each side need ≤ canaries/2 ({self.canaries // 2})")
        if self.canary == "gradient" and self.target.kind != "dpsgd":
            raise ConfigError(
                f"canary: gradient inserts canary gradients into DP-SGD (white box), but target.kind "
                f"is {self.target.kind}; set target.kind: dpsgd with target.epsilon, or use canary: "
                "mislabel or ood"
            )
        return self


def make_canaries(pool: LabelledImages, m: int, kind: str, g: torch.Generator) -> tuple[LabelledImages, LabelledImages]:
    """``(rest of the pool, m canaries)``: mislabelled pool records, or uniform-noise images with random labels."""
    if m >= len(pool):
        raise ConfigError(f"canaries ({m}) must be fewer than the pool's {len(pool)} records")
    perm = torch.randperm(len(pool), generator=g)
    rest, chosen = pool.subset(perm[m:]), pool.subset(perm[:m])
    k = pool.num_classes
    if kind == "mislabel":
        labels = (chosen.labels + torch.randint(1, k, (m,), generator=g)) % k
        return rest, LabelledImages(chosen.images, labels, k, mean=pool.mean, std=pool.std)
    images = torch.rand((m, *pool.shape), generator=g)
    return rest, LabelledImages(images, torch.randint(0, k, (m,), generator=g), k, mean=pool.mean, std=pool.std)


def _concat(a: LabelledImages, b: LabelledImages) -> LabelledImages:
    return LabelledImages(
        torch.cat([a.images, b.images]), torch.cat([a.labels, b.labels]), a.num_classes, mean=a.mean, std=a.std
    )


def _canary_scores(model: torch.nn.Module, canaries: LabelledImages) -> torch.Tensor:
    """Minus the cross-entropy (nats) of each canary on ``model``: ``m`` floats, higher = member."""
    with torch.no_grad():
        return -F.cross_entropy(model.eval()(canaries.images), canaries.labels, reduction="none")


def choose_coordinates(model: torch.nn.Module, m: int, g: torch.Generator) -> torch.Tensor:
    """``m`` distinct flat coordinates (int64) drawn uniformly among the trainable entries of ``model``
    (:func:`privlab.models.params.flat_parameters` order): the gradient canaries."""
    total = flat_parameters(model).numel()
    if m > total:
        raise ConfigError(
            f"canaries ({m}) must be at most the model's {total} trainable parameters (gradient canaries)"
        )
    return torch.randperm(total, generator=g)[:m]


def _coordinate_scores(model: torch.nn.Module, init: torch.nn.Module, coords: torch.Tensor) -> torch.Tensor:
    """``−(θ_T − θ_0)[coords]``: ``m`` floats (parameter units), higher = the canary was in."""
    return -(flat_parameters(model) - flat_parameters(init))[coords]


def _coordinate_names(model: torch.nn.Module, coords: torch.Tensor) -> list[str]:
    """``"<parameter name>[<flat index in it>]"`` of each coordinate (for the artifact)."""
    params = trainable_parameters(model)
    ends = torch.tensor([p.numel() for _, p in params]).cumsum(0)
    which = torch.searchsorted(ends, coords, right=True)
    starts = ends - torch.tensor([p.numel() for _, p in params])
    return [f"{params[int(w)][0]}[{int(c - starts[w])}]" for c, w in zip(coords, which, strict=True)]


def _dataset_key(spec: AuditDPSpec, **extra: Any) -> dict[str, Any]:
    return {**spec.dataset.model_dump(mode="json"), "canary": spec.canary, "canary_seed": spec.seed, **extra}


def _accountant_records(spec: AuditDPSpec, epsilons: list[Any]) -> list[MetricRecord]:
    eps = [float(e) for e in epsilons if e is not None]
    if not eps or spec.target.kind != "dpsgd":
        return []
    return [MetricRecord("epsilon", max(eps), None, "nats", "privacy", False)]


def one_run_audit(spec: AuditDPSpec, ctx: RunContext, pool: LabelledImages, test: LabelledImages) -> dict[str, Any]:
    """Train once with ``spec.canaries`` canaries each in with probability ½; log ε_lb; the artifact's content."""
    g = ctx.generator(1)
    extra: dict[str, Any] = {}
    gradient = spec.canary == "gradient"
    if gradient:
        init = initial_model(pool, spec.model, spec.target, seed=spec.seed)
        coords = choose_coordinates(init, spec.canaries, g)
        included = torch.rand(spec.canaries, generator=g) < 0.5
        train, dirac = pool, coords[included]
    else:
        rest, canaries = make_canaries(pool, spec.canaries, spec.canary, g)
        included = torch.rand(spec.canaries, generator=g) < 0.5
        train, dirac = _concat(rest, canaries.subset(torch.nonzero(included).view(-1))), None
    model, meta = train_or_load(
        ctx, "audit-dp-target", train, torch.arange(len(train)), spec.model, spec.train, spec.target,
        seed=spec.seed, dataset_key=_dataset_key(spec, canaries=spec.canaries), dirac_canaries=dirac,
    )  # fmt: skip
    if gradient:
        scores = _coordinate_scores(model, init, coords)
        extra = {"coordinates": _coordinate_names(init, coords), "canary_insertions": meta.get("canary_insertions")}
    else:
        scores = _canary_scores(model, canaries)
    correct, r = one_run_guesses(scores.numpy(), included.numpy(), spec.guesses, spec.guesses)
    bound = epsilon_lower_bound_one_run(correct, r, confidence=spec.confidence)
    ctx.log_many(
        [
            MetricRecord("epsilon_lower_bound", bound.epsilon, None, "nats", "privacy", False),
            MetricRecord("guess_accuracy", correct / r, None, "fraction", "privacy", False),
            MetricRecord("test_accuracy", evaluate(model, test)["accuracy"], None, "fraction", "utility", True),
            *_accountant_records(spec, [meta.get("epsilon")]),
        ]
    )
    return {
        **bound.as_dict(),
        "canary": spec.canary,
        "accountant_epsilon": meta.get("epsilon"),
        "included": included.tolist(),
        "scores": scores.tolist(),
        **extra,
    }


def several_runs_audit(
    spec: AuditDPSpec, ctx: RunContext, pool: LabelledImages, test: LabelledImages
) -> dict[str, Any]:
    """Train ``spec.runs`` targets (odd-numbered ones with the one canary), score the canary on each, choose the
    threshold on the first half and count on the second; log ε_lb; the artifact's content."""
    gradient = spec.canary == "gradient"
    if gradient:  # one coordinate, the same in every run (the architecture fixes the flat layout)
        coord = choose_coordinates(initial_model(pool, spec.model, spec.target, seed=spec.seed), 1, ctx.generator(1))
    else:
        rest, canary = make_canaries(pool, 1, spec.canary, ctx.generator(1))
    included = torch.arange(spec.runs) % 2 == 1
    scores, accs, epsilons = [], [], []
    with ctx.progress.task("audit runs", total=spec.runs) as advance:
        for r in range(spec.runs):
            seed = spec.seed * 10_000 + r
            key = _dataset_key(spec, canaries=1, canary_in=bool(included[r]))
            if gradient:
                train, dirac = pool, (coord if included[r] else None)
            else:
                train, dirac = (_concat(rest, canary) if included[r] else rest), None
            model, meta = train_or_load(
                ctx, "audit-dp-runs", train, torch.arange(len(train)), spec.model, spec.train, spec.target,
                seed=seed, dataset_key=key, dirac_canaries=dirac,
            )  # fmt: skip
            if gradient:
                init = initial_model(pool, spec.model, spec.target, seed=seed)
                scores.append(float(_coordinate_scores(model, init, coord)[0]))
            else:
                scores.append(float(_canary_scores(model, canary)[0]))
            accs.append(evaluate(model, test)["accuracy"])
            epsilons.append(meta.get("epsilon"))
            advance(1)
    select = torch.arange(spec.runs) < spec.runs // 2
    bound, threshold = several_runs_bound(
        scores, included.numpy(), select.numpy(), delta=spec.target.delta, confidence=spec.confidence
    )
    c = bound.counts
    ctx.log_many(
        [
            MetricRecord("epsilon_lower_bound", bound.epsilon, None, "nats", "privacy", False),
            MetricRecord(
                "false_positive_rate", c["false_positives"] / c["negatives"], None, "fraction", "privacy", True
            ),
            MetricRecord(
                "false_negative_rate", c["false_negatives"] / c["positives"], None, "fraction", "privacy", True
            ),
            MetricRecord("test_accuracy", sum(accs) / len(accs), None, "fraction", "utility", True),
            *_accountant_records(spec, epsilons),
        ]
    )
    return {
        **bound.as_dict(),
        "mode": "several-runs",
        "canary": spec.canary,
        "threshold": threshold,
        "delta": spec.target.delta,
        "accountant_epsilon": max((e for e in epsilons if e is not None), default=None),
        "included": included.tolist(),
        "selection": select.tolist(),
        "scores": scores,
        "test_accuracy": accs,
    }


@PIPELINES.register("audit-dp", spec=AuditDPSpec, description="empirical ε lower bound with canaries (one or R runs)")
def run_audit_dp(spec: AuditDPSpec, ctx: RunContext) -> None:
    """Train with canaries (once or ``spec.runs`` times), guess their membership by loss, log ε_lb beside the
    accountant's ε; the guesses, scores and counts go to the ``audit`` artifact."""
    pool, test = load_pool(spec.dataset, ctx.data_root, ctx.download, seed=0)
    audit = several_runs_audit if spec.mode == "several-runs" else one_run_audit
    ctx.save_json("audit", "audit.json", audit(spec, ctx, pool, test))
