"""Unauthorized supervised training: the attacker trains a classifier on the released (protected) training set.

The attacker's architecture is chosen freely (independently of the backbone the noise was made on). It sees only the
released set and returns its trained classifier (``AttackOutput.model``); the pipeline measures it (accuracy on the
*clean* test split: an unlearnable protection works when it is low although the same training on clean data reaches
a high accuracy).

Example:
    >>> from privlab.data import load_dataset
    >>> from privlab.attack.unauthorized_supervised import SupervisedAttackConfig, train_unauthorized
    >>> from privlab.train import TrainConfig
    >>> train = load_dataset("digits", "train", limit=60)
    >>> cfg = SupervisedAttackConfig(model="lenet5", augment="none", train=TrainConfig(epochs=1))
    >>> model, history = train_unauthorized(train, cfg, seed=0)
    >>> len(history), model.training
    (1, False)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from privlab.attack.base import ATTACKS, Attack, AttackOutput, Observation
from privlab.config import Spec
from privlab.context import Progress
from privlab.data.base import LabelledImages
from privlab.data.transforms import build_transform
from privlab.errors import ConfigError
from privlab.models import ModelName, build_model
from privlab.train import TrainConfig, evaluate, fit

__all__ = ["EpochHook", "SupervisedAttackConfig", "UnauthorizedSupervised", "train_unauthorized"]

# (epoch, fit stats, the model being trained) -> extra numbers for the history (e.g. a measured test accuracy)
EpochHook = Callable[[int, dict[str, float], nn.Module], dict[str, float] | None]


class SupervisedAttackConfig(Spec):
    """The attacker's supervised training recipe."""

    model: ModelName = Field(default="resnet18", description="attacker architecture (privlab models)")
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


def train_unauthorized(
    train: LabelledImages,
    cfg: SupervisedAttackConfig,
    *,
    seed: int = 0,
    device: Any = "cpu",
    progress: Progress | None = None,
    on_epoch: EpochHook | None = None,
) -> tuple[nn.Module, list[dict[str, float]]]:
    """Train ``cfg.model`` on ``train`` (clean or protected); returns the classifier (eval mode) and per epoch the
    :func:`~privlab.train.fit` stats plus whatever ``on_epoch(epoch, stats, model)`` returns.

    Args:
        train: the training set the attacker has (e.g. a :class:`~privlab.data.wrappers.PoisonedImages`).
        cfg: architecture, augmentation and optimiser.
        seed: seeds weights, batch order and augmentation.
        on_epoch: a measurement hook called after every epoch (the attacker itself holds no evaluation data).
    """
    torch.manual_seed(seed)
    norm = {"mean": train.mean, "std": train.std} if cfg.normalize else {}
    model = build_model(cfg.model, train.num_classes, train.shape, **norm).to(device)
    transform = build_transform(cfg.augment, channels=train.shape[0], padding=cfg.padding)
    history: list[dict[str, float]] = []

    def epoch_end(epoch: int, stats: dict[str, float]) -> None:
        extra = on_epoch(epoch, stats, model) if on_epoch is not None else None
        history.append({**stats, **(extra or {})})

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
    return model, history


@ATTACKS.register(
    "unauthorized-supervised",
    requires=("data", "labels"),
    config=SupervisedAttackConfig,
    description="train a classifier on the released (protected) training set; returns the classifier",
)
class UnauthorizedSupervised(Attack):
    """Attack form of :func:`train_unauthorized`: the observation holds the released data set (a
    :class:`LabelledImages`, or images with ``labels`` and ``meta["num_classes"]``).

    Args:
        cfg: the recipe. on_epoch: measurement hook after every epoch (see :func:`train_unauthorized`).
    """

    config_class = SupervisedAttackConfig
    requires = ("data", "labels")

    def __init__(
        self, cfg: SupervisedAttackConfig | dict[str, Any] | None = None, *, on_epoch: EpochHook | None = None
    ) -> None:
        super().__init__(cfg)
        self.on_epoch = on_epoch

    def run(
        self,
        observation: Observation,
        *,
        seed: int = 0,
        generator: torch.Generator | None = None,
        device: Any = "cpu",
        progress: Progress | None = None,
    ) -> AttackOutput:
        """Train on the released set; returns the model, ``stats["train_accuracy"]`` (on the released set, eval
        mode) and ``stats["history"]``."""
        train = observation.data
        if train is None:
            raise ConfigError("unauthorized-supervised needs the released images and labels (observation.data/labels)")
        if not isinstance(train, LabelledImages):
            if observation.labels is None or "num_classes" not in observation.meta:
                raise ConfigError("unauthorized-supervised needs observation.labels and meta['num_classes']")
            train = LabelledImages(train, observation.labels, int(observation.meta["num_classes"]))
        model, history = train_unauthorized(
            train, self.config, seed=seed, device=device, progress=progress, on_epoch=self.on_epoch
        )
        stats = {"train_accuracy": evaluate(model, train, device=device)["accuracy"], "history": history}
        return AttackOutput(model=model, stats=stats)
