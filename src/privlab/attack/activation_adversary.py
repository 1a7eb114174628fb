"""Adversaries against noisy split-inference activations (Shredder's private-task attackers).

Two threat models, both predicting the private label (e.g. the digit) from what the edge sends; each is an
:class:`~privlab.attack.base.Attack` that returns its adversary model (``AttackOutput.model``) for the pipeline to
measure (:func:`privlab.measure.utility.accuracy.classifier_accuracy`):

- ``original_adversary`` (:class:`OriginalAdversary`) — the Shredder papers' adversary: a classifier trained on the
  private task with clean data (``Observation.model``), into which the *same* noise layer (``meta["noise"]``) is
  inserted at the same cut (``meta["cut"]``, :func:`~privlab.models.split.insert_at`). It never adapts to the noise,
  so it is a weak adversary.
- ``activation_adversary`` (:class:`ActivationAdversary`) — a stronger one: a small MLP retrained on noisy
  activations (fresh noise every batch, through :func:`privlab.train.fit`'s ``transform`` hook) with private labels.
  It knows the noise distribution (``meta["noise"]``, a sampler ``noise(batch, generator)``), not the draws.

Example:
    >>> import torch
    >>> from privlab.attack import Observation, build_attack
    >>> g = torch.Generator().manual_seed(0)
    >>> y = torch.arange(200) % 2
    >>> acts = torch.randn(200, 4, generator=g) + 3.0 * y[:, None]
    >>> adv = build_attack("activation_adversary", {"train": {"epochs": 30, "batch_size": 128, "lr": 1e-3}})
    >>> out = adv.run(Observation(activations=acts, labels=y, meta={"num_classes": 2}), seed=0)
    >>> bool((out.model(acts).argmax(1) == y).float().mean() > 0.9)
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from pydantic import Field
from torch import nn
from torch.utils.data import TensorDataset

from privlab.attack.base import ATTACKS, Attack, AttackOutput, Observation
from privlab.config import Spec
from privlab.context import Progress
from privlab.errors import ConfigError
from privlab.models.split import insert_at
from privlab.train import TrainConfig, fit

__all__ = [
    "ActivationAdversary",
    "ActivationAdversaryConfig",
    "NoiseFn",
    "OriginalAdversary",
    "OriginalAdversaryConfig",
]

# noise(batch of clean activations, generator or None) -> noisy activations of the same shape
NoiseFn = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


class OriginalAdversaryConfig(Spec):
    """The original adversary has no settings: the private model and the noise come with the observation."""


@ATTACKS.register(
    "original_adversary",
    requires=("model",),
    config=OriginalAdversaryConfig,
    description="the private-task classifier with the deployed noise inserted at the cut (Shredder's adversary)",
)
class OriginalAdversary(Attack):
    """The private-task classifier with the deployed noise layer inserted after ``meta["cut"]``.

    Observation: ``model`` (the private classifier, a named-children ``nn.Sequential`` taking ``[0, 1]`` images),
    ``meta["cut"]`` (the layer after which the noise sits) and ``meta["noise"]`` (the deployed noise layer, an
    ``nn.Module``; None or absent: clean). Returns the combined model, in eval mode, on ``device``.
    """

    config_class = OriginalAdversaryConfig
    requires = ("model",)

    def run(
        self,
        observation: Observation,
        *,
        seed: int = 0,
        generator: torch.Generator | None = None,
        device: Any = "cpu",
        progress: Progress | None = None,
    ) -> AttackOutput:
        """Insert the noise into the private model (no training; ``seed``/``generator`` are unused)."""
        if observation.model is None or "cut" not in observation.meta:
            raise ConfigError("original_adversary needs Observation.model (the private classifier) and meta['cut']")
        noise = observation.meta.get("noise")
        model = insert_at(observation.model, observation.meta["cut"], noise) if noise is not None else observation.model
        model.to(device).eval()
        return AttackOutput(model=model, stats={"noise_inserted": noise is not None})


class _Standardize(nn.Module):
    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) - self.mean) / self.std


class ActivationAdversaryConfig(Spec):
    """The retrained adversary: an MLP on (noisy) activations."""

    train: TrainConfig = Field(default_factory=lambda: TrainConfig(epochs=30, batch_size=128, lr=1e-3))
    hidden: int = Field(default=84, ge=1, description="hidden width (LeNet-5's f6 has 84)")


@ATTACKS.register(
    "activation_adversary",
    requires=("activations", "labels"),
    config=ActivationAdversaryConfig,
    description="MLP retrained on (noisy) split-inference activations to predict a private label",
)
class ActivationAdversary(Attack):
    """A private-label classifier trained on activations, with fresh noise drawn every batch when the observation
    says how to sample it.

    Observation: ``activations`` (clean training activations ``(N, …)``), ``labels`` (private labels ``(N,)``),
    ``meta["num_classes"]`` (≥ 2 private classes) and optionally ``meta["noise"]`` (a :data:`NoiseFn`).
    """

    config_class = ActivationAdversaryConfig
    requires = ("activations", "labels")

    def run(
        self,
        observation: Observation,
        *,
        seed: int = 0,
        generator: torch.Generator | None = None,
        device: Any = "cpu",
        progress: Progress | None = None,
    ) -> AttackOutput:
        """Train the MLP; returns it (eval mode, on ``device``) as ``AttackOutput.model``. Its input is standardised
        with the mean/std of one noisy pass over the activations (so huge noise does not stall the optimiser).
        ``seed`` seeds the weights, the batch order and the noise draws (``generator`` is unused)."""
        acts, labels = observation.activations, observation.labels
        if acts is None or labels is None:
            raise ConfigError("the activation adversary needs Observation.activations and Observation.labels")
        num_classes = int(observation.meta.get("num_classes", 0))
        if num_classes < 2:
            raise ConfigError(f"an adversary needs meta['num_classes'] ≥ 2 private classes, got {num_classes}")
        noise: NoiseFn | None = observation.meta.get("noise")
        g = torch.Generator(device=device).manual_seed(seed + 99)
        with torch.no_grad():
            sample = acts.to(device)
            if noise is not None:
                sample = noise(sample, g)
            flat = sample.flatten(1).float()
            mean, std = flat.mean(0), flat.std(0).clamp_min(1e-6)
        torch.manual_seed(seed)
        hidden = self.config.hidden
        model = nn.Sequential(
            _Standardize(mean, std), nn.Linear(flat.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )
        transform = (lambda x, gen: noise(x, gen)) if noise is not None else None
        data = TensorDataset(acts.float(), labels.long())
        history = fit(model, data, self.config.train, seed=seed, device=device, progress=progress, transform=transform)
        model.eval()
        return AttackOutput(model=model, stats={"hidden": hidden, "noisy": noise is not None, "history": history})
