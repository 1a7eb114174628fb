"""ROC maths for membership inference: higher score = "more likely a member".

Example:
    >>> import numpy as np
    >>> s = score_attack(np.array([0.9, 0.8, 0.2, 0.1]), np.array([True, True, False, False]))
    >>> s.auc, s.balanced_accuracy
    (1.0, 1.0)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from privlab.errors import ConfigError

__all__ = ["MIAScore", "balanced_accuracy", "roc_curve", "score_attack", "tpr_at_fpr"]


def _check(scores: Any, members: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    m = np.asarray(members).reshape(-1).astype(bool)
    if s.shape != m.shape:
        raise ConfigError(f"scores ({s.size}) and membership labels ({m.size}) differ in length")
    if not m.any() or m.all():
        raise ConfigError("membership labels need both members and non-members")
    if not np.isfinite(s).all():
        raise ConfigError(f"{int((~np.isfinite(s)).sum())} attack score(s) are NaN or infinite")
    return s, m


def roc_curve(scores: Any, members: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` over every distinct score, starting at (0, 0); ties are one step.

    ``scores``: ``N`` floats (higher = member); ``members``: ``N`` bools (the truth).
    """
    s, m = _check(scores, members)
    order = np.argsort(-s, kind="mergesort")
    s, m = s[order], m[order]
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]  # last index of each run of equal scores
    tp = np.cumsum(m)[last]
    fp = np.cumsum(~m)[last]
    tpr = np.r_[0.0, tp / m.sum()]
    fpr = np.r_[0.0, fp / (~m).sum()]
    return fpr, tpr, np.r_[np.inf, s[last]]


def _auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    """Largest TPR among ROC points with FPR ≤ ``target`` (no interpolation, as Carlini et al. 2022 report it)."""
    ok = fpr <= target + 1e-12
    return float(tpr[ok].max())


def balanced_accuracy(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Best membership accuracy on a balanced set over all thresholds: ``max (TPR + 1 − FPR) / 2``."""
    return float(np.max((tpr + 1 - fpr) / 2))


@dataclass
class MIAScore:
    """How well one attack separates members from non-members.

    Attributes:
        auc: ROC area (0.5 = chance). balanced_accuracy: best ``(TPR + TNR) / 2``.
        tpr_at_fpr_0001 / tpr_at_fpr_001: TPR at 0.1 % and 1 % FPR. n_members / n_nonmembers: counts.
    """

    auc: float
    balanced_accuracy: float
    tpr_at_fpr_0001: float
    tpr_at_fpr_001: float
    n_members: int
    n_nonmembers: int

    def metrics(self) -> dict[str, float]:
        """The metric names privlab logs: ``auc``, ``balanced_accuracy``, ``tpr_at_fpr_0.001``, ``tpr_at_fpr_0.01``."""
        return {
            "auc": self.auc,
            "balanced_accuracy": self.balanced_accuracy,
            "tpr_at_fpr_0.001": self.tpr_at_fpr_0001,
            "tpr_at_fpr_0.01": self.tpr_at_fpr_001,
        }

    def as_dict(self) -> dict[str, Any]:
        """All fields as a plain dict."""
        return asdict(self)


def score_attack(scores: Any, members: Any) -> MIAScore:
    """Score per-record attack ``scores`` (``N``, higher = member) against the truth ``members`` (``N`` bools)."""
    s, m = _check(scores, members)
    fpr, tpr, _ = roc_curve(s, m)
    return MIAScore(
        auc=_auc(fpr, tpr),
        balanced_accuracy=balanced_accuracy(fpr, tpr),
        tpr_at_fpr_0001=tpr_at_fpr(fpr, tpr, 1e-3),
        tpr_at_fpr_001=tpr_at_fpr(fpr, tpr, 1e-2),
        n_members=int(m.sum()),
        n_nonmembers=int((~m).sum()),
    )
