"""Calibrations and accounting of the local-DP mechanisms against closed forms, published values and audits."""

import itertools
import math

import numpy as np
import pytest
from scipy.stats import norm

from privlab.errors import BudgetError
from privlab.protect.base import Budget
from privlab.protect.ldp_budget import (
    account,
    allocate,
    empirical_epsilon,
    gaussian_delta,
    gaussian_sigma_analytic,
    gaussian_sigma_classical,
    laplace_scale,
    rr_epsilon,
    rr_probabilities,
    ue_epsilon,
    ue_probabilities,
)

DELTA_ORIG = 1 / 784**2  # the LDP-MNIST study's δ


@pytest.mark.parametrize(
    ("eps", "sigma"),
    [(150, 0.0347), (1925, 0.00270), (2000, 0.00260), (3000, 0.00174), (5000, 0.00104), (200000, 2.6e-5)],
)
def test_classical_sigma_matches_the_original_table(eps, sigma):
    # spec §4.2: σ = Δ·√(2 ln(1.25/δ))/ε with Δ = 1, δ = 1/784², √(…) = 5.2061
    assert math.sqrt(2 * math.log(1.25 / DELTA_ORIG)) == pytest.approx(5.2061, abs=1e-4)
    with pytest.warns(UserWarning, match="only proven for epsilon < 1"):
        got = gaussian_sigma_classical(eps, DELTA_ORIG, 1.0, strict=False)
    assert got == pytest.approx(sigma, rel=5e-3)


def test_classical_sigma_hand_value_and_strict_condition():
    # ε = 0.5, δ = 1e-5, Δ = 2: 2·√(2 ln 125000)/0.5 = 4·4.8441…
    assert gaussian_sigma_classical(0.5, 1e-5, 2.0) == pytest.approx(4 * math.sqrt(2 * math.log(125000)), rel=1e-12)
    with pytest.raises(BudgetError, match="only proven for epsilon < 1"):
        gaussian_sigma_classical(1.0, 1e-5)


def test_analytic_sigma_recovers_the_gdp_closed_form():
    # σ = Δ = 1 is 1-GDP: δ(ε) = Φ(−ε + ½) − e^ε Φ(−ε − ½) (Dong, Roth & Su 2019); at ε = 1: 0.126937
    delta = norm.cdf(-0.5) - math.e * norm.cdf(-1.5)
    assert delta == pytest.approx(0.1269367, abs=1e-6)
    assert gaussian_delta(1.0, 1.0, 1.0) == pytest.approx(delta, rel=1e-12)
    assert gaussian_sigma_analytic(1.0, delta, 1.0) == pytest.approx(1.0, rel=1e-9)
    assert gaussian_sigma_analytic(1.0, delta, 3.0) == pytest.approx(3.0, rel=1e-9)  # σ scales with Δ


@pytest.mark.parametrize("eps", [0.05, 0.5, 1.0, 10.0, 150.0, 3000.0, 200000.0])
@pytest.mark.parametrize("delta", [1e-10, DELTA_ORIG, 1e-3])
def test_analytic_sigma_solves_the_delta_identity(eps, delta):
    s = gaussian_sigma_analytic(eps, delta, math.sqrt(2))
    assert np.isfinite(s) and s > 0
    assert gaussian_delta(s, eps, math.sqrt(2)) == pytest.approx(delta, rel=1e-9, abs=1e-18)
    # smallest such σ: 0.1 % less noise breaks the guarantee
    assert gaussian_delta(s * 0.999, eps, math.sqrt(2)) > delta


@pytest.mark.parametrize("eps", [0.01, 0.1, 0.5, 0.9])
def test_classical_sigma_is_never_below_analytic(eps):
    for delta in (1e-8, 1e-5, 1e-2):
        assert gaussian_sigma_classical(eps, delta) >= gaussian_sigma_analytic(eps, delta)


def test_analytic_sigma_decreases_with_epsilon():
    sig = [gaussian_sigma_analytic(e, 1e-5) for e in (0.1, 1, 10, 100, 1000)]
    assert all(a > b for a, b in itertools.pairwise(sig))


@pytest.mark.parametrize("eps", [0, -1, float("nan"), float("inf"), "x"])
def test_bad_epsilon_is_a_budget_error(eps):
    with pytest.raises(BudgetError, match="epsilon"):
        laplace_scale(eps)
    with pytest.raises(BudgetError):
        rr_probabilities(eps)


