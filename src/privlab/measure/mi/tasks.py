"""Ground-truth mutual-information tasks: seeded distributions whose I(X; Z) is known, to calibrate MI estimators.

In the spirit of Czyż et al., "Beyond Normal: On the Evaluation of Mutual Information Estimators" (NeurIPS 2023),
written from the maths. Every task is an :class:`MITask` registered in :data:`TASKS`; :func:`suite` lists them
(sorted by name, filtered by total dimension and family) and :func:`get_task` fetches one. All MI values are in
nats; samples are float64 arrays of shape ``(n, dim_x)`` and ``(n, dim_z)`` drawn with
``np.random.default_rng(seed)`` (same seed → identical arrays).

Families and their true MI:

- ``normal`` — jointly Gaussian (X, Z) with covariance Σ (blocks Σ_x, Σ_z):
  ``I = ½ (log det Σ_x + log det Σ_z − log det Σ)`` (:func:`gaussian_mi`).

  * ``normal-dense-dxd``: every pair of the 2d coordinates has correlation α = 0.5 (within and across blocks;
    positive definite for any d), so ``I = ½ [−log(1−α) + 2 log(1+(d−1)α) − log(1+(2d−1)α)]``.
  * ``normal-sparse-dxd``: only x_1–z_1 and x_2–z_2 are correlated (ρ = 0.8), so ``I = −log(1 − ρ²)``.
  * ``normal-corr0.8-1x1``: one pair with ρ = 0.8, ``I = −½ log(1 − ρ²)``.

- ``student-t`` — (X, Z) multivariate Student t with ν degrees of freedom and identity dispersion (X and Z are
  uncorrelated yet dependent through the shared scale): ``I = f(ν, d_x) + f(ν, d_z) − f(ν, d_x + d_z)`` with
  ``f(ν, d) = log Γ(ν/2) − log Γ((ν+d)/2) + (ν+d)/2 · [ψ((ν+d)/2) − ψ(ν/2)]`` (:func:`student_t_mi`). It follows
  from the entropy of a d-dimensional t with scale I, ``h = f(ν, d) + (d/2) log(νπ)``, whose marginals are t with
  the same ν; the ``(d/2) log(νπ)`` parts cancel.
- ``uniform-noise`` — X ~ U(0, 1), Z = X + N, N ~ U(−ε, ε): ``I = h(Z) − log(2ε)``, which is ``ε − log(2ε)`` for
  ε ≤ ½ (trapezoidal density of Z) and ``1/(4ε)`` for ε ≥ ½ (:func:`uniform_noise_mi`).
- ``bimodal`` — two one-dimensional tasks:

  * ``bimodal-1x1``: a Gaussian pair with ρ = 0.75 whose coordinates are each pushed through
    ``F⁻¹ ∘ Φ`` with F the CDF of ½ N(−1, 0.5²) + ½ N(1, 0.5²): bimodal marginals, MI of the Gaussian pair
    (a strictly increasing map of X alone or of Z alone leaves the MI unchanged).
  * ``bimodal-additive-1x1``: X ~ ½ N(−1, 0.5²) + ½ N(1, 0.5²), Z = X + σN with σ = 0.5:
    ``I = h(Z) − ½ log(2πeσ²)`` with h(Z) of the mixture ½ N(∓1, 0.5² + σ²) by 1-d quadrature.

- ``uniform-gauss`` — X ~ U[0, 1]^{d_x}, Z = a·X[:, :m] + σ·N(0, I_m) (a = 2, σ = 1):
  ``I = m · (h(aU + σN) − ½ log(2πeσ²))``, the density of aU + σN being ``(Φ(z/σ) − Φ((z−a)/σ)) / a``; 1-d
  quadrature gives 0.14371 nats per informative dimension (:func:`uniform_gauss_mi_per_dim`).

MI-preserving transforms (an injective map of X alone and/or of Z alone leaves I(X; Z) unchanged). A transformed
task is named ``"<transform>(<base name>)"``, keeps the base family and MI, and records the map in ``transform``:

- elementwise, strictly increasing, applied to X and Z: ``normal-cdf`` (Φ), ``half-cube`` (x·|x|^{1/2}),
  ``asinh``, ``wiggly`` (x + 0.4 sin x + 0.1 sin(4x + 1), derivative ≥ 0.2);
- ``spiral`` (X only, d_x ≥ 2): rotate (x_1, x_2) by the angle 0.5·‖x‖²; the rotation keeps ‖x‖, so rotating back
  by 0.5·‖y‖² inverts it;
- ``swiss-roll`` (X only, d_x = 1 → 2): t = 1.5π (1 + 2Φ(x)), y = (t cos t, t sin t) / (3π); the radius ‖y‖ is
  strictly increasing in x, so the map is injective.

Example:
    >>> from privlab.measure.mi.tasks import get_task
    >>> t = get_task("normal-sparse-5x5")
    >>> x, z = t.sample(1000, seed=0)
    >>> x.shape, z.shape, round(t.mi, 4)
    ((1000, 5), (1000, 5), 1.0217)
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from scipy import integrate, special

from privlab.errors import ConfigError, UnknownNameError
from privlab.registry import Registry

__all__ = [
    "ELEMENTWISE_INVERSES",
    "ELEMENTWISE_TRANSFORMS",
    "FAMILIES",
    "TASKS",
    "TRANSFORMS",
    "MITask",
    "bimodal_map",
    "bimodal_map_inverse",
    "gaussian_mi",
    "get_task",
    "spiral",
    "spiral_inverse",
    "student_t_mi",
    "suite",
    "swiss_roll",
    "swiss_roll_inverse",
    "uniform_gauss_mi_per_dim",
    "uniform_noise_mi",
]

Sampler = Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]

FAMILIES = ("bimodal", "normal", "student-t", "uniform-gauss", "uniform-noise")
TRANSFORMS = ("normal-cdf", "half-cube", "asinh", "wiggly", "spiral", "swiss-roll")

DENSE_CORRELATION = 0.5
SPARSE_CORRELATION = 0.8
SPARSE_PAIRS = 2
SPIRAL_SPEED = 0.5
BIMODAL_MEAN, BIMODAL_SD = 1.0, 0.5  # mixture ½ N(−μ, s²) + ½ N(μ, s²)
BIMODAL_CORRELATION = 0.75
BIMODAL_NOISE_SD = 0.5
UNIFORM_GAUSS_SCALE, UNIFORM_GAUSS_NOISE = 2.0, 1.0
_LOG_HALF = math.log(0.5)


@dataclass(frozen=True)
class MITask:
    """A distribution of (X, Z) with known mutual information.

    Attributes:
        name: unique name, e.g. ``"normal-dense-5x5"`` or ``"asinh(normal-sparse-5x5)"``.
        family: ``"normal"``, ``"student-t"``, ``"uniform-noise"``, ``"bimodal"`` or ``"uniform-gauss"``
            (transformed tasks keep the family of their base task).
        transform: None, or the MI-preserving map applied to the base task's samples (one of :data:`TRANSFORMS`).
        dim_x: dimension of X.
        dim_z: dimension of Z.
        mi: the true I(X; Z), nats.
        description: one line: the distribution and where its MI comes from.
    """

    name: str
    family: str
    transform: str | None
    dim_x: int
    dim_z: int
    mi: float
    description: str
    _sampler: Sampler = field(repr=False, compare=False)

    def sample(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` joint samples.

        Args:
            n: number of samples (≥ 1).
            seed: seed of ``np.random.default_rng``; the same seed gives identical arrays.

        Returns:
            ``(x, z)``: float64 arrays of shape ``(n, dim_x)`` and ``(n, dim_z)``.

        Raises:
            ConfigError: ``n`` is not a positive integer.
        """
        try:
            n = operator.index(n)
        except TypeError:
            raise ConfigError(f"n must be a positive integer, got {n!r}") from None
        if n < 1:
            raise ConfigError(f"n must be a positive integer, got {n}")
        x, z = self._sampler(n, np.random.default_rng(seed))
        x = np.ascontiguousarray(x, dtype=np.float64)
        z = np.ascontiguousarray(z, dtype=np.float64)
        assert x.shape == (n, self.dim_x) and z.shape == (n, self.dim_z), (x.shape, z.shape)
        return x, z


