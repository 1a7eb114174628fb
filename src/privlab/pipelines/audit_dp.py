"""The ``audit-dp`` experiment: an empirical lower bound on ε from one training run (Steinke, Nasr & Jagielski
2023) beside the accountant's ε.

``canaries`` records of the pool become input-space canaries (``mislabel``: their label replaced by another class;
``ood``: uniform-noise images with random labels) — a black-box audit. Each canary is included in the training set
independently with probability ½; the target is trained (DP-SGD at ``target.epsilon``, or plainly as a control);
the attacker scores every canary by minus its loss, guesses "in" for the ``guesses`` highest and "out" for the
``guesses`` lowest, and :func:`~privlab.measure.mia.epsilon_lower_bound_one_run` turns the number of correct guesses
into ε_lb at ``confidence``. Gradient (white-box) canaries are not implemented yet.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from privlab.config import ExperimentSpec
from privlab.context import RunContext
from privlab.data.base import LabelledImages
from privlab.data.spec import DatasetSpec
from privlab.errors import ConfigError
from privlab.measure.mia import epsilon_lower_bound_one_run, one_run_guesses
from privlab.models import ModelName
from privlab.pipelines import PIPELINES
from privlab.pipelines.mia import TargetSpec, load_pool, train_or_load
from privlab.store import MetricRecord
from privlab.train import TrainConfig, evaluate

__all__ = ["AuditDPSpec", "make_canaries", "run_audit_dp"]


class AuditDPSpec(ExperimentSpec):
    """Spec of the ``audit-dp`` experiment."""

    experiment: Literal["audit-dp"] = "audit-dp"
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    model: ModelName = Field(default="lenet5", description="registered model")
    train: TrainConfig = Field(default_factory=TrainConfig, description="epochs (and plain-training settings)")
    target: TargetSpec = Field(default_factory=lambda: TargetSpec(kind="dpsgd", epsilon=4.0))
    canaries: int = Field(default=200, ge=2, description="number of canaries m")
    canary: Literal["mislabel", "ood"] = Field(default="mislabel", description="input-space canary kind")
    guesses: int = Field(default=50, ge=1, description="guesses on each side (r = 2·guesses)")
    confidence: float = Field(default=0.95, gt=0.5, lt=1, description="confidence of the lower bound")

    @model_validator(mode="after")
    def _check(self) -> AuditDPSpec:
        if 2 * self.guesses > self.canaries:
            raise ConfigError(f"guesses ({self.guesses}) on each side need ≤ canaries/2 ({self.canaries // 2})")
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


@PIPELINES.register("audit-dp", spec=AuditDPSpec, description="one-run empirical ε lower bound with canaries")
def run_audit_dp(spec: AuditDPSpec, ctx: RunContext) -> None:
    """Train with random canaries, guess their membership by loss, log ε_lb beside the accountant's ε."""
    pool, test = load_pool(spec.dataset, ctx.data_root, ctx.download, seed=0)
    g = ctx.generator(1)
    rest, canaries = make_canaries(pool, spec.canaries, spec.canary, g)
    included = torch.rand(spec.canaries, generator=g) < 0.5
    train = _concat(rest, canaries.subset(torch.nonzero(included).view(-1)))
    model, meta = train_or_load(ctx, "audit-dp-target", train, torch.arange(len(train)), spec.model, spec.train,
                                spec.target, seed=spec.seed,
                                dataset_key={**spec.dataset.model_dump(mode="json"), "canaries": spec.canaries,
                                             "canary": spec.canary, "canary_seed": spec.seed})
    with torch.no_grad():
        scores = -F.cross_entropy(model.eval()(canaries.images), canaries.labels, reduction="none")
    correct, r = one_run_guesses(scores.numpy(), included.numpy(), spec.guesses, spec.guesses)
    bound = epsilon_lower_bound_one_run(correct, r, confidence=spec.confidence)
    recs = [
        MetricRecord("epsilon_lower_bound", bound.epsilon, None, "nats", "privacy", False),
        MetricRecord("guess_accuracy", correct / r, None, "fraction", "privacy", False),
        MetricRecord("test_accuracy", evaluate(model, test)["accuracy"], None, "fraction", "utility", True),
    ]
    if meta.get("epsilon") is not None and spec.target.kind == "dpsgd":
        recs.append(MetricRecord("epsilon", float(meta["epsilon"]), None, "nats", "privacy", False))
    ctx.log_many(recs)
    ctx.save_json(
        "audit",
        "audit.json",
        {
            **bound.as_dict(),
            "accountant_epsilon": meta.get("epsilon"),
            "included": included.tolist(),
            "scores": scores.tolist(),
        },
    )
