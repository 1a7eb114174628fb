"""Image priors added to the gradient-matching objective.

``total_variation`` is the anisotropic, mean-reduced TV of Inverting Gradients:
``mean|x[..., :, 1:] − x[..., :, :-1]| + mean|x[..., 1:, :] − x[..., :-1, :]|``.

Example:
    >>> import torch
    >>> x = torch.zeros(1, 1, 2, 2); x[..., 0, 0] = 1.0
    >>> float(total_variation(x))
    1.0
"""

from __future__ import annotations

import torch

__all__ = ["total_variation"]


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation of ``x`` (``N×C×H×W``), averaged over differences (not summed)."""
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().mean() if x.shape[-1] > 1 else x.new_zeros(())
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().mean() if x.shape[-2] > 1 else x.new_zeros(())
    return dx + dy