TASKS: Registry[MITask] = Registry("MI task")


# ----------------------------------------------------------------------------------------------- closed forms


def gaussian_mi(cov: np.ndarray, dim_x: int) -> float:
    """MI of a jointly Gaussian (X, Z), ``½ (log det Σ_x + log det Σ_z − log det Σ)``.

    Args:
        cov: joint covariance of ``[x, z]``, shape ``(dim_x + dim_z, dim_x + dim_z)``, positive definite.
        dim_x: dimension of X (the first ``dim_x`` coordinates).

    Returns:
        I(X; Z) in nats.
    """
    cov = np.asarray(cov, dtype=np.float64)

    def logdet(c: np.ndarray) -> float:
        sign, val = np.linalg.slogdet(c)
        if sign <= 0:
            raise ValueError("covariance is not positive definite")
        return float(val)

    return 0.5 * (logdet(cov[:dim_x, :dim_x]) + logdet(cov[dim_x:, dim_x:]) - logdet(cov))


def _student_f(nu: float, d: int) -> float:
    """Entropy of a d-dimensional Student t (scale I) minus ``(d/2) log(νπ)``, nats."""
    a, b = nu / 2.0, (nu + d) / 2.0
    return float(special.gammaln(a) - special.gammaln(b) + b * (special.digamma(b) - special.digamma(a)))


