"""Kraskov–Stögbauer–Grassberger (2004) mutual-information estimator 1, in nats.

With the max-norm in every space, ε_i = the joint distance ``max(‖x_i − x_j‖∞, ‖z_i − z_j‖∞)`` to the k-th
nearest neighbour of point i, and n_x(i), n_z(i) the numbers of other points strictly within ε_i in each marginal::

    I = ψ(k) + ψ(N) − mean_i [ψ(n_x(i) + 1) + ψ(n_z(i) + 1)]

Good in low dimension; it underestimates large MI and collapses towards 0 in high dimension.
"""

from __future__ import annotations

import warnings

import torch
from scipy.special import digamma

from privlab.measure.functional.knn import Backend, count_within, knn_distances

__all__ = ["ksg_mi"]


def ksg_mi(x: torch.Tensor, z: torch.Tensor, k: int = 3, *, backend: Backend = "auto") -> float:
    """KSG estimator 1 of I(X; Z) in nats for ``x (N, d_x)`` and ``z (N, d_z)`` (rows are paired samples)."""
    n = x.shape[0]
    x64, z64 = x.to(torch.float64), z.to(torch.float64)
    joint = torch.cat([x64, z64], dim=1)
    eps = knn_distances(joint, None, k, metric="chebyshev", backend=backend)[:, k - 1]
    n_zero = int((eps == 0).sum())
    if n_zero:
        warnings.warn(
            f"{n_zero} of {n} points have a zero {k}-NN distance (duplicate rows); KSG counts nothing around them, "
            "which biases the estimate. Pass jitter (e.g. 1e-6 in data units) to break ties.",
            RuntimeWarning,
            stacklevel=3,
        )
    nx = count_within(x64, eps, metric="chebyshev", backend=backend).numpy()
    nz = count_within(z64, eps, metric="chebyshev", backend=backend).numpy()
    return float(digamma(k) + digamma(n) - (digamma(nx + 1) + digamma(nz + 1)).mean())
