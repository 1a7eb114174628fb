"""Local-DP accounting as data: mechanism calibrations, per pixel / image / label / composed budgets, audits.

Pure maths (floats in, floats out; no tensors) shared by the pixel and label mechanisms, the ``ldp`` experiment and
``privlab ldp budget``. ε is in nats (natural log). Every function refuses ε ≤ 0, δ ∉ (0, 1) and the p → 1 limits
(which mean ε = ∞) with a :class:`~privlab.errors.BudgetError` — never a division by zero or a NaN. Probabilities
are computed with ``expit``/``log1p`` so ε of 10⁵ is fine.

Calibrations:

* Laplace: scale ``b = Δ₁ / ε``.
* Classical Gaussian (Dwork & Roth 2014, Thm A.1): ``σ = Δ₂ √(2 ln(1.25/δ)) / ε``, proven only for ε < 1.
* Analytic Gaussian (Balle & Wang 2018, Thm 8): the smallest σ with
  ``Φ(Δ/(2σ) − εσ/Δ) − e^ε Φ(−Δ/(2σ) − εσ/Δ) ≤ δ``, valid for every ε > 0, solved with ``scipy.optimize.brentq``.
* Randomized response on one bit: keep with ``p = e^ε/(1+e^ε)``, ε = ln(p/(1−p)).
* Unary encoding (Wang et al. 2017): SUE ``p = e^{ε/2}/(1+e^{ε/2}), q = 1−p``; OUE ``p = 1/2, q = 1/(e^ε+1)``;
  ε = ln(p(1−q) / ((1−p)q)).

Example:
    >>> round(gaussian_sigma_classical(0.5, 1e-5), 3)
    9.69
    >>> rr_probabilities(1e5)  # no overflow, no division by zero
    (1.0, 0.0)
    >>> [round(v, 4) for v in ue_probabilities(2.0, "oue")]
    [0.5, 0.1192]
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

from privlab.errors import BudgetError
from privlab.protect.base import Budget

__all__ = [
    "Allocation",
    "LDPAccount",
    "account",
    "allocate",
    "check_delta",
    "check_epsilon",
    "check_sensitivity",
    "clopper_pearson",
    "empirical_epsilon",
    "gaussian_delta",
    "gaussian_sigma",
    "gaussian_sigma_analytic",
    "gaussian_sigma_classical",
    "laplace_scale",
    "rr_epsilon",
    "rr_probabilities",
    "ue_epsilon",
    "ue_probabilities",
]


# -- validation --------------------------------------------------------------------------------------------------


def check_epsilon(epsilon: float, what: str = "epsilon") -> float:
    """``epsilon`` as a float if it is finite and > 0, else :class:`BudgetError` naming ``what``."""
    try:
        if isinstance(epsilon, str | bytes | bool):  # "1" or True are not budgets (float() would accept them)
            raise TypeError
        e = float(epsilon)
    except (TypeError, ValueError, OverflowError):
        raise BudgetError(f"{what} must be a number > 0, got {epsilon!r}") from None
    if not math.isfinite(e) or e <= 0:
        raise BudgetError(f"{what} must be finite and > 0 (ε = 0 gives no utility, ε = ∞ no privacy), got {epsilon!r}")
    return e


def check_delta(delta: float | None, what: str = "delta") -> float:
    """``delta`` as a float if it lies in the open interval (0, 1), else :class:`BudgetError`."""
    if delta is None:
        raise BudgetError(f"{what} is required for the Gaussian mechanism: give a value in (0, 1), e.g. 1e-5")
    d = _number(delta, what)
    if not (0.0 < d < 1.0):
        raise BudgetError(f"{what} must lie strictly between 0 and 1 (e.g. 1e-5), got {delta!r}")
    return d


def _number(value: Any, what: str) -> float:
    """``value`` as a float, or :class:`BudgetError` naming ``what`` (never a TypeError from a comparison)."""
    try:
        if isinstance(value, str | bytes | bool):
            raise TypeError
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise BudgetError(f"{what} must be a number, got {value!r}") from None


def check_sensitivity(sensitivity: float, what: str = "sensitivity") -> float:
    """``sensitivity`` as a float if it is finite and > 0, else :class:`BudgetError`."""
    v = _number(sensitivity, what)
    if not (0.0 < v < math.inf):
        raise BudgetError(f"{what} must be finite and > 0, got {sensitivity!r}")
    return v


def _check_releases(releases: Any) -> int:
    """``releases`` as an int if it is a whole number ≥ 1 (NaN, 1.5, "2", True refused)."""
    msg = f"releases must be an integer ≥ 1, got {releases!r}"
    r = _number(releases, "releases")
    if not math.isfinite(r) or r != int(r) or r < 1:
        raise BudgetError(msg)
    return int(r)


# -- calibrations ------------------------------------------------------------------------------------------------


def laplace_scale(epsilon: float, sensitivity: float = 1.0) -> float:
    """Laplace scale ``b = Δ₁/ε`` (data units) giving ε-DP for L1 sensitivity ``sensitivity``."""
    eps, sens = check_epsilon(epsilon), check_sensitivity(sensitivity)
    return sens / eps


def gaussian_sigma_classical(epsilon: float, delta: float, sensitivity: float = 1.0, *, strict: bool = True) -> float:
    """Classical Gaussian calibration ``σ = Δ₂ √(2 ln(1.25/δ)) / ε`` (data units).

    The proof (Dwork & Roth 2014, Thm A.1) holds only for ε < 1. With ``strict`` (default) ε ≥ 1 raises
    :class:`BudgetError`; with ``strict=False`` it warns (``UserWarning``) and returns the formula's value, which is
    then *not* a proven (ε, δ) guarantee (the LDP-MNIST study used ε = 150 … 200 000 this way).
    """
    eps, d, sens = check_epsilon(epsilon), check_delta(delta), check_sensitivity(sensitivity)
    if eps >= 1:
        msg = (
            f"the classical Gaussian calibration is only proven for epsilon < 1, got {eps:g}; use calibration "
            "'analytic' (valid for every epsilon) or strict=False to reproduce the original study"
        )
        if strict:
            raise BudgetError(msg)
        warnings.warn(msg, UserWarning, stacklevel=2)
    sigma = sens * math.sqrt(2.0 * math.log(1.25 / d)) / eps
    if not math.isfinite(sigma):
        raise BudgetError(f"sigma overflows for epsilon {eps:g} and delta {d:g}; use a larger epsilon or delta")
    return sigma


def _log_ndtr(x: float) -> float:
    from scipy.special import log_ndtr

    return float(log_ndtr(x))


def gaussian_delta(sigma: float, epsilon: float, sensitivity: float = 1.0) -> float:
    """Exact δ(ε) of the Gaussian mechanism with noise ``sigma`` (Balle & Wang 2018, Thm 8).

    ``δ = Φ(Δ/(2σ) − εσ/Δ) − e^ε Φ(−Δ/(2σ) − εσ/Δ)``, evaluated in log space (no overflow of ``e^ε``), or with
    ``erf`` when both arguments are small (σ ≫ Δ with a tiny ε), where the two terms would cancel in float64.
    """
    s = _number(sigma, "sigma")
    if not (0.0 < s < math.inf):
        raise BudgetError(f"sigma must be finite and > 0, got {sigma!r}")
    eps, sens = check_epsilon(epsilon), check_sensitivity(sensitivity)
    r = sens / s
    if r == 0.0:  # sigma so large against the sensitivity that the mechanism leaks nothing measurable
        return 0.0
    c, h = -eps / r, r / 2.0  # a = c + h, b = c − h
    a, b = c + h, c - h
    if (h < 1e-4 and abs(c) < 37.0) or max(abs(a), abs(b)) < 1.0:
        # Here δ = [Φ(a) − Φ(b)] − (e^ε − 1) Φ(b) with a small ε (ε = 2|c|h), and Φ(a) − Φ(b) would cancel in float64
        # (for σ ≫ Δ all of δ rounds to 0): take it as ∫ φ over [c − h, c + h] — by Taylor for a narrow interval
        # (error O(h⁴) < 1e-16 relative), else by erf, which keeps the relative precision of small arguments.
        from scipy.special import erf, ndtr

        if h < 1e-4:
            central = 2.0 * h * math.exp(-0.5 * c * c) / math.sqrt(2.0 * math.pi) * (1.0 + (c * c - 1.0) * h * h / 6.0)
        else:
            central = 0.5 * (float(erf(a / math.sqrt(2.0))) - float(erf(b / math.sqrt(2.0))))
        return min(max(central - math.expm1(eps) * float(ndtr(b)), 0.0), 1.0)
    la, lb = _log_ndtr(a), _log_ndtr(b)
    if la == -math.inf:
        return 0.0
    diff = eps + lb - la  # log of the ratio second/first term, ≤ 0 by construction
    return math.exp(la) * -math.expm1(min(diff, 0.0))


def gaussian_sigma_analytic(epsilon: float, delta: float, sensitivity: float = 1.0, *, xtol: float = 1e-14) -> float:
    """Smallest σ (data units) for which the Gaussian mechanism is (ε, δ)-DP (Balle & Wang 2018), any ε > 0.

    Solves ``gaussian_delta(σ, ε, Δ) = δ`` for σ with Brent's method on ``ln σ`` (δ(σ) decreases in σ).
    """
    from scipy.optimize import brentq

    eps, d, sens = check_epsilon(epsilon), check_delta(delta), check_sensitivity(sensitivity)

    def f(log_sigma: float) -> float:
        return gaussian_delta(math.exp(log_sigma), eps, sens) - d

    try:
        lo = math.log(sens) - 10.0
        hi = math.log(sens) + 1.0
        while f(lo) < 0:
            lo -= 10.0
        while f(hi) > 0:
            hi += 2.0
        log_sigma = brentq(f, lo, hi, xtol=xtol, rtol=1e-15, maxiter=500)
        step = 1e-15 * max(1.0, abs(log_sigma))
        for _ in range(200):  # the root within xtol may sit a hair on the wrong side: step up until δ(σ) ≤ δ
            if f(log_sigma) <= 0:
                break
            log_sigma += step
            step *= 2
        sigma = math.exp(log_sigma)
    except (OverflowError, ValueError, RuntimeError) as e:
        raise BudgetError(
            f"no finite sigma reaches epsilon {eps:g} at delta {d:g} with sensitivity {sens:g} ({e}); use a larger "
            "epsilon or delta"
        ) from None
    if not (0.0 < sigma < math.inf):
        raise BudgetError(f"sigma overflows for epsilon {eps:g} and delta {d:g}; use a larger epsilon or delta")
    return sigma


def gaussian_sigma(
    epsilon: float,
    delta: float,
    sensitivity: float = 1.0,
    calibration: Literal["analytic", "classical"] = "analytic",
    *,
    strict: bool = True,
) -> float:
    """σ of the Gaussian mechanism by ``calibration`` (see the two functions above)."""
    if calibration not in ("analytic", "classical"):
        raise BudgetError(f"unknown Gaussian calibration {calibration!r}; use 'analytic' or 'classical'")
    if calibration == "classical":
        return gaussian_sigma_classical(epsilon, delta, sensitivity, strict=strict)
    return gaussian_sigma_analytic(epsilon, delta, sensitivity)


def rr_probabilities(epsilon: float) -> tuple[float, float]:
    """Randomized response on one bit: ``(p, q)`` = (keep, flip) = ``(e^ε/(1+e^ε), 1/(1+e^ε))``, overflow-free."""
    from scipy.special import expit

    eps = check_epsilon(epsilon)
    return float(expit(eps)), float(expit(-eps))


def rr_epsilon(p: float) -> float:
    """ε of randomized response that keeps a bit with probability ``p`` (and flips it with ``1 − p``).

    Raises:
        BudgetError: ``p`` outside (0, 1): p = 1 keeps every bit (ε = ∞, no privacy).
    """
    p = _number(p, "randomized response keep probability p")
    if not (0.0 < p < 1.0):
        raise BudgetError(
            f"randomized response keep probability p must lie strictly between 0 and 1, got {p!r} "
            "(p = 1 releases every bit unchanged: ε = ∞); give epsilon instead"
        )
    return abs(math.log(p) - math.log1p(-p))


def ue_probabilities(epsilon: float, kind: Literal["sue", "oue"] = "oue") -> tuple[float, float]:
    """Unary encoding ``(p, q)``: P(bit 1 | true class), P(bit 1 | other class) (Wang et al. 2017).

    SUE (symmetric, basic RAPPOR): ``p = e^{ε/2}/(1+e^{ε/2})``, ``q = 1 − p``. OUE (optimised): ``p = 1/2``,
    ``q = 1/(e^ε + 1)``.
    """
    from scipy.special import expit

    eps = check_epsilon(epsilon)
    if kind == "sue":
        return float(expit(eps / 2)), float(expit(-eps / 2))
    if kind == "oue":
        return 0.5, float(expit(-eps))
    raise BudgetError(f"unknown unary encoding {kind!r}; use 'sue' or 'oue'")


def ue_epsilon(p: float, q: float) -> float:
    """ε = ln(p(1−q) / ((1−p) q)) of unary encoding with bit probabilities ``p`` (true class) and ``q`` (others).

    Raises:
        BudgetError: p ∉ (0, 1), q ∉ (0, 1), p ≤ q, or values whose ε is infinite in float64 (e.g. the original's
            q = 1e-17, p = 1 − q, where ``1 − 1e-17 == 1.0``).
    """
    p, q = _number(p, "unary encoding p"), _number(q, "unary encoding q")
    if not (0.0 < q < p < 1.0):
        hint = " (in float64 1 - q rounds to 1.0 for q < 1.1e-16)" if p >= 1.0 and q > 0 else ""
        raise BudgetError(
            f"unary encoding needs 0 < q < p < 1, got p={p!r}, q={q!r}{hint}; p = 1 or q = 0 means ε = ∞ "
            "(no privacy): give epsilon instead"
        )
    return math.log(p) + math.log1p(-q) - math.log1p(-p) - math.log(q)


# -- accounting --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allocation:
    """How a total per-example budget is spent: image ε per release, label ε, number of image releases.

    Attributes:
        total_epsilon: ε per training example (image + label) for the whole run (basic composition).
        image_epsilon: ε per image *per release* (one privatised copy of the image).
        label_epsilon: ε of the (single) label release; 0 when labels are not privatised.
        releases: independent privatised copies of each image (epochs × views with fresh noise; else 1).
        total_delta: δ of the whole run (Gaussian only), ``image_delta × releases``.
        image_delta: δ per release (Gaussian only).
    """

    total_epsilon: float
    image_epsilon: float
    label_epsilon: float
    releases: int
    total_delta: float | None = None
    image_delta: float | None = None


def allocate(
    total_epsilon: float,
    *,
    label_fraction: float = 0.0,
    releases: int = 1,
    delta: float | None = None,
) -> Allocation:
    """Split ``total_epsilon`` into a label share and ``releases`` equal image releases (basic composition).

    ``label_fraction`` of ε goes to the label (0: labels are public / not privatised); the rest is divided equally
    among the image releases, and ``delta`` likewise.

    >>> a = allocate(100.0, label_fraction=0.1, releases=3)
    >>> round(a.image_epsilon, 6), a.label_epsilon
    (30.0, 10.0)
    """
    eps = check_epsilon(total_epsilon, "total epsilon")
    fraction = _number(label_fraction, "label_fraction")
    if not (0.0 <= fraction < 1.0):
        raise BudgetError(f"label_fraction must lie in [0, 1), got {label_fraction!r}")
    releases = _check_releases(releases)
    label = eps * fraction
    image = (eps - label) / releases
    if image <= 0 or (fraction > 0 and label <= 0):
        raise BudgetError(
            f"total epsilon {eps:g} split over {releases} release(s) and a label share of {fraction:g} underflows "
            "to 0; use a larger epsilon"
        )
    d = None if delta is None else check_delta(delta) / releases
    return Allocation(eps, image, label, int(releases), None if delta is None else float(delta), d)


@dataclass(frozen=True)
class LDPAccount:
    """Budgets of one local-DP release of a data set, as :class:`~privlab.protect.Budget` records.

    Attributes:
        per_pixel: ε (δ) against a change of one pixel of one image, per release.
        per_image: ε (δ) against any change of one image, per release.
        per_label: ε of one privatised label (None when labels are public).
        composed: ε (δ) of the whole example (image releases + label) by basic composition.
        details: mechanism parameters (scale, σ, p, q, releases …).
    """

    per_pixel: Budget | None
    per_image: Budget | None
    per_label: Budget | None
    composed: Budget
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``None`` for absent parts)."""
        return {
            "per_pixel": None if self.per_pixel is None else self.per_pixel.as_dict(),
            "per_image": None if self.per_image is None else self.per_image.as_dict(),
            "per_label": None if self.per_label is None else self.per_label.as_dict(),
            "composed": self.composed.as_dict(),
            "details": dict(self.details),
        }

    def rows(self) -> list[tuple[str, float | None, float | None]]:
        """``(scope, ε, δ)`` rows for tables."""
        out = []
        for name in ("per_pixel", "per_image", "per_label", "composed"):
            b = getattr(self, name)
            if b is not None:
                out.append((name.replace("_", " "), b.epsilon, b.delta))
        return out


