"""ITE-compatible mutual information through a kNN estimate of KL(joint ‖ product of marginals).

This is ITE's ``MIShannon_DKL`` with its default ``BDKL_KnnK`` divergence (k = 3), the estimator behind the
Shredder papers' MI figures:

1. Split: the first ⌊N/2⌋ rows of ``y = [x, z]`` are samples of the joint ``y1``; the next ⌊N/2⌋ rows, with each
   subspace's rows permuted independently, are samples of the product of the marginals ``y2``.
2. Wang–Kulkarni–Verdú (2009) kNN divergence, with ρ_k(i) the Euclidean distance from ``y1_i`` to its k-th nearest
   neighbour in ``y1`` (itself excluded) and ν_k(i) the distance to its k-th nearest neighbour in ``y2``::

       D = d · mean_i log(ν_k(i) / ρ_k(i)) + log(N2 / (N1 − 1)),      d = d_x + d_z

The result is in nats. It is consistent but strongly biased when d is large relative to log N — compare numbers
only at the same n, k and dimensions, and see ``privlab mi calibrate`` (planned) for ground-truth checks.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from privlab.measure.functional.knn import Backend, knn_distances

__all__ = ["KLEstimate", "joint_and_product_split", "knn_kl_divergence"]


@dataclass(frozen=True)
class KLEstimate:
    """A kNN KL estimate (nats) and how many rows were left out for zero distances."""

    nats: float
    n_used: int
    n_zero: int


def joint_and_product_split(
    x: torch.Tensor, z: torch.Tensor, generator: torch.Generator, *, split: str = "first-half"
) -> tuple[torch.Tensor, torch.Tensor]:
    """ITE's ``joint_and_product_of_the_marginals_split`` for two subspaces.

    Args:
        x: ``(N, d_x)``; z: ``(N, d_z)``.
        generator: draws the permutations (and the split when ``split="random"``).
        split: ``first-half`` (ITE: rows ``[0, N/2)`` are joint, ``[N/2, 2⌊N/2⌋)`` become the product) or ``random``
            (rows are shuffled first, so repeated draws also re-draw which rows are joint).

    Returns:
        ``(y1, y2)``, each ``(⌊N/2⌋, d_x + d_z)``.
    """
    n = x.shape[0]
    half = n // 2
    order = torch.randperm(n, generator=generator) if split == "random" else torch.arange(n)
    joint, rest = order[:half], order[half : 2 * half]
    y1 = torch.cat([x[joint], z[joint]], dim=1)
    px = rest[torch.randperm(half, generator=generator)]
    pz = rest[torch.randperm(half, generator=generator)]
    y2 = torch.cat([x[px], z[pz]], dim=1)
    return y1, y2


def knn_kl_divergence(y1: torch.Tensor, y2: torch.Tensor, k: int = 3, *, backend: Backend = "auto") -> KLEstimate:
    """Wang–Kulkarni–Verdú kNN estimate of KL(p₁ ‖ p₂) in nats from samples ``y1 ~ p₁`` and ``y2 ~ p₂``.

    Rows whose ρ_k or ν_k is zero (duplicate points) would give ±inf; they are left out of the mean with a warning
    (use the ``jitter`` option of :func:`privlab.measure.mi.estimate_mi` to break ties instead).
    """
    n1, d = y1.shape
    n2 = y2.shape[0]
    rho = knn_distances(y1, None, k, backend=backend)[:, k - 1]
    nu = knn_distances(y1, y2, k, backend=backend)[:, k - 1]
    ok = (rho > 0) & (nu > 0)
    n_zero = int((~ok).sum())
    if n_zero == n1:
        raise ValueError("every point has a zero k-NN distance (all rows duplicated); add jitter")
    if n_zero:
        warnings.warn(
            f"{n_zero} of {n1} points have a zero {k}-NN distance (duplicate rows); they are left out of the "
            "estimate. Pass jitter (e.g. 1e-6 in data units) to break ties instead.",
            RuntimeWarning,
            stacklevel=3,
        )
    log_ratio = torch.log(nu[ok] / rho[ok]).mean().item()
    return KLEstimate(d * log_ratio + math.log(n2 / (n1 - 1)), int(ok.sum()), n_zero)
