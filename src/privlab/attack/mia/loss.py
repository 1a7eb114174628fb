"""LOSS and confidence thresholds (Yeom et al. 2018): members have lower loss / higher true-class confidence."""

from __future__ import annotations

import torch.nn.functional as F

from privlab.attack.base import AttackOutput
from privlab.attack.mia.base import MIAObservation, register_mia, true_class_prob
from privlab.config import Spec

__all__ = ["ConfidenceAttack", "LossAttack", "ThresholdConfig"]


class ThresholdConfig(Spec):
    """Settings of the single-query threshold attacks: none (the config exists so every attack has one)."""


@register_mia("loss", config=ThresholdConfig, description="LOSS threshold: score = −cross-entropy (Yeom et al. 2018)")
class LossAttack:
    """Score each candidate by minus its cross-entropy loss on the target."""

    def __init__(self, cfg: ThresholdConfig | None = None) -> None:
        self.cfg = cfg or ThresholdConfig()

    def run(self, obs: MIAObservation) -> AttackOutput:
        """``data``: ``N`` scores = −loss (nats)."""
        x, y = obs.candidates()
        assert obs.target is not None
        return AttackOutput(data=-F.cross_entropy(obs.target.logits(x), y, reduction="none"))


@register_mia("confidence", config=ThresholdConfig, description="confidence threshold: score = p(true class)")
class ConfidenceAttack(LossAttack):
    """Score each candidate by the target's softmax probability of its true class."""

    def run(self, obs: MIAObservation) -> AttackOutput:
        """``data``: ``N`` true-class probabilities."""
        x, y = obs.candidates()
        assert obs.target is not None
        return AttackOutput(data=true_class_prob(obs.target.logits(x), y))
