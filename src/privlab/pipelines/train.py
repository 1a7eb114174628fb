"""The ``train`` experiment: train a classifier on a data set and evaluate it on the untouched test split.

The checkpoint is ``model.safetensors`` in the run folder; :func:`privlab.victim.load_checkpoint` rebuilds the model
from its metadata (a later pipeline's victim).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from privlab.config import ExperimentSpec
from privlab.context import RunContext
from privlab.data.spec import DatasetSpec, load_datasets
from privlab.models import ModelName, build_model
from privlab.pipelines import PIPELINES
from privlab.store import MetricRecord
from privlab.train import TrainConfig, evaluate, fit

__all__ = ["TrainSpec", "run_train"]


class TrainSpec(ExperimentSpec):
    """Spec of the ``train`` experiment."""

    experiment: Literal["train"] = "train"
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    model: ModelName = Field(default="lenet5", description="registered model (privlab models)")
    normalize: bool = Field(default=True, description="put a normalize layer with the data set's mean/std first")
    train: TrainConfig = Field(default_factory=TrainConfig)


@PIPELINES.register("train", spec=TrainSpec, description="train a classifier and evaluate it on the test split")
def run_train(spec: TrainSpec, ctx: RunContext) -> None:
    """Train ``spec.model`` on ``spec.dataset``; log per-epoch curves and final test accuracy; save the checkpoint."""
    train, test = load_datasets(spec.dataset, ctx)
    torch.manual_seed(ctx.seed)
    norm = {"mean": train.mean, "std": train.std} if spec.normalize else {}
    model = build_model(spec.model, train.num_classes, train.shape, **norm)

    def on_epoch(epoch: int, stats: dict[str, float]) -> None:
        ctx.log_many(
            [
                MetricRecord(k, v, epoch, unit, "utility" if "accuracy" in k else "info", hib)
                for k, v in stats.items()
                if k != "epoch"
                for unit, hib in [_UNITS.get(k, (None, None))]
            ]
        )

    history = fit(
        model, train, spec.train, seed=ctx.seed, device=ctx.device, progress=ctx.progress, on_epoch_end=on_epoch
    )
    result = evaluate(model, test, device=ctx.device, batch_size=spec.train.eval_batch_size)
    last = history[-1]
    ctx.log_many(
        [
            MetricRecord("test_accuracy", result["accuracy"], None, "fraction", "utility", True),
            MetricRecord("test_loss", result["loss"], None, "nats", "info", False),
            MetricRecord("train_accuracy", last["train_accuracy"], None, "fraction", "utility", True),
            MetricRecord("epochs_run", len(history), None, "epochs", "info", None),
            MetricRecord("train_seconds", sum(h["seconds"] for h in history), None, "s", "cost", False),
        ]
    )
    meta = {
        "model": spec.model,
        "num_classes": train.num_classes,
        "in_shape": list(train.shape),
        "mean": list(train.mean) if spec.normalize else None,
        "std": list(train.std) if spec.normalize else None,
        "dataset": spec.dataset.name,
        "test_accuracy": result["accuracy"],
    }
    ctx.save_tensors("checkpoint", "model.safetensors", model.state_dict(), meta)


_UNITS = {
    "train_loss": ("nats", False),
    "val_loss": ("nats", False),
    "train_accuracy": ("fraction", True),
    "val_accuracy": ("fraction", True),
    "lr": (None, None),
    "seconds": ("s", False),
}
