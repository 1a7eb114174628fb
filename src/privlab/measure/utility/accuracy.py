"""Accuracy of a classifier (a victim, an attacker's model) on given inputs, batched.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Identity()  # "logits" = the inputs: predicts the argmax column
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 3.0]])
    >>> classifier_accuracy(model, x, torch.tensor([0, 1, 0]))
    0.6666666666666666
    >>> predict_labels(model, x).tolist()
    [0, 1, 1]
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["classifier_accuracy", "predict_labels"]


@torch.no_grad()
def predict_labels(
    model: nn.Module, inputs: torch.Tensor, *, device: torch.device | str | None = None, batch_size: int = 1024
) -> torch.Tensor:
    """Predicted labels ``(N,)`` (int64, on the CPU): the argmax of ``model`` over ``inputs (N, …)`` in batches.

    ``device``: where to compute (None: where the model's first parameter or buffer lives, else the CPU). The
    model is used as it is (call ``eval()`` first).
    """
    if device is None:
        tensors = [*model.parameters(), *model.buffers()]
        device = tensors[0].device if tensors else "cpu"
    out = [model(inputs[i : i + batch_size].to(device)).argmax(1).cpu() for i in range(0, len(inputs), batch_size)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


@torch.no_grad()
def classifier_accuracy(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 512,
) -> float:
    """Fraction of ``labels (N,)`` that ``model`` predicts from ``inputs (N, …)`` (0.0 for N = 0).

    The model is moved to ``device`` and put in eval mode; batches go through it in order, so a stochastic layer
    (deployed noise) draws the same numbers as any other pass with the same seed and ``batch_size``.
    """
    model.to(device).eval()
    correct = 0
    for i in range(0, len(inputs), batch_size):
        x, y = inputs[i : i + batch_size].to(device), labels[i : i + batch_size].to(device)
        correct += int((model(x).argmax(1) == y).sum())
    return correct / max(len(inputs), 1)
