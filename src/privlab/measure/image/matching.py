"""Pairing a batch of reconstructions with its originals, and recovered labels with the true ones.

An inversion attack returns its reconstructions (and a multiset of labels) in an order of its own. Before any
per-image metric, :func:`match_reconstructions` finds the order of the reconstructions that minimises the summed
per-pair MSE (Hungarian assignment, :func:`scipy.optimize.linear_sum_assignment`), and :func:`align_labels` assigns
recovered labels to images so that as many as possible agree with the true labels.

Example:
    >>> import torch
    >>> x = torch.stack([torch.zeros(1, 2, 2), torch.ones(1, 2, 2)])
    >>> match_reconstructions(x, x.flip(0)).tolist()
    [1, 0]
    >>> align_labels(torch.tensor([3, 1]), torch.tensor([1, 2])).tolist()
    [1, 3]
"""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment

__all__ = ["align_labels", "match_reconstructions"]


def match_reconstructions(x: torch.Tensor, rec: torch.Tensor) -> torch.Tensor:
    """Order of ``rec`` (``N×…``) that best matches ``x`` (``N×…``): Hungarian on per-pair MSE; indices ``[N]``."""
    if len(x) == 1:
        return torch.zeros(1, dtype=torch.long)
    cost = ((x[:, None] - rec[None]) ** 2).flatten(2).mean(2)
    _, cols = linear_sum_assignment(cost.numpy())
    return torch.as_tensor(cols, dtype=torch.long)


def align_labels(recovered: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Recovered labels (a multiset, order unknown) assigned to the images so that as many as possible agree.

    Labels equal to a true label go to that image; the rest fill the other images in order (−1 when none is left).
    """
    out = torch.full_like(true, -1)
    pool = recovered.tolist()
    for i, t in enumerate(true.tolist()):
        if t in pool:
            pool.remove(t)
            out[i] = t
    rest = iter(pool)
    for i in range(len(out)):
        if out[i] < 0:
            out[i] = next(rest, -1)
    return out