def account(image: Budget | None, label: Budget | None = None, *, releases: int = 1) -> LDPAccount:
    """Compose an image mechanism's per-image budget over ``releases`` fresh releases with a label budget.

    Args:
        image: the image mechanism's budget (``scope="image"``; ``details["per_pixel_epsilon"]`` if it has one),
            or None when images are released raw (then nothing about the image is protected: composed ε = ∞).
        label: the label mechanism's budget (``scope="label"``) or None (labels public).
        releases: independent privatised copies of each image (fresh noise per epoch / per view).

    Returns:
        The :class:`LDPAccount`; composed ε = releases × ε_image + ε_label, composed δ = releases × δ_image.
    """
    releases = _check_releases(releases)
    details: dict[str, Any] = {"releases": int(releases), "composition": "basic (sequential) composition"}
    per_pixel = per_image = None
    eps_total = 0.0
    delta_total: float | None = None
    if image is None:
        eps_total = math.inf
    else:
        per_image = Budget("ldp", "image", image.epsilon, image.delta, details=dict(image.details))
        ppe = image.details.get("per_pixel_epsilon")
        per_pixel = Budget("ldp", "pixel", ppe, image.delta) if ppe is not None else None
        eps_total += releases * float(image.epsilon or 0.0)
        if image.delta is not None:
            delta_total = releases * image.delta
        details["image_mechanism"] = image.details.get("mechanism")
    if label is not None:
        eps_total += float(label.epsilon or 0.0)
        details["label_mechanism"] = label.details.get("mechanism")
    composed = Budget("ldp", "example", eps_total, delta_total, details={"releases": int(releases)})
    return LDPAccount(per_pixel, per_image, label, composed, details)


