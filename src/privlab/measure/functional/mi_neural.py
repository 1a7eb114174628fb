"""Neural variational lower bounds on I(X; Z), in nats: InfoNCE, NWJ, MINE (Donsker–Varadhan) and SMILE.

A critic ``f(x, z)`` is trained to maximise a lower bound; the bound is then evaluated on held-out rows. With ``p`` the
joint and ``q = p(x) p(z)`` the product of the marginals (Poole et al. 2019, "On Variational Bounds of Mutual
Information"):

- ``infonce`` (van den Oord et al. 2018): ``I ≥ E[f(x_i, z_i) − log (1/B) Σ_j exp f(x_i, z_j)]`` over batches of B
  paired rows. It can never exceed ``log B``; the estimate saturates there when the true MI is large.
- ``nwj`` (Nguyen–Wainwright–Jordan): ``I ≥ E_p[f] − e^{−1} E_q[e^f]``.
- ``mine`` (Belghazi et al. 2018): the Donsker–Varadhan bound ``E_p[f] − log E_q[e^f]``, trained with MINE's bias
  correction: the gradient of the log term, ``E_q[∇e^f] / E_q[e^f]``, uses an exponential moving average (rate
  ``ema``) of ``E_q[e^f]`` over batches as its denominator instead of the single-batch mean.
- ``smile`` (Song & Ermon 2020): ``E_p[f] − log E_q[exp clip(f, −τ, τ)]``. The critic is trained with the
  Jensen–Shannon (f-GAN) objective ``E_p[−softplus(−f)] − E_q[softplus(f)]``, whose optimum is ``log p/q`` as well,
  as in the paper's reference implementation; only the reported value is the clipped DV bound.

Critic: ``f(x, z) = MLP([x, z])`` (``layers`` hidden layers of width ``hidden``, ReLU). The first layer is split,
``W [x; z] = W_x x + W_z z``, so scoring all B × B pairs of a batch costs two B-row products plus a broadcast add
before the hidden layers. X and Z are standardised with the training rows' mean and standard deviation.

The training protocol, options and estimate live in :mod:`privlab.measure.mi.neural`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BOUNDS",
    "ConcatCritic",
    "dv_bound",
    "infonce_bound",
    "infonce_candidates_bound",
    "js_objective",
    "log_mean_exp",
    "nwj_bound",
    "smile_bound",
]

BOUNDS = ("infonce", "nwj", "mine", "smile")


# ----------------------------------------------------------------------------------------------------------- bounds


def log_mean_exp(t: torch.Tensor) -> torch.Tensor:
    """``log mean exp(t)`` over all entries, computed stably."""
    return torch.logsumexp(t.reshape(-1), dim=0) - math.log(t.numel())


def infonce_bound(scores: torch.Tensor) -> torch.Tensor:
    """InfoNCE on a ``(B, B)`` score matrix ``scores[i, j] = f(x_i, z_j)`` (row i's positive on the diagonal)."""
    return (scores.diagonal() - torch.logsumexp(scores, dim=1)).mean() + math.log(scores.shape[1])


def infonce_candidates_bound(scores: torch.Tensor) -> torch.Tensor:
    """InfoNCE on ``(B, K)`` scores of each row against K candidates, the row's own z in column 0 (≤ log K)."""
    return (scores[:, 0] - torch.logsumexp(scores, dim=1)).mean() + math.log(scores.shape[1])


def nwj_bound(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """NWJ: ``mean(pos) − e^{−1} mean(exp(neg))`` (``pos``: critic on joint samples, ``neg``: on samples of q)."""
    return pos.mean() - torch.exp(neg - 1.0).mean()


def dv_bound(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Donsker–Varadhan: ``mean(pos) − log mean(exp(neg))``."""
    return pos.mean() - log_mean_exp(neg)


def smile_bound(pos: torch.Tensor, neg: torch.Tensor, tau: float) -> torch.Tensor:
    """SMILE: Donsker–Varadhan with the critic on samples of q clipped to ``[−tau, tau]`` inside the exponential."""
    return pos.mean() - log_mean_exp(neg.clamp(-tau, tau))


def js_objective(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Jensen–Shannon (f-GAN) training objective ``E_p[−softplus(−f)] − E_q[softplus(f)]`` (optimum f = log p/q)."""
    return -F.softplus(-pos).mean() - F.softplus(neg).mean()


# ----------------------------------------------------------------------------------------------------------- critic


def _linear(
    fan_in: int, n_in: int, n_out: int, bias: bool, generator: torch.Generator, device: torch.device
) -> nn.Linear:
    """``nn.Linear`` initialised like PyTorch's default (U(±1/√fan_in)) from ``generator``, not the global RNG."""
    lin = nn.utils.skip_init(nn.Linear, n_in, n_out, bias=bias, device=device)
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        lin.weight.copy_((torch.rand(n_out, n_in, generator=generator) * 2 - 1) * bound)
        if lin.bias is not None:
            lin.bias.copy_((torch.rand(n_out, generator=generator) * 2 - 1) * bound)
    return lin


class ConcatCritic(nn.Module):
    """``f(x, z) = MLP([x, z])``: ``layers`` hidden ReLU layers of width ``hidden``, then a linear output.

    The first layer is stored split (``W_x``, ``W_z``) so that :meth:`pairs` scores every (x_i, z_j) without
    building the concatenated inputs.
    """

    def __init__(
        self, dx: int, dz: int, *, hidden: int, layers: int, generator: torch.Generator, device: torch.device
    ) -> None:
        super().__init__()
        fan = dx + dz
        self.in_x = _linear(fan, dx, hidden, True, generator, device)
        self.in_z = _linear(fan, dz, hidden, False, generator, device)
        self.body = nn.ModuleList(_linear(hidden, hidden, hidden, True, generator, device) for _ in range(layers - 1))
        self.out = _linear(hidden, hidden, 1, True, generator, device)

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        h = torch.relu_(h)  # in place: h is a fresh sum, and ReLU's backward needs only its output
        for lin in self.body:
            h = torch.relu_(lin(h))
        return self.out(h).squeeze(-1)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Scores of the paired rows: ``(N,)``."""
        return self._head(self.in_x(x) + self.in_z(z))

    def pairs(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Scores of every pair: ``(N_x, N_z)``, entry ``[i, j] = f(x_i, z_j)``."""
        return self._head(self.in_x(x)[:, None, :] + self.in_z(z)[None, :, :])

    def shifted(self, x: torch.Tensor, z: torch.Tensor, shifts: int) -> torch.Tensor:
        """Scores of ``(x_i, z_{(i+s) mod B})`` for s = 0 … shifts: ``(B, shifts + 1)``; column 0 is the paired rows."""
        hx, hz = self.in_x(x), self.in_z(z)
        idx = (
            torch.arange(x.shape[0], device=x.device)[:, None] + torch.arange(shifts + 1, device=x.device)
        ) % x.shape[0]
        return self._head(hx[:, None, :] + hz[idx])
