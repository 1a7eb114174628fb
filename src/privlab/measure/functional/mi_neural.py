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

Protocol: the rows are split into train / test with the given generator; the critic is trained with Adam on the
training rows and early-stopped on the test-set bound (the best critic is kept); the estimate is the bound on the
test rows with that critic. InfoNCE is averaged over fixed test batches of B rows (all B × B pairs each); the other
bounds use every test pair as a joint sample and ``TEST_SHUFFLES`` seeded derangements of the test z's as samples of
``q``. During training NWJ, MINE and SMILE take ``TRAIN_NEGATIVES`` other z's of the batch per row as samples of
``q`` (cyclic shifts of the shuffled batch), and InfoNCE scores each row against ``INFONCE_TRAIN_CANDIDATES`` z's of
the batch (its own and cyclic shifts) instead of all B: the InfoNCE-optimal critic, ``log p(z|x) + c(x)``, does not
depend on the number of candidates, and scoring all B × B pairs in training costs B / 16 times more (the main cost on
a CPU) for no measured gain in accuracy. The estimate itself, and its ``log B`` ceiling, use all B × B pairs of each
test batch. Early stopping picks the best of several noisy test values, so the
estimate is biased slightly upwards (by about the spread of the test value between epochs).

Every random draw (split, critic initialisation, batch order, negatives) comes from the passed generator; the global
torch RNG is never used, so a seed gives the same number on every run (on CPU; on CUDA up to kernel determinism).

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(1000, 1, generator=g)
    >>> z = 0.8 * x + 0.6 * torch.randn(1000, 1, generator=g)
    >>> cfg = make_config("nwj", max_epochs=20, batch_size=64, hidden=32)
    >>> r = neural_mi(x, z, cfg, generator=torch.Generator().manual_seed(1))
    >>> r.bound, r.n_test, 0.0 < r.nats < 0.8
    ('nwj', 300, True)
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from privlab.errors import ConfigError

__all__ = [
    "BOUNDS",
    "ConcatCritic",
    "NeuralMIConfig",
    "NeuralMIResult",
    "dv_bound",
    "infonce_bound",
    "infonce_candidates_bound",
    "js_objective",
    "make_config",
    "neural_mi",
    "nwj_bound",
    "smile_bound",
    "valid_options",
]

BOUNDS = ("infonce", "nwj", "mine", "smile")
COMMON_OPTIONS = ("batch_size", "epochs", "hidden", "layers", "lr", "max_epochs", "patience", "test_fraction")
EXTRA_OPTIONS = {"infonce": (), "nwj": (), "mine": ("ema",), "smile": ("tau",)}
TRAIN_NEGATIVES = 16  # nwj / mine / smile: samples of q per row of a training batch
INFONCE_TRAIN_CANDIDATES = 16  # infonce: candidates per row in training (the row's own z and 15 others of the batch)
TEST_SHUFFLES = 10  # nwj / mine / smile: derangements of the test z's that make the test samples of q
EVAL_CHUNK = 65536  # pairs per critic forward pass when evaluating


def valid_options(bound: str) -> tuple[str, ...]:
    """The option names ``bound`` accepts, sorted."""
    return tuple(sorted(COMMON_OPTIONS + EXTRA_OPTIONS[bound]))


@dataclass(frozen=True)
class NeuralMIConfig:
    """Settings of a neural MI estimate (see :func:`make_config` for the checks)."""

    bound: str
    max_epochs: int = 100
    batch_size: int = 256
    lr: float = 5e-4
    hidden: int = 256
    layers: int = 2
    test_fraction: float = 0.3
    patience: int = 10
    tau: float = 5.0
    ema: float = 0.01


def _int_option(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"neural MI option {name} must be an integer ≥ {low}, got {value!r}")
    return int(value)


def _float_option(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"neural MI option {name} must be a finite number, got {value!r}")
    return float(value)


