"""Mutual information of a joint-Gaussian fit, in nats: a cheap closed-form reference.

``I = ½ (log det Σ_x + log det Σ_z − log det Σ)`` with Σ the covariance of ``[x, z]``. It is exact for jointly
Gaussian data and a lower bound of the MI of any distribution with the same covariance.

The plug-in value is biased upwards by about ``d_x·d_z / (2n)`` nats. Without shrinkage each log-determinant is
corrected by its exact expectation under a Wishart law, ``E[log det S] = log det Σ + Σ_{i=1..p} ψ((n−i)/2)
+ p·log(2/(n−1))``, which removes that bias for Gaussian data. With few samples for the dimension (n ≤ 2·d) the
covariance is singular; Ledoit–Wolf shrinkage of the joint covariance makes it invertible, the marginal covariances
are its diagonal blocks (so the estimate cannot be negative), and no Wishart correction applies.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

__all__ = ["gaussian_mi"]


def _covariance(y: np.ndarray, shrink: bool) -> np.ndarray:
    if shrink:
        from sklearn.covariance import LedoitWolf

        return LedoitWolf(assume_centered=False).fit(y).covariance_
    return np.atleast_2d(np.cov(y, rowvar=False))


def _wishart_logdet_bias(p: int, n: int) -> float:
    """``E[log det S] − log det Σ`` for the sample covariance S (ddof 1) of n Gaussian draws in p dimensions."""
    from scipy.special import digamma

    i = np.arange(1, p + 1)
    return float(digamma((n - i) / 2.0).sum() + p * np.log(2.0 / (n - 1)))


def _logdet(c: np.ndarray) -> float:
    sign, val = np.linalg.slogdet(c)
    if sign <= 0:
        raise ValueError("covariance is singular (constant or collinear columns); use shrinkage='ledoit-wolf'")
    return float(val)


def gaussian_mi(
    x: torch.Tensor, z: torch.Tensor, *, shrinkage: Literal["auto", "none", "ledoit-wolf"] = "auto"
) -> float:
    """I(X; Z) in nats under a joint-Gaussian fit of ``x (N, d_x)`` and ``z (N, d_z)``.

    Args:
        shrinkage: ``auto`` shrinks (Ledoit–Wolf) when n ≤ 2·(d_x + d_z), ``none`` never, ``ledoit-wolf`` always.
            With shrinkage the marginal covariances are the blocks of the one shrunk joint covariance.

    Constant columns are dropped first (they carry no information); if a side has none left, the result is 0.
    """
    xn, zn = x.to(torch.float64).cpu().numpy(), z.to(torch.float64).cpu().numpy()
    # Constant columns carry no information: dropping them leaves the MI unchanged and avoids a singular covariance.
    xn, zn = xn[:, xn.std(axis=0) > 0], zn[:, zn.std(axis=0) > 0]
    if xn.shape[1] == 0 or zn.shape[1] == 0:
        return 0.0
    n, d = xn.shape[0], xn.shape[1] + zn.shape[1]
    shrink = shrinkage == "ledoit-wolf" or (shrinkage == "auto" and n <= 2 * d)
    joint = np.concatenate([xn, zn], axis=1)
    dx, dz = xn.shape[1], zn.shape[1]
    if shrink:
        # One shrunk joint covariance, marginals as its diagonal blocks: the estimate is then ≥ 0 (Fischer's
        # inequality). Shrinking the three covariances separately gives them different intensities and can make the
        # "MI" negative by tens of nats in high dimension.
        c = _covariance(joint, True)
        return max(0.0, 0.5 * (_logdet(c[:dx, :dx]) + _logdet(c[dx:, dx:]) - _logdet(c)))
    plug_in = 0.5 * (
        _logdet(_covariance(xn, False)) + _logdet(_covariance(zn, False)) - _logdet(_covariance(joint, False))
    )
    return plug_in - 0.5 * (
        _wishart_logdet_bias(dx, n) + _wishart_logdet_bias(dz, n) - _wishart_logdet_bias(dx + dz, n)
    )