# -- empirical audit ---------------------------------------------------------------------------------------------


def clopper_pearson(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Two-sided ``1 − alpha`` Clopper–Pearson interval of a binomial proportion ``k/n``."""
    from scipy.stats import beta

    lo = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lo, hi


def empirical_epsilon(counts_a: Any, counts_b: Any, *, alpha: float = 0.05, min_count: int = 20) -> tuple[float, float]:
    """Estimate and a high-confidence *lower bound* of ε from output histograms for two neighbouring inputs.

    For every output bin with at least ``min_count`` hits on either side, the log ratio of the two empirical
    frequencies is an estimate of the privacy loss there; the lower bound uses Clopper–Pearson limits (lower limit
    over upper limit, Bonferroni-corrected over bins and both directions). A correct ε-DP mechanism keeps the lower
    bound ≤ ε with probability ≥ 1 − alpha; a mis-calibrated one pushes it above.

    Args:
        counts_a, counts_b: histogram counts (same bins) of the outputs for input a and input b.
        alpha: error probability of the lower bound.
        min_count: bins with fewer hits on both sides are ignored (too noisy).

    Returns:
        ``(point estimate, lower bound)`` in nats.
    """
    import numpy as np

    a, b = np.asarray(counts_a, dtype=np.int64), np.asarray(counts_b, dtype=np.int64)
    na, nb = int(a.sum()), int(b.sum())
    keep = np.flatnonzero((a >= min_count) | (b >= min_count))
    if keep.size == 0 or na == 0 or nb == 0:
        return 0.0, 0.0
    corr = alpha / (2 * keep.size)
    est, low = 0.0, 0.0
    for i in keep:
        ka, kb = int(a[i]), int(b[i])
        for (k1, n1), (k2, n2) in (((ka, na), (kb, nb)), ((kb, nb), (ka, na))):
            if k1 > 0 and k2 > 0:
                est = max(est, math.log((k1 / n1) / (k2 / n2)))
            lo1, _ = clopper_pearson(k1, n1, corr)
            _, hi2 = clopper_pearson(k2, n2, corr)
            if lo1 > 0:
                low = max(low, math.log(lo1 / hi2))
    return est, low