def make_config(bound: str, **options: Any) -> NeuralMIConfig:
    """Check ``options`` for ``bound`` and return the full configuration (defaults for the rest).

    Options: ``max_epochs`` (alias ``epochs``, ≥ 1), ``batch_size`` (≥ 2), ``lr`` (> 0), ``hidden`` (≥ 1),
    ``layers`` (hidden layers, ≥ 1), ``test_fraction`` (in (0, 1)), ``patience`` (epochs without improvement of the
    test bound before stopping, ≥ 1), ``tau`` (smile: clip, > 0), ``ema`` (mine: moving-average rate in (0, 1]).

    Raises:
        ConfigError: an unknown bound or option name (the message lists the valid ones) or a value out of range.
    """
    if bound not in BOUNDS:
        raise ConfigError(f"unknown neural MI bound {bound!r}; one of {', '.join(BOUNDS)}")
    valid = valid_options(bound)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(
            f"{bound}: unknown option(s) {', '.join(map(repr, unknown))}; valid options: {', '.join(valid)}"
        )
    opts = dict(options)
    if "epochs" in opts:
        epochs = opts.pop("epochs")
        if "max_epochs" in opts and opts["max_epochs"] != epochs:
            raise ConfigError(
                f"{bound}: epochs = {epochs!r} and max_epochs = {opts['max_epochs']!r} disagree; give one"
            )
        opts["max_epochs"] = epochs
    kw: dict[str, Any] = {}
    for name in ("max_epochs", "hidden", "layers", "patience"):
        if name in opts:
            kw[name] = _int_option(name, opts[name], 1)
    if "batch_size" in opts:
        kw["batch_size"] = _int_option("batch_size", opts["batch_size"], 2)
    if "lr" in opts:
        kw["lr"] = _float_option("lr", opts["lr"])
        if kw["lr"] <= 0:
            raise ConfigError(f"{bound}: lr must be > 0, got {kw['lr']}")
    if "test_fraction" in opts:
        kw["test_fraction"] = _float_option("test_fraction", opts["test_fraction"])
        if not 0.0 < kw["test_fraction"] < 1.0:
            raise ConfigError(f"{bound}: test_fraction must be in (0, 1), got {kw['test_fraction']}")
    if "tau" in opts:
        kw["tau"] = _float_option("tau", opts["tau"])
        if kw["tau"] <= 0:
            raise ConfigError(f"{bound}: tau must be > 0, got {kw['tau']}")
    if "ema" in opts:
        kw["ema"] = _float_option("ema", opts["ema"])
        if not 0.0 < kw["ema"] <= 1.0:
            raise ConfigError(f"{bound}: ema must be in (0, 1], got {kw['ema']}")
    return NeuralMIConfig(bound=bound, **kw)


# ----------------------------------------------------------------------------------------------------------- bounds


def _log_mean_exp(t: torch.Tensor) -> torch.Tensor:
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
    return pos.mean() - _log_mean_exp(neg)


def smile_bound(pos: torch.Tensor, neg: torch.Tensor, tau: float) -> torch.Tensor:
    """SMILE: Donsker–Varadhan with the critic on samples of q clipped to ``[−tau, tau]`` inside the exponential."""
    return pos.mean() - _log_mean_exp(neg.clamp(-tau, tau))


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


# ------------------------------------------------------------------------------------------------------- estimation


@dataclass
class NeuralMIResult:
    """A neural MI estimate.

    Attributes:
        nats: the bound on the test rows with the best critic, nats.
        bound: ``infonce``, ``nwj``, ``mine`` or ``smile``.
        ceiling: InfoNCE only: ``log B`` of the test batches, the largest value the estimate can take.
        best_epoch: epoch (1-based) of the kept critic; ``epochs``: epochs trained; ``steps``: optimiser steps.
        batch_size: the batch size used (``min(batch_size, training rows)``).
        history: test-set bound after each epoch.
    """

    nats: float
    bound: str
    n_train: int
    n_test: int
    batch_size: int
    best_epoch: int
    epochs: int
    steps: int
    seconds: float
    ceiling: float | None = None
    stopped_early: bool = False
    history: list[float] = field(default_factory=list)
    critic: ConcatCritic | None = field(default=None, repr=False)

    def info(self) -> dict[str, Any]:
        """JSON-ready facts (no critic, no history)."""
        d = {k: v for k, v in self.__dict__.items() if k not in ("critic", "history")}
        if self.ceiling is None:
            d.pop("ceiling")
        return d


