"""Unauthorized supervised training: the attacker trains a classifier on the released (protected) training set.

The attacker's architecture is chosen freely (independently of the backbone the noise was made on). The
measurement is the trained model's accuracy on the *clean* test split: an unlearnable protection works when it is
low although the same training on clean data reaches a high accuracy.

Example:
    >>> from privlab.data import load_dataset
    >>> from privlab.attack.unauthorized_supervised import SupervisedAttackConfig, train_unauthorized
    >>> from privlab.train import TrainConfig
    >>> train, test = load_dataset("digits", "train", limit=60), load_dataset("digits", "test", limit=30)
    >>> cfg = SupervisedAttackConfig(model="lenet5", augment="none", train=TrainConfig(epochs=1))
    >>> res = train_unauthorized(train, test, cfg, seed=0)
    >>> 0.0 <= res.test_accuracy <= 1.0, len(res.history)
    (True, 1)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from privlab.attack.base import ATTACKS, AttackOutput, Observation
from privlab.config import Spec
from privlab.context import Progress
from privlab.data.base import LabelledImages
from privlab.data.transforms import build_transform
from privlab.errors import ConfigError
from privlab.models import build_model
from privlab.train import TrainConfig, evaluate, fit

__all__ = ["SupervisedAttackConfig", "UnauthorizedResult", "UnauthorizedSupervised", "train_unauthorized"]


class SupervisedAttackConfig(Spec):
    """The attacker's supervised training recipe."""

    model: str = Field(default="resnet18", description="attacker architecture (privlab models)")
    normalize: bool = Field(default=True, description="normalise inside the model with the data set's mean/std")
    augment: Literal["none", "crop", "crop_flip"] = Field(
        default="crop_flip", description="training augmentation (pad-and-crop, flip)"
    )
    padding: int = Field(default=4, ge=0, description="pad-and-crop padding in pixels")
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(
            epochs=200, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4, scheduler="cosine"
        ),
        description="optimiser and schedule (default: the TUE/UE CIFAR recipe)",
    )


@dataclass
class UnauthorizedResult:
    """Outcome of one unauthorized training run.

    Attributes:
        test_accuracy: accuracy (fraction) on the clean test split after the last epoch.
        train_accuracy: accuracy on the (protected) training set after the last epoch, eval mode.
        history: per epoch the :func:`~privlab.train.fit` stats plus ``test_accuracy``.
        model: the trained classifier (eval mode).
    """

    test_accuracy: float
    train_accuracy: float
    history: list[dict[str, float]] = field(default_factory=list)
    model: nn.Module | None = None


def train_unauthorized(
    train: LabelledImages,
    test: LabelledImages,
    cfg: SupervisedAttackConfig,
    *,
    seed: int = 0,
    device: Any = "cpu",
    progress: Progress | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> UnauthorizedResult:
    """Train ``cfg.model`` on ``train`` (clean or protected) and measure clean ``test`` accuracy every epoch.

    Args:
        train: the training set the attacker has (e.g. a :class:`~privlab.data.wrappers.PoisonedImages`).
        test: the clean test split.
        cfg: architecture, augmentation and optimiser.
        seed: seeds weights, batch order and augmentation.
        on_epoch: called as ``on_epoch(epoch, stats)`` with ``test_accuracy`` added to the fit stats.
    """
    if train.shape != test.shape:
        raise ConfigError(f"training images {train.shape} and test images {test.shape} differ in shape")
    torch.manual_seed(seed)
    norm = {"mean": train.mean, "std": train.std} if cfg.normalize else {}
    model = build_model(cfg.model, train.num_classes, train.shape, **norm).to(device)
    transform = build_transform(cfg.augment, channels=train.shape[0], padding=cfg.padding)
    history: list[dict[str, float]] = []

    def epoch_end(epoch: int, stats: dict[str, float]) -> None:
        stats = {**stats, "test_accuracy": evaluate(model, test, device=device)["accuracy"]}
        history.append(stats)
        if on_epoch is not None:
            on_epoch(epoch, stats)

    fit(
        model,
        train,
        cfg.train,
        seed=seed,
        device=device,
        progress=progress,
        on_epoch_end=epoch_end,
        transform=transform,
    )
    model.eval()
    return UnauthorizedResult(
        test_accuracy=history[-1]["test_accuracy"],
        train_accuracy=evaluate(model, train, device=device)["accuracy"],
        history=history,
        model=model,
    )


@ATTACKS.register(
    "unauthorized-supervised",
    requires=("data", "labels"),
    config=SupervisedAttackConfig,
    description="train a classifier on the released (protected) training set; measure clean test accuracy",
)
class UnauthorizedSupervised:
    """Attack form of :func:`train_unauthorized`: the observation holds the released images and labels, the clean
    test split is passed as ``observation.meta["test"]`` (a :class:`LabelledImages`, used only for measurement)."""

    def __init__(self, cfg: SupervisedAttackConfig | None = None) -> None:
        self.cfg = cfg or SupervisedAttackConfig()
        self.model: nn.Module | None = None

    def run(self, obs: Observation, *, seed: int = 0, device: Any = "cpu") -> AttackOutput:
        """Train on ``obs.data``/``obs.labels``; ``stats`` hold ``test_accuracy`` and ``train_accuracy``."""
        if obs.data is None or obs.labels is None:
            raise ConfigError("unauthorized-supervised needs the released images and labels (observation.data/labels)")
        test = obs.meta.get("test")
        if not isinstance(test, LabelledImages):
            raise ConfigError("unauthorized-supervised needs the clean test split as observation.meta['test']")
        train = LabelledImages(obs.data, obs.labels, test.num_classes, mean=test.mean, std=test.std)
        res = train_unauthorized(train, test, self.cfg, seed=seed, device=device)
        self.model = res.model
        return AttackOutput(stats={"test_accuracy": res.test_accuracy, "train_accuracy": res.train_accuracy})
