"""Label recovery from the gradient of the last (classification) layer.

For cross-entropy after a softmax, the gradient of the logits of image ``i`` is ``p_i − y_i``: negative only at the
true label. With a bias, the bias gradient of a batch is ``s/B · Σ_i (p_i − y_i)`` (``s`` the loss scale), and the
weight gradient's row ``j`` is ``s/B · Σ_i (p_ij − y_ij) h_i`` with ``h_i`` the penultimate features.

- :func:`idlg_label` — iDLG (Zhao et al. 2020), one image: the label is the row whose gradient is negative. With
  non-negative features (ReLU / sigmoid) the row sum of the weight gradient is negative only there; with a bias the
  bias gradient is used (no assumption on the features).
- :func:`batch_labels` — a batch of ``B`` images, labels may repeat ("label counts"). From the bias gradient
  ``g_j = s/B · Σ_i (p_ij − y_ij)``: ``count_j = Σ_i y_ij = B·(p̄_j − g_j/s)`` with ``p̄_j`` the batch's mean softmax
  probability of class ``j``, which the attacker estimates as the model's mean prediction on random dummy images
  (it knows the model); the real-valued counts are rounded to integers adding up to ``B`` by largest remainders.
  This is the count estimate of Geng et al. 2021 ("Towards General Deep Leakage in Federated Learning",
  arXiv:2110.09074; also Wainakh et al., "User-Level Label Leakage from Gradients in Federated Learning", PoPETs
  2022, "LLG"). Without a bias (or without an estimate of ``p̄``) the present classes are those with a negative
  bias / weight-row-sum gradient (the sign rule of iDLG applied per class) and the counts are split by the
  magnitudes ``p̄ − g_j/s`` with ``p̄`` taken from the absent classes (each present class keeps ≥ 1). Exact for an
  untrained model (near-uniform predictions: tests recover batches of 4 and 8 with repeated labels); an estimate for
  a trained one. Not implemented: iLRG (Ma et al., ICLR 2023), which solves a linear system of the last layer's
  gradient and embeddings per instance.

Example:
    >>> import torch
    >>> g_bias = torch.tensor([0.1, -0.9, 0.8])   # softmax(p) − onehot(1)
    >>> idlg_label(g_bias, None)
    1
"""

from __future__ import annotations

import torch

from privlab.errors import ConfigError

__all__ = ["batch_labels", "idlg_label", "last_layer_signal"]


def last_layer_signal(weight_grad: torch.Tensor | None, bias_grad: torch.Tensor | None) -> torch.Tensor:
    """One value per class that is negative for present labels: the bias gradient if there is one, else the row sums
    of the last weight gradient (``K×F`` → ``K``)."""
    if bias_grad is not None:
        return bias_grad.detach().flatten().float()
    if weight_grad is None:
        raise ConfigError("label recovery needs the gradient of the last linear layer (weight or bias)")
    return weight_grad.detach().flatten(1).sum(1).float()


def idlg_label(bias_grad: torch.Tensor | None, weight_grad: torch.Tensor | None) -> int:
    """The label of a single image from the last layer's gradient (iDLG): the index of the most negative entry."""
    return int(last_layer_signal(weight_grad, bias_grad).argmin())


def batch_labels(
    bias_grad: torch.Tensor | None,
    weight_grad: torch.Tensor | None,
    batch_size: int,
    *,
    loss_scale: float = 1.0,
    mean_probs: torch.Tensor | None = None,
) -> torch.Tensor:
    """Labels of a batch of ``batch_size`` images (order arbitrary, repeats allowed) from the last layer's gradient.

    Args:
        bias_grad: gradient of the last layer's bias (``K``), or None.
        weight_grad: gradient of the last layer's weight (``K×F``), used when there is no bias.
        batch_size: ``B``, known to the attacker.
        loss_scale: factor on the mean cross-entropy the client used (SemSim's victims use 0.5).
        mean_probs: the attacker's estimate of the batch's mean softmax output (``K``), e.g. the model's mean
            prediction on dummy images; with a bias gradient the counts are then ``B·(p̄_j − g_j/s)`` rounded
            (largest remainder). Without it, ``p̄`` is taken from the labels whose gradient is positive.

    Returns:
        int64 tensor of ``B`` labels, sorted.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be ≥ 1, got {batch_size}")
    g = last_layer_signal(weight_grad, bias_grad) / float(loss_scale)
    k = g.numel()
    if mean_probs is not None and bias_grad is not None:
        est = (batch_size * (mean_probs.detach().flatten().float().cpu() - g.cpu())).clamp_min(0)
        return torch.repeat_interleave(torch.arange(k), _apportion(est, batch_size, minimum=0)).long()
    present = (g < 0).nonzero().flatten()
    if len(present) == 0:
        present = g.argmin().view(1)
    if len(present) >= batch_size:
        chosen = present[g[present].argsort()[:batch_size]]
        return chosen.sort().values.long()
    absent = torch.ones(k, dtype=torch.bool)
    absent[present] = False
    # mean softmax probability of a label: for an absent label g_j = p̄_j exactly (bias case)
    p_bar = g[absent].clamp_min(0).mean() if absent.any() else g.new_tensor(0.0)
    est = (batch_size * (p_bar - g[present])).clamp_min(1.0)
    est = est * (batch_size / est.sum())  # the counts must add up to B
    counts = _apportion(est, batch_size, minimum=1)  # a present label keeps at least one image
    return torch.repeat_interleave(present, counts).sort().values.long()


def _apportion(est: torch.Tensor, total: int, *, minimum: int) -> torch.Tensor:
    """Integer counts, each ≥ ``minimum``, adding up to ``total``, rounded from ``est`` by largest remainders."""
    counts = est.floor().long().clamp_min(minimum)
    while counts.sum() > total:  # take from the count furthest above its estimate
        i = int(torch.where(counts > minimum, est - counts, torch.full_like(est, float("inf"))).argmin())
        counts[i] -= 1
    while counts.sum() < total:  # give to the count furthest below its estimate
        counts[int((est - counts).argmax())] += 1
    return counts
