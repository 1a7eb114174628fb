"""Adversaries against noisy split-inference activations (Shredder's private-task attackers).

Two threat models, both predicting the private label (e.g. the digit) from what the edge sends:

- :func:`original_adversary_accuracy` — the Shredder papers' adversary: a classifier trained on the private task
  with clean data, into which the *same* noise layer is inserted at the same cut (``insert_at``). It never adapts
  to the noise, so it is a weak adversary.
- :class:`ActivationAdversary` — a stronger one: a small MLP retrained on noisy activations (fresh noise every
  batch, through :func:`privlab.train.fit`'s ``transform`` hook) with private labels, then evaluated on the noisy
  activations of unseen images. It knows the noise distribution (it can sample it), not the draws.

Example:
    >>> import torch
    >>> from privlab.attack.activation_adversary import ActivationAdversary
    >>> g = torch.Generator().manual_seed(0)
    >>> y = torch.arange(200) % 2
    >>> acts = torch.randn(200, 4, generator=g) + 3.0 * y[:, None]
    >>> adv = ActivationAdversary(num_classes=2).fit(acts, y, epochs=30, seed=0)
    >>> adv.accuracy(acts, y) > 0.9
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import TensorDataset

from privlab.attack.base import ATTACKS, AttackOutput, Observation
from privlab.errors import ConfigError
from privlab.models.split import insert_at
from privlab.train import TrainConfig, fit

__all__ = ["ActivationAdversary", "original_adversary_accuracy"]

NoiseFn = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


@torch.no_grad()
def original_adversary_accuracy(
    private_model: nn.Sequential,
    cut: str | int,
    noise: nn.Module | None,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 512,
) -> float:
    """Accuracy (fraction) of ``private_model`` with ``noise`` inserted after layer ``cut`` (None: clean).

    Args:
        private_model: the private-task classifier (named-children ``nn.Sequential``), frozen, taking ``[0, 1]``
            images. cut: the layer after which Shredder's noise sits. noise: the deployed noise layer.
        images: ``(N, C, H, W)`` in ``[0, 1]``. labels: private labels ``(N,)``.
    """
    model = insert_at(private_model, cut, noise) if noise is not None else private_model
    model.to(device).eval()
    correct = 0
    for i in range(0, len(images), batch_size):
        x, y = images[i : i + batch_size].to(device), labels[i : i + batch_size].to(device)
        correct += int((model(x).argmax(1) == y).sum())
    return correct / max(len(images), 1)


class _Standardize(nn.Module):
    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) - self.mean) / self.std


@ATTACKS.register(
    "activation_adversary",
    requires=("activations", "labels"),
    description="MLP retrained on (noisy) split-inference activations to predict a private label",
)
class ActivationAdversary:
    """A private-label classifier trained on activations, optionally with fresh noise drawn every batch.

    Args:
        num_classes: private classes (10 digits).
        hidden: width of the hidden layer (LeNet-5's f6 has 84).
    """

    def __init__(self, num_classes: int, hidden: int = 84) -> None:
        if num_classes < 2:
            raise ConfigError(f"an adversary needs ≥ 2 private classes, got {num_classes}")
        self.num_classes, self.hidden = num_classes, hidden
        self.model: nn.Sequential | None = None

    def fit(
        self,
        acts: torch.Tensor,
        labels: torch.Tensor,
        *,
        noise: NoiseFn | None = None,
        epochs: int = 30,
        train: TrainConfig | None = None,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> ActivationAdversary:
        """Train on clean activations ``acts (N, …)`` with ``noise(batch, generator)`` applied to every batch.

        Inputs are standardised with the mean/std of one noisy pass over ``acts`` (so huge noise does not stall
        the optimiser). ``train`` overrides the default ``TrainConfig(epochs, batch_size=128, lr=1e-3)``.
        """
        cfg = train or TrainConfig(epochs=epochs, batch_size=128, lr=1e-3)
        g = torch.Generator(device=device).manual_seed(seed + 99)
        with torch.no_grad():
            sample = acts.to(device)
            if noise is not None:
                sample = noise(sample, g)
            flat = sample.flatten(1).float()
            mean, std = flat.mean(0), flat.std(0).clamp_min(1e-6)
        torch.manual_seed(seed)
        d = flat.shape[1]
        self.model = nn.Sequential(
            _Standardize(mean, std), nn.Linear(d, self.hidden), nn.ReLU(), nn.Linear(self.hidden, self.num_classes)
        )
        transform = (lambda x, gen: noise(x, gen)) if noise is not None else None
        fit(self.model, TensorDataset(acts.float(), labels.long()), cfg, seed=seed, device=device, transform=transform)
        self.model.eval()
        return self

    @torch.no_grad()
    def predict(self, acts: torch.Tensor, *, batch_size: int = 1024) -> torch.Tensor:
        """Predicted private labels ``(N,)`` of (already noisy) activations."""
        if self.model is None:
            raise ConfigError("ActivationAdversary.predict called before fit")
        dev = next(self.model.parameters()).device
        out = [self.model(acts[i : i + batch_size].to(dev)).argmax(1).cpu() for i in range(0, len(acts), batch_size)]
        return torch.cat(out) if out else torch.empty(0, dtype=torch.long)

    def accuracy(self, acts: torch.Tensor, labels: torch.Tensor) -> float:
        """Fraction of ``labels`` predicted correctly from ``acts``."""
        return float((self.predict(acts) == labels.cpu()).float().mean()) if len(labels) else math.nan

    def attack(self, obs: Observation) -> AttackOutput:
        """Predict private labels from ``obs.activations``."""
        if obs.activations is None:
            raise ConfigError("the activation adversary needs Observation.activations")
        return AttackOutput(labels=self.predict(obs.activations), stats={"hidden": self.hidden})
