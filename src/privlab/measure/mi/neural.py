"""Neural variational lower bounds on I(X; Z) registered in :data:`privlab.measure.mi.MI_ESTIMATORS`: the training
protocol, the option checks and the estimate.

``infonce``, ``nwj``, ``mine`` and ``smile`` (the bounds and the critic: :mod:`privlab.measure.functional.mi_neural`).
Each trains a concatenation MLP critic on 70 % of the rows (seeded split), early-stops on the bound over the other
30 % and returns that held-out bound, in nats. Settings go through ``estimate_mi(..., options={...})``:
``max_epochs`` (alias ``epochs``, 100), ``batch_size`` (256), ``lr`` (5e-4), ``hidden`` (256), ``layers`` (2),
``test_fraction`` (0.3), ``patience`` (10), ``tau`` (smile, 5) and ``ema`` (mine, 0.01). The third element of each
estimator's return value (``MIResult.details``) holds the training facts; for ``infonce`` ``ceiling`` is ``log B``,
the most the estimate can ever be, and a :class:`RuntimeWarning` says so when the estimate comes within 10 % of it.

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
    >>> from privlab.measure.mi import estimate_mi
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(1000, 1, generator=g)
    >>> z = 0.8 * x + 0.6 * torch.randn(1000, 1, generator=g)
    >>> r = estimate_mi(x, z, "nwj", options={"max_epochs": 20, "batch_size": 64, "hidden": 32}, diagnose=False)
    >>> r.details["n_test"], 0.0 < r.nats < 0.8
    (300, True)
    >>> cfg = make_config("nwj", max_epochs=20, batch_size=64, hidden=32)
    >>> res = neural_mi(x, z, cfg, generator=torch.Generator().manual_seed(1))
    >>> res.bound, res.n_test, 0.0 < res.nats < 0.8
    ('nwj', 300, True)
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

from privlab.errors import ConfigError
from privlab.measure.functional.mi_neural import (
    BOUNDS,
    ConcatCritic,
    dv_bound,
    infonce_bound,
    infonce_candidates_bound,
    js_objective,
    log_mean_exp,
    nwj_bound,
    smile_bound,
)
from privlab.measure.mi.estimate import MI_ESTIMATORS

__all__ = ["CEILING_WARN_FRACTION", "NeuralMIConfig", "NeuralMIResult", "make_config", "neural_mi", "valid_options"]

COMMON_OPTIONS = ("batch_size", "epochs", "hidden", "layers", "lr", "max_epochs", "patience", "test_fraction")
EXTRA_OPTIONS = {"infonce": (), "nwj": (), "mine": ("ema",), "smile": ("tau",)}
TRAIN_NEGATIVES = 16  # nwj / mine / smile: samples of q per row of a training batch
INFONCE_TRAIN_CANDIDATES = 16  # infonce: candidates per row in training (the row's own z and 15 others of the batch)
TEST_SHUFFLES = 10  # nwj / mine / smile: derangements of the test z's that make the test samples of q
EVAL_CHUNK = 65536  # pairs per critic forward pass when evaluating
CEILING_WARN_FRACTION = 0.9  # infonce: warn when the estimate is ≥ 90 % of log B


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
                    log_et = log_mean_exp(neg)
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


def _run(
    bound: str, x: torch.Tensor, z: torch.Tensor, generator: torch.Generator, device: torch.device | None, options: Any
) -> tuple[float, int, dict[str, Any]]:
    cfg = make_config(bound, **options)
    res = neural_mi(x, z, cfg, generator=generator, device=device)
    info = res.info()
    if res.ceiling is not None and res.nats >= CEILING_WARN_FRACTION * res.ceiling:
        warnings.warn(
            f"infonce estimate {res.nats:.3g} nats is within 10 % of its ceiling log B = {res.ceiling:.3g} nats "
            f"(B = {res.batch_size}): InfoNCE can never exceed log B, so the true MI may be much larger; "
            f"increase batch_size or use another estimator (nwj, mine, smile)",
            RuntimeWarning,
            stacklevel=3,
        )
    return res.nats, 0, info


_DESCRIPTIONS = {
    "infonce": "InfoNCE neural lower bound (≤ log batch_size), concat MLP critic",
    "nwj": "NWJ neural lower bound E_p[f] − e^{-1} E_q[e^f], concat MLP critic",
    "mine": "MINE: Donsker–Varadhan bound with moving-average gradient correction, concat MLP critic",
    "smile": "SMILE: DV bound with the critic clipped to [−τ, τ], JS-trained concat MLP critic",
}


def _make_estimator(name: str) -> Any:
    """The registered estimator function of one neural bound (they differ only in ``name``)."""

    def estimator(
        x: torch.Tensor,
        z: torch.Tensor,
        *,
        generator: torch.Generator,
        device: torch.device | None = None,
        k: int | None = None,
        backend: str | None = None,
        split: str | None = None,
        shrinkage: str | None = None,
        **options: Any,
    ) -> tuple[float, int, dict[str, Any]]:
        return _run(name, x, z, generator, device, options)

    estimator.__name__ = f"_{name}"
    return estimator


for _name, _description in _DESCRIPTIONS.items():
    MI_ESTIMATORS.add(
        _name,
        _make_estimator(_name),
        unit="nats",
        kind="privacy",
        stochastic=True,
        uses_knn=False,
        uses_device=True,
        description=_description,
    )
