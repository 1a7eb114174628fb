"""Property-based tests of the local-DP parameter checks and calibrations (protect/ldp_budget.py, ldp_pixel.py,
ldp_label.py): for any ε, δ, sensitivity, fraction or release count — numbers, NaN, ±inf, 0, negatives, huge, tiny,
strings, None — the result satisfies its formula or the call raises a :class:`BudgetError` / :class:`ConfigError`.
Never a ZeroDivisionError, an OverflowError, a NaN or an infinite loop.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privlab.errors import BudgetError, ConfigError, PrivlabError
from privlab.protect import ldp_budget as B

pytestmark = pytest.mark.filterwarnings("ignore:the classical Gaussian calibration:UserWarning")

PROPS = settings(
    max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)

ANY = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=1e-320, max_value=1e-3),
    st.floats(min_value=1e3, max_value=1e300),
    st.integers(-10, 10**6),
    st.sampled_from([0, 0.0, -0.0, 1, 1.0, 5e-324, 1e308, "1", "abc", None, True, [1]]),
)
DELTA = st.one_of(ANY, st.floats(min_value=1e-300, max_value=0.999999), st.sampled_from([1e-5, 1e-300, 0.5]))


def attempt(fn: Any, *args: Any, **kw: Any) -> Any:
    """``fn(...)``, or the :class:`PrivlabError` it raised (anything else fails the test)."""
    try:
        return fn(*args, **kw)
    except PrivlabError as e:
        err = e
    assert isinstance(err, ConfigError), type(err)  # BudgetError is a ConfigError
    assert str(err) and "\n" not in str(err)
    return err


def valid_eps(e: Any) -> bool:
    return isinstance(e, int | float) and not isinstance(e, bool) and math.isfinite(e) and e > 0


def finite_pos(v: Any) -> bool:
    return isinstance(v, float) and math.isfinite(v) and v > 0


@PROPS
@given(ANY, ANY)
def test_laplace_scale_is_sensitivity_over_epsilon(eps, sens):
    r = attempt(B.laplace_scale, eps, sens)
    if valid_eps(eps) and valid_eps(sens):
        if not isinstance(r, PrivlabError):
            assert r == pytest.approx(float(sens) / float(eps), rel=1e-12)
            return
        assert "overflow" in str(r) or math.isinf(float(sens) / float(eps))
    else:
        assert isinstance(r, BudgetError)


@PROPS
@given(ANY, DELTA, ANY, st.booleans())
def test_classical_gaussian_sigma_follows_its_formula(eps, delta, sens, strict):
    r = attempt(B.gaussian_sigma_classical, eps, delta, sens, strict=strict)
    ok = valid_eps(eps) and valid_eps(sens) and isinstance(delta, float | int) and 0 < delta < 1
    if not ok or (strict and eps >= 1):
        assert isinstance(r, BudgetError)
        return
    want = float(sens) * math.sqrt(2 * math.log(1.25 / delta)) / float(eps)
    if isinstance(r, PrivlabError):
        assert not math.isfinite(want)
    else:
        assert finite_pos(r) and r == pytest.approx(want, rel=1e-12)


@settings(PROPS, max_examples=100)
@given(ANY, DELTA, st.one_of(ANY, st.just(1.0)))
def test_analytic_gaussian_sigma_reaches_delta(eps, delta, sens):
    r = attempt(B.gaussian_sigma_analytic, eps, delta, sens)
    ok = valid_eps(eps) and valid_eps(sens) and isinstance(delta, float | int) and 0 < delta < 1
    if not ok:
        assert isinstance(r, BudgetError)
        return
    if isinstance(r, PrivlabError):  # only when no finite σ exists in float64
        assert "no finite sigma" in str(r) or "overflows" in str(r)
        return
    assert finite_pos(r)
    got = B.gaussian_delta(r, eps, sens)
    assert 0 <= got <= delta * (1 + 1e-6) + 1e-300  # (ε, δ)-DP holds at the returned σ
    if 1e-12 < eps < 1 and delta > 1e-200:  # and it is no looser than the classical calibration where that holds
        assert r <= B.gaussian_sigma_classical(eps, delta, sens) * (1 + 1e-9)


@PROPS
@given(ANY, ANY, ANY)
def test_gaussian_delta_is_a_probability(sigma, eps, sens):
    r = attempt(B.gaussian_delta, sigma, eps, sens)
    if valid_eps(sigma) and valid_eps(eps) and valid_eps(sens):
        assert not isinstance(r, PrivlabError) and 0.0 <= r <= 1.0
    else:
        assert isinstance(r, BudgetError)


@PROPS
@given(ANY)
def test_randomized_response_probabilities(eps):
    r = attempt(B.rr_probabilities, eps)
    if not valid_eps(eps):
        assert isinstance(r, BudgetError)
        return
    p, q = r
    assert 0.5 <= p <= 1 and 0 <= q <= 0.5 and p + q == pytest.approx(1.0)  # (1, 0) is the ε → ∞ limit
    if eps <= 20:  # where 1 − p is still resolved well in float64
        assert B.rr_epsilon(p) == pytest.approx(eps, rel=1e-6, abs=1e-9)


@PROPS
@given(ANY, st.sampled_from(["sue", "oue", "rappor", ""]))
def test_unary_encoding_probabilities_give_back_epsilon(eps, kind):
    r = attempt(B.ue_probabilities, eps, kind)
    if not valid_eps(eps) or kind not in ("sue", "oue"):
        assert isinstance(r, BudgetError)
        return
    p, q = r
    assert 0 <= q <= p <= 1  # q = 0 (ε ≳ 745) and p = q (ε ≲ 1e-16) are the float64 limits
    if 1e-12 < eps <= 30:
        assert B.ue_epsilon(p, q) == pytest.approx(eps, rel=1e-6, abs=1e-9)


@PROPS
@given(ANY, ANY)
def test_inverse_maps_refuse_probabilities_outside_the_open_interval(p, q):
    r = attempt(B.ue_epsilon, p, q)
    ok = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (p, q)) and 0 < q < p < 1
    if ok:
        assert not isinstance(r, PrivlabError) and math.isfinite(r) and r > 0
    else:
        assert isinstance(r, BudgetError)
    r = attempt(B.rr_epsilon, p)
    if isinstance(p, int | float) and not isinstance(p, bool) and 0 < p < 1:
        assert not isinstance(r, PrivlabError) and math.isfinite(r) and r >= 0
    else:
        assert isinstance(r, BudgetError)


@PROPS
@given(ANY, ANY, st.one_of(ANY, st.integers(1, 50)), st.one_of(st.none(), DELTA))
def test_allocation_spends_exactly_the_total(total, fraction, releases, delta):
    r = attempt(B.allocate, total, label_fraction=fraction, releases=releases, delta=delta)
    ok = (
        valid_eps(total)
        and isinstance(fraction, int | float)
        and not isinstance(fraction, bool)
        and 0 <= fraction < 1
        and isinstance(releases, int | float)
        and not isinstance(releases, bool)
        and math.isfinite(releases)
        and releases == int(releases)
        and releases >= 1
        and (delta is None or (isinstance(delta, int | float) and not isinstance(delta, bool) and 0 < delta < 1))
    )
    if not ok:
        assert isinstance(r, BudgetError)
        return
    if isinstance(r, BudgetError):  # a share that underflows to 0 in float64 is refused, not silently 0
        assert "underflows to 0" in str(r)
        return
    assert r.image_epsilon * r.releases + r.label_epsilon == pytest.approx(total, rel=1e-9)
    assert all(math.isfinite(v) and v >= 0 for v in (r.image_epsilon, r.label_epsilon))
    assert r.image_epsilon > 0


@settings(PROPS, max_examples=100)
@given(st.sampled_from(["laplace", "gaussian", "rr"]), ANY, st.sampled_from(["image", "pixel"]), DELTA,
       st.integers(1, 3 * 32 * 32))  # fmt: skip
def test_pixel_mechanisms_budget_or_refuse(name, eps, scope, delta, pixels):
    from privlab.protect.ldp_pixel import build_pixel_mechanism

    params: dict[str, Any] = {"epsilon": eps}
    if name == "gaussian":
        params |= {"delta": delta, "strict": False}
    else:
        params["scope"] = scope
    mech = attempt(build_pixel_mechanism, name, **params)
    if isinstance(mech, PrivlabError):
        assert not valid_eps(eps) or (name == "gaussian" and not (isinstance(delta, float | int) and 0 < delta < 1))
        return
    b = attempt(mech.budget, pixels)
    if isinstance(b, PrivlabError):  # e.g. per-pixel ε that underflows
        return
    per_image = eps if name == "gaussian" or scope == "image" else eps * pixels
    assert b.epsilon == pytest.approx(per_image, rel=1e-9) and math.isfinite(b.epsilon)
    for key in ("scale", "sigma", "p", "q"):
        v = b.details.get(key)
        assert v is None or (isinstance(v, float) and not math.isnan(v))


@PROPS
@given(ANY, st.sampled_from(["sue", "oue", "x"]), st.integers(-1, 20))
def test_label_mechanism_budget_or_refuse(eps, kind, classes):
    from privlab.protect.ldp_label import LABEL_EPSILON_MAX, UnaryEncoding

    ue = attempt(UnaryEncoding, epsilon=eps, kind=kind, num_classes=classes)
    if not valid_eps(eps) or kind == "x" or classes < 2:
        assert isinstance(ue, ConfigError)
        return
    if isinstance(ue, BudgetError):  # ε below what float64 resolves: p = q
        assert "below what float64 resolves" in str(ue) and eps < 1e-15
        return
    b = ue.budget()
    assert b.epsilon == pytest.approx(min(float(eps), LABEL_EPSILON_MAX), rel=1e-6)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: B.gaussian_delta(math.inf, 1.0), "sigma must be finite and > 0"),
        (lambda: B.gaussian_delta(1.0, 1.0, 0.0), "sensitivity must be finite and > 0"),
        (lambda: B.gaussian_sigma_analytic(1.0, 1e-5, math.inf), "sensitivity must be finite and > 0"),
        (lambda: B.gaussian_sigma_classical(0.5, 1e-5, -1.0), "sensitivity must be finite and > 0"),
        (lambda: B.gaussian_sigma(1.0, 1e-5, 1.0, "exact"), "unknown Gaussian calibration 'exact'"),
        (lambda: B.check_delta("tiny"), "delta must be a number"),
        (lambda: B.allocate(1.0, releases=float("nan")), "releases must be an integer ≥ 1"),
        (lambda: B.allocate(1.0, releases=1.5), "releases must be an integer ≥ 1"),
        (lambda: B.allocate(1.0, label_fraction="half"), "label_fraction must be a number"),
        (lambda: B.account(None, releases=0), "releases must be an integer ≥ 1"),
        (lambda: B.check_epsilon(True), "epsilon must be a number > 0"),
        (lambda: B.gaussian_sigma_analytic(5e-324, 5e-324), "no finite sigma reaches epsilon"),
    ],
)
def test_edge_cases_that_used_to_crash(call, match):
    """Each of these raised ZeroDivisionError, OverflowError, TypeError or returned NaN before (see the report)."""
    with pytest.raises(BudgetError, match=match):
        call()


@pytest.mark.parametrize(
    ("sigma", "eps"),
    [(7.03, 0.5), (1e3, 1e-3), (0.1, 50.0), (1e15, 1e-300), (2.76e299, 1e-300), (1e8, 1e-9), (3e4, 1e-310)],
)
def test_gaussian_delta_matches_a_high_precision_reference(sigma, eps):
    """δ(σ, ε) against mpmath at 340 digits, including σ ≫ Δ, where float64 cancellation used to give δ = 0."""
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(340):
        r = 1 / mpmath.mpf(sigma)
        e = mpmath.mpf(eps)
        want = float(mpmath.ncdf(r / 2 - e / r) - mpmath.e**e * mpmath.ncdf(-r / 2 - e / r))
    assert want > 0
    assert B.gaussian_delta(sigma, eps) == pytest.approx(want, rel=1e-9)
