"""Prediction entropy and modified entropy (Song & Mittal 2021, "Systematic Evaluation of Privacy Risks of ML").

Modified entropy ``Mentr(p, y) = −(1 − p_y)·log p_y − Σ_{i≠y} p_i·log(1 − p_i)`` is low for confident *correct*
predictions only; score = −Mentr (plain entropy ignores the label: score = −H(p)).
"""

from __future__ import annotations

import torch
from pydantic import Field

from privlab.attack.base import AttackOutput
from privlab.attack.mia.base import MIAObservation, register_mia
from privlab.config import Spec

__all__ = ["EntropyAttack", "EntropyConfig", "ModifiedEntropyAttack", "modified_entropy"]

_TINY = 1e-30


class EntropyConfig(Spec):
    """Entropy attack settings."""

    eps: float = Field(default=1e-30, gt=0, le=1e-6, description="floor on probabilities inside logs")


def modified_entropy(probs: torch.Tensor, labels: torch.Tensor, eps: float = _TINY) -> torch.Tensor:
    """``N`` modified entropies (nats) of ``N×K`` probabilities with true labels ``N``."""
    p = probs.double()
    py = p.gather(1, labels.view(-1, 1)).squeeze(1)
    term_y = -(1 - py) * torch.log(py.clamp_min(eps))
    other = -p * torch.log((1 - p).clamp_min(eps))
    other = other.scatter(1, labels.view(-1, 1), 0.0).sum(1)
    return (term_y + other).float()


@register_mia("entropy", config=EntropyConfig, description="prediction entropy: score = −H(softmax)")
class EntropyAttack:
    """Score each candidate by minus the entropy of the target's prediction."""

    def __init__(self, cfg: EntropyConfig | None = None) -> None:
        self.cfg = cfg or EntropyConfig()

    def run(self, obs: MIAObservation) -> AttackOutput:
        """``data``: ``N`` scores = −entropy (nats)."""
        x, _ = obs.candidates()
        assert obs.target is not None
        p = obs.target.logits(x).double().softmax(1)
        return AttackOutput(data=(p * torch.log(p.clamp_min(self.cfg.eps))).sum(1).float())


@register_mia("modified-entropy", config=EntropyConfig, description="modified entropy (Song & Mittal 2021)")
class ModifiedEntropyAttack(EntropyAttack):
    """Score each candidate by minus the modified entropy of the target's prediction."""

    def run(self, obs: MIAObservation) -> AttackOutput:
        """``data``: ``N`` scores = −Mentr (nats)."""
        x, y = obs.candidates()
        assert obs.target is not None
        return AttackOutput(data=-modified_entropy(obs.target.logits(x).softmax(1), y, self.cfg.eps))
