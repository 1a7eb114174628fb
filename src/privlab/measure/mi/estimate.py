"""Mutual-information estimation: one entry point, several estimators, seeded repeats and confidence intervals.

Estimators (:data:`MI_ESTIMATORS`, all in nats):

- ``ite-dkl`` — ITE's ``MIShannon_DKL`` (kNN KL between the joint and the product of marginals, k = 3 by default),
  the estimator of the Shredder papers; stochastic (a permutation), so ``repeats`` re-draw it.
- ``ksg`` — Kraskov–Stögbauer–Grassberger estimator 1 (max-norm); deterministic.
- ``gaussian`` — closed form under a joint-Gaussian fit (Ledoit–Wolf shrinkage when n is small); deterministic.
- ``gaussian-copula`` — the Gaussian closed form on normal scores (Ince et al. 2017); exact for any elementwise
  monotone transform of Gaussian data, a lower bound for one-dimensional X and Z.
- ``auto`` — a documented rule over the estimators above, from n and the dimensions only (see :func:`_auto`).
- ``infonce``, ``nwj``, ``mine``, ``smile`` — neural variational lower bounds (:mod:`privlab.measure.mi.neural`).

kNN estimators are badly biased when the dimension is large for the number of samples: compare values at the same
n, k and dimensions (e.g. clean vs noisy activations), not against the true MI. Every :class:`MIResult` carries
``diagnostics``: warnings (dimension high for n, estimators disagreeing) and the chosen estimator's calibration
error on ground-truth tasks of similar n and dimension (:mod:`privlab.measure.mi.tasks`).

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
from privlab.measure.functional.preprocess import Preprocess, copula_normalize, preprocess_pair
from privlab.measure.mi.calibration_table import calibration_line
from privlab.registry import Registry

__all__ = ["MI_ESTIMATORS", "MIResult", "MIWarning", "as_samples", "diagnose_result", "estimate_mi"]

LOG2 = math.log(2.0)


@dataclass
class MIResult:
    """An MI estimate.

    Attributes:
        nats: the estimate (mean over repeats), in nats. ``bits`` is the same in bits.
        ci95: 95 % confidence interval of the mean over repeats (Student t), or None with one repeat or a
            deterministic estimator; ``ci95_note`` then says why.
        estimator, k, n, dims: what was estimated: estimator name, neighbours, samples, ``(d_x, d_z)``.
        seconds: wall time of the whole estimate.
        backend: kNN backend used (None for ``gaussian``).
        values: the estimate of each repeat, nats.
        zero_distance_rows: rows left out for zero kNN distances (summed over repeats).
        preprocess: what was done to the samples first (``none``, ``standardize``, ``copula``, ``pca …``).
        details: estimator-specific facts (``auto``: the rule applied, each candidate's value, the one chosen).
        diagnostics: ``warnings`` (list of str), ``reference`` (the cheap gaussian-copula value, when computed),
            ``calibration`` (this estimator's error on ground-truth tasks of similar n and dimension, or None).
        ci95_note: why ``ci95`` is None (one repeat asked for; or a deterministic estimator without ``jitter``,
            whose repeats would all give the same number, so one draw was computed); None when there is an interval.
        repeats_requested: the ``repeats`` asked for (``repeats`` is the number of draws actually computed).
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
    preprocess: str = "none"
    details: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    unit: str = "nats"
    ci95_note: str | None = None
    repeats_requested: int = 1

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
    "ite-dkl",
    unit="nats",
    kind="privacy",
    stochastic=True,
    uses_knn=True,
    description="ITE MIShannon_DKL: kNN KL(joint‖product)",
)
def _ite_dkl(
    x: torch.Tensor, z: torch.Tensor, *, k: int, generator: torch.Generator, backend: Backend, split: str, **_: Any
) -> tuple[float, int]:
    y1, y2 = joint_and_product_split(x, z, generator, split=split)
    est = knn_kl_divergence(y1, y2, k, backend=backend)
    return est.nats, est.n_zero


@MI_ESTIMATORS.register(
    "ksg",
    unit="nats",
    kind="privacy",
    stochastic=False,
    uses_knn=True,
    description="Kraskov–Stögbauer–Grassberger estimator 1",
)
def _ksg(x: torch.Tensor, z: torch.Tensor, *, k: int, backend: Backend, **_: Any) -> tuple[float, int]:
    return ksg_mi(x, z, k, backend=backend), 0


@MI_ESTIMATORS.register(
    "gaussian",
    unit="nats",
    kind="privacy",
    stochastic=False,
    uses_knn=False,
    description="joint-Gaussian fit (closed form)",
)
def _gaussian(x: torch.Tensor, z: torch.Tensor, *, shrinkage: str, **_: Any) -> tuple[float, int]:
    try:
        return gaussian_mi(x, z, shrinkage=shrinkage), 0  # type: ignore[arg-type]
    except ValueError as e:
        raise ConfigError(f"gaussian MI: {e}") from None


@MI_ESTIMATORS.register(
    "gaussian-copula",
    unit="nats",
    kind="privacy",
    stochastic=False,
    uses_knn=False,
    description="Gaussian fit on normal scores (GCMI)",
)
def _gaussian_copula(x: torch.Tensor, z: torch.Tensor, *, shrinkage: str, **_: Any) -> tuple[float, int]:
    return _gaussian(copula_normalize(x), copula_normalize(z), shrinkage=shrinkage)


def _gaussian_or_shrunk(x: torch.Tensor, z: torch.Tensor, shrinkage: str, notes: list[str], label: str) -> float:
    """Gaussian MI; when the covariance is singular (collinear columns), Ledoit–Wolf shrinkage, noted in ``notes``."""
    try:
        return gaussian_mi(x, z, shrinkage=shrinkage)  # type: ignore[arg-type]
    except ValueError:
        notes.append(f"{label}: covariance singular (collinear columns); Ledoit–Wolf shrinkage used")
        return gaussian_mi(x, z, shrinkage="ledoit-wolf")


AUTO_KSG_MAX_DIM = 20


@MI_ESTIMATORS.register(
    "auto",
    unit="nats",
    kind="privacy",
    stochastic=False,
    uses_knn=False,
    description="rule over ksg / gaussian / copula",
)
def _auto(x: torch.Tensor, z: torch.Tensor, *, k: int, shrinkage: str, **_: Any) -> tuple[float, int, dict[str, Any]]:
    """The ``auto`` rule. It looks only at the dimensions, never at a known answer.

    Every candidate below tends to *under*-estimate in its failure mode (KSG in high dimension, the Gaussian
    forms on dependence that is not linear after the copula transform), so the rule takes the largest:

    - d_x + d_z ≤ 20: max(gaussian-copula, KSG on normal scores). KSG covers non-Gaussian dependence in low
      dimension; the copula form covers Gaussian-like dependence that KSG underestimates.
    - d_x + d_z > 20: max(gaussian-copula, gaussian). kNN estimates collapse there; the two closed forms are exact
      for Gaussian and Gaussian-copula data and remain meaningful linear-dependence figures otherwise.
    """
    d = x.shape[1] + z.shape[1]
    notes: list[str] = []
    xc, zc = copula_normalize(x), copula_normalize(z)
    cands: dict[str, float] = {"gaussian-copula": _gaussian_or_shrunk(xc, zc, shrinkage, notes, "gaussian-copula")}
    if d <= AUTO_KSG_MAX_DIM:
        rule = f"d_x + d_z = {d} ≤ {AUTO_KSG_MAX_DIM}: max(gaussian-copula, ksg on normal scores)"
        cands["ksg (copula)"] = ksg_mi(xc, zc, k, backend="auto")
    else:
        rule = f"d_x + d_z = {d} > {AUTO_KSG_MAX_DIM}: max(gaussian-copula, gaussian)"
        cands["gaussian"] = _gaussian_or_shrunk(x, z, shrinkage, notes, "gaussian")
    chosen = max(cands, key=cands.__getitem__)
    return cands[chosen], 0, {"rule": rule, "candidates": cands, "chosen": chosen, "notes": notes}


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
    preprocess: Preprocess = "none",
    pca_dims: int | None = None,
    diagnose: bool = True,
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
        preprocess: ``none``, ``standardize``, ``copula``, ``pca`` or ``whiten`` (see
            :mod:`privlab.measure.functional.preprocess`); ``pca``/``whiten`` keep ``pca_dims`` per side (default 32)
            and give a lower bound. The result's ``preprocess`` says what was done.
        diagnose: compute ``diagnostics`` (a cheap gaussian-copula reference up to 256 dimensions on at most
            5 000 rows, warnings, calibration line).
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
    if preprocess not in ("none", "standardize", "copula", "pca", "whiten"):
        raise ConfigError(f"preprocess must be none, standardize, copula, pca or whiten, got {preprocess!r}")
    if pca_dims is not None and pca_dims < 1:
        raise ConfigError(f"pca_dims must be ≥ 1, got {pca_dims}")
    if options and not entry.meta.get("uses_device", False):
        raise ConfigError(f"estimator {estimator!r} takes no options, got {sorted(options)}")
    if split not in ("first-half", "random"):
        raise ConfigError(f"split must be 'first-half' or 'random', got {split!r}")
    need = 2 * (k + 1) if estimator == "ite-dkl" else (k + 1 if entry.meta["uses_knn"] else 3)
    if n < need:
        raise ConfigError(f"{estimator} with k = {k} needs at least {need} rows, got {n}; lower k or add samples")
    from privlab.context import resolve_device

    dev = resolve_device("auto" if device is None else str(device))
    xs, zs, prep_label = preprocess_pair(xs, zs, preprocess, dims=pca_dims)
    dims = (xs.shape[1], zs.shape[1])
    used_backend = resolve_backend(backend, sum(dims), dev) if entry.meta["uses_knn"] else None
    if used_backend != "torch" and not entry.meta.get("uses_device", False):
        dev = torch.device("cpu")
    xs, zs = xs.to(dev), zs.to(dev)
    t0 = time.perf_counter()
    values: list[float] = []
    details: dict[str, Any] = {}
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
            out = entry.obj(
                xr,
                zr,
                k=k,
                generator=g,
                backend=used_backend or "auto",
                split=split,
                shrinkage=shrinkage,
                device=dev,
                **(options or {}),
            )
        value, zero = out[0], out[1]
        if len(out) > 2 and r == 0:
            details = dict(out[2])
        for w in caught:  # re-raise once per estimate, from the caller's frame
            if r == 0 or not issubclass(w.category, RuntimeWarning):
                warnings.warn(w.message, w.category, stacklevel=2)
        values.append(value)
        n_zero += zero
    result = MIResult(
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
        preprocess=prep_label,
        details=details,
        repeats_requested=repeats,
    )
    if result.ci95 is None:
        result.ci95_note = (
            f"no 95 % interval: {entry.name} is deterministic, so {repeats} repeats of the same data give the same "
            "value and one draw was computed; add jitter (--jitter 1e-6) to draw independent noisy copies"
            + (", or use ite-dkl (a random permutation per repeat)" if entry.name != "ite-dkl" else "")
            if repeats > 1
            else "no 95 % interval with one repeat; ask for --repeats 2 or more"
        )
    if diagnose:
        result.diagnostics = diagnose_result(result, xs, zs, shrinkage=shrinkage)
        for w in result.diagnostics["warnings"]:
            warnings.warn(w, MIWarning, stacklevel=2)
    return result


class MIWarning(UserWarning):
    """A diagnostic about the trustworthiness of an MI estimate (high dimension, estimators disagreeing)."""


REFERENCE_MAX_DIM = 256  # the reference must stay cheap next to the estimate
REFERENCE_MAX_ROWS = 5000
KNN_TRUST_DIM = 4  # KSG/ite-dkl within ~0.05 nats of the truth only up to about 2 + 2 dimensions (docs/mi.md)


def diagnose_result(result: MIResult, x: torch.Tensor, z: torch.Tensor, *, shrinkage: str = "auto") -> dict[str, Any]:
    """Warnings, a cheap reference estimate and the calibration line for ``result`` (see :class:`MIResult`)."""
    d = sum(result.dims)
    warns: list[str] = []
    if result.estimator in ("ite-dkl", "ksg") and d > KNN_TRUST_DIM:
        warns.append(
            f"{result.estimator} in {d} dimensions: kNN MI estimates are biased low beyond ~{KNN_TRUST_DIM} dimensions "
            f"(see docs/mi.md); compare values only at the same n, k and dimensions, or use estimator='auto'"
        )
    if result.n < 10 * d:
        warns.append(f"n = {result.n} samples for {d} dimensions (< 10 per dimension): every estimator is unreliable")
    reference = None
    if result.estimator not in ("gaussian-copula", "auto") and d <= REFERENCE_MAX_DIM and result.n > d + 2:
        ref_notes: list[str] = []
        rows = torch.arange(result.n)
        if result.n > REFERENCE_MAX_ROWS:  # a fixed subsample keeps the reference cheap
            rows = torch.randperm(result.n, generator=torch.Generator().manual_seed(0))[:REFERENCE_MAX_ROWS]
        xr, zr = copula_normalize(x[rows].cpu()), copula_normalize(z[rows].cpu())
        reference = _gaussian_or_shrunk(xr, zr, shrinkage, ref_notes, "")
    spread_vals = list(result.details.get("candidates", {}).values())
    if reference is not None:
        spread_vals = [result.nats, reference]
    if len(spread_vals) >= 2:
        spread = max(spread_vals) - min(spread_vals)
        if spread > max(0.1, 0.1 * abs(result.nats)):
            names = ", ".join(f"{k} {v:.3g}" for k, v in result.details.get("candidates", {}).items()) or (
                f"{result.estimator} {result.nats:.3g}, gaussian-copula reference {reference:.3g}"
            )
            warns.append(f"estimators disagree by {spread:.3g} nats ({names}): treat the figure as uncertain")
    return {"warnings": warns, "reference": reference, "calibration": calibration_line(result.estimator, result.n, d)}
