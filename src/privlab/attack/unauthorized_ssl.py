"""Unauthorized self-supervised training: SimCLR / MoCo v2 / SimSiam pre-training on the released (protected) set.

The attacker has only the released images; it returns its pre-trained model (``AttackOutput.model``, encoder at
``.encoder``). How good the encoder is — a linear probe and a kNN classifier on the clean test split — is
measurement, done by the pipeline (:mod:`privlab.measure.utility.ssl_eval`).

Example:
    >>> from privlab.data import load_dataset
    >>> from privlab.attack.unauthorized_ssl import SSLAttackConfig, pretrain_ssl
    >>> data = load_dataset("digits", "train", limit=40)
    >>> model, hist = pretrain_ssl(data, SSLAttackConfig(encoder="lenet5", epochs=1, batch_size=20), seed=0)
    >>> len(hist), model.method
    (1, 'simclr')
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from pydantic import Field

from privlab.attack.base import ATTACKS, Attack, AttackOutput, Observation
from privlab.context import Progress, seed_everything
from privlab.data.base import LabelledImages
from privlab.data.transforms import SimCLRAugment
from privlab.errors import ConfigError
from privlab.models.ssl import SSLModel, ssl_optimizer
from privlab.models.ssl_config import SSLConfig, build_ssl_from_config

__all__ = ["SSLAttackConfig", "UnauthorizedSSL", "pretrain_ssl"]


class SSLAttackConfig(SSLConfig):
    """The attacker's self-supervised recipe: the SSL model (:class:`~privlab.models.ssl_config.SSLConfig`) and
    its pre-training schedule."""

    epochs: int = Field(default=500, ge=1, description="pre-training epochs")
    batch_size: int = Field(default=512, ge=2, description="pre-training batch size")
    cosine: bool = Field(default=False, description="cosine learning-rate decay over the epochs")


def pretrain_ssl(
    data: LabelledImages,
    cfg: SSLAttackConfig,
    *,
    seed: int = 0,
    device: Any = "cpu",
    progress: Progress | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> tuple[SSLModel, list[dict[str, float]]]:
    """Pre-train ``cfg.method`` on ``data``'s images (labels unused); returns the model and per-epoch
    ``ssl_loss`` (nats) / ``seconds``. Batches smaller than 2 images are skipped (BatchNorm, NT-Xent)."""
    progress = progress or Progress(quiet=True)
    seed_everything(seed)
    model = build_ssl_from_config(cfg, data.shape, mean=data.mean, std=data.std).to(device)
    opt = ssl_optimizer(model, cfg.optimizer, cfg.lr, cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs) if cfg.cosine else None
    aug = SimCLRAugment(cfg.augment)
    g_order = torch.Generator().manual_seed(seed)
    g_aug = torch.Generator(device=device).manual_seed(seed + 1)
    history: list[dict[str, float]] = []
    n = len(data)
    with progress.task(f"{cfg.method} pre-training", total=cfg.epochs) as advance:
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            order = torch.randperm(n, generator=g_order)
            losses = []
            for i in range(0, n, cfg.batch_size):
                idx = order[i : i + cfg.batch_size]
                if len(idx) < 2:
                    continue
                x, _ = data.batch(idx)
                x = x.to(device)
                loss = model.ssl_loss(aug(x, g_aug), aug(x, g_aug))
                if not torch.isfinite(loss):
                    raise ConfigError(f"SSL pre-training diverged at epoch {epoch}; lower lr (now {cfg.lr})")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                model.after_step()
                losses.append(loss.item())
            if sched is not None:
                sched.step()
            stats = {"ssl_loss": sum(losses) / max(len(losses), 1), "seconds": time.perf_counter() - t0}
            history.append(stats)
            if on_epoch is not None:
                on_epoch(epoch, stats)
            advance(1, loss=stats["ssl_loss"])
    model.eval()
    return model, history


@ATTACKS.register(
    "unauthorized-ssl",
    requires=("data",),
    config=SSLAttackConfig,
    description="SimCLR / MoCo v2 / SimSiam pre-training on the released set; returns the encoder",
)
class UnauthorizedSSL(Attack):
    """Attack form of :func:`pretrain_ssl`: pre-trains on ``observation.data`` (the released images or data set)."""

    config_class = SSLAttackConfig
    requires = ("data",)

    def run(
        self,
        observation: Observation,
        *,
        seed: int = 0,
        generator: torch.Generator | None = None,
        device: Any = "cpu",
        progress: Progress | None = None,
    ) -> AttackOutput:
        """Pre-train on ``observation.data``; returns the model (``.encoder`` is the trunk) and ``stats["history"]``
        (per epoch ``ssl_loss`` nats, ``seconds``)."""
        released = observation.data
        if released is None:
            raise ConfigError("unauthorized-ssl needs the released images (observation.data)")
        if not isinstance(released, LabelledImages):
            released = LabelledImages(released, torch.zeros(len(released), dtype=torch.long), 1)
        model, history = pretrain_ssl(released, self.config, seed=seed, device=device, progress=progress)
        return AttackOutput(model=model, stats={"history": history})
