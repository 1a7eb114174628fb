"""The federated client: what it shares for a batch (gradient or model update) — used by the defences on the
client side and, differentiably, by the gradient-inversion attacker (which imports it from here).

``client_update`` computes what a client sends for a batch ``(x, y)``:

- ``fedsgd``: the gradient ``∇_θ s·CE(f_θ(x), y)`` of the mean cross-entropy (``s`` the loss scale: SemSim's victims
  use ``0.5``) over all trainable parameters, in ``model.parameters()`` order;
- ``fedavg``: ``local_steps`` epochs of plain SGD (learning rate ``local_lr``) over mini-batches of
  ``local_batch_size`` in order, and the update ``θ₀ − θ_T`` (same sign convention as a gradient).

The attacker calls the same function on dummy data with ``create_graph=True`` (and soft labels for DLG), so the
gradient of the matching objective flows back to the dummy images through the unrolled local steps.

Example:
    >>> import torch
    >>> from torch import nn
    >>> m = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> x, y = torch.rand(2, 1, 2, 2), torch.tensor([0, 2])
    >>> g = client_update(m, x, y, ThreatModel())
    >>> [tuple(t.shape) for t in g]
    [(3, 4), (3,)]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.func import functional_call, grad, vmap

from privlab.config import Spec

__all__ = [
    "GradientFn",
    "ThreatModel",
    "client_update",
    "functional_update",
    "loss_on",
    "per_example_gradients",
    "trainable",
]


class ThreatModel(Spec):
    """What the client shares and how it was computed (known to the attacker: honest-but-curious server)."""

    kind: Literal["fedsgd", "fedavg"] = Field(default="fedsgd", description="one gradient, or a multi-step update")
    local_steps: int = Field(default=1, ge=1, description="fedavg: local epochs over the batch")
    local_lr: float = Field(default=1e-4, gt=0, description="fedavg: the client's SGD learning rate")
    local_batch_size: int | None = Field(default=None, ge=1, description="fedavg: mini-batch size (None = whole batch)")
    loss_scale: float = Field(default=1.0, gt=0, description="factor on the mean cross-entropy (SemSim: 0.5)")


def trainable(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's trainable parameters by name, in ``model.parameters()`` order."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def loss_on(logits: torch.Tensor, y: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Mean cross-entropy times ``scale``; ``y`` is int64 labels ``N`` or soft label probabilities ``N×K``."""
    if y.is_floating_point():
        return scale * -(y * F.log_softmax(logits, dim=1)).sum(1).mean()
    return scale * F.cross_entropy(logits, y)


# (model, params by name, x, y, loss scale, create_graph) -> one gradient per parameter
GradientFn = Callable[[nn.Module, dict[str, torch.Tensor], torch.Tensor, torch.Tensor, float, bool], list[torch.Tensor]]


def _plain_gradient(
    model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, scale: float, create: bool
) -> list[torch.Tensor]:
    loss = loss_on(functional_call(model, params, (x,)), y, scale)
    return list(torch.autograd.grad(loss, list(params.values()), create_graph=create))


def client_update(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel,
    *,
    create_graph: bool = False,
    gradient_fn: GradientFn | None = None,
) -> list[torch.Tensor]:
    """What a client shares for the batch ``(x, y)`` (see the module docstring).

    Args:
        model: the global model (eval mode; its parameters are not changed).
        x: images ``N×C×H×W`` in [0, 1] (the model normalises inside).
        y: int64 labels ``N`` or soft labels ``N×K``.
        threat: fedsgd / fedavg settings.
        create_graph: keep the graph so the result can be differentiated w.r.t. ``x`` / ``y`` (the attacker's side).
        gradient_fn: how one local step's gradient is computed (e.g. DP-SGD's clipped per-example sum); default
            the plain mean-loss gradient.

    Returns:
        One tensor per trainable parameter (``model.parameters()`` order).
    """
    grad_fn = gradient_fn or _plain_gradient
    params = trainable(model)
    if threat.kind == "fedsgd":
        if gradient_fn is None:  # the model's own parameters: no functional_call needed (cheaper on small nets)
            loss = loss_on(model(x), y, threat.loss_scale)
            return list(torch.autograd.grad(loss, list(params.values()), create_graph=create_graph))
        return grad_fn(model, params, x, y, threat.loss_scale, create_graph)
    start = params if create_graph else {n: p.detach().clone().requires_grad_(True) for n, p in params.items()}
    current = dict(start)
    bs = threat.local_batch_size or len(x)
    for _ in range(threat.local_steps):
        for i in range(0, len(x), bs):
            grads = grad_fn(model, current, x[i : i + bs], y[i : i + bs], threat.loss_scale, create_graph)
            current = {n: p - threat.local_lr * g for (n, p), g in zip(current.items(), grads, strict=True)}
            if not create_graph:
                current = {n: p.detach().requires_grad_(True) for n, p in current.items()}
    return [(start[n] - current[n]) if create_graph else (start[n] - current[n]).detach() for n in params]


def functional_update(
    model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, threat: ThreatModel
) -> list[torch.Tensor]:
    """:func:`client_update` (plain gradient) written with ``torch.func``, so it composes with ``vmap`` / ``grad``.

    The attacker's batched restarts call it under ``vmap`` over restarts: ``params`` are the model's trainable
    parameters (shared), ``x`` (``N×C×H×W`` in [0, 1]) and ``y`` (``N`` int64 or ``N×K`` soft labels) one restart's
    dummy batch. Differentiable w.r.t. ``x`` / ``y`` by ordinary autograd (no ``create_graph`` flag needed).

    Returns:
        One tensor per entry of ``params`` (same order): the gradient (``fedsgd``) or the update ``θ₀ − θ_T``.
    """

    def loss(p: dict[str, torch.Tensor], xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return loss_on(functional_call(model, p, (xb,)), yb, threat.loss_scale)

    if threat.kind == "fedsgd":
        g = grad(loss)(params, x, y)
        return [g[n] for n in params]
    current = dict(params)
    bs = threat.local_batch_size or len(x)
    for _ in range(threat.local_steps):
        for i in range(0, len(x), bs):
            g = grad(loss)(current, x[i : i + bs], y[i : i + bs])
            current = {n: p - threat.local_lr * g[n] for n, p in current.items()}
    return [params[n] - current[n] for n in params]


def per_example_gradients(
    model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, scale: float = 1.0
) -> list[torch.Tensor]:
    """Gradients of the loss of each example separately: one tensor ``N×…`` per parameter (``torch.func.vmap``)."""

    def one(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        return loss_on(functional_call(model, p, (xi[None],)), yi[None], scale)

    detached = {n: p.detach() for n, p in params.items()}
    g = vmap(grad(one), in_dims=(None, 0, 0))(detached, x, y)
    return [g[n] for n in params]
