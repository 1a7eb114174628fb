"""Unlearnable examples (Huang et al., ICLR 2021): error-minimising noise, and its two baselines.

Three data protections, registered in :data:`~privlab.protect.PROTECTIONS` with ``kind="data"``:

- ``em`` — **error-minimising (min-min) noise**: ``min_θ E min_{‖δ‖∞≤ε} CE(f_θ(x + δ), y)``. Outer loop: train the
  backbone θ for ``train_steps`` batches on ``x + δ``; then sweep the whole training set, updating δ by
  ``num_steps`` signed-gradient descent steps of size ``step_size`` (``x' ← x' − α·sign ∇CE``,
  ``δ = clip(x' − x, −ε, ε)``, ``x' = clip(x + δ, 0, 1)``); stop when the backbone's error on the perturbed set falls
  below ``stop_error`` or after ``max_rounds`` rounds.
- ``error-max`` — **error-maximising (adversarial) noise**: the same PGD with ``+α·sign`` against a backbone trained on
  clean data.
- ``random`` — uniform noise ``δ ~ U(−ε, ε)``.

Each comes **sample-wise** (one δ per training image, indexed by sample index: ``N×C×H×W``) or **class-wise** (one δ
per class, indexed by label: ``K×C×H×W``). All perturbations are in [0, 1] pixel units; the default budget is
ε = 8/255, step α = 0.8/255. A result is a :class:`PerturbationBank` (noise + metadata), saved as safetensors.

Example:
    >>> import torch
    >>> from privlab.data import load_dataset
    >>> from privlab.protect.unlearnable_em import RandomNoise, RandomNoiseConfig
    >>> data = load_dataset("digits", "train", limit=20)
    >>> bank = RandomNoise(RandomNoiseConfig(kind="class")).generate(data, seed=0)
    >>> bank.noise.shape, bank.kind, bool(bank.noise.abs().max() <= 8 / 255)
    (torch.Size([10, 1, 8, 8]), 'class', True)
"""

from __future__ import annotations

import math
import time
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from privlab.context import Progress, seed_everything
from privlab.data.base import LabelledImages
from privlab.protect.base import PROTECTIONS
from privlab.protect.perturbation import (
    Monitor,
    NoiseConfig,
    NoiseGenerator,
    NoiseKind,
    PerturbationBank,
    RoundCallback,
    cycle_batches,
    noise_shape,
    uniform_noise,
)
from privlab.train import TrainConfig, evaluate, fit, make_optimizer

__all__ = [
    "EM_KIND_DEFAULTS",
    "EMConfig",
    "ErrorMaxConfig",
    "ErrorMaxNoise",
    "ErrorMinimizingNoise",
    "NoiseKind",
    "PerturbationBank",
    "RandomNoise",
    "RandomNoiseConfig",
    "class_pgd",
    "sample_pgd",
]


# -- configs ------------------------------------------------------------------------------------------------------
class RandomNoiseConfig(NoiseConfig):
    """Uniform random noise ``U(−ε, ε)`` (baseline)."""

    name: Literal["random"] = "random"


class _PGDBase(NoiseConfig):
    step_size: float = Field(default=0.8 / 255, gt=0, le=1, description="PGD step α, [0, 1] pixel units")
    num_steps: int = Field(default=20, ge=1, description="PGD steps per batch per sweep (UE: 20 sample-, 1 class-wise)")
    backbone: str = Field(default="resnet18", description="model the noise is optimised against (privlab models)")
    batch_size: int = Field(default=128, ge=1, description="batch size of training and noise sweeps")
    random_start: bool = Field(default=True, description="start from δ ~ U(−ε, ε) instead of 0")
    normalize: bool = Field(default=True, description="normalise inputs inside the backbone with the data stats")
    optimizer: Literal["sgd", "adam", "adamw"] = Field(default="sgd", description="backbone optimiser")
    lr: float = Field(default=0.1, gt=0, description="backbone learning rate")
    momentum: float = Field(default=0.9, ge=0, lt=1, description="SGD momentum")
    weight_decay: float = Field(default=5e-4, ge=0, description="backbone weight decay")


