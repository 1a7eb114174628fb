"""Label-only membership inference (Choquette-Choo et al. 2021, "Label-Only Membership Inference Attacks").

With hard-label access only, members sit farther from the decision boundary: they stay correctly classified under
more perturbation. ``augment``: score = fraction of shifted/flipped views classified correctly; ``noise``: fraction
of Gaussian-noise draws (at each σ of a ladder) classified correctly, a proxy for the boundary distance.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from privlab.attack.base import AttackOutput
from privlab.attack.mia.base import MIAObservation, register_mia, views
from privlab.config import Spec

__all__ = ["LabelOnly", "LabelOnlyConfig"]


class LabelOnlyConfig(Spec):
    """Label-only settings."""

    mode: Literal["augment", "noise"] = Field(default="noise", description="perturb by augmentations or by noise")
    shifts: int = Field(default=2, ge=1, le=8, description="augment: shifts of 1…shifts pixels in 4 directions")
    flip: bool = Field(default=False, description="augment: also flipped views")
    sigmas: list[float] = Field(
        default=[0.05, 0.1, 0.2, 0.3, 0.5],
        min_length=1,
        description="noise: standard deviations (pixel units, images in [0, 1])",
    )
    draws: int = Field(default=10, ge=1, le=1000, description="noise: draws per σ")
    seed: int = Field(default=0, ge=0, description="seed of the noise draws")


@register_mia("label-only", config=LabelOnlyConfig, description="hard-label robustness to augmentations or noise")
class LabelOnly:
    """Label-only attack: robustness of the correct label."""

    def __init__(self, cfg: LabelOnlyConfig | None = None) -> None:
        self.cfg = cfg or LabelOnlyConfig()

    def run(self, obs: MIAObservation) -> AttackOutput:
        """``data``: ``N`` fractions of perturbed queries answered with the true label."""
        x, y = obs.candidates()
        assert obs.target is not None
        hard = obs.target
        c = self.cfg
        if c.mode == "augment":
            vl = tuple(v for s in range(1, c.shifts + 1) for v in views(s, c.flip))
            hits = torch.stack([(hard.labels(x, v) == y).float() for v in dict.fromkeys(vl)])
        else:
            g = torch.Generator().manual_seed(c.seed)
            hits = torch.stack(
                [
                    (hard.labels((x + s * torch.randn(x.shape, generator=g)).clamp(0, 1)) == y).float()
                    for s in c.sigmas
                    for _ in range(c.draws)
                ]
            )
        return AttackOutput(data=hits.mean(0), stats={"queries": hard.queries})
