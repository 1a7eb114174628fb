"""Restarts as one batch: ``R`` independent trials of the inversion optimised together.

The dummy images of the ``R`` restarts are stacked on a leading dimension (``R×B×C×H×W``; soft labels ``R×B×K``).
Each restart's gradient-matching loss is its own: the victim's gradient for restart ``r`` is computed with
``torch.func`` (:func:`~privlab.protect.gradient.client.functional_update`, i.e. ``functional_call`` + ``grad``)
under ``vmap`` over restarts, so restart ``r`` only ever sees its own ``B`` images. The objective handed to the
optimiser is the sum of the per-restart losses; as the restarts share no variable, its gradient w.r.t. restart
``r``'s images is exactly the gradient of restart ``r``'s own loss. Adam and SGD are element-wise, so one optimiser
on the stacked tensor is ``R`` independent optimisers; L-BFGS is not (its curvature pairs and step lengths are dot
products over the whole vector), so :class:`BatchedLBFGS` runs ``torch.optim.LBFGS``'s algorithm (no line search)
for each restart separately, vectorised over restarts.

:func:`batching_blocker` says when restarts must run one after another instead (the engine then loops and records
why): batch-coupled layers (batch-norm using batch statistics: train mode or ``track_running_stats=False``), any
module left in train mode, or L-BFGS with a line search (one line search per restart cannot share evaluations).

Example (two restarts of L-BFGS on independent quadratics, vectorised; each converges to its own minimum):
    >>> import torch
    >>> x = torch.tensor([[3.0, -1.0], [0.5, 2.0]], requires_grad=True)
    >>> opt = BatchedLBFGS([x], lr=1.0, max_iter=20)
    >>> def closure():
    ...     v = ((x - torch.tensor([[1.0, 1.0], [-2.0, 0.0]])) ** 2).sum(1)
    ...     x.grad = torch.autograd.grad(v.sum(), [x])[0]
    ...     return v.detach()
    >>> _ = opt.step(closure)
    >>> (x.detach().round(decimals=4) + 0.0).tolist()
    [[1.0, 1.0], [-2.0, 0.0]]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["BatchedLBFGS", "batching_blocker"]


def batching_blocker(model: nn.Module, *, optimizer: str, line_search: bool) -> str | None:
    """Why the restarts cannot be optimised as one batch on ``model`` (None: they can).

    Checks the model as the attack runs it (after ``model.eval()``): a ``_BatchNorm`` that normalises with batch
    statistics (train mode, or no running statistics) couples the images of a batch and updates buffers in place;
    any other module still in train mode (dropout, custom layers) is refused too. L-BFGS with a strong-Wolfe line
    search needs a different number of evaluations per restart.
    """
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and (module.training or module.running_mean is None):
            return (
                f"batch-norm layer {name!r} normalises with batch statistics (train mode or no running statistics): "
                "restarts run in a loop"
            )
        if module.training:
            return f"layer {name or type(module).__name__!r} is in train mode: restarts run in a loop"
    if optimizer == "lbfgs" and line_search:
        return "L-BFGS with a line search needs one line search per restart: restarts run in a loop"
    return None


@dataclass
class _Pair:
    """One L-BFGS curvature pair for every restart; rows of restarts that did not store a pair are zero."""

    s: torch.Tensor  # R×D step
    y: torch.Tensor  # R×D gradient change
    ro: torch.Tensor  # R, 1/(yᵀs), 0 where invalid
    valid: torch.Tensor  # R bool


class BatchedLBFGS(torch.optim.Optimizer):
    """``torch.optim.LBFGS`` without line search, run independently for each of ``R`` restarts at once.

    Every parameter has the restarts on its first dimension (``R×…``); restart ``r``'s variables are the ``r``-th
    slices, flattened and concatenated (``D`` values). The algorithm per restart is PyTorch's (same first step
    ``min(1, 1/‖g‖₁)·lr``, same curvature test ``yᵀs > 1e-10``, history of ``history_size`` pairs, the same
    stopping tests inside a step), so a batched run equals ``R`` separate ``LBFGS`` runs up to float rounding.
    The closure returns the ``R`` losses (a tensor) after setting ``.grad`` of every parameter. Restarts in
    :attr:`frozen` (a bool tensor ``R``, e.g. diverged ones) are neither moved nor updated.

    Args:
        params: tensors ``R×…`` (e.g. the stacked dummy images and soft labels).
        lr: step length (changed by LR schedulers through ``param_groups``).
        max_iter: iterations per :meth:`step` (PyTorch's ``max_iter``).
        max_eval: function evaluations per step (default ``1.25·max_iter``).
        tolerance_grad, tolerance_change, history_size: as in ``torch.optim.LBFGS``.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float = 1.0,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
    ) -> None:
        defaults = {
            "lr": lr,
            "max_iter": max_iter,
            "max_eval": max_eval if max_eval is not None else max_iter * 5 // 4,
            "tolerance_grad": tolerance_grad,
            "tolerance_change": tolerance_change,
            "history_size": history_size,
        }
        super().__init__(params, defaults)
        self._params: list[torch.Tensor] = self.param_groups[0]["params"]
        p0 = self._params[0]
        r = p0.shape[0]
        if any(p.shape[0] != r for p in self._params):
            raise ValueError("BatchedLBFGS: every parameter needs the restarts on its first dimension")
        self.frozen = torch.zeros(r, dtype=torch.bool, device=p0.device)
        self._n_iter = torch.zeros(r, dtype=torch.long, device=p0.device)  # iterations so far, per restart
        self._d: torch.Tensor | None = None
        self._t = torch.zeros(r, dtype=p0.dtype, device=p0.device)
        self._prev_grad: torch.Tensor | None = None
        self._prev_loss = torch.zeros(r, dtype=p0.dtype, device=p0.device)
        self._h_diag = torch.ones(r, dtype=p0.dtype, device=p0.device)
        self._pairs: list[_Pair] = []

    def _flat_grad(self) -> torch.Tensor:
        r = self._params[0].shape[0]
        parts = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(r, -1) for p in self._params]
        return torch.cat(parts, 1)

    def _add(self, step: torch.Tensor, rows: torch.Tensor) -> None:
        offset = 0
        for p in self._params:
            n = p[0].numel()
            chunk = step[:, offset : offset + n].reshape(p.shape)
            mask = rows.view(-1, *([1] * (p.dim() - 1)))
            p.add_(torch.where(mask, chunk, torch.zeros_like(chunk)))
            offset += n

    def _store(self, y: torch.Tensor, s: torch.Tensor, rows: torch.Tensor, history: int) -> None:
        """Append the pair ``(s, y)`` for ``rows``; a restart keeps its last ``history`` pairs."""
        if not bool(rows.any()):
            return
        ys = (y * s).sum(1)
        zero = torch.zeros_like(s)
        self._pairs.append(
            _Pair(
                s=torch.where(rows[:, None], s, zero),
                y=torch.where(rows[:, None], y, zero),
                ro=torch.where(rows, 1.0 / torch.where(rows, ys, torch.ones_like(ys)), torch.zeros_like(ys)),
                valid=rows.clone(),
            )
        )
        count = torch.stack([p.valid for p in self._pairs]).sum(0)
        over = count > history
        for pair in self._pairs:  # drop each over-full restart's oldest pair
            if not bool(over.any()):
                break
            hit = over & pair.valid
            if bool(hit.any()):
                pair.valid = pair.valid & ~hit
                pair.s[hit] = 0
                pair.y[hit] = 0
                pair.ro[hit] = 0
                over = over & ~hit
        self._pairs = [p for p in self._pairs if bool(p.valid.any())]

    def _direction(self, g: torch.Tensor) -> torch.Tensor:
        """The two-loop recursion ``−H·g`` per restart (pairs a restart did not store contribute nothing)."""
        q = g.neg()
        al = []
        for pair in reversed(self._pairs):
            a = (pair.s * q).sum(1) * pair.ro
            q = q - a[:, None] * pair.y
            al.append(a)
        al.reverse()
        r = q * self._h_diag[:, None]
        for pair, a in zip(self._pairs, al, strict=True):
            be = (pair.y * r).sum(1) * pair.ro
            r = r + pair.s * (a - be)[:, None]
        return r

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        """One L-BFGS step per restart (up to ``max_iter`` iterations each); returns the ``R`` losses at its start."""
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tol_grad, tol_change, history = group["tolerance_grad"], group["tolerance_change"], group["history_size"]
        with torch.enable_grad():
            orig_loss = closure().detach()
        loss = orig_loss.clone()
        flat_grad = self._flat_grad()
        active = ~self.frozen & ~(flat_grad.abs().amax(1) <= tol_grad)
        d = self._d if self._d is not None else torch.zeros_like(flat_grad)
        prev_grad = self._prev_grad if self._prev_grad is not None else torch.zeros_like(flat_grad)
        t = self._t
        evals = 1
        n_iter = 0
        while n_iter < max_iter and bool(active.any()):
            n_iter += 1
            self._n_iter += active.long()
            first = active & (self._n_iter == 1)
            later = active & ~first
            if bool(first.any()):  # a restart's first iteration ever: steepest descent, history cleared
                for pair in self._pairs:
                    pair.valid = pair.valid & ~first
                    pair.s[first] = 0
                    pair.y[first] = 0
                    pair.ro[first] = 0
                self._pairs = [p for p in self._pairs if bool(p.valid.any())]
                self._h_diag = torch.where(first, torch.ones_like(self._h_diag), self._h_diag)
            if bool(later.any()):
                y = flat_grad - prev_grad
                s = d * t[:, None]
                ys = (y * s).sum(1)
                store = later & (ys > 1e-10)
                self._store(y, s, store, history)
                yy = (y * y).sum(1)
                self._h_diag = torch.where(store, ys / torch.where(store, yy, torch.ones_like(yy)), self._h_diag)
                d = torch.where(later[:, None], self._direction(flat_grad), d)
            d = torch.where(first[:, None], flat_grad.neg(), d)
            prev_grad = torch.where(active[:, None], flat_grad, prev_grad)
            prev_loss = torch.where(active, loss, self._prev_loss)
            self._prev_loss = prev_loss
            first_t = torch.clamp(1.0 / flat_grad.abs().sum(1), max=1.0) * lr
            t = torch.where(first, first_t, torch.where(active, torch.full_like(t, lr), t))
            gtd = (flat_grad * d).sum(1)
            active = active & ~(gtd > -tol_change)  # not a descent direction: this restart's step ends here
            if not bool(active.any()):
                break
            self._add(d * t[:, None], active)
            ls_evals = 0
            if n_iter != max_iter:
                with torch.enable_grad():
                    new_loss = closure().detach()
                new_grad = self._flat_grad()
                loss = torch.where(active, new_loss, loss)
                flat_grad = torch.where(active[:, None], new_grad, flat_grad)
                ls_evals = 1
            evals += ls_evals
            if n_iter == max_iter or evals >= max_eval:
                break
            stop = flat_grad.abs().amax(1) <= tol_grad
            stop |= (d * t[:, None]).abs().amax(1) <= tol_change
            stop |= (loss - prev_loss).abs() < tol_change
            active = active & ~stop
        self._d, self._t, self._prev_grad = d, t, prev_grad
        return orig_loss