@pytest.mark.parametrize("delta", [0, 1, -0.1, 1.5, None])
def test_bad_delta_is_a_budget_error(delta):
    with pytest.raises(BudgetError, match="delta"):
        gaussian_sigma_analytic(1.0, delta)


def test_randomized_response_probabilities_and_limits():
    p, q = rr_probabilities(1.0)
    assert p == pytest.approx(math.e / (1 + math.e)) and q == pytest.approx(1 / (1 + math.e))
    assert rr_epsilon(0.88) == pytest.approx(math.log(0.88 / 0.12))  # the original's 1.992 per bit
    assert rr_epsilon(0.88) == pytest.approx(1.992, abs=1e-3)
    p, q = rr_probabilities(1e6)  # no overflow / NaN at huge ε
    assert p == 1.0 and q == 0.0
    with pytest.raises(BudgetError, match="p = 1"):
        rr_epsilon(1.0)


def test_unary_encoding_probabilities_follow_wang_et_al():
    eps = 2.0
    p, q = ue_probabilities(eps, "sue")
    assert p == pytest.approx(math.exp(1) / (1 + math.exp(1))) and q == pytest.approx(1 - p)
    p, q = ue_probabilities(eps, "oue")
    assert p == 0.5 and q == pytest.approx(1 / (math.exp(2) + 1))
    for kind in ("sue", "oue"):
        assert ue_epsilon(*ue_probabilities(eps, kind)) == pytest.approx(eps, rel=1e-12)
    assert ue_epsilon(0.88, 0.12) == pytest.approx(3.985, abs=1e-3)  # spec §4.2


def test_the_originals_label_bug_is_a_clear_error():
    # driver.py: q = 1e-17, p = 1 − q == 1.0 in float64 → ZeroDivisionError in the original
    q = 1e-17
    with pytest.raises(BudgetError, match="rounds to 1.0"):
        ue_epsilon(1 - q, q)


def test_allocation_and_composition():
    a = allocate(1000.0, label_fraction=0.1, releases=20, delta=2e-5)
    assert a.label_epsilon == pytest.approx(100.0) and a.image_epsilon == pytest.approx(45.0)
    assert a.image_delta == pytest.approx(1e-6)
    img = Budget("ldp", "image", a.image_epsilon, a.image_delta, details={"per_pixel_epsilon": 45 / 64})
    lab = Budget("ldp", "label", a.label_epsilon)
    acct = account(img, lab, releases=a.releases)
    assert acct.composed.epsilon == pytest.approx(1000.0)
    assert acct.composed.delta == pytest.approx(2e-5)
    assert acct.per_pixel.epsilon == pytest.approx(45 / 64)
    assert account(None, lab).composed.epsilon == math.inf  # raw images: nothing protected
    with pytest.raises(BudgetError):
        allocate(10.0, label_fraction=1.0)


def _laplace_hist(x, b, n, bins, rng):
    out = np.clip(x + rng.laplace(0.0, b, n), 0, 1)
    return np.histogram(out, bins=bins)[0]


def test_empirical_audit_passes_a_correct_laplace_and_catches_a_miscalibrated_one():
    rng = np.random.default_rng(0)
    eps, n = 1.0, 200_000
    bins = np.linspace(0, 1, 21)
    bins[0], bins[-1] = -1e-9, 1 + 1e-9  # the clipped atoms at 0 and 1 are bins of their own edges
    good = empirical_epsilon(_laplace_hist(0.0, 1 / eps, n, bins, rng), _laplace_hist(1.0, 1 / eps, n, bins, rng))
    assert good[1] <= eps  # lower bound stays below ε
    assert good[0] == pytest.approx(eps, abs=0.15)  # and the loss is actually close to ε at the extremes
    bad = empirical_epsilon(_laplace_hist(0.0, 0.5 / eps, n, bins, rng), _laplace_hist(1.0, 0.5 / eps, n, bins, rng))
    assert bad[1] > eps * 1.3  # half the noise: the audit proves a loss well above the claimed ε


def test_empirical_audit_for_randomized_response():
    rng = np.random.default_rng(1)
    eps, n = 1.5, 100_000
    p, q = rr_probabilities(eps)

    def hist(bit, flip):
        out = np.where(rng.random(n) < flip, 1 - bit, bit)
        return np.bincount(out, minlength=2)

    est, low = empirical_epsilon(hist(0, q), hist(1, q))
    assert low <= eps and est == pytest.approx(eps, abs=0.05)
    est, low = empirical_epsilon(hist(0, q / 3), hist(1, q / 3))  # mis-calibrated: flips too rarely
    assert low > eps
