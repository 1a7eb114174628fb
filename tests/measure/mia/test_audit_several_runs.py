"""The several-runs audit (Jagielski, Ullman & Oprea 2020) on canary scores over R runs: known answers and soundness
on mechanisms of known ε (no network: the canary's score is the mechanism's output)."""

import math

import numpy as np
import pytest

from privlab.errors import ConfigError
from privlab.measure.mia import best_threshold, epsilon_lower_bound_multi, several_runs_bound, threshold_counts


def _design(runs: int) -> tuple[np.ndarray, np.ndarray]:
    """The pipeline's design: odd-numbered runs hold the canary, the first half choose the threshold."""
    r = np.arange(runs)
    return r % 2 == 1, r < runs // 2


def test_separable_scores_give_the_zero_error_bound_and_identical_scores_give_zero():
    inc, sel = _design(40)
    scores = np.where(inc, 5.0, -5.0) + np.linspace(0, 1, 40)  # every "in" run above every "out" run
    bound, t = several_runs_bound(scores, inc, sel, confidence=0.95)
    assert -4 < t < 5
    assert bound.counts == {"false_positives": 0, "negatives": 10, "false_negatives": 0, "positives": 10}
    assert bound.epsilon == pytest.approx(epsilon_lower_bound_multi(0, 10, 0, 10, confidence=0.95).epsilon, rel=1e-12)
    u = 1 - 0.025 ** (1 / 10)  # Clopper–Pearson upper bound after 0 of 10, one-sided 2.5 %
    assert bound.epsilon == pytest.approx(math.log((1 - u) / u), rel=1e-9)
    same, _ = several_runs_bound(np.full(40, -2.3), inc, sel)
    assert same.epsilon == 0.0
    # δ enters the bound: 1 − δ − FNR⁺ shrinks
    assert several_runs_bound(scores, inc, sel, delta=0.1)[0].epsilon < bound.epsilon


def test_the_threshold_comes_from_the_selection_runs_only():
    inc, sel = _design(20)
    scores = np.where(inc, 1.0, 0.0)
    scores[~sel] = np.where(inc[~sel], 0.0, 1.0)  # the counted runs are reversed: the fixed test fails on all of them
    bound, t = several_runs_bound(scores, inc, sel)
    assert t == 0.5 and bound.epsilon == 0.0
    assert bound.counts == {"false_positives": 5, "negatives": 5, "false_negatives": 5, "positives": 5}
    assert threshold_counts(scores, inc, 0.5) == (5, 10, 5, 10)
    assert best_threshold([0.0, 1.0, 2.0, 3.0], [False, False, True, True]) == 1.5


def test_bad_inputs_are_config_errors():
    inc, sel = _design(8)
    with pytest.raises(ConfigError, match="selection runs and evaluation runs"):
        several_runs_bound(np.zeros(8), inc, np.ones(8, bool))
    with pytest.raises(ConfigError, match="8 run scores but 7"):
        several_runs_bound(np.zeros(8), inc[:7], sel)
    with pytest.raises(ConfigError, match="NaN"):
        several_runs_bound(np.r_[np.nan, np.zeros(7)], inc, sel)


def _laplace(eps: float, inc: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """ε-DP "training": the released score is 1{canary in} + Laplace(1/ε) (sensitivity 1)."""
    return inc.astype(float) + rng.laplace(0.0, 1.0 / eps, inc.size)


def _randomised_response(eps: float, inc: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """ε-DP "training": the released bit is the canary's membership, flipped with probability 1/(1 + e^ε)."""
    keep = rng.random(inc.size) < math.exp(eps) / (1 + math.exp(eps))
    return np.where(keep, inc, ~inc).astype(float)


@pytest.mark.parametrize("mechanism", [_laplace, _randomised_response])
@pytest.mark.parametrize("eps", [0.5, 2.0])
def test_soundness_on_mechanisms_of_known_epsilon(mechanism, eps):
    """At 95 % confidence the bound may exceed the true ε in at most ~5 % of 200 seeds (+ binomial slack); with 400
    runs (100 + 100 counted) it is not vacuous at ε = 2 and finds some evidence at ε = 0.5."""
    inc, sel = _design(400)
    rng = np.random.default_rng(7)
    bounds = np.array([several_runs_bound(mechanism(eps, inc, rng), inc, sel)[0].epsilon for _ in range(200)])
    assert (bounds > eps).mean() <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 200)
    if eps >= 2:
        assert np.median(bounds) > 0.25 * eps
    else:
        assert (bounds > 0).mean() > 0.3
