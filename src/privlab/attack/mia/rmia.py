"""RMIA (Zarifzadeh et al. 2024, "Low-Cost High-Power Membership Inference Attacks").

``LR(x, z) = (p(x | θ) / p(x)) / (p(z | θ) / p(z))`` where ``p(· | θ)`` is the target's true-class probability
(averaged over augmented views) and ``p(·)`` its average over reference models; the score of ``x`` is the fraction
of population samples ``z`` with ``LR(x, z) > γ``. Offline (OUT references only) ``p(x)`` is approximated by
``½((1 + a)·p_OUT(x) + (1 − a))`` as in the paper; online it is the mean over all references (IN and OUT, each
candidate being in about half of them).
"""

from __future__ import annotations

import torch
from pydantic import Field

from privlab.attack.base import AttackOutput
from privlab.attack.mia.base import MIAObservation, QueryModel, register_mia, true_class_prob, views
from privlab.config import Spec
from privlab.errors import ConfigError

__all__ = ["RMIA", "RMIAConfig"]


class RMIAConfig(Spec):
    """RMIA settings."""

    gamma: float = Field(default=2.0, ge=1.0, description="likelihood-ratio threshold γ against each z")
    offline: bool = Field(default=False, description="use only OUT references with the linear p(x) approximation")
    a: float = Field(default=0.3, ge=0, le=1, description="offline: p(x) = ½((1+a)·p_OUT(x) + (1−a))")
    shifts: int = Field(default=1, ge=0, le=8, description="augmented queries: shifts by ±shifts pixels")
    flip: bool = Field(default=False, description="also query flipped views")
    n_references: int | None = Field(default=None, ge=1, description="use only the first n reference models")
    n_population: int = Field(default=1000, ge=1, description="at most this many population samples z")


def _probs(model: QueryModel, x: torch.Tensor, y: torch.Tensor, view_list: tuple) -> torch.Tensor:
    return torch.stack([true_class_prob(model.logits(x, v), y) for v in view_list]).mean(0)


@register_mia(
    "rmia",
    config=RMIAConfig,
    requires=("target", "references", "population"),
    description="RMIA: likelihood ratio against population samples (Zarifzadeh et al. 2024)",
)
class RMIA:
    """Relative membership inference with 1…N reference models."""

    def __init__(self, cfg: RMIAConfig | None = None) -> None:
        self.cfg = cfg or RMIAConfig()

    def run(self, obs: MIAObservation) -> AttackOutput:
        """``data``: ``N`` scores in [0, 1] (fraction of population samples dominated)."""
        c = self.cfg
        in_mask = obs.need_references("rmia")[: c.n_references]
        if obs.population is None or len(obs.population[0]) == 0:
            raise ConfigError("rmia needs population samples (records known to be outside the target's training set)")
        x, y = obs.candidates()
        zx, zy = obs.population[0][: c.n_population], obs.population[1][: c.n_population]
        assert obs.target is not None
        vl = views(c.shifts, c.flip)
        refs = obs.references[: len(in_mask)]
        ref_x = torch.stack([_probs(r, x, y, vl) for r in refs])  # R×N
        ref_z = torch.stack([_probs(r, zx, zy, vl) for r in refs]).mean(0)  # P
        if c.offline:
            out = (~in_mask).float()
            p_out = torch.where(out.sum(0) > 0, (ref_x * out).sum(0) / out.sum(0).clamp_min(1), ref_x.mean(0))
            px = 0.5 * ((1 + c.a) * p_out + (1 - c.a))
            pz = 0.5 * ((1 + c.a) * ref_z + (1 - c.a))
        else:
            px, pz = ref_x.mean(0), ref_z
        ratio_x = _probs(obs.target, x, y, vl) / px.clamp_min(1e-30)
        ratio_z = _probs(obs.target, zx, zy, vl) / pz.clamp_min(1e-30)
        # fraction of z with ratio_x / ratio_z > gamma, by sorting ratio_z (N log P instead of N×P)
        sorted_z, _ = torch.sort(ratio_z.double())
        below = torch.searchsorted(sorted_z, ratio_x.double() / c.gamma, side="left")
        return AttackOutput(
            data=(below.float() / len(sorted_z)), stats={"references": len(in_mask), "population": len(sorted_z)}
        )
