"""Mutual-information estimation: one entry point, several estimators, seeded repeats and confidence intervals.

Estimators (:data:`MI_ESTIMATORS`, all in nats):

- ``ite-dkl`` — ITE's ``MIShannon_DKL`` (kNN KL between the joint and the product of marginals, k = 3 by default),
  the estimator of the Shredder papers; stochastic (a permutation), so ``repeats`` re-draw it.
- ``ksg`` — Kraskov–Stögbauer–Grassberger estimator 1 (max-norm); deterministic.
- ``gaussian`` — closed form under a joint-Gaussian fit (Ledoit–Wolf shrinkage when n is small); deterministic.

kNN estimators are badly biased when the dimension is large for the number of samples: compare values at the same
n, k and dimensions (e.g. clean vs noisy activations), not against the true MI.

Example:
    >>> import torch
    >>> from privlab.measure.mi import estimate_mi
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(5000, 1, generator=g)
    >>> z = 0.8 * x + 0.6 * torch.randn(5000, 1, generator=g)   # correlation 0.8: I = −½ log(1 − 0.64) = 0.51 nats
    >>> r = estimate_mi(x, z, estimator="ksg")
    >>> abs(r.nats - 0.511) < 0.05, r.unit
    (True, 'nats')
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from privlab.errors import ConfigError
from privlab.measure.functional.knn import Backend, resolve_backend
from privlab.measure.functional.mi_gaussian import gaussian_mi
from privlab.measure.functional.mi_knn_kl import joint_and_product_split, knn_kl_divergence
from privlab.measure.functional.mi_ksg import ksg_mi
from privlab.registry import Registry

__all__ = ["MI_ESTIMATORS", "MIResult", "as_samples", "estimate_mi"]

LOG2 = math.log(2.0)


@dataclass
class MIResult:
    """An MI estimate.

    Attributes:
        nats: the estimate (mean over repeats), in nats. ``bits`` is the same in bits.
        ci95: 95 % confidence interval of the mean over repeats (Student t), or None with one repeat or a
            deterministic estimator.
        estimator, k, n, dims: what was estimated: estimator name, neighbours, samples, ``(d_x, d_z)``.
        seconds: wall time of the whole estimate.
        backend: kNN backend used (None for ``gaussian``).
        values: the estimate of each repeat, nats.
        zero_distance_rows: rows left out for zero kNN distances (summed over repeats).
    """

    nats: float
    ci95: tuple[float, float] | None
    estimator: str
    k: int
    n: int
    dims: tuple[int, int]
    seconds: float
    backend: str | None = None
    repeats: int = 1
    seed: int = 0
    jitter: float = 0.0
    values: list[float] = field(default_factory=list)
    zero_distance_rows: int = 0
    unit: str = "nats"

    @property
    def bits(self) -> float:
        """The estimate in bits."""
        return self.nats / LOG2

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``bits`` included; ``ci95`` as a list)."""
        d = asdict(self)
        d["bits"] = self.bits
        d["ci95"] = list(self.ci95) if self.ci95 is not None else None
        d["dims"] = list(self.dims)
        return d


Estimator = Callable[..., tuple[float, int]]
MI_ESTIMATORS: Registry[Estimator] = Registry("MI estimator")


@MI_ESTIMATORS.register(
    "ite-dkl", stochastic=True, uses_knn=True, description="ITE MIShannon_DKL: kNN KL(joint‖product)"
)
def _ite_dkl(
    x: torch.Tensor, z: torch.Tensor, *, k: int, generator: torch.Generator, backend: Backend, split: str, **_: Any
) -> tuple[float, int]:
    y1, y2 = joint_and_product_split(x, z, generator, split=split)
    est = knn_kl_divergence(y1, y2, k, backend=backend)
    return est.nats, est.n_zero


@MI_ESTIMATORS.register("ksg", stochastic=False, uses_knn=True, description="Kraskov–Stögbauer–Grassberger estimator 1")
def _ksg(x: torch.Tensor, z: torch.Tensor, *, k: int, backend: Backend, **_: Any) -> tuple[float, int]:
    return ksg_mi(x, z, k, backend=backend), 0


@MI_ESTIMATORS.register("gaussian", stochastic=False, uses_knn=False, description="joint-Gaussian fit (closed form)")
def _gaussian(x: torch.Tensor, z: torch.Tensor, *, shrinkage: str, **_: Any) -> tuple[float, int]:
    try:
        return gaussian_mi(x, z, shrinkage=shrinkage), 0  # type: ignore[arg-type]
    except ValueError as e:
        raise ConfigError(f"gaussian MI: {e}") from None


def as_samples(a: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    """``a`` as a 2-D float tensor: rows are samples, every other axis flattened; checked for NaN/inf.

    Raises:
        ConfigError: empty, 0-d, non-numeric, NaN or inf.
    """
    if isinstance(a, np.ndarray):
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
            raise ConfigError(f"{name}: expected a numeric array, got dtype {a.dtype}")
        a = torch.from_numpy(np.ascontiguousarray(a))
    if not isinstance(a, torch.Tensor):
        raise ConfigError(f"{name}: expected a tensor or NumPy array, got {type(a).__name__}")
    if a.ndim == 0 or a.shape[0] == 0:
        raise ConfigError(f"{name}: expected rows of samples, got shape {tuple(a.shape)}")
    t = a.reshape(a.shape[0], -1)
    if t.shape[1] == 0:
        raise ConfigError(f"{name}: rows have no values (shape {tuple(a.shape)})")
    if t.is_complex():
        raise ConfigError(f"{name}: complex values are not supported")
    if not t.is_floating_point():
        t = t.to(torch.float64)
    bad = ~torch.isfinite(t)
    if bad.any():
        rows = int(bad.any(dim=1).sum())
        raise ConfigError(f"{name}: {rows} row(s) contain NaN or inf; remove or impute them first")
    return t


def _ci95(values: list[float]) -> tuple[float, float] | None:
    if len(values) < 2:
        return None
    from scipy.stats import t as student_t

    m = float(np.mean(values))
    half = float(student_t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values)))
    return (m - half, m + half)