def student_t_mi(nu: float, dim_x: int, dim_z: int) -> float:
    """MI between the blocks of a multivariate Student t with ν degrees of freedom and identity dispersion.

    Args:
        nu: degrees of freedom (> 0).
        dim_x: dimension of X.
        dim_z: dimension of Z.

    Returns:
        ``f(ν, d_x) + f(ν, d_z) − f(ν, d_x + d_z)`` in nats (see the module docstring).
    """
    return _student_f(nu, dim_x) + _student_f(nu, dim_z) - _student_f(nu, dim_x + dim_z)


def uniform_noise_mi(eps: float) -> float:
    """MI of X ~ U(0, 1) and Z = X + U(−ε, ε), nats: ``ε − log(2ε)`` for ε ≤ ½, else ``1/(4ε)``.

    Z has a trapezoidal density (two linear ramps of width min(1, 2ε) and a flat top); each ramp contributes
    width/4 to h(Z) on top of the flat part, and ``I = h(Z) − h(N) = h(Z) − log(2ε)``.
    """
    if eps <= 0:
        raise ValueError("eps must be > 0")
    return eps - math.log(2.0 * eps) if eps <= 0.5 else 1.0 / (4.0 * eps)


def _entropy_1d(logpdf: Callable[[float], float], lo: float, hi: float, points: list[float]) -> float:
    """``−∫ p log p`` over [lo, hi] by adaptive quadrature, nats."""

    def integrand(t: float) -> float:
        lp = logpdf(t)
        return 0.0 if not math.isfinite(lp) else -math.exp(lp) * lp

    val, _ = integrate.quad(integrand, lo, hi, points=points, limit=400, epsabs=1e-13, epsrel=1e-12)
    return float(val)


@cache
def uniform_gauss_mi_per_dim(a: float = UNIFORM_GAUSS_SCALE, sigma: float = UNIFORM_GAUSS_NOISE) -> float:
    """``I(U; aU + σN) = h(aU + σN) − ½ log(2πeσ²)`` for U ~ U(0, 1), N ~ N(0, 1), nats (0.14371 for a=2, σ=1).

    The density of aU + σN is ``(Φ(z/σ) − Φ((z−a)/σ)) / a``, written with the upper tail above a/2 so that it
    keeps its precision far from [0, a]; h is integrated over [−12σ, a + 12σ].
    """

    def logpdf(t: float) -> float:
        if t < a / 2:
            p = special.ndtr(t / sigma) - special.ndtr((t - a) / sigma)
        else:
            p = special.ndtr((a - t) / sigma) - special.ndtr(-t / sigma)
        return math.log(p / a) if p > 0 else -math.inf

    h = _entropy_1d(logpdf, -12 * sigma, a + 12 * sigma, [0.0, a / 2, a])
    return h - 0.5 * math.log(2 * math.pi * math.e * sigma**2)


def _mixture_logpdf(t: float, mean: float, var: float) -> float:
    """log density of ½ N(−mean, var) + ½ N(mean, var) at t."""
    q = -0.5 * math.log(2 * math.pi * var)
    return float(np.logaddexp(q - (t + mean) ** 2 / (2 * var), q - (t - mean) ** 2 / (2 * var)) + _LOG_HALF)


