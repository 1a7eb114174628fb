"""The ``mi`` experiment, and how every pipeline records an MI figure.

``privlab run`` with ``experiment: mi`` estimates the MI of a ground-truth task (``task:``, known answer, so the
error is stored too) or of two array files (``x:``/``z:``). Pipelines that report MI (Shredder) call
:func:`log_mi` — the value goes into the store as a metric with its interval, and the estimator, its rule,
diagnostics and calibration line go next to it as a JSON artifact the report shows — and
:func:`privlab.measure.mi.reduction.log_mi_reduction`, which never stores a reduction without an interval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from privlab.config import ExperimentSpec
from privlab.context import RunContext
from privlab.measure.mi import MIResult, estimate_mi
from privlab.pipelines import PIPELINES
from privlab.store import MetricRecord

__all__ = ["MISpec", "log_mi", "run_mi"]


def log_mi(ctx: RunContext, name: str, result: MIResult, *, truth: float | None = None) -> None:
    """Store an MI estimate: metrics ``<name>`` (nats), ``<name>_ci_low/high`` and the record ``mi-<name>.json``."""
    records = [MetricRecord(name, result.nats, None, "nats", "privacy", None)]
    if result.ci95 is not None:
        records += [
            MetricRecord(f"{name}_ci_low", result.ci95[0], None, "nats", "info", None),
            MetricRecord(f"{name}_ci_high", result.ci95[1], None, "nats", "info", None),
        ]
    if truth is not None:
        records += [
            MetricRecord(f"{name}_truth", truth, None, "nats", "info", None),
            MetricRecord(f"{name}_abs_error", abs(result.nats - truth), None, "nats", "info", False),
        ]
    ctx.log_many(records)
    ctx.save_json("mi", f"mi-{name}.json", {"name": name, "truth": truth, **result.as_dict()})


class MISpec(ExperimentSpec):
    """Spec of the ``mi`` experiment: one estimate on a ground-truth task or on two array files."""

    experiment: Literal["mi"] = "mi"
    task: str | None = Field(default=None, description="ground-truth task (privlab mi tasks); its MI is known")
    x: str | None = Field(default=None, description="array file of X samples (.npy/.npz/.safetensors)")
    z: str | None = Field(default=None, description="array file of Z samples, row i paired with row i of x")
    n: int = Field(default=5000, ge=10, description="samples drawn from the task")
    estimator: str = Field(default="auto", description="MI estimator (ite-dkl, ksg, gaussian, auto, infonce …)")
    k: int = Field(default=3, ge=1, description="neighbours of kNN estimators")
    repeats: int = Field(default=1, ge=1, description="independent draws (permutations / jitter / neural seeds)")
    jitter: float = Field(default=0.0, ge=0, description="std of tie-breaking noise, data units")
    preprocess: Literal["none", "standardize", "copula", "pca", "whiten"] = "none"
    pca_dims: int | None = Field(default=None, ge=1)
    backend: Literal["auto", "torch", "faiss", "scipy"] = "auto"
    options: dict[str, float | int | str] = Field(default_factory=dict, description="estimator-specific options")

    @model_validator(mode="after")
    def _one_source(self) -> MISpec:
        if (self.task is None) == (self.x is None or self.z is None):
            raise ValueError("give either task, or both x and z")
        return self


@PIPELINES.register("mi", spec=MISpec, description="estimate mutual information (ground-truth task or array files)")
def run_mi(spec: MISpec, ctx: RunContext) -> None:
    """Estimate the MI of ``spec``'s data and log it (with truth and error for a task)."""
    from privlab.measure.mi.tasks import get_task
    from privlab.store import load_array

    truth = None
    if spec.task is not None:
        task = get_task(spec.task)
        x, z = task.sample(spec.n, seed=ctx.seed)
        truth = task.mi
    else:
        x, z = load_array(Path(spec.x)), load_array(Path(spec.z))  # type: ignore[arg-type]
    result = estimate_mi(
        x,
        z,
        spec.estimator,
        k=spec.k,
        repeats=spec.repeats,
        seed=ctx.seed,
        backend=spec.backend,
        jitter=spec.jitter,
        preprocess=spec.preprocess,
        pca_dims=spec.pca_dims,
        device=str(ctx.device),
        options=dict(spec.options) or None,
    )
    log_mi(ctx, "mi", result, truth=truth)
    ctx.log("mi_seconds", result.seconds, unit="s", kind="cost", higher_is_better=False)
