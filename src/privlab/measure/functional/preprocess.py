"""Transforms applied to samples before estimating MI, each labelled in the result as what it is.

- ``standardize``: z-score every column (kNN estimators are not scale-invariant; MI is). MI is unchanged.
- ``copula``: replace every column by its normal scores Φ⁻¹(rank / (n + 1)) (ties get their average rank).
  Invertible per column up to ties, so MI is unchanged in the limit; it makes marginals Gaussian.
- ``pca``: project each side on its top principal components (``dims`` per side). This **lowers** MI (data
  processing inequality) unless the dropped directions carry no information: a lower bound, labelled so.
- ``whiten``: PCA followed by scaling every component to unit variance (same caveat as ``pca``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

__all__ = ["Preprocess", "copula_normalize", "preprocess_pair"]

Preprocess = Literal["none", "standardize", "copula", "pca", "whiten"]


def copula_normalize(a: torch.Tensor) -> torch.Tensor:
    """Column-wise normal scores of ``a (n, d)``: Φ⁻¹(rank / (n + 1)), float64."""
    from scipy.special import ndtri
    from scipy.stats import rankdata

    arr = a.detach().cpu().numpy()
    ranks = rankdata(arr, axis=0, method="average")
    return torch.from_numpy(ndtri(ranks / (arr.shape[0] + 1))).to(a.device)


def _standardize(a: torch.Tensor) -> torch.Tensor:
    a = a.to(torch.float64)
    sd = a.std(dim=0, keepdim=True)
    return (a - a.mean(dim=0, keepdim=True)) / torch.where(sd > 0, sd, torch.ones_like(sd))


def _pca(a: torch.Tensor, dims: int, whiten: bool) -> torch.Tensor:
    a = a.to(torch.float64)
    centred = a - a.mean(dim=0, keepdim=True)
    q = min(dims, *centred.shape)
    # economy SVD of the (n, d) matrix: components are the right singular vectors
    u, s, _ = torch.linalg.svd(centred, full_matrices=False)
    scores = u[:, :q] * s[:q]
    if whiten:
        scores = scores / (s[:q] / np.sqrt(max(1, a.shape[0] - 1))).clamp_min(1e-12)
    return scores


def preprocess_pair(
    x: torch.Tensor, z: torch.Tensor, method: Preprocess = "none", *, dims: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Apply ``method`` to each side; returns ``(x', z', label)`` where label says what was done (for the result)."""
    if method == "none":
        return x, z, "none"
    if method == "standardize":
        return _standardize(x), _standardize(z), "standardize"
    if method == "copula":
        return copula_normalize(x), copula_normalize(z), "copula (normal scores)"
    if method in ("pca", "whiten"):
        q = dims or 32
        xp, zp = _pca(x, q, method == "whiten"), _pca(z, q, method == "whiten")
        return xp, zp, f"{method} to {xp.shape[1]}+{zp.shape[1]} dims (lower bound: dimensions were dropped)"
    raise ValueError(f"unknown preprocess {method!r}")