@cache
def _bimodal_additive_mi(mean: float, sd: float, noise_sd: float) -> float:
    """I(X; X + σN) for X ~ ½ N(−μ, s²) + ½ N(μ, s²): h of the mixture ½ N(∓μ, s² + σ²) minus h(σN), nats."""
    var = sd**2 + noise_sd**2
    w = 14 * math.sqrt(var)
    h = _entropy_1d(lambda t: _mixture_logpdf(t, mean, var), -mean - w, mean + w, [-mean, 0.0, mean])
    return h - 0.5 * math.log(2 * math.pi * math.e * noise_sd**2)


# ---------------------------------------------------------------------------------------------------- maps


def _wiggly(x: np.ndarray) -> np.ndarray:
    return x + 0.4 * np.sin(x) + 0.1 * np.sin(4 * x + 1)


def _wiggly_inverse(y: np.ndarray) -> np.ndarray:
    """Bisection: the map is strictly increasing and |w(x) − x| ≤ 0.5, so x ∈ [y − 0.5, y + 0.5]."""
    y = np.asarray(y, dtype=np.float64)
    lo, hi = y - 0.5, y + 0.5
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        below = _wiggly(mid) < y
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def _half_cube(x: np.ndarray) -> np.ndarray:
    return x * np.sqrt(np.abs(x))


def _half_cube_inverse(y: np.ndarray) -> np.ndarray:
    return np.sign(y) * np.abs(y) ** (2.0 / 3.0)


ELEMENTWISE_TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "normal-cdf": special.ndtr,
    "half-cube": _half_cube,
    "asinh": np.arcsinh,
    "wiggly": _wiggly,
}
"""Strictly increasing elementwise maps (hence MI-preserving when applied to X and/or Z)."""

ELEMENTWISE_INVERSES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "normal-cdf": special.ndtri,
    "half-cube": _half_cube_inverse,
    "asinh": np.sinh,
    "wiggly": _wiggly_inverse,
}
"""The inverse of each map of :data:`ELEMENTWISE_TRANSFORMS`."""


def _rotate12(x: np.ndarray, angle: np.ndarray) -> np.ndarray:
    y = np.array(x, dtype=np.float64, copy=True)
    c, s = np.cos(angle), np.sin(angle)
    y[:, 0] = c * x[:, 0] - s * x[:, 1]
    y[:, 1] = s * x[:, 0] + c * x[:, 1]
    return y


def spiral(x: np.ndarray, speed: float = SPIRAL_SPEED) -> np.ndarray:
    """Rotate each row's first two coordinates by ``speed · ‖x‖²`` radians (an invertible map).

    Args:
        x: shape ``(n, d)`` with d ≥ 2.
        speed: radians per unit of squared norm.

    Returns:
        shape ``(n, d)``; the norm of each row is unchanged.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError("spiral needs x of shape (n, d) with d >= 2")
    return _rotate12(x, speed * np.einsum("ij,ij->i", x, x))


def spiral_inverse(y: np.ndarray, speed: float = SPIRAL_SPEED) -> np.ndarray:
    """Inverse of :func:`spiral`: rotate back by ``speed · ‖y‖²`` (the rotation keeps the norm)."""
    y = np.asarray(y, dtype=np.float64)
    return _rotate12(y, -speed * np.einsum("ij,ij->i", y, y))


_ROLL_T0, _ROLL_SCALE = 1.5 * math.pi, 3.0 * math.pi


def swiss_roll(x: np.ndarray) -> np.ndarray:
    """Map 1-d ``x`` to a swiss-roll curve: t = 1.5π (1 + 2Φ(x)), ``(t cos t, t sin t) / (3π)``.

    Args:
        x: shape ``(n, 1)``.

    Returns:
        shape ``(n, 2)``; the radius ``t / (3π)`` is strictly increasing in x, so the map is injective.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 1:
        raise ValueError("swiss_roll needs x of shape (n, 1)")
    t = _ROLL_T0 * (1.0 + 2.0 * special.ndtr(x[:, 0]))
    return np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / _ROLL_SCALE


def swiss_roll_inverse(y: np.ndarray) -> np.ndarray:
    """Inverse of :func:`swiss_roll` on its image: t = 3π ‖y‖, x = Φ⁻¹((t / 1.5π − 1) / 2); shape ``(n, 1)``."""
    y = np.asarray(y, dtype=np.float64)
    t = _ROLL_SCALE * np.hypot(y[:, 0], y[:, 1])
    return special.ndtri((t / _ROLL_T0 - 1.0) / 2.0)[:, None]


