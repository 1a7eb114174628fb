"""Self-supervised wrappers around any registered classifier's trunk: SimCLR, MoCo v2, SimSiam.

Each wrapper holds an ``encoder`` (a registered model cut before its last linear layer, see :func:`build_encoder`)
and exposes ``ssl_loss(view1, view2, allow_key_grad=False) -> scalar`` on two augmented views ``(B, C, H, W)`` in
``[0, 1]``, ``features(x) -> (B, D)`` for probes, and ``after_step()`` (MoCo's momentum update and queue push;
a no-op for the others) to be called after each optimiser step of SSL *training* — never inside a noise update.

- **SimCLR**: 2-layer projector (``D → hidden`` BN ReLU ``→ out``) and NT-Xent over the ``2B`` normalised
  projections, temperature τ (default 0.5).
- **MoCo v2**: query encoder + projector, momentum (key) copy updated as ``θ_k ← m θ_k + (1 − m) θ_q``, a queue of
  ``K`` normalised keys, InfoNCE over ``[positive, queue]`` at temperature ``T``; symmetric or asymmetric loss.
  ``allow_key_grad=True`` lets the gradient reach the inputs through the key branch too (TUE's ``--k_grad``).
  Split-BN (the original's multi-GPU shuffle substitute) is not implemented.
- **SimSiam**: projector + predictor, ``L = −½[cos(p1, sg(z2)) + cos(p2, sg(z1))]``; ``allow_key_grad=True`` drops
  the stop-gradient (for the noise objective only).

Example:
    >>> import torch
    >>> from privlab.models.ssl import build_ssl_model
    >>> m = build_ssl_model("simclr", "lenet5", (1, 16, 16))
    >>> v = torch.rand(8, 1, 16, 16)
    >>> loss = m.ssl_loss(v, v.flip(-1))
    >>> loss.ndim, m.features(v).shape
    (0, torch.Size([8, 84]))
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from privlab.errors import ConfigError
from privlab.models import build_model
from privlab.models.split import output_shape

__all__ = [
    "SSL_METHODS",
    "MoCo",
    "SSLModel",
    "SimCLR",
    "SimSiam",
    "build_encoder",
    "build_ssl_model",
    "nt_xent",
    "ssl_optimizer",
]

SSL_METHODS = ("simclr", "moco", "simsiam")


def build_encoder(
    model: str,
    in_shape: Sequence[int],
    *,
    num_classes: int = 10,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> tuple[nn.Sequential, int]:
    """The trunk of a registered classifier: the model without its last linear layer, and its feature size ``D``.

    Trailing layers after that linear one are dropped too; the trunk maps ``(B, C, H, W)`` in [0, 1] to ``(B, D)``.
    """
    net = build_model(model, num_classes, in_shape, mean=mean, std=std)
    children = list(net.named_children())
    last_linear = max((i for i, (_, m) in enumerate(children) if isinstance(m, nn.Linear)), default=None)
    if last_linear is None:
        raise ConfigError(f"model {model!r} has no final linear layer to remove; pick a classifier (privlab models)")
    trunk = nn.Sequential(OrderedDict(children[:last_linear]))
    shape = output_shape(trunk, tuple(in_shape))
    dim = int(math.prod(shape))
    if len(shape) != 1:
        trunk.add_module("flatten_features", nn.Flatten())
    return trunk, dim


def _mlp(d_in: int, hidden: int, d_out: int, *, last_bn: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(d_in, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)]
    layers.append(nn.Linear(hidden, d_out, bias=not last_bn))
    if last_bn:
        layers.append(nn.BatchNorm1d(d_out, affine=False))
    return nn.Sequential(*layers)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent (SimCLR) loss in nats: ``mean_i −log(exp(s_i,i⁺/τ) / Σ_{k≠i} exp(s_i,k/τ))`` over the ``2B``
    L2-normalised rows of ``[z1; z2]`` (positive of row i of ``z1`` is row i of ``z2`` and vice versa).

    Example:
        >>> import torch
        >>> z = torch.eye(2)
        >>> round(nt_xent(z, z, 1.0).item(), 4)  # s(i,i⁺)=1, others: 0, 0 → −log(e/(e+2))
        0.5514
    """
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    sim = z @ z.t() / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


