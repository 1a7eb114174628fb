"""A cheap, reference-free membership probe of a trained classifier: the LOSS attack on a seeded sample of its
training records (members) and an equal-size sample of the test split (non-members), scored against the truth.

Training-time protections (local DP on the training data, unlearnable examples, DP-SGD) log it, so that every one
of them has the same empirical privacy measure — ``mia_loss_tpr_at_fpr_0.01`` — next to its own (ε, PSNR …). The
attack is the registered ``loss`` attack (:func:`privlab.attack.mia.run_mia_attack`, one forward pass per record,
no reference models); the scoring is :func:`privlab.measure.mia.score_attack`.

Example:
    >>> import torch
    >>> from torch import nn
    >>> x, y = torch.rand(20, 1, 4, 4), torch.randint(0, 3, (20,))
    >>> s = membership_probe(nn.Sequential(nn.Flatten(), nn.Linear(16, 3)), (x[:10], y[:10]), (x[10:], y[10:]))
    >>> s.n_members, s.n_nonmembers, 0.0 <= s.auc <= 1.0
    (10, 10, True)
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import nn

from privlab.attack.mia import MIAObservation, QueryModel, run_mia_attack
from privlab.config import Spec
from privlab.errors import ConfigError
from privlab.measure.mia.roc import MIAScore, score_attack
from privlab.store import MetricRecord

__all__ = ["PROBE_ATTACK", "PROBE_PREFIX", "MembershipProbeSpec", "membership_probe", "probe_indices", "probe_records"]

PROBE_ATTACK = "loss"  # the registered MIA attack the probe runs
PROBE_PREFIX = f"mia_{PROBE_ATTACK}"  # metric names: mia_loss_auc, mia_loss_tpr_at_fpr_0.01 …


class MembershipProbeSpec(Spec):
    """The membership probe a training-time protection runs on the model it trained (LOSS attack, no references)."""

    enabled: bool = Field(default=True, description="run the LOSS membership probe on the trained model")
    records: int = Field(
        default=1000, ge=10, le=2000, description="members sampled from the training records (and as many test ones)"
    )


def probe_indices(
    n_train: int, n_test: int, records: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(member indices into the training split, non-member indices into the test split)``: seeded samples without
    replacement, both of size ``min(records, n_train, n_test)`` (int64)."""
    n = min(records, n_train, n_test)
    if n < 1:
        raise ConfigError(f"the membership probe needs training and test records (got {n_train} and {n_test})")
    return torch.randperm(n_train, generator=generator)[:n], torch.randperm(n_test, generator=generator)[:n]


def membership_probe(
    model: nn.Module,
    members: tuple[torch.Tensor, torch.Tensor],
    nonmembers: tuple[torch.Tensor, torch.Tensor],
    *,
    device: Any = "cpu",
    batch_size: int = 1024,
) -> MIAScore:
    """Score the LOSS attack on ``model`` with ``members`` / ``nonmembers`` (each ``(images N×C×H×W, labels N)``,
    the images in the form the model takes); one forward pass per record, on ``device``."""
    model.eval()

    def logits(x: torch.Tensor) -> torch.Tensor:
        return model(x.to(device)).float().cpu()

    x = torch.cat([members[0], nonmembers[0]])
    y = torch.cat([members[1], nonmembers[1]]).long()
    obs = MIAObservation(data=x, labels=y, target=QueryModel(logits, batch_size=batch_size))
    scores = run_mia_attack(PROBE_ATTACK, obs)
    truth = torch.arange(len(y)) < len(members[1])  # members first
    return score_attack(scores.numpy(), truth.numpy())


def probe_records(score: MIAScore) -> list[MetricRecord]:
    """The probe's metrics: ``mia_loss_auc``, ``mia_loss_balanced_accuracy``, ``mia_loss_tpr_at_fpr_0.001``,
    ``mia_loss_tpr_at_fpr_0.01`` (fractions, privacy, lower = more private) and ``mia_loss_records`` (members
    probed, count) — the ``mia`` experiment's per-attack names (``loss/auc`` …) under the ``mia_loss_`` prefix."""
    recs = [
        MetricRecord(f"{PROBE_PREFIX}_{k}", v, None, "fraction", "privacy", False) for k, v in score.metrics().items()
    ]
    recs.append(MetricRecord(f"{PROBE_PREFIX}_records", score.n_members, None, "count", "info", None))
    return recs
