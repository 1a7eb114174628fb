"""Central DP baseline: DP-SGD through opacus (per-example clipping + Gaussian noise, with its accountant).

:func:`train_dpsgd` trains a classifier so that the *trained model* is (ε, δ)-DP with respect to each training
example (image and label together): the noise multiplier for the requested ε is found with
``opacus.accountants.utils.get_noise_multiplier`` for the run's sampling rate and epochs, and the ε actually spent is
read back from the accountant. The model is checked with ``opacus.validators.ModuleValidator`` first and repaired
with ``ModuleValidator.fix`` (BatchNorm → GroupNorm) when it needs to be. Batches are drawn by Poisson sampling (what
the accountant assumes). This is the *central* counterpart of the local mechanisms in :mod:`privlab.protect.ldp_pixel`:
same ε per example, a trusted curator instead of noise on each image.

White-box gradient (Dirac) canaries for auditing (Steinke, Nasr & Jagielski 2023): ``train_dpsgd(...,
dirac_canaries=coords)`` treats each flat coordinate ``c`` of the model's trainable parameters as one more record whose
clipped per-example gradient is ``max_grad_norm · e_c``. At every optimizer step each canary joins the batch
independently with the run's Poisson sampling rate (like any record), and its vector is added to the summed clipped
gradient before the Gaussian noise (a wrapper around the ``DPOptimizer.add_noise`` of opacus). A canary is thus a
record of the largest allowed gradient norm sampled as the records are, so the accountant's ε holds for it too. The
real data's batches, clipping and noise draws are unchanged (the canaries use their own generator).

Example:
    >>> cfg = DPSGDConfig(epsilon=2.0, delta=1e-5, epochs=3, batch_size=64)
    >>> round(noise_multiplier(cfg, dataset_size=1437), 2) > 0
    True
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from privlab.config import Spec
from privlab.context import Progress, seed_everything
from privlab.data.base import LabelledImages
from privlab.errors import BudgetError, ConfigError
from privlab.models.params import trainable_parameters
from privlab.protect.base import PROTECTIONS, Budget
from privlab.protect.ldp_budget import check_delta, check_epsilon

__all__ = [
    "DPSGDConfig",
    "DPSGDResult",
    "noise_multiplier",
    "prepare_model",
    "sample_rate",
    "train_dpsgd",
]


class DPSGDConfig(Spec):
    """DP-SGD settings: target (ε, δ), clipping norm, optimiser and schedule."""

    epsilon: float = Field(gt=0, description="target ε (nats) per training example, whole training")
    delta: float = Field(default=1e-5, gt=0, lt=1, description="target δ (choose < 1/N)")
    max_grad_norm: float = Field(default=1.0, gt=0, description="per-example gradient clipping norm (L2)")
    epochs: int = Field(default=5, ge=1, description="passes over the data (expected, with Poisson sampling)")
    batch_size: int = Field(default=64, ge=1, description="expected batch size (sampling rate = batch_size / N)")
    optimizer: Literal["sgd", "adam"] = Field(default="sgd", description="optimiser wrapped by opacus")
    lr: float = Field(default=0.5, gt=0, description="learning rate")
    momentum: float = Field(default=0.0, ge=0, lt=1, description="SGD momentum")
    accountant: Literal["rdp", "prv", "gdp"] = Field(default="rdp", description="opacus accountant")


@dataclass
class DPSGDResult:
    """What :func:`train_dpsgd` did.

    Attributes:
        noise_multiplier: σ / clipping norm used.
        epsilon: ε spent according to the accountant (≤ target up to the search tolerance).
        delta: δ.
        history: per epoch ``train_loss`` (nats), ``train_accuracy``, ``seconds``, ``epsilon``.
        fixed: whether ``ModuleValidator.fix`` changed the model.
        canary_insertions: with ``dirac_canaries``, how many (canary, step) pairs added a canary gradient (its
            expectation is canaries × steps × sampling rate); 0 without.
    """

    noise_multiplier: float
    epsilon: float
    delta: float
    history: list[dict[str, float]] = field(default_factory=list)
    fixed: bool = False
    canary_insertions: int = 0

    def budget(self) -> Budget:
        """The central-DP budget per training example."""
        return Budget(
            "dp",
            "example",
            self.epsilon,
            self.delta,
            details={"mechanism": "dpsgd", "noise_multiplier": self.noise_multiplier},
        )


def sample_rate(batch_size: int, dataset_size: int) -> float:
    """Poisson sampling rate opacus uses for a loader of ``batch_size`` over ``dataset_size`` examples.

    ``make_private`` sets it to ``1 / len(data_loader) = 1 / ceil(N / B)`` (not ``B / N``), and the accountant
    counts ``ceil(N / B)`` steps per epoch; the calibration must use the same rate.
    """
    return 1.0 / math.ceil(dataset_size / batch_size)


def noise_multiplier(cfg: DPSGDConfig, dataset_size: int) -> float:
    """The noise multiplier reaching ``cfg.epsilon`` after ``cfg.epochs`` epochs at rate ``batch_size / N``."""
    from opacus.accountants.utils import get_noise_multiplier

    eps, delta = check_epsilon(cfg.epsilon), check_delta(cfg.delta)
    if dataset_size < 2:
        raise ConfigError(f"DP-SGD needs at least 2 training examples, got {dataset_size}")
    rate = sample_rate(cfg.batch_size, dataset_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return float(
                get_noise_multiplier(
                    target_epsilon=eps,
                    target_delta=delta,
                    sample_rate=rate,
                    epochs=cfg.epochs,
                    accountant=cfg.accountant,
                    epsilon_tolerance=max(0.01, 0.005 * eps),
                )
            )
        except ValueError as e:
            raise BudgetError(f"DP-SGD cannot reach epsilon {eps:g} at delta {delta:g}: {e}") from None


def prepare_model(model: nn.Module) -> tuple[nn.Module, bool]:
    """``model`` made opacus-compatible: ``(model, fixed)``; BatchNorm becomes GroupNorm when needed."""
    from opacus.validators import ModuleValidator

    if ModuleValidator.is_valid(model):
        return model, False
    fixed = ModuleValidator.fix(model)
    for m in fixed.modules():  # opacus #828: in-place ReLU after a replaced layer breaks per-sample hooks
        if isinstance(m, nn.ReLU):
            m.inplace = False
    ModuleValidator.validate(fixed, strict=True)
    return fixed, True


def _insert_dirac_canaries(
    optimizer: Any, model: nn.Module, coordinates: torch.Tensor, clip: float, rate: float, gen: torch.Generator
) -> list[int]:
    """Wrap ``optimizer.add_noise`` (an opacus ``DPOptimizer``) so that before the noise each canary coordinate of
    ``coordinates`` (flat indices, :func:`trainable_parameters` order) gets ``+clip`` in ``p.summed_grad`` with
    probability ``rate`` per step. Returns a one-element list counting the insertions (updated in place)."""
    params = trainable_parameters(model)
    total = sum(p.numel() for _, p in params)
    c = coordinates.to(torch.int64).reshape(-1)
    if c.numel() and (int(c.min()) < 0 or int(c.max()) >= total or c.unique().numel() != c.numel()):
        raise ConfigError(
            f"dirac_canaries must be distinct flat indices in [0, {total}) (the model's trainable "
            f"entries), got {c.numel()} indices in [{int(c.min())}, {int(c.max())}]"
        )
    slots: list[tuple[nn.Parameter, torch.Tensor, torch.Tensor]] = []  # parameter, local indices, canary positions
    start = 0
    for _, p in params:
        inside = (c >= start) & (c < start + p.numel())
        if inside.any():
            slots.append((p, c[inside] - start, torch.nonzero(inside).view(-1)))
        start += p.numel()
    original = optimizer.add_noise
    count = [0]

    def add_noise() -> None:
        drawn = torch.rand(c.numel(), generator=gen) < rate  # Poisson sampling of each canary, as of any record
        count[0] += int(drawn.sum())
        for p, local, pos in slots:
            take = drawn[pos]
            if take.any():
                delta = torch.zeros(p.numel(), dtype=p.summed_grad.dtype)
                delta[local[take]] = clip
                p.summed_grad.add_(delta.to(p.summed_grad.device).view_as(p.summed_grad))
        original()

    optimizer.add_noise = add_noise
    return count


def train_dpsgd(
    model: nn.Module,
    data: LabelledImages,
    cfg: DPSGDConfig,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    dirac_canaries: torch.Tensor | None = None,
) -> tuple[nn.Module, DPSGDResult]:
    """Train ``model`` on ``data`` with DP-SGD; return the trained (plain) module and a :class:`DPSGDResult`.

    Args:
        model: a classifier on ``(B, C, H, W)`` images in [0, 1] (it may normalise inside).
        data: the raw training set (DP-SGD protects it centrally; no local noise).
        cfg: target budget and optimiser settings.
        seed: seeds weights-independent randomness (Poisson sampling, noise).
        device: where to train.
        progress: progress reporter (None: silent).
        dirac_canaries: ``(k,)`` distinct flat indices into the trainable parameters
            (:func:`privlab.models.params.flat_parameters` order) of white-box gradient canaries: at each step
            each joins the batch with the sampling rate and adds ``max_grad_norm`` to its coordinate of the summed
            clipped gradient before the noise (module docstring). The canary draws use their own generator (seed
            ``seed + 2``); the data's training is unchanged.
    """
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader

    seed_everything(seed)
    progress = progress or Progress(quiet=True)
    model, fixed = prepare_model(model)
    model.to(device)
    sigma = noise_multiplier(cfg, len(data))
    if cfg.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(data, batch_size=cfg.batch_size, shuffle=True, generator=gen)
    noise_gen = torch.Generator(device=device).manual_seed(seed + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # opacus warns about secure RNG; seeded runs are the point here
        engine = PrivacyEngine(accountant=cfg.accountant)
        dp_model, dp_opt, dp_loader = engine.make_private(
            module=model,
            optimizer=opt,
            data_loader=loader,
            noise_multiplier=sigma,
            max_grad_norm=cfg.max_grad_norm,
            noise_generator=noise_gen,
        )
    inserted = [0]
    if dirac_canaries is not None:
        rate, canary_gen = sample_rate(cfg.batch_size, len(data)), torch.Generator().manual_seed(seed + 2)
        inserted = _insert_dirac_canaries(dp_opt, model, dirac_canaries, cfg.max_grad_norm, rate, canary_gen)
    history: list[dict[str, float]] = []
    with progress.task("dp-sgd", total=cfg.epochs) as advance, warnings.catch_warnings():
        # opacus' hooks warn that no input requires grad (true: only parameters do)
        warnings.filterwarnings("ignore", message="Full backward hook", category=UserWarning)
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            dp_model.train()
            loss_sum, correct, seen = 0.0, 0, 0
            for x, y in dp_loader:
                if len(y) == 0:  # Poisson sampling can draw an empty batch
                    continue
                x, y = x.to(device), y.to(device)
                dp_opt.zero_grad(set_to_none=True)
                logits = dp_model(x)
                loss = F.cross_entropy(logits, y)
                if not torch.isfinite(loss):
                    raise ConfigError(f"DP-SGD diverged at epoch {epoch}; lower lr (now {cfg.lr})")
                loss.backward()
                dp_opt.step()
                loss_sum += loss.item() * len(y)
                correct += (logits.argmax(1) == y).sum().item()
                seen += len(y)
            warnings.filterwarnings("ignore", message="Optimal order", category=UserWarning)
            spent = float(engine.get_epsilon(cfg.delta))
            stats = {
                "epoch": epoch,
                "train_loss": loss_sum / max(seen, 1),
                "train_accuracy": correct / max(seen, 1),
                "seconds": time.perf_counter() - t0,
                "epsilon": spent,
            }
            history.append(stats)
            advance(1, loss=stats["train_loss"], eps=spent)
    plain: Any = getattr(dp_model, "_module", dp_model)
    eps = history[-1]["epsilon"] if history else math.nan
    return plain, DPSGDResult(sigma, eps, cfg.delta, history, fixed, inserted[0])


PROTECTIONS.add(
    "dpsgd",
    train_dpsgd,
    kind="training",
    config=DPSGDConfig,
    description="central DP: DP-SGD (opacus) with per-example clipping and its accountant, (ε, δ) per example",
)