class SSLModel(nn.Module):
    """Base: an ``encoder`` trunk with feature size ``dim``; subclasses define :meth:`ssl_loss`."""

    method: str = "ssl"

    def __init__(self, encoder: nn.Module, dim: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.dim = dim

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder features ``(B, D)`` of images in [0, 1]."""
        return self.encoder(x)

    def ssl_loss(self, view1: torch.Tensor, view2: torch.Tensor, allow_key_grad: bool = False) -> torch.Tensor:
        """The self-supervised loss (nats, scalar) of two views of the same images."""
        raise NotImplementedError

    @torch.no_grad()
    def after_step(self) -> None:
        """Called after each optimiser step of SSL training (momentum/queue updates); default no-op."""


class SimCLR(SSLModel):
    """SimCLR: encoder + projector (``D → hidden → out``), NT-Xent at temperature ``temperature``."""

    method = "simclr"

    def __init__(
        self, encoder: nn.Module, dim: int, *, hidden: int = 512, out: int = 128, temperature: float = 0.5
    ) -> None:
        super().__init__(encoder, dim)
        self.projector = _mlp(dim, hidden, out)
        self.temperature = temperature

    def ssl_loss(self, view1: torch.Tensor, view2: torch.Tensor, allow_key_grad: bool = False) -> torch.Tensor:
        z = self.projector(self.encoder(torch.cat([view1, view2])))
        z1, z2 = z.chunk(2)
        return nt_xent(z1, z2, self.temperature)


class MoCo(SSLModel):
    """MoCo v2: query encoder/projector, momentum key copy, a queue of ``queue_size`` keys, InfoNCE at ``temperature``.

    Attributes:
        queue: ``(out, K)`` normalised keys (columns), ``queue_ptr``: next column to overwrite.
    """

    method = "moco"

    def __init__(
        self,
        encoder: nn.Module,
        dim: int,
        *,
        hidden: int = 512,
        out: int = 128,
        queue_size: int = 4096,
        momentum: float = 0.99,
        temperature: float = 0.2,
        symmetric: bool = True,
    ) -> None:
        super().__init__(encoder, dim)
        self.projector = _mlp(dim, hidden, out)
        self.key_encoder = copy.deepcopy(self.encoder)
        self.key_projector = copy.deepcopy(self.projector)
        for p in [*self.key_encoder.parameters(), *self.key_projector.parameters()]:
            p.requires_grad_(False)
        self.momentum, self.temperature, self.symmetric = momentum, temperature, symmetric
        g = torch.Generator().manual_seed(0)
        self.register_buffer("queue", F.normalize(torch.randn(out, queue_size, generator=g), dim=0))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self._pending: list[torch.Tensor] = []

    def _keys(self, x: torch.Tensor, allow_grad: bool) -> torch.Tensor:
        if allow_grad:
            return F.normalize(self.key_projector(self.key_encoder(x)), dim=1)
        with torch.no_grad():
            return F.normalize(self.key_projector(self.key_encoder(x)), dim=1)

    def _infonce(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        pos = (q * k).sum(1, keepdim=True)
        neg = q @ self.queue.clone().detach()
        logits = torch.cat([pos, neg], dim=1) / self.temperature
        return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=q.device))

    def ssl_loss(self, view1: torch.Tensor, view2: torch.Tensor, allow_key_grad: bool = False) -> torch.Tensor:
        q1 = F.normalize(self.projector(self.encoder(view1)), dim=1)
        k2 = self._keys(view2, allow_key_grad)
        loss = self._infonce(q1, k2)
        keys = [k2]
        if self.symmetric:
            q2 = F.normalize(self.projector(self.encoder(view2)), dim=1)
            k1 = self._keys(view1, allow_key_grad)
            loss = 0.5 * (loss + self._infonce(q2, k1))
            keys.append(k1)
        self._pending = [k.detach() for k in keys]
        return loss

    @torch.no_grad()
    def momentum_update(self) -> None:
        """``θ_k ← m θ_k + (1 − m) θ_q`` for encoder and projector (buffers such as BN statistics are copied)."""
        m = self.momentum
        for q_mod, k_mod in ((self.encoder, self.key_encoder), (self.projector, self.key_projector)):
            for pq, pk in zip(q_mod.parameters(), k_mod.parameters(), strict=True):
                pk.mul_(m).add_(pq.detach(), alpha=1 - m)
            for bq, bk in zip(q_mod.buffers(), k_mod.buffers(), strict=True):
                bk.copy_(bq)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write ``keys`` ``(B, out)`` into the queue at ``queue_ptr`` (wrapping around) and advance the pointer."""
        k = keys.shape[0]
        size = self.queue.shape[1]
        ptr = int(self.queue_ptr)
        idx = (torch.arange(k, device=keys.device) + ptr) % size
        self.queue[:, idx] = keys.t().to(self.queue.dtype)
        self.queue_ptr.fill_((ptr + k) % size)

    @torch.no_grad()
    def after_step(self) -> None:
        """Momentum update, then push the keys of the last :meth:`ssl_loss` into the queue."""
        self.momentum_update()
        for k in self._pending:
            self.enqueue(k)
        self._pending = []


class SimSiam(SSLModel):
    """SimSiam: projector (``D → hidden → out``, BN on the output) + predictor (``out → pred_hidden → out``)."""

    method = "simsiam"

    def __init__(
        self, encoder: nn.Module, dim: int, *, hidden: int = 512, out: int = 512, pred_hidden: int = 128
    ) -> None:
        super().__init__(encoder, dim)
        self.projector = _mlp(dim, hidden, out, last_bn=True)
        self.predictor = _mlp(out, pred_hidden, out)

    def ssl_loss(self, view1: torch.Tensor, view2: torch.Tensor, allow_key_grad: bool = False) -> torch.Tensor:
        z = self.projector(self.encoder(torch.cat([view1, view2])))
        p = self.predictor(z)
        z1, z2 = z.chunk(2)
        p1, p2 = p.chunk(2)
        if not allow_key_grad:
            z1, z2 = z1.detach(), z2.detach()
        return -0.5 * (F.cosine_similarity(p1, z2, dim=1).mean() + F.cosine_similarity(p2, z1, dim=1).mean())


def build_ssl_model(
    method: Literal["simclr", "moco", "simsiam"] | str,
    encoder_model: str,
    in_shape: Sequence[int],
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    temperature: float | None = None,
    hidden: int = 512,
    out: int = 128,
    queue_size: int = 4096,
    momentum: float = 0.99,
    symmetric: bool = True,
) -> SSLModel:
    """An SSL wrapper of the trunk of ``encoder_model`` for images of ``in_shape``.

    ``temperature`` defaults to 0.5 (SimCLR) and 0.2 (MoCo v2); SimSiam uses ``out`` for both projector and predictor
    output and ``hidden // 4`` for the predictor bottleneck.

    Raises:
        ConfigError: unknown method. UnknownNameError: unknown model.
    """
    encoder, dim = build_encoder(encoder_model, in_shape, mean=mean, std=std)
    if method == "simclr":
        return SimCLR(encoder, dim, hidden=hidden, out=out, temperature=0.5 if temperature is None else temperature)
    if method == "moco":
        return MoCo(
            encoder,
            dim,
            hidden=hidden,
            out=out,
            queue_size=queue_size,
            momentum=momentum,
            temperature=0.2 if temperature is None else temperature,
            symmetric=symmetric,
        )
    if method == "simsiam":
        return SimSiam(encoder, dim, hidden=hidden, out=out, pred_hidden=max(hidden // 4, 8))
    raise ConfigError(f"unknown SSL method {method!r}; use one of {', '.join(SSL_METHODS)}")


def ssl_optimizer(model: SSLModel, optimizer: str, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """The optimiser of SSL training (attacker pre-training and TUE noise generation): Adam, or SGD with momentum
    0.9, over the model's trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
