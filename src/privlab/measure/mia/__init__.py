"""Membership-inference measurement: score an attack's per-record scores against the membership truth, and turn
attack outcomes into empirical lower bounds on ε (privacy auditing).

Pure functions on arrays; the attacks themselves (:mod:`privlab.attack.mia`) never see the truth.

- :mod:`privlab.measure.mia.roc` — ROC curve, AUC, balanced accuracy, TPR at a fixed FPR → :class:`MIAScore`.
- :mod:`privlab.measure.mia.audit` — Clopper–Pearson intervals, the several-runs bound (Jagielski et al. 2020) and
  the one-run bound (Steinke, Nasr & Jagielski 2023).
"""

from privlab.measure.mia.audit import (
    AuditBound,
    best_threshold,
    clopper_pearson,
    epsilon_lower_bound_multi,
    epsilon_lower_bound_one_run,
    one_run_guesses,
    several_runs_bound,
    threshold_counts,
)
from privlab.measure.mia.roc import MIAScore, balanced_accuracy, roc_curve, score_attack, tpr_at_fpr

__all__ = [
    "AuditBound",
    "MIAScore",
    "balanced_accuracy",
    "best_threshold",
    "clopper_pearson",
    "epsilon_lower_bound_multi",
    "epsilon_lower_bound_one_run",
    "one_run_guesses",
    "roc_curve",
    "score_attack",
    "several_runs_bound",
    "threshold_counts",
    "tpr_at_fpr",
]
