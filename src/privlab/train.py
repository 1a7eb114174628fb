"""The one training/evaluation loop every pipeline uses.

:func:`fit` trains a classifier with the optimiser and schedule of a :class:`TrainConfig`, seeded, on the run's
device, with a progress bar, optional early stopping on a validation split, and a callback per epoch (pipelines
use it to log metrics into the store). :func:`evaluate` measures accuracy and loss.

Example:
    >>> import torch
    >>> from privlab.data import load_dataset
    >>> from privlab.models import build_model
    >>> from privlab.train import TrainConfig, evaluate, fit
    >>> train = load_dataset("digits", "train", limit=200)
    >>> model = build_model("lenet5", 10, train.shape)
    >>> history = fit(model, train, TrainConfig(epochs=1), seed=0)
    >>> len(history), 0.0 <= evaluate(model, train)["accuracy"] <= 1.0
    (1, True)
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn
from torch.utils.data import DataLoader, Dataset

from privlab.config import Spec
from privlab.context import Progress, seed_everything
from privlab.data.base import LabelledImages
from privlab.errors import ConfigError

__all__ = ["EpochStats", "TrainConfig", "batches", "evaluate", "fit", "make_optimizer", "make_scheduler"]

EpochStats = dict[str, float]
Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class TrainConfig(Spec):
    """Optimiser, schedule and stopping rule of a training run."""

    epochs: int = Field(default=5, ge=1, le=100_000, description="passes over the training set")
    batch_size: int = Field(default=64, ge=1, description="training batch size")
    eval_batch_size: int = Field(default=512, ge=1, description="batch size for evaluation")
    optimizer: Literal["adam", "adamw", "sgd", "adadelta"] = Field(default="adam", description="optimiser")
    lr: float = Field(default=1e-3, gt=0, description="learning rate")
    momentum: float = Field(default=0.9, ge=0, lt=1, description="SGD momentum")
    nesterov: bool = Field(default=False, description="Nesterov momentum (SGD)")
    weight_decay: float = Field(default=0.0, ge=0, description="L2 weight decay")
    scheduler: Literal["none", "cosine", "multistep", "step", "onecycle"] = Field(
        default="none",
        description="LR schedule; onecycle (stepped per batch) rises to lr over the first 25 % of steps, then "
        "anneals to ~0",
    )
    milestones: list[int] = Field(default_factory=list, description="epochs at which multistep multiplies LR by gamma")
    step_size: int = Field(default=30, ge=1, description="period in epochs of the step schedule")
    gamma: float = Field(default=0.1, gt=0, le=1, description="LR factor of step/multistep schedules")
    val_fraction: float = Field(
        default=0.0, ge=0, lt=1, description="fraction of the training set held out for validation/early stopping"
    )
    early_stop_patience: int | None = Field(
        default=None, ge=1, description="stop after this many epochs without a better validation accuracy"
    )
    restore_best: bool = Field(default=True, description="with early stopping, keep the best validation weights")
    deterministic: bool = Field(default=False, description="ask torch for deterministic kernels (slower)")
    label_smoothing: float = Field(default=0.0, ge=0, lt=1, description="cross-entropy label smoothing")

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.early_stop_patience is not None and self.val_fraction == 0:
            raise ValueError("early_stop_patience needs a validation split: set val_fraction (e.g. 0.1)")
        if self.scheduler == "multistep" and not self.milestones:
            raise ValueError("scheduler 'multistep' needs milestones (e.g. [30, 60])")
        return self


def make_optimizer(params: Any, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Build the optimiser named in ``cfg`` over ``params``."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov and cfg.momentum > 0,
            weight_decay=cfg.weight_decay,
        )
    if cfg.optimizer == "adadelta":
        return torch.optim.Adadelta(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_scheduler(
    opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int = 1
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """LR schedule named in ``cfg`` (None for ``"none"``).

    ``cosine``/``multistep``/``step`` are stepped once per epoch; ``onecycle`` (:class:`~torch.optim.lr_scheduler.
    OneCycleLR`: peak ``cfg.lr`` reached after the first 25 % of the steps, from ``lr/25``; then cosine annealing to
    ``lr/10⁴``; momentum cycled for SGD) is stepped once per batch, over ``cfg.epochs × steps_per_epoch`` steps.
    (The warm-up fraction is fixed so that adding the schedule changed no existing spec's hash.)
    """
    if cfg.scheduler == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt,
            max_lr=cfg.lr,
            total_steps=cfg.epochs * max(1, steps_per_epoch),
            pct_start=0.25,
            cycle_momentum=cfg.optimizer == "sgd" and cfg.momentum > 0,
        )
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    if cfg.scheduler == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=cfg.milestones, gamma=cfg.gamma)
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    return None


def batches(
    data: Dataset, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(images, labels)`` batches; in-memory :class:`LabelledImages` are sliced without a per-item loop."""
    n = len(data)  # type: ignore[arg-type]
    if isinstance(data, LabelledImages):
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for i in range(0, n, batch_size):
            yield data.batch(order[i : i + batch_size])
        return
    yield from DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator)