def _mixture_log_cdf(t: np.ndarray, mean: float, sd: float) -> np.ndarray:
    return np.logaddexp(special.log_ndtr((t + mean) / sd), special.log_ndtr((t - mean) / sd)) + _LOG_HALF


def bimodal_map(x: np.ndarray, mean: float = BIMODAL_MEAN, sd: float = BIMODAL_SD) -> np.ndarray:
    """``F⁻¹(Φ(x))`` with F the CDF of ½ N(−mean, sd²) + ½ N(mean, sd²): a standard normal becomes bimodal.

    Strictly increasing and odd. Solved elementwise by bisection in log space on the lower tail
    (``log F(y) = log Φ(−|x|)``, y ≤ 0), so it keeps full precision in both tails.

    Args:
        x: any shape.

    Returns:
        same shape as ``x``.
    """
    x = np.asarray(x, dtype=np.float64)
    a = -np.abs(x)
    target = special.log_ndtr(a)
    lo = -mean + sd * (a - 5.0)  # F(lo) ≤ Φ((lo + mean)/sd) = Φ(a − 5) < Φ(a)
    hi = np.zeros_like(a)  # F(0) = ½ ≥ Φ(a)
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        below = _mixture_log_cdf(mid, mean, sd) < target
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    y = 0.5 * (lo + hi)
    return np.where(x < 0, y, -y)


def bimodal_map_inverse(y: np.ndarray, mean: float = BIMODAL_MEAN, sd: float = BIMODAL_SD) -> np.ndarray:
    """Inverse of :func:`bimodal_map`: ``Φ⁻¹(F(y))``, from the lower tail by symmetry."""
    y = np.asarray(y, dtype=np.float64)
    x = special.ndtri_exp(_mixture_log_cdf(-np.abs(y), mean, sd))
    return np.where(y < 0, x, -x)


# ------------------------------------------------------------------------------------------------ samplers


