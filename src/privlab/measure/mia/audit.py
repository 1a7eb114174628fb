"""Empirical lower bounds on ε from membership-inference outcomes (privacy auditing).

- **Several runs** (Jagielski, Ullman & Oprea 2020, "Auditing Differentially Private Machine Learning"): a test
  that tells "trained with the canary" from "without" with false-positive rate FPR and false-negative rate FNR
  implies, for an (ε, δ)-DP training, ``FPR + e^ε·FNR ≥ 1 − δ`` and ``FNR + e^ε·FPR ≥ 1 − δ``. With Clopper–Pearson
  upper bounds on both rates (each at level α/2), ``ε ≥ max(log((1−δ−FNR⁺)/FPR⁺), log((1−δ−FPR⁺)/FNR⁺))`` holds
  with confidence 1 − α. :func:`several_runs_bound` applies it to the canary's scores over R trainings: the
  threshold is chosen on one half of the runs (:func:`best_threshold`) and the counts come from the other half, so
  the threshold is fixed before the counted runs are seen and the Clopper–Pearson intervals stay valid.
- **One run** (Steinke, Nasr & Jagielski 2023, "Privacy Auditing with One (1) Training Run"): m canaries, each
  included independently with probability ½; the attacker abstains on all but r of them and guesses in/out on those
  r; for ε-DP the number of correct guesses W is stochastically dominated by Binomial(r, e^ε / (1 + e^ε)). The bound is
  the largest ε that the observed W rejects at level β. δ is not used (the pure-DP form of their theorem): for
  DP-SGD with δ ≈ 1e-5 the bound is slightly optimistic by a term of order m·δ in probability.

Example:
    >>> b = epsilon_lower_bound_one_run(correct=95, guesses=100, confidence=0.95)
    >>> 2.0 < b.epsilon < 3.0
    True
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import optimize, stats

from privlab.errors import ConfigError

__all__ = [
    "AuditBound",
    "best_threshold",
    "clopper_pearson",
    "epsilon_lower_bound_multi",
    "epsilon_lower_bound_one_run",
    "one_run_guesses",
    "several_runs_bound",
    "threshold_counts",
]


def clopper_pearson(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Exact two-sided ``1 − alpha`` interval for a binomial proportion after ``k`` successes in ``n`` trials."""
    if n < 1 or not 0 <= k <= n:
        raise ConfigError(f"Clopper–Pearson needs 0 ≤ k ≤ n and n ≥ 1, got k={k}, n={n}")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    lo = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lo, hi


@dataclass
class AuditBound:
    """An empirical ε lower bound (nats) at ``confidence``, with the counts it came from."""

    epsilon: float
    confidence: float
    method: str
    counts: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (JSON)."""
        return asdict(self)


def epsilon_lower_bound_multi(
    false_positives: int,
    negatives: int,
    false_negatives: int,
    positives: int,
    *,
    delta: float = 0.0,
    confidence: float = 0.95,
) -> AuditBound:
    """Several-runs bound from a fixed-threshold test: ``negatives`` runs without the canary (``false_positives`` of
    them called "in"), ``positives`` runs with it (``false_negatives`` called "out"). ε in nats, ≥ 0."""
    alpha = 1 - confidence
    # one-sided upper bounds at level alpha/2 each = two-sided intervals at level alpha
    fpr_hi = clopper_pearson(false_positives, negatives, alpha)[1]
    fnr_hi = clopper_pearson(false_negatives, positives, alpha)[1]
    cands = [0.0]
    for a, b in ((fnr_hi, fpr_hi), (fpr_hi, fnr_hi)):
        if b > 0 and 1 - delta - a > 0:
            cands.append(math.log((1 - delta - a) / b))
    counts = {
        "false_positives": false_positives,
        "negatives": negatives,
        "false_negatives": false_negatives,
        "positives": positives,
    }
    return AuditBound(max(cands), confidence, "clopper-pearson", counts)


def _p_at_least(v: int, r: int, eps: float) -> float:
    p = 1.0 / (1.0 + math.exp(-eps))
    return float(stats.binom.sf(v - 1, r, p))


def epsilon_lower_bound_one_run(correct: int, guesses: int, *, confidence: float = 0.95) -> AuditBound:
    """One-run bound: the largest ε with ``P[Binomial(guesses, e^ε/(1+e^ε)) ≥ correct] ≤ 1 − confidence``."""
    if guesses < 0 or not 0 <= correct <= guesses:
        raise ConfigError(f"one-run audit needs 0 ≤ correct ≤ guesses, got {correct} of {guesses}")
    beta = 1 - confidence
    counts = {"correct": correct, "guesses": guesses}
    if guesses == 0 or _p_at_least(correct, guesses, 0.0) > beta:
        return AuditBound(0.0, confidence, "one-run", counts)
    hi = 1.0
    while _p_at_least(correct, guesses, hi) <= beta and hi < 100:
        hi *= 2
    eps = optimize.brentq(lambda e: _p_at_least(correct, guesses, e) - beta, 0.0, hi, xtol=1e-6)
    return AuditBound(float(eps), confidence, "one-run", counts)


def one_run_guesses(scores: Any, included: Any, k_plus: int, k_minus: int) -> tuple[int, int]:
    """Guess "in" for the ``k_plus`` highest-scoring canaries and "out" for the ``k_minus`` lowest; abstain on the rest.

    Returns ``(correct, guesses)``; ``scores`` are ``m`` floats (higher = member), ``included`` the ``m`` bools.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    inc = np.asarray(included).reshape(-1).astype(bool)
    if s.shape != inc.shape:
        raise ConfigError(f"{s.size} canary scores but {inc.size} inclusion flags")
    if k_plus < 0 or k_minus < 0 or k_plus + k_minus > s.size:
        raise ConfigError(f"k_plus + k_minus must be ≤ the number of canaries ({s.size}), got {k_plus} + {k_minus}")
    order = np.argsort(-s, kind="mergesort")
    top, bottom = order[:k_plus], order[s.size - k_minus :] if k_minus else order[:0]
    correct = int(inc[top].sum() + (~inc[bottom]).sum())
    return correct, k_plus + k_minus