@torch.no_grad()
def evaluate(
    model: nn.Module, data: Dataset, *, device: torch.device | str = "cpu", batch_size: int = 512
) -> dict[str, float]:
    """Accuracy (fraction in [0, 1]) and mean cross-entropy (nats) of ``model`` on ``data``, in eval mode."""
    was_training = model.training
    model.eval()
    correct, loss_sum, n = 0, 0.0, 0
    for x, y in batches(data, batch_size):
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        n += len(y)
    model.train(was_training)
    if n == 0:
        raise ConfigError("cannot evaluate on an empty data set")
    return {"accuracy": correct / n, "loss": loss_sum / n}


def _split_val(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset | None]:
    if fraction <= 0:
        return data, None
    n = len(data)  # type: ignore[arg-type]
    n_val = max(1, round(n * fraction))
    if n_val >= n:
        raise ConfigError(f"val_fraction {fraction} leaves no training data out of {n} images")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 7919))
    if isinstance(data, LabelledImages):
        return data.subset(perm[n_val:].sort().values), data.subset(perm[:n_val].sort().values)
    return torch.utils.data.Subset(data, perm[n_val:].tolist()), torch.utils.data.Subset(data, perm[:n_val].tolist())


def fit(
    model: nn.Module,
    train_data: Dataset,
    cfg: TrainConfig,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    on_epoch_end: Callable[[int, EpochStats], None] | None = None,
    transform: Transform | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    params: Any = None,
) -> list[EpochStats]:
    """Train ``model`` in place; return one stats dict per epoch.

    Args:
        model: a classifier mapping ``(B, C, H, W)`` in ``[0, 1]`` to logits.
        train_data: training images and labels (held-out validation is carved out when ``cfg.val_fraction > 0``).
        cfg: optimiser, schedule, epochs, early stopping.
        seed: seeds initial-weight-independent randomness (batch order, validation split, augmentations).
        device: where to train.
        progress: progress reporter (None: silent).
        on_epoch_end: called as ``on_epoch_end(epoch, stats)`` after each epoch (epochs count from 1).
        transform: optional batch augmentation ``transform(x, generator) -> x`` applied to training batches only.
        loss_fn: ``loss_fn(logits, labels)``; default cross-entropy with ``cfg.label_smoothing``.
        params: parameters to optimise (default: all of ``model`` that require grad).

    Returns:
        Per epoch: ``epoch``, ``train_loss`` (nats), ``train_accuracy``, ``lr``, ``seconds`` and, with a validation
        split, ``val_loss`` and ``val_accuracy``.
    """
    seed_everything(seed, deterministic=cfg.deterministic)
    progress = progress or Progress(quiet=True)
    model.to(device)
    train_part, val_part = _split_val(train_data, cfg.val_fraction, seed)
    params = [p for p in model.parameters() if p.requires_grad] if params is None else params
    opt = make_optimizer(params, cfg)
    n_batches = math.ceil(len(train_part) / cfg.batch_size)  # type: ignore[arg-type]
    sched = make_scheduler(opt, cfg, n_batches)
    per_batch = cfg.scheduler == "onecycle"
    loss_fn = loss_fn or (lambda logits, y: F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing))
    gen = torch.Generator().manual_seed(seed)
    aug_gen = torch.Generator(device=device).manual_seed(seed + 1) if transform else None
    history: list[EpochStats] = []
    best_acc, best_state, bad_epochs = -math.inf, None, 0
    with progress.task("train", total=cfg.epochs) as advance_epoch:
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            loss_sum, correct, seen = 0.0, 0, 0
            with progress.task(f"epoch {epoch}", total=n_batches) as advance_batch:
                for x, y in batches(train_part, cfg.batch_size, shuffle=True, generator=gen):
                    x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                    if transform is not None:
                        x = transform(x, aug_gen)
                    opt.zero_grad(set_to_none=True)
                    logits = model(x)
                    loss = loss_fn(logits, y)
                    if not torch.isfinite(loss):
                        raise ConfigError(
                            f"training diverged at epoch {epoch} (loss {loss.item()}); lower lr (now {cfg.lr})"
                        )
                    loss.backward()
                    opt.step()
                    if per_batch and sched is not None:
                        sched.step()
                    loss_sum += loss.item() * len(y)
                    correct += (logits.argmax(1) == y).sum().item()
                    seen += len(y)
                    advance_batch(1)
            stats: EpochStats = {
                "epoch": epoch,
                "train_loss": loss_sum / max(seen, 1),
                "train_accuracy": correct / max(seen, 1),
                "lr": opt.param_groups[0]["lr"],
            }
            if sched is not None and not per_batch:
                sched.step()
            if val_part is not None:
                val = evaluate(model, val_part, device=device, batch_size=cfg.eval_batch_size)
                stats["val_loss"], stats["val_accuracy"] = val["loss"], val["accuracy"]
            stats["seconds"] = time.perf_counter() - t0
            history.append(stats)
            if on_epoch_end is not None:
                on_epoch_end(epoch, stats)
            advance_epoch(1, loss=stats["train_loss"], acc=stats.get("val_accuracy", stats["train_accuracy"]))
            if cfg.early_stop_patience is not None:
                if stats["val_accuracy"] > best_acc:
                    best_acc, bad_epochs = stats["val_accuracy"], 0
                    if cfg.restore_best:
                        best_state = copy.deepcopy(model.state_dict())
                else:
                    bad_epochs += 1
                    if bad_epochs >= cfg.early_stop_patience:
                        break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history