#: Unlearnable-Examples' per-kind settings, used where a config leaves them out (sample-wise: 20 PGD steps per batch,
#: stop below 1 % error; class-wise: 1 step per batch — each class row still moves once per batch of the sweep —
#: stop below 10 %).
EM_KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "sample": {"num_steps": 20, "stop_error": 0.01},
    "class": {"num_steps": 1, "stop_error": 0.1},
}


class EMConfig(_PGDBase):
    """Error-minimising (min-min) noise; defaults of Unlearnable-Examples on CIFAR-10 / ResNet-18.

    ``num_steps`` and ``stop_error`` left out take the kind's values from :data:`EM_KIND_DEFAULTS`.
    """

    name: Literal["em"] = "em"
    train_steps: int = Field(default=10, ge=0, description="backbone batches trained per outer round")
    max_rounds: int = Field(default=50, ge=1, description="outer rounds at most")
    stop_error: float = Field(
        default=0.01,
        ge=0,
        lt=1,
        description="stop when the error on the perturbed set is below (left out: UE's .01 sample-, .1 class-wise)",
    )

    @model_validator(mode="before")
    @classmethod
    def _kind_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            kind = data.get("kind", "sample")
            per_kind = EM_KIND_DEFAULTS.get(kind) if isinstance(kind, str) else None  # bad kinds: the field's check
            if per_kind is not None:
                data = {**per_kind, **data}
        return data


class ErrorMaxConfig(_PGDBase):
    """Error-maximising (adversarial, min-max) noise against a backbone trained on clean data (baseline)."""

    name: Literal["error-max"] = "error-max"
    pretrain_epochs: int = Field(default=10, ge=1, description="epochs of clean training of the backbone first")


# -- PGD ----------------------------------------------------------------------------------------------------------
def sample_pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    delta: torch.Tensor,
    *,
    epsilon: float,
    step_size: float,
    num_steps: int,
    direction: Literal["min", "max"] = "min",
) -> torch.Tensor:
    """Signed-gradient PGD on per-image noise; returns the new ``δ = clip(x' − x, −ε, ε)`` (``x + δ`` inside [0, 1]).

    Args:
        model: classifier on [0, 1] images (put in eval mode by the caller).
        x: clean images ``(B, C, H, W)`` in [0, 1]; y: labels ``(B,)``.
        delta: starting noise ``(B, C, H, W)``.
        direction: ``"min"`` descends the cross-entropy (error-minimising), ``"max"`` ascends it (adversarial).
    """
    sign = -1.0 if direction == "min" else 1.0
    x_adv = (x + delta.clamp(-epsilon, epsilon)).clamp(0, 1)
    for _ in range(num_steps):
        x_adv = x_adv.detach().requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y)
        (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = x_adv.detach() + sign * step_size * grad.sign()
        x_adv = (x + (x_adv - x).clamp(-epsilon, epsilon)).clamp(0, 1)
    return (x_adv - x).detach()


def class_pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    class_noise: torch.Tensor,
    *,
    epsilon: float,
    step_size: float,
    num_steps: int,
    direction: Literal["min", "max"] = "min",
) -> torch.Tensor:
    """Signed-gradient PGD on class-wise noise ``(K, C, H, W)`` from one batch: the gradient of row c sums over the
    batch's images of class c; rows of absent classes are unchanged. Returns the new class noise within ``[−ε, ε]``."""
    sign = -1.0 if direction == "min" else 1.0
    d = class_noise.detach().clone()
    for _ in range(num_steps):
        d.requires_grad_(True)
        loss = F.cross_entropy(model((x + d[y]).clamp(0, 1)), y)
        (grad,) = torch.autograd.grad(loss, d)
        d = (d.detach() + sign * step_size * grad.sign()).clamp(-epsilon, epsilon)
    return d.detach()


def _poisoned_batch(data: LabelledImages, noise: torch.Tensor, kind: NoiseKind, idx: torch.Tensor, device: Any):
    x, y = data.batch(idx)
    d = noise[idx] if kind == "sample" else noise[y]
    return x.to(device), y.to(device), d.to(device)


