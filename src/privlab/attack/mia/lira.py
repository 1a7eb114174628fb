"""LiRA, the likelihood-ratio attack (Carlini et al. 2022, "Membership Inference Attacks From First Principles").

For each candidate and each augmented view, the logit-scaled confidence ``φ = log(p_y / (1 − p_y))`` of the
reference models is fitted with a Gaussian over the references trained *with* the candidate (IN) and one over those
trained *without* it (OUT). Online: score = Σ_views log N(φ_target; μ_in, σ_in) − log N(φ_target; μ_out, σ_out).
Offline (OUT models only): score = Σ_views log Φ((φ_target − μ_out) / σ_out), a one-sided test. With few
references the variance is pooled over all candidates ("global variance", as the paper recommends below ~64).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field

from privlab.attack.base import AttackOutput
from privlab.attack.mia.base import MIAObservation, logit_confidence, register_mia, views
from privlab.config import Spec

__all__ = ["LiRA", "LiRAConfig", "fit_gaussians", "reference_phi"]


class LiRAConfig(Spec):
    """LiRA settings."""

    shifts: int = Field(default=1, ge=0, le=8, description="augmented queries: shifts by ±shifts pixels (0: none)")
    flip: bool = Field(default=False, description="also query horizontally flipped views (CIFAR; not for digits)")
    variance: Literal["auto", "per-example", "global"] = Field(
        default="auto", description="per-example σ, σ pooled over candidates, or auto (global below 64 references)"
    )
    n_references: int | None = Field(default=None, ge=1, description="use only the first n reference models")


def fit_gaussians(phi: torch.Tensor, mask: torch.Tensor, *, pooled: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-candidate maximum-likelihood Gaussian of ``phi`` (``R×N``) over the rows where ``mask`` (``R×N``) is set.

    Returns ``(mean N, std N)`` (std with ddof 0). A candidate with no row falls back to the mean over all masked
    entries; ``pooled`` replaces every std by the one pooled over all candidates' residuals.
    """
    m = mask.double()
    phi = phi.double()
    count = m.sum(0)
    overall = (phi * m).sum() / m.sum().clamp_min(1)
    mu = torch.where(count > 0, (phi * m).sum(0) / count.clamp_min(1), overall)
    resid2 = (phi - mu) ** 2 * m
    if pooled:
        sd = (resid2.sum() / m.sum().clamp_min(1)).sqrt().expand_as(mu)
    else:
        pooled_sd = (resid2.sum() / m.sum().clamp_min(1)).sqrt()
        sd = torch.where(count > 1, (resid2.sum(0) / count.clamp_min(1)).sqrt(), pooled_sd)
    return mu.float(), sd.clamp_min(1e-4).float()


def reference_phi(obs: MIAObservation, view_list: tuple, n_refs: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(φ of the references V×R×N, φ of the target V×N)`` for the candidates over the views."""
    x, y = obs.candidates()
    assert obs.target is not None
    refs = obs.references[:n_refs]
    ref = torch.stack([torch.stack([logit_confidence(r.logits(x, v), y) for r in refs]) for v in view_list])
    tgt = torch.stack([logit_confidence(obs.target.logits(x, v), y) for v in view_list])
    return ref, tgt


def _normal_logpdf(x: torch.Tensor, mu: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
    return -0.5 * ((x - mu) / sd) ** 2 - torch.log(sd) - 0.5 * math.log(2 * math.pi)


class LiRA:
    """LiRA; ``online`` uses IN and OUT references, offline only OUT."""

    online = True

    def __init__(self, cfg: LiRAConfig | None = None) -> None:
        self.cfg = cfg or LiRAConfig()

    def run(self, obs: MIAObservation) -> AttackOutput:
        """``data``: ``N`` log-likelihood-ratio scores; ``stats``: references and views used."""
        name = "lira-online" if self.online else "lira-offline"
        in_mask = obs.need_references(name)[: self.cfg.n_references]
        view_list = views(self.cfg.shifts, self.cfg.flip)
        ref, tgt = reference_phi(obs, view_list, self.cfg.n_references)
        pooled = self.cfg.variance == "global" or (self.cfg.variance == "auto" and len(in_mask) < 64)
        score = torch.zeros(tgt.shape[1])
        for v in range(len(view_list)):
            mu_out, sd_out = fit_gaussians(ref[v], ~in_mask, pooled=pooled)
            if self.online:
                mu_in, sd_in = fit_gaussians(ref[v], in_mask, pooled=pooled)
                score += _normal_logpdf(tgt[v], mu_in, sd_in) - _normal_logpdf(tgt[v], mu_out, sd_out)
            else:
                score += torch.special.log_ndtr((tgt[v] - mu_out) / sd_out)
        return AttackOutput(data=score, stats={"references": len(in_mask), "views": len(view_list)})


@register_mia(
    "lira-online",
    config=LiRAConfig,
    requires=("target", "references"),
    description="LiRA online: Gaussian IN/OUT fits of logit confidence over references (Carlini et al. 2022)",
)
class LiRAOnline(LiRA):
    """LiRA with IN and OUT reference models."""

    online = True


@register_mia(
    "lira-offline",
    config=LiRAConfig,
    requires=("target", "references"),
    description="LiRA offline: one-sided test against OUT references only (Carlini et al. 2022)",
)
class LiRAOffline(LiRA):
    """LiRA with OUT reference models only."""

    online = False
