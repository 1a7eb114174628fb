"""The threat model of gradient inversion: the client lives in :mod:`privlab.protect.gradient.client` (a lower
stage, shared with the defences); this module re-exports it for the attacker's side."""

from privlab.protect.gradient.client import GradientFn, ThreatModel, client_update, loss_on, trainable

__all__ = ["GradientFn", "ThreatModel", "client_update", "loss_on", "trainable"]