def _backbone(cfg: _PGDBase, data: LabelledImages, device: Any) -> nn.Module:
    from privlab.models import build_model

    norm = {"mean": data.mean, "std": data.std} if cfg.normalize else {}
    return build_model(cfg.backbone, data.num_classes, data.shape, **norm).to(device)


def _sweep(
    model: nn.Module,
    data: LabelledImages,
    noise: torch.Tensor,
    cfg: _PGDBase,
    direction: Literal["min", "max"],
    device: Any,
) -> torch.Tensor:
    """One pass over the whole set updating the noise batch by batch (in place on a CPU tensor)."""
    model.eval()
    n = len(data)
    for i in range(0, n, cfg.batch_size):
        idx = torch.arange(i, min(i + cfg.batch_size, n))
        x, y, d = _poisoned_batch(data, noise, cfg.kind, idx, device)
        kw = {"epsilon": cfg.epsilon, "step_size": cfg.step_size, "num_steps": cfg.num_steps, "direction": direction}
        if cfg.kind == "sample":
            noise[idx] = sample_pgd(model, x, y, d, **kw).cpu()
        else:
            noise.copy_(class_pgd(model, x, y, noise.to(device), **kw).cpu())
    return noise


@torch.no_grad()
def _perturbed_error(
    model: nn.Module, data: LabelledImages, noise: torch.Tensor, kind: NoiseKind, device: Any
) -> float:
    model.eval()
    wrong, n = 0, len(data)
    for i in range(0, n, 512):
        idx = torch.arange(i, min(i + 512, n))
        x, y, d = _poisoned_batch(data, noise, kind, idx, device)
        wrong += (model((x + d).clamp(0, 1)).argmax(1) != y).sum().item()
    return wrong / max(n, 1)


# -- protections --------------------------------------------------------------------------------------------------
@PROTECTIONS.register("random", kind="data", config=RandomNoiseConfig, description="uniform noise U(−ε, ε) (baseline)")
class RandomNoise(NoiseGenerator):
    """Uniform random noise at the budget — the "does any noise hurt?" baseline."""

    config_class = RandomNoiseConfig

    def generate(
        self,
        data: LabelledImages,
        *,
        seed: int = 0,
        device: Any = "cpu",
        progress: Progress | None = None,
        on_round: RoundCallback | None = None,
        monitor: Monitor | None = None,
    ) -> PerturbationBank:
        """Draw the noise for ``data`` (seeded)."""
        noise = uniform_noise(noise_shape(data, self.cfg.kind), self.cfg.epsilon, seed)
        meta = {"protection": "random", "backbone": None, "dataset": data.name, "seed": seed, "images_per_second": None}
        return PerturbationBank(noise, self.cfg.kind, self.cfg.epsilon, meta)