def estimate_mi(
    x: torch.Tensor | np.ndarray,
    z: torch.Tensor | np.ndarray,
    estimator: str = "ite-dkl",
    k: int = 3,
    repeats: int = 1,
    seed: int = 0,
    backend: Backend = "auto",
    *,
    jitter: float = 0.0,
    split: Literal["first-half", "random"] = "first-half",
    shrinkage: Literal["auto", "none", "ledoit-wolf"] = "auto",
    device: str | torch.device | None = "auto",
    options: dict[str, Any] | None = None,
) -> MIResult:
    """Estimate I(X; Z) in nats.

    Args:
        x: ``(N, …)`` samples of X (rows are samples; other axes are flattened).
        z: ``(N, …)`` samples of Z, row i paired with row i of ``x``.
        estimator: ``ite-dkl``, ``ksg`` or ``gaussian`` (see the module docstring).
        k: nearest neighbours of the kNN estimators (ITE's and the Shredder papers' default: 3).
        repeats: independent draws (``ite-dkl``: permutations; any estimator: jitter); the result is their mean
            with a 95 % interval.
        seed: seed of every random draw; the same seed gives the same number.
        backend: kNN backend: ``auto``, ``torch``, ``faiss`` or ``scipy``; all give the same numbers.
        jitter: standard deviation (data units) of seeded Gaussian noise added to every value before estimating,
            to break ties between duplicate rows (e.g. MNIST's constant zero pixels). 0 = off.
        split: ``ite-dkl`` only: ``first-half`` (ITE: the first ⌊N/2⌋ rows are the joint sample) or ``random``.
        shrinkage: ``gaussian`` only: covariance shrinkage (``auto`` = Ledoit–Wolf when N ≤ 2·d).
        device: where the torch backend and neural estimators compute: ``auto`` (CUDA when present), ``cpu`` …
        options: estimator-specific settings (e.g. ``{"epochs": 50}`` for a neural estimator); unknown keys are an
            error of that estimator.

    Raises:
        ConfigError: mismatched rows, too few rows for ``k``, NaN/inf, bad options, unknown estimator.
    """
    entry = MI_ESTIMATORS.entry(estimator)
    xs, zs = as_samples(x, "x"), as_samples(z, "z")
    n = xs.shape[0]
    if zs.shape[0] != n:
        raise ConfigError(f"x has {n} rows but z has {zs.shape[0]}; rows must be paired samples")
    if not isinstance(k, int) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    if repeats < 1:
        raise ConfigError(f"repeats must be ≥ 1, got {repeats}")
    if jitter < 0 or not math.isfinite(jitter):
        raise ConfigError(f"jitter must be ≥ 0, got {jitter}")
    if split not in ("first-half", "random"):
        raise ConfigError(f"split must be 'first-half' or 'random', got {split!r}")
    need = 2 * (k + 1) if estimator == "ite-dkl" else (k + 1 if entry.meta["uses_knn"] else 3)
    if n < need:
        raise ConfigError(f"{estimator} with k = {k} needs at least {need} rows, got {n}; lower k or add samples")
    from privlab.context import resolve_device

    dev = resolve_device("auto" if device is None else str(device))
    dims = (xs.shape[1], zs.shape[1])
    used_backend = resolve_backend(backend, sum(dims), dev) if entry.meta["uses_knn"] else None
    if used_backend != "torch" and not entry.meta.get("uses_device", False):
        dev = torch.device("cpu")
    xs, zs = xs.to(dev), zs.to(dev)
    t0 = time.perf_counter()
    values: list[float] = []
    n_zero = 0
    draws = repeats if (entry.meta["stochastic"] or jitter > 0) else 1
    for r in range(draws):
        g = torch.Generator().manual_seed(seed * 1_000_003 + r)
        xr, zr = xs, zs
        if jitter > 0:
            xr = xs + jitter * torch.randn(xs.shape, generator=g, dtype=xs.dtype).to(dev)
            zr = zs + jitter * torch.randn(zs.shape, generator=g, dtype=zs.dtype).to(dev)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value, zero = entry.obj(
                xr, zr, k=k, generator=g, backend=used_backend or "auto", split=split, shrinkage=shrinkage,
                device=dev, **(options or {}),
            )
        for w in caught:  # re-raise once per estimate, from the caller's frame
            if r == 0 or not issubclass(w.category, RuntimeWarning):
                warnings.warn(w.message, w.category, stacklevel=2)
        values.append(value)
        n_zero += zero
    return MIResult(
        nats=float(np.mean(values)),
        ci95=_ci95(values),
        estimator=entry.name,
        k=k,
        n=n,
        dims=dims,
        seconds=time.perf_counter() - t0,
        backend=used_backend,
        repeats=draws,
        seed=seed,
        jitter=jitter,
        values=values,
        zero_distance_rows=n_zero,
    )
