"""The ``train`` experiment: train a classifier on a data set and evaluate it on the untouched test split.

It is also how later pipelines get their victim models: the checkpoint is ``model.safetensors`` in the run
folder, and :func:`load_checkpoint` rebuilds the model from its metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from privlab.config import ExperimentSpec, Spec
from privlab.context import RunContext
from privlab.data import dataset_info, load_dataset
from privlab.errors import FileFormatError, PrivlabError
from privlab.models import build_model
from privlab.pipelines import PIPELINES
from privlab.store import MetricRecord, load_tensors
from privlab.train import TrainConfig, evaluate, fit

__all__ = ["DatasetSpec", "TrainSpec", "load_checkpoint", "run_train"]


class DatasetSpec(Spec):
    """Which data set and how much of it (the data root and download flag are run options, not spec)."""

    name: str = Field(default="digits", description="registered data set (privlab datasets)")
    resize: int | None = Field(default=None, ge=1, description="resize images to resize×resize")
    train_limit: int | None = Field(default=None, ge=1, description="seeded subset of the training split")
    test_limit: int | None = Field(default=None, ge=1, description="seeded subset of the test split")


class TrainSpec(ExperimentSpec):
    """Spec of the ``train`` experiment."""

    experiment: Literal["train"] = "train"
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    model: str = Field(default="lenet5", description="registered model (privlab models)")
    normalize: bool = Field(default=True, description="put a normalize layer with the data set's mean/std first")
    train: TrainConfig = Field(default_factory=TrainConfig)


def load_datasets(ds: DatasetSpec, ctx: RunContext) -> tuple[Any, Any]:
    """Train and test splits of ``ds`` (limits seeded by the run's seed)."""
    kw = {"root": ctx.data_root, "download": ctx.download, "resize": ds.resize, "seed": ctx.seed}
    train = load_dataset(ds.name, "train", limit=ds.train_limit, **kw)
    test = load_dataset(ds.name, "test", limit=ds.test_limit, **kw)
    return train, test


@PIPELINES.register("train", spec=TrainSpec, description="train a classifier and evaluate it on the test split")
def run_train(spec: TrainSpec, ctx: RunContext) -> None:
    """Train ``spec.model`` on ``spec.dataset``; log per-epoch curves and final test accuracy; save the checkpoint."""
    dataset_info(spec.dataset.name)  # unknown names fail before any work
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


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _numbers(v: Any, n: int) -> bool:
    return v is None or (
        isinstance(v, list) and len(v) == n and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
    )


def load_checkpoint(path: str | Path, *, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model saved by the ``train`` experiment: ``(model in eval mode, metadata)``.

    The metadata is checked and the architecture is first built on PyTorch's ``meta`` device (no memory) and compared
    tensor by tensor with the file, so a forged header cannot make privlab allocate a huge model.

    Raises:
        DataMissingError: no such file. FileFormatError: not a privlab checkpoint (metadata missing or malformed, an
        unknown model) or weights of another shape.
    """
    tensors, meta = load_tensors(path)
    if "model" not in meta or "in_shape" not in meta:
        raise FileFormatError(f"{path}: not a privlab checkpoint (metadata lacks model/in_shape)")
    name, k, shape = meta["model"], meta.get("num_classes"), meta["in_shape"]
    if not (
        isinstance(name, str)
        and _int(k)
        and isinstance(shape, list)
        and len(shape) == 3
        and all(_int(v) for v in shape)
        and _numbers(meta.get("mean"), shape[0])
        and _numbers(meta.get("std"), shape[0])
    ):
        raise FileFormatError(
            f"{path}: not a privlab checkpoint (malformed metadata: model {name!r}, num_classes {k!r}, in_shape "
            f"{shape!r}); write it with `privlab train`"
        )
    norm = {"mean": meta["mean"], "std": meta["std"]} if meta.get("mean") and meta.get("std") else {}
    try:
        with torch.device("meta"):
            skeleton = build_model(name, k, tuple(shape), **norm)
    except PrivlabError as e:
        raise FileFormatError(f"{path}: cannot rebuild its model: {e}") from None
    except (TypeError, ValueError, RuntimeError) as e:
        raise FileFormatError(f"{path}: cannot rebuild model {name!r} from its metadata ({e})") from None
    want = {key: tuple(v.shape) for key, v in skeleton.state_dict().items()}
    got = {key: tuple(v.shape) for key, v in tensors.items()}
    if want != got:
        diff = sorted(set(want) ^ set(got)) or [key for key in want if want[key] != got[key]]
        key = diff[0]
        raise FileFormatError(
            f"{path}: weights do not fit model {name!r}: {key} is {got.get(key, 'missing')} in the file, "
            f"{want.get(key, 'absent')} in the model ({len(diff)} tensor(s) differ)"
        )
    model = build_model(name, k, tuple(shape), **norm)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        raise FileFormatError(f"{path}: weights do not fit model {name!r}: {str(e).splitlines()[0]}") from None
    return model.to(device).eval(), meta