def _gaussian_sampler(cov: np.ndarray, dim_x: int) -> Sampler:
    chol = np.linalg.cholesky(cov)

    def sample(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        y = rng.standard_normal((n, cov.shape[0])) @ chol.T
        return y[:, :dim_x], y[:, dim_x:]

    return sample


def _sparse_sampler(dim_x: int, dim_z: int, pairs: int, rho: float) -> Sampler:
    """z_i = ρ x_i + √(1−ρ²) ε_i for i < pairs, all other coordinates independent N(0, 1); O(n·d) memory."""

    def sample(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        x = rng.standard_normal((n, dim_x))
        z = rng.standard_normal((n, dim_z))
        z[:, :pairs] = rho * x[:, :pairs] + math.sqrt(1 - rho**2) * z[:, :pairs]
        return x, z

    return sample


def _student_sampler(nu: float, dim_x: int, dim_z: int) -> Sampler:
    def sample(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        g = rng.standard_normal((n, dim_x + dim_z))
        w = rng.chisquare(nu, size=n)
        y = g / np.sqrt(w / nu)[:, None]
        return y[:, :dim_x], y[:, dim_x:]

    return sample


def _uniform_noise_sampler(eps: float) -> Sampler:
    def sample(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        x = rng.random((n, 1))
        return x, x + rng.uniform(-eps, eps, size=(n, 1))

    return sample


def _uniform_gauss_sampler(dim_x: int, m: int, a: float, sigma: float) -> Sampler:
    def sample(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        x = rng.random((n, dim_x))
        return x, a * x[:, :m] + sigma * rng.standard_normal((n, m))

    return sample


def _bimodal_additive_sampler(mean: float, sd: float, noise_sd: float) -> Sampler:
    def sample(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        sign = np.where(rng.random((n, 1)) < 0.5, -1.0, 1.0)
        x = sign * mean + sd * rng.standard_normal((n, 1))
        return x, x + noise_sd * rng.standard_normal((n, 1))

    return sample


def _transformed_sampler(
    base: Sampler, fx: Callable[[np.ndarray], np.ndarray] | None, fz: Callable[[np.ndarray], np.ndarray] | None
) -> Sampler:
    def sample(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        x, z = base(n, rng)
        return (x if fx is None else fx(x)), (z if fz is None else fz(z))

    return sample


# ------------------------------------------------------------------------------------------------ the suite


def _equicorrelated(d: int, alpha: float) -> np.ndarray:
    return (1 - alpha) * np.eye(d) + alpha * np.ones((d, d))


def _transformed(base: MITask, transform: str) -> MITask:
    """``transform`` applied to a base task: elementwise maps to X and Z, spiral / swiss-roll to X only."""
    if transform in ELEMENTWISE_TRANSFORMS:
        f = ELEMENTWISE_TRANSFORMS[transform]
        sampler, dim_x, where = _transformed_sampler(base._sampler, f, f), base.dim_x, "X and Z elementwise"
    elif transform == "spiral":
        sampler, dim_x, where = _transformed_sampler(base._sampler, spiral, None), base.dim_x, "X"
    elif transform == "swiss-roll":
        sampler, dim_x, where = _transformed_sampler(base._sampler, swiss_roll, None), 2, "X (1-d → 2-d)"
    else:  # pragma: no cover - programming error
        raise ValueError(transform)
    return MITask(
        name=f"{transform}({base.name})",
        family=base.family,
        transform=transform,
        dim_x=dim_x,
        dim_z=base.dim_z,
        mi=base.mi,
        description=f"{transform} applied to {where} of {base.name} (injective, MI unchanged)",
        _sampler=sampler,
    )


def _build() -> list[MITask]:
    tasks: list[MITask] = []

    alpha = DENSE_CORRELATION
    for d in (1, 2, 3, 5, 25, 50):
        cov = _equicorrelated(2 * d, alpha)
        tasks.append(
            MITask(
                f"normal-dense-{d}x{d}",
                "normal",
                None,
                d,
                d,
                gaussian_mi(cov, d),
                f"Gaussian, all {2 * d} coordinates pairwise correlated {alpha}; I = ½ log det-ratio",
                _gaussian_sampler(cov, d),
            )
        )
    rho = SPARSE_CORRELATION
    for d in (2, 3, 5, 25, 50, 500):
        k = min(SPARSE_PAIRS, d)
        tasks.append(
            MITask(
                f"normal-sparse-{d}x{d}",
                "normal",
                None,
                d,
                d,
                -k / 2 * math.log(1 - rho**2),
                f"Gaussian, x_i–z_i correlated {rho} for i ≤ {k}, the rest independent; I = −({k}/2) log(1−ρ²)",
                _sparse_sampler(d, d, k, rho),
            )
        )
    # high dimension (d_x + d_z = 128, 512 and Shredder's 1 024 + 120): two correlated pairs (sparse) or every Z
    # coordinate paired with one X coordinate (paired, MI of tens to hundreds of nats, as in Shredder's figures)
    for dx, dz in ((64, 64), (256, 256), (1024, 120)):
        k = min(SPARSE_PAIRS, dz)
        if f"normal-sparse-{dx}x{dz}" not in {t.name for t in tasks}:
            tasks.append(
                MITask(
                    f"normal-sparse-{dx}x{dz}",
                    "normal",
                    None,
                    dx,
                    dz,
                    -k / 2 * math.log(1 - rho**2),
                    f"Gaussian, x_i–z_i correlated {rho} for i ≤ {k}, the rest independent; I = −({k}/2) log(1−ρ²)",
                    _sparse_sampler(dx, dz, k, rho),
                )
            )
        tasks.append(
            MITask(
                f"normal-paired-{dx}x{dz}",
                "normal",
                None,
                dx,
                dz,
                -dz / 2 * math.log(1 - rho**2),
                f"Gaussian, z_i = {rho}·x_i + noise for every i ≤ {dz}, other x independent; I = −({dz}/2) log(1−ρ²)",
                _sparse_sampler(dx, dz, dz, rho),
            )
        )
    cov = np.array([[1.0, rho], [rho, 1.0]])
    tasks.append(
        MITask(
            f"normal-corr{rho}-1x1",
            "normal",
            None,
            1,
            1,
            gaussian_mi(cov, 1),
            f"bivariate Gaussian with correlation {rho}; I = −½ log(1−ρ²)",
            _gaussian_sampler(cov, 1),
        )
    )

    for d, nus in ((1, (1, 2, 3, 5)), (2, (1, 2, 3)), (3, (2, 3)), (5, (2, 3))):
        for nu in nus:
            tasks.append(
                MITask(
                    f"student-t-df{nu}-{d}x{d}",
                    "student-t",
                    None,
                    d,
                    d,
                    student_t_mi(nu, d, d),
                    f"multivariate Student t, ν = {nu}, identity dispersion (uncorrelated, dependent)",
                    _student_sampler(float(nu), d, d),
                )
            )

    for eps in (0.1, 0.75):
        tasks.append(
            MITask(
                f"uniform-noise-eps{eps}-1x1",
                "uniform-noise",
                None,
                1,
                1,
                uniform_noise_mi(eps),
                f"X ~ U(0,1), Z = X + U(−{eps}, {eps}); I = " + ("ε − log 2ε" if eps <= 0.5 else "1/(4ε)"),
                _uniform_noise_sampler(eps),
            )
        )

    r = BIMODAL_CORRELATION
    cov = np.array([[1.0, r], [r, 1.0]])
    tasks.append(
        MITask(
            "bimodal-1x1",
            "bimodal",
            None,
            1,
            1,
            gaussian_mi(cov, 1),
            f"Gaussian pair (ρ = {r}) with each coordinate mapped by F⁻¹∘Φ, F = ½N(∓{BIMODAL_MEAN}, "
            f"{BIMODAL_SD}²); I = −½ log(1−ρ²)",
            _transformed_sampler(_gaussian_sampler(cov, 1), bimodal_map, bimodal_map),
        )
    )
    tasks.append(
        MITask(
            "bimodal-additive-1x1",
            "bimodal",
            None,
            1,
            1,
            _bimodal_additive_mi(BIMODAL_MEAN, BIMODAL_SD, BIMODAL_NOISE_SD),
            f"X ~ ½N(∓{BIMODAL_MEAN}, {BIMODAL_SD}²), Z = X + N(0, {BIMODAL_NOISE_SD}²); I = h(Z) − h(noise), "
            "h(Z) by quadrature",
            _bimodal_additive_sampler(BIMODAL_MEAN, BIMODAL_SD, BIMODAL_NOISE_SD),
        )
    )

    a, sigma = UNIFORM_GAUSS_SCALE, UNIFORM_GAUSS_NOISE
    for dx, m in ((1, 1), (5, 5), (20, 5), (512, 64), (1024, 120)):
        tasks.append(
            MITask(
                f"uniform-gauss-{dx}x{m}",
                "uniform-gauss",
                None,
                dx,
                m,
                m * uniform_gauss_mi_per_dim(a, sigma),
                f"X ~ U[0,1]^{dx}, Z = {a:g}·X[:, :{m}] + N(0, {sigma:g}²·I); I = {m}·[h(aU+σN) − h(σN)] (quadrature)",
                _uniform_gauss_sampler(dx, m, a, sigma),
            )
        )

    by_name = {t.name: t for t in tasks}
    for base in ("normal-dense-3x3", "normal-sparse-5x5"):
        for transform in ELEMENTWISE_TRANSFORMS:
            tasks.append(_transformed(by_name[base], transform))
    tasks.append(_transformed(by_name["normal-sparse-5x5"], "spiral"))
    tasks.append(_transformed(by_name["normal-dense-3x3"], "spiral"))
    tasks.append(_transformed(by_name[f"normal-corr{rho}-1x1"], "swiss-roll"))
    return tasks


for _task in _build():
    TASKS.add(
        _task.name,
        _task,
        family=_task.family,
        transform=_task.transform,
        dims=(_task.dim_x, _task.dim_z),
        mi=_task.mi,
    )
del _task


def suite(max_dim: int | None = None, families: list[str] | None = None) -> list[MITask]:
    """The registered tasks, sorted by name.

    Args:
        max_dim: keep only tasks with ``dim_x + dim_z ≤ max_dim`` (None: all).
        families: keep only these families (transformed tasks belong to their base family); None: all.

    Returns:
        The selected :class:`MITask` objects (possibly empty).

    Raises:
        UnknownNameError: a family is not one of :data:`FAMILIES`.
    """
    if families is not None:
        for fam in families:
            if fam not in FAMILIES:
                raise UnknownNameError(f"unknown MI task family {fam!r}. Known: {', '.join(FAMILIES)}.")
    out = []
    for name in TASKS.names():
        task = TASKS.get(name)
        if max_dim is not None and task.dim_x + task.dim_z > max_dim:
            continue
        if families is not None and task.family not in families:
            continue
        out.append(task)
    return out


def get_task(name: str) -> MITask:
    """The task registered as ``name``.

    Raises:
        UnknownNameError: no such task; the message lists the registered names and the closest one.
    """
    return TASKS.get(name)