def _runs_arrays(scores: Any, included: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    inc = np.asarray(included).reshape(-1).astype(bool)
    if s.shape != inc.shape:
        raise ConfigError(f"{s.size} run scores but {inc.size} inclusion flags")
    if not np.isfinite(s).all():
        raise ConfigError("run scores hold NaN or infinite values")
    return s, inc


def threshold_counts(scores: Any, included: Any, threshold: float) -> tuple[int, int, int, int]:
    """``(false_positives, negatives, false_negatives, positives)`` of the test "canary in ⇔ score > threshold".

    ``scores``: R floats, the canary's membership score on each trained model (higher = member); ``included``: R
    bools, whether that training set held the canary.
    """
    s, inc = _runs_arrays(scores, included)
    said_in = s > threshold
    return int((said_in & ~inc).sum()), int((~inc).sum()), int((~said_in & inc).sum()), int(inc.sum())


def best_threshold(scores: Any, included: Any, *, delta: float = 0.0, confidence: float = 0.95) -> float:
    """The threshold (a midpoint between consecutive distinct scores, or below/above all of them) whose test gives
    the largest :func:`epsilon_lower_bound_multi` on these runs; ties broken by the larger balanced accuracy, then
    the smaller threshold. The bound at the chosen threshold on these same runs is optimistic: count on other runs."""
    s, inc = _runs_arrays(scores, included)
    if s.size == 0:
        raise ConfigError("choosing a threshold needs at least one run")
    u = np.unique(s)
    cands = np.r_[u[0] - 1.0, (u[:-1] + u[1:]) / 2, u[-1] + 1.0]
    best, key = float(cands[0]), (-1.0, -1.0)
    for t in cands:
        fp, neg, fn, pos = threshold_counts(s, inc, float(t))
        eps = (
            epsilon_lower_bound_multi(fp, neg, fn, pos, delta=delta, confidence=confidence).epsilon
            if neg and pos
            else 0.0
        )
        bacc = 0.5 * ((1 - fp / neg if neg else 0.0) + (1 - fn / pos if pos else 0.0))
        if (eps, bacc) > key:
            best, key = float(t), (eps, bacc)
    return best


def several_runs_bound(
    scores: Any, included: Any, select: Any, *, delta: float = 0.0, confidence: float = 0.95
) -> tuple[AuditBound, float]:
    """Several-runs ε lower bound (nats) from the canary's score on each of R trained models: ``(bound, threshold)``.

    The threshold is :func:`best_threshold` on the runs where ``select`` (R bools) is True; the bound is
    :func:`epsilon_lower_bound_multi` of that fixed test on the other runs, which must include runs with and runs
    without the canary. Valid at ``confidence`` because the threshold does not depend on the counted runs.
    """
    s, inc = _runs_arrays(scores, included)
    sel = np.asarray(select).reshape(-1).astype(bool)
    if sel.shape != s.shape:
        raise ConfigError(f"{s.size} run scores but {sel.size} selection flags")
    ev = ~sel
    if not sel.any() or not (inc[ev].any() and (~inc[ev]).any()):
        raise ConfigError("the several-runs audit needs selection runs and evaluation runs with and without the canary")
    t = best_threshold(s[sel], inc[sel], delta=delta, confidence=confidence)
    fp, neg, fn, pos = threshold_counts(s[ev], inc[ev], t)
    return epsilon_lower_bound_multi(fp, neg, fn, pos, delta=delta, confidence=confidence), t