@PROTECTIONS.register(
    "em", kind="data", config=EMConfig, description="error-minimising (min-min) noise, sample- or class-wise"
)
class ErrorMinimizingNoise(NoiseGenerator):
    """Error-minimising noise (Unlearnable Examples): see the module docstring for the algorithm."""

    config_class = EMConfig

    def generate(
        self,
        data: LabelledImages,
        *,
        seed: int = 0,
        device: Any = "cpu",
        progress: Progress | None = None,
        on_round: RoundCallback | None = None,
        monitor: Monitor | None = None,
    ) -> PerturbationBank:
        """Run the min-min outer loop on ``data`` (clean images in [0, 1]); returns the bank and its history.

        ``on_round(round, stats)`` gets ``train_loss`` (nats, backbone batches of the round), ``perturbed_error``
        (fraction, eval mode, after the sweep) and ``seconds`` after each round.
        """
        cfg, progress = self.cfg, progress or Progress(quiet=True)
        seed_everything(seed)
        t0 = time.perf_counter()
        model = _backbone(cfg, data, device)
        tcfg = TrainConfig(optimizer=cfg.optimizer, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        opt = make_optimizer(model.parameters(), tcfg)
        noise = uniform_noise(noise_shape(data, cfg.kind), cfg.epsilon, seed + 17)
        if not cfg.random_start:
            noise.zero_()
        batches = cycle_batches(len(data), cfg.batch_size, torch.Generator().manual_seed(seed + 3))
        history: list[dict[str, float]] = []
        images_done = 0
        with progress.task(f"{cfg.kind}-wise error-minimising noise", total=cfg.max_rounds) as advance:
            for rnd in range(1, cfg.max_rounds + 1):
                tr = time.perf_counter()
                model.train()
                losses = []
                for _ in range(cfg.train_steps):
                    x, y, d = _poisoned_batch(data, noise, cfg.kind, next(batches), device)
                    opt.zero_grad(set_to_none=True)
                    loss = F.cross_entropy(model((x + d).clamp(0, 1)), y)
                    loss.backward()
                    opt.step()
                    losses.append(loss.item())
                _sweep(model, data, noise, cfg, "min", device)
                images_done += len(data)
                err = _perturbed_error(model, data, noise, cfg.kind, device)
                stats = {
                    "train_loss": sum(losses) / len(losses) if losses else math.nan,
                    "perturbed_error": err,
                    "seconds": time.perf_counter() - tr,
                }
                history.append({"round": rnd, **stats})
                if on_round is not None:
                    on_round(rnd, stats)
                advance(1, err=err)
                if err < cfg.stop_error:
                    break
        seconds = time.perf_counter() - t0
        meta = {
            "protection": "em",
            "backbone": cfg.backbone,
            "dataset": data.name,
            "seed": seed,
            "rounds": len(history),
            "seconds": seconds,
            "images_per_second": images_done / seconds,
            "final_perturbed_error": history[-1]["perturbed_error"],
            "config": cfg.model_dump(mode="json"),
        }
        return PerturbationBank(noise, cfg.kind, cfg.epsilon, meta, history)


@PROTECTIONS.register(
    "error-max", kind="data", config=ErrorMaxConfig, description="error-maximising (adversarial PGD) noise (baseline)"
)
class ErrorMaxNoise(NoiseGenerator):
    """Adversarial noise against a backbone trained on the clean data (the min-max baseline of UE)."""

    config_class = ErrorMaxConfig

    def generate(
        self,
        data: LabelledImages,
        *,
        seed: int = 0,
        device: Any = "cpu",
        progress: Progress | None = None,
        on_round: RoundCallback | None = None,
        monitor: Monitor | None = None,
    ) -> PerturbationBank:
        """Train the backbone on clean ``data`` for ``pretrain_epochs``, then one PGD-ascent sweep over the set."""
        cfg, progress = self.cfg, progress or Progress(quiet=True)
        seed_everything(seed)
        t0 = time.perf_counter()
        model = _backbone(cfg, data, device)
        tcfg = TrainConfig(
            epochs=cfg.pretrain_epochs,
            batch_size=cfg.batch_size,
            optimizer=cfg.optimizer,
            lr=cfg.lr,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
        )
        fit(model, data, tcfg, seed=seed, device=device, progress=progress)
        clean_acc = evaluate(model, data, device=device)["accuracy"]
        t1 = time.perf_counter()
        noise = uniform_noise(noise_shape(data, cfg.kind), cfg.epsilon, seed + 17)
        if not cfg.random_start:
            noise.zero_()
        _sweep(model, data, noise, cfg, "max", device)
        err = _perturbed_error(model, data, noise, cfg.kind, device)
        stats = {"train_loss": math.nan, "perturbed_error": err, "seconds": time.perf_counter() - t1}
        if on_round is not None:
            on_round(1, stats)
        seconds = time.perf_counter() - t0
        meta = {
            "protection": "error-max",
            "backbone": cfg.backbone,
            "dataset": data.name,
            "seed": seed,
            "backbone_clean_accuracy": clean_acc,
            "seconds": seconds,
            "images_per_second": len(data) / (time.perf_counter() - t1),
            "final_perturbed_error": err,
            "config": cfg.model_dump(mode="json"),
        }
        return PerturbationBank(noise, cfg.kind, cfg.epsilon, meta, [{"round": 1, **stats}])
