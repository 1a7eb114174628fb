"""MIA measurement maths against known answers, sklearn and scipy."""

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from privlab.errors import ConfigError
from privlab.measure.mia import (
    clopper_pearson,
    epsilon_lower_bound_multi,
    epsilon_lower_bound_one_run,
    one_run_guesses,
    roc_curve,
    score_attack,
)


def test_separable_scores_give_auc_one_and_identical_give_half():
    m = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    s = score_attack(np.r_[np.linspace(2, 3, 50), np.linspace(0, 1, 50)], m)
    assert s.auc == 1.0 and s.balanced_accuracy == 1.0 and s.tpr_at_fpr_001 == 1.0
    same = score_attack(np.zeros(100), m)
    assert same.auc == 0.5 and same.balanced_accuracy == 0.5 and same.tpr_at_fpr_001 == 0.0


def test_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    m = rng.random(400) < 0.5
    s = np.round(rng.normal(size=400) + m, 1)  # many ties
    assert score_attack(s, m).auc == pytest.approx(roc_auc_score(m, s), abs=1e-12)


def test_tpr_at_fpr_counts_only_points_below_the_fpr():
    # 1000 non-members scored 0..999, members: 10 above every non-member, 90 below all
    s = np.r_[np.arange(1000.0), 2000 + np.arange(10.0), -1 - np.arange(90.0)]
    m = np.r_[np.zeros(1000, bool), np.ones(100, bool)]
    out = score_attack(s, m)
    assert out.tpr_at_fpr_0001 == pytest.approx(0.10)  # 1 false positive allowed at 0.1 %: still 10 members
    assert out.tpr_at_fpr_001 == pytest.approx(0.10)
    fpr, tpr, _ = roc_curve(s, m)
    assert fpr[0] == 0 and tpr[-1] == 1 and fpr[-1] == 1


def test_bad_inputs_are_config_errors():
    with pytest.raises(ConfigError, match="differ in length"):
        score_attack(np.zeros(3), np.array([True, False]))
    with pytest.raises(ConfigError, match="both members and non-members"):
        score_attack(np.zeros(3), np.ones(3, bool))
    with pytest.raises(ConfigError, match="NaN"):
        score_attack(np.array([0.0, np.nan]), np.array([True, False]))


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (17, 200), (500, 1000)])
def test_clopper_pearson_matches_scipy_binomtest(k, n):
    lo, hi = clopper_pearson(k, n, 0.05)
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    assert lo == pytest.approx(ref.low, abs=1e-9) and hi == pytest.approx(ref.high, abs=1e-9)


def test_multi_run_bound_known_values():
    # a perfect test over 500 + 500 runs: FPR⁺ = FNR⁺ = 1 − 0.025^(1/500)
    b = epsilon_lower_bound_multi(0, 500, 0, 500, confidence=0.95)
    u = 1 - 0.025 ** (1 / 500)
    assert b.epsilon == pytest.approx(math.log((1 - u) / u), rel=1e-9)
    assert epsilon_lower_bound_multi(250, 500, 250, 500).epsilon == 0.0  # chance: no evidence


def test_one_run_bound_solves_the_binomial_tail():
    b = epsilon_lower_bound_one_run(90, 100, confidence=0.95)
    p = 1 / (1 + math.exp(-b.epsilon))
    assert stats.binom.sf(89, 100, p) == pytest.approx(0.05, abs=1e-5)
    assert epsilon_lower_bound_one_run(50, 100).epsilon == 0.0
    assert epsilon_lower_bound_one_run(0, 0).epsilon == 0.0


def test_one_run_guesses_top_and_bottom():
    scores = np.array([5.0, 4, 3, 2, 1, 0])
    inc = np.array([True, True, False, True, False, False])
    assert one_run_guesses(scores, inc, 2, 2) == (4, 4)
    assert one_run_guesses(scores, inc, 3, 0) == (2, 3)
    with pytest.raises(ConfigError):
        one_run_guesses(scores, inc, 4, 4)


def _randomised_response_bound(eps: float, m: int, rng: np.random.Generator, multi: bool) -> float:
    """Audit ε-DP randomised response on m independent canary bits (the attacker guesses the released bit)."""
    inc = rng.random(m) < 0.5
    keep = rng.random(m) < math.exp(eps) / (1 + math.exp(eps))
    said_in = np.where(keep, inc, ~inc)
    if multi:
        fp, fn = int((said_in & ~inc).sum()), int((~said_in & inc).sum())
        return epsilon_lower_bound_multi(fp, int((~inc).sum()), fn, int(inc.sum()), confidence=0.95).epsilon
    correct, guesses = one_run_guesses(said_in.astype(float) + rng.random(m) * 1e-3, inc, m // 2, m // 2)
    return epsilon_lower_bound_one_run(correct, guesses, confidence=0.95).epsilon


@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("eps", [0.5, 2.0])
def test_soundness_on_randomised_response(eps, multi):
    """At 95 % confidence the bound may exceed the true ε in at most ~5 % of seeds (binomial slack for 200 seeds)."""
    rng = np.random.default_rng(123)
    bounds = np.array([_randomised_response_bound(eps, 1000, rng, multi) for _ in range(200)])
    assert (bounds > eps).mean() <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 200)
    assert np.median(bounds) > 0.5 * eps  # and it is not vacuous: it gets within a factor 2 of the truth