def _standardize(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    mean = train.mean(dim=0)
    std = train.std(dim=0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return [(t - mean) / std for t in (train, *others)]


def _derangement(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Index pairs ``(a, b)`` with ``a`` a random permutation of range(n) and ``b[k] = a[(k + 1) % n]`` ≠ ``a[k]``."""
    a = torch.randperm(n, generator=generator)
    return a, torch.roll(a, -1)


class _TestSet:
    """The held-out rows and the fixed (seeded) pairs the test bound is computed on, identical every epoch."""

    def __init__(self, x: torch.Tensor, z: torch.Tensor, cfg: NeuralMIConfig, generator: torch.Generator) -> None:
        self.x, self.z, self.cfg = x, z, cfg
        n = x.shape[0]
        dev = x.device
        if cfg.bound == "infonce":
            self.batch = min(cfg.batch_size, n)
            order = torch.randperm(n, generator=generator)
            self.batches = [order[i : i + self.batch].to(dev) for i in range(0, n - self.batch + 1, self.batch)]
        else:
            pairs = [_derangement(n, generator) for _ in range(TEST_SHUFFLES)]
            self.neg_x = torch.cat([a for a, _ in pairs]).to(dev)
            self.neg_z = torch.cat([b for _, b in pairs]).to(dev)

    @torch.no_grad()
    def bound(self, critic: ConcatCritic) -> float:
        cfg = self.cfg
        if cfg.bound == "infonce":
            rows = max(1, EVAL_CHUNK // self.batch)  # x rows per pass: at most EVAL_CHUNK pairs in memory at once
            vals = []
            for b in self.batches:
                xb, zb = self.x[b], self.z[b]
                scores = torch.cat([critic.pairs(xb[i : i + rows], zb) for i in range(0, xb.shape[0], rows)])
                vals.append(infonce_bound(scores))
            return float(torch.stack(vals).mean())
        pos = critic(self.x, self.z)
        neg = torch.cat(
            [
                critic(self.x[self.neg_x[i : i + EVAL_CHUNK]], self.z[self.neg_z[i : i + EVAL_CHUNK]])
                for i in range(0, self.neg_x.shape[0], EVAL_CHUNK)
            ]
        )
        if cfg.bound == "nwj":
            value = nwj_bound(pos, neg)
        elif cfg.bound == "mine":
            value = dv_bound(pos, neg)
        else:
            value = smile_bound(pos, neg, cfg.tau)
        return float(value)


def neural_mi(
    x: torch.Tensor,
    z: torch.Tensor,
    config: NeuralMIConfig,
    *,
    generator: torch.Generator,
    device: torch.device | str | None = None,
    keep_critic: bool = False,
) -> NeuralMIResult:
    """Train a critic on part of ``x (N, d_x)``, ``z (N, d_z)`` and return the lower bound on the held-out part.

    Args:
        config: see :func:`make_config`.
        generator: a CPU generator; every random draw comes from it.
        device: where to train (default: ``x``'s device).
        keep_critic: return the best critic in the result.

    Raises:
        ConfigError: mismatched rows, or fewer than 2 training or 2 test rows.
    """
    t0 = time.perf_counter()
    cfg = config
    dev = torch.device(device) if device is not None else x.device
    x, z = x.reshape(x.shape[0], -1), z.reshape(z.shape[0], -1)
    n = x.shape[0]
    if z.shape[0] != n:
        raise ConfigError(f"x has {n} rows but z has {z.shape[0]}; rows must be paired samples")
    n_test = round(cfg.test_fraction * n)
    n_train = n - n_test
    if n_test < 2 or n_train < 2:
        raise ConfigError(
            f"{cfg.bound}: {n} rows with test_fraction {cfg.test_fraction} leave {n_train} training and {n_test} test "
            f"rows; need at least 2 of each"
        )
    split = torch.randperm(n, generator=generator)
    tr, te = split[:n_train].to(x.device), split[n_train:].to(x.device)
    x = x.to(torch.float32)
    z = z.to(torch.float32)
    x_tr, x_te = (t.to(dev) for t in _standardize(x[tr], x[te]))
    z_tr, z_te = (t.to(dev) for t in _standardize(z[tr], z[te]))

    critic = ConcatCritic(x.shape[1], z.shape[1], hidden=cfg.hidden, layers=cfg.layers, generator=generator, device=dev)
    opt = torch.optim.Adam(critic.parameters(), lr=cfg.lr)
    test = _TestSet(x_te, z_te, cfg, generator)
    batch = min(cfg.batch_size, n_train)
    steps_per_epoch = n_train // batch
    shifts = min(TRAIN_NEGATIVES, batch - 1)
    candidates = min(INFONCE_TRAIN_CANDIDATES, batch)
    log_ma: torch.Tensor | None = None  # mine: log of the moving average of E_q[e^f]

    best, best_state, best_epoch, bad, steps = -math.inf, copy.deepcopy(critic.state_dict()), 0, 0, 0
    history: list[float] = []
    stopped = False
    for epoch in range(1, cfg.max_epochs + 1):
        critic.train()
        order = torch.randperm(n_train, generator=generator).to(dev)
        diverged = False
        for s in range(steps_per_epoch):
            idx = order[s * batch : (s + 1) * batch]
            xb, zb = x_tr[idx], z_tr[idx]
            if cfg.bound == "infonce":
                loss = -infonce_candidates_bound(critic.shifted(xb, zb, candidates - 1))
            else:
                scores = critic.shifted(xb, zb, shifts)
                pos, neg = scores[:, 0], scores[:, 1:]
                if cfg.bound == "nwj":
                    loss = -nwj_bound(pos, neg)
                elif cfg.bound == "smile":
                    loss = -js_objective(pos, neg)
                else:  # mine: ∇ log E_q[e^f] ≈ E_q[∇ e^f] / (moving average of E_q[e^f])
                    log_et = _log_mean_exp(neg)
                    cur = log_et.detach()
                    if log_ma is None:
                        log_ma = cur
                    else:
                        log_ma = torch.logaddexp(log_ma + math.log1p(-cfg.ema), cur + math.log(cfg.ema))
                    loss = -(pos.mean() - torch.exp(log_et - log_ma))
            if not torch.isfinite(loss):
                diverged = True
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
        critic.eval()
        value = test.bound(critic) if not diverged else -math.inf
        history.append(value)
        if value > best:
            best, best_epoch, bad = value, epoch, 0
            best_state = copy.deepcopy(critic.state_dict())
        else:
            bad += 1
        if diverged or bad >= cfg.patience:
            stopped = epoch < cfg.max_epochs
            break
    critic.load_state_dict(best_state)
    if not math.isfinite(best):  # diverged before the first evaluation: the untrained critic's value
        best = test.bound(critic)
    return NeuralMIResult(
        nats=float(best),
        bound=cfg.bound,
        n_train=n_train,
        n_test=n_test,
        batch_size=batch,
        best_epoch=best_epoch,
        epochs=len(history),
        steps=steps,
        seconds=time.perf_counter() - t0,
        ceiling=math.log(test.batch) if cfg.bound == "infonce" else None,
        stopped_early=stopped,
        history=history,
        critic=critic if keep_critic else None,
    )
