"""Gradient inversion: reconstruct a client's training images from the gradient (or update) it shares.

- :mod:`.engine` — :class:`GradientInversion` and :class:`InversionConfig`, the one optimisation loop;
- :mod:`.objectives` — gradient-matching objectives (``OBJECTIVES`` registry), layer subsets and weights;
- :mod:`.regularizers` — total variation;
- :mod:`.labels` — iDLG and batch label recovery (labels with their counts);
- :mod:`.batched` — restarts optimised as one batch (torch.func), with a vectorised L-BFGS;
- :mod:`.threat` — one federated round (defence → client update → observation); the client itself is
  :mod:`privlab.protect.gradient.client` (re-exported here: ``ThreatModel``, ``client_update``);
- :mod:`.presets` — ``dlg``, ``idlg``, ``inverting-gradients`` registered in :data:`privlab.attack.ATTACKS`.
"""

from privlab.attack.inversion.engine import GradientInversion, InversionConfig
from privlab.attack.inversion.presets import INVERSION_PRESETS, make_attack
from privlab.attack.inversion.threat import LeakRound, gradient_leak_round
from privlab.protect.gradient.client import ThreatModel, client_update

__all__ = [
    "INVERSION_PRESETS",
    "GradientInversion",
    "InversionConfig",
    "LeakRound",
    "ThreatModel",
    "client_update",
    "gradient_leak_round",
    "make_attack",
]
