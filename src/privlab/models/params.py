"""A model's trainable parameters as flat coordinates (the order DP-SGD's gradient canaries and audits use)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["flat_parameters", "trainable_parameters"]


def trainable_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """``(name, parameter)`` of every parameter that requires a gradient, in ``named_parameters`` order: the order
    of the flat coordinates of :func:`flat_parameters` (and of DP-SGD's ``dirac_canaries``)."""
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def flat_parameters(model: nn.Module) -> torch.Tensor:
    """The trainable parameters of ``model`` as one flat float tensor (detached, on the CPU), length = their total
    number of entries, in :func:`trainable_parameters` order."""
    return torch.cat([p.detach().reshape(-1).cpu() for _, p in trainable_parameters(model)])
