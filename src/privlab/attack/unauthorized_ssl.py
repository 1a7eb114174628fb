"""Unauthorized self-supervised training: SimCLR / MoCo v2 / SimSiam pre-training on the released (protected) set,
then a linear probe and a weighted-kNN classifier on the frozen encoder.

The probe is fitted on the images the attacker has (``probe_data="poisoned"``, the default: the attacker never sees
clean training images) or on the clean training images (``"clean"``, the encoder-quality view); both are tested on
the clean test split. The kNN monitor uses the clean training set as its feature bank (as in TUE's code).

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
from typing import Any, Literal

import torch
from pydantic import Field

from privlab.attack.base import ATTACKS, AttackOutput, Observation
from privlab.config import Spec
from privlab.context import Progress, seed_everything
from privlab.data.base import LabelledImages
from privlab.data.transforms import AugmentConfig, SimCLRAugment
from privlab.errors import ConfigError
from privlab.measure.utility.ssl_eval import extract_features, knn_accuracy, linear_probe_accuracy
from privlab.models.ssl import SSLModel, build_ssl_model, ssl_optimizer

__all__ = ["SSLAttackConfig", "UnauthorizedSSL", "evaluate_encoder", "pretrain_ssl"]


class SSLAttackConfig(Spec):
    """The attacker's self-supervised recipe (defaults: SimCLR with Adam as in the original CIFAR code)."""

    method: Literal["simclr", "moco", "simsiam"] = Field(default="simclr", description="SSL method")
    encoder: str = Field(default="resnet18", description="encoder trunk (privlab models; last linear removed)")
    normalize: bool = Field(default=True, description="normalise inside the encoder with the data set's mean/std")
    epochs: int = Field(default=500, ge=1, description="pre-training epochs")
    batch_size: int = Field(default=512, ge=2, description="pre-training batch size")
    optimizer: Literal["adam", "sgd"] = Field(default="adam", description="adam (SimCLR) or sgd (MoCo, SimSiam)")
    lr: float = Field(default=1e-3, gt=0, description="learning rate")
    weight_decay: float = Field(default=1e-6, ge=0, description="weight decay")
    cosine: bool = Field(default=False, description="cosine learning-rate decay over the epochs")
    temperature: float | None = Field(default=None, gt=0, description="NT-Xent/InfoNCE τ (None: 0.5 / 0.2)")
    queue_size: int = Field(default=4096, ge=1, description="MoCo queue length")
    momentum: float = Field(default=0.99, ge=0, lt=1, description="MoCo key-encoder momentum")
    augment: AugmentConfig = Field(default_factory=AugmentConfig, description="view augmentation")
    probe_data: Literal["poisoned", "clean"] = Field(
        default="poisoned", description="images the linear probe is fit on"
    )
    probe_c: float = Field(default=1.0, gt=0, description="inverse L2 strength of the logistic-regression probe")
    knn_k: int = Field(default=200, ge=1, description="kNN neighbours (capped at the bank size)")
    knn_temperature: float = Field(default=0.5, gt=0, description="kNN vote temperature τ")


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
    norm = {"mean": data.mean, "std": data.std} if cfg.normalize else {}
    model = build_ssl_model(
        cfg.method,
        cfg.encoder,
        data.shape,
        temperature=cfg.temperature,
        queue_size=cfg.queue_size,
        momentum=cfg.momentum,
        **norm,
    ).to(device)
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


def evaluate_encoder(
    model: SSLModel,
    probe_train: LabelledImages,
    clean_train: LabelledImages,
    test: LabelledImages,
    cfg: SSLAttackConfig,
    *,
    device: Any = "cpu",
) -> dict[str, float]:
    """``linear_probe_accuracy`` (probe fit on ``probe_train``) and ``knn_accuracy`` (bank = ``clean_train``), both on
    the clean ``test`` split, as fractions."""
    f_probe = extract_features(model.encoder, probe_train, device=device)
    f_test = extract_features(model.encoder, test, device=device)
    f_bank = f_probe if probe_train is clean_train else extract_features(model.encoder, clean_train, device=device)
    return {
        "linear_probe_accuracy": linear_probe_accuracy(f_probe, probe_train.labels, f_test, test.labels, c=cfg.probe_c),
        "knn_accuracy": knn_accuracy(
            f_bank,
            clean_train.labels,
            f_test,
            test.labels,
            num_classes=test.num_classes,
            k=cfg.knn_k,
            temperature=cfg.knn_temperature,
        ),
    }


@ATTACKS.register(
    "unauthorized-ssl",
    requires=("data", "labels"),
    config=SSLAttackConfig,
    description="SimCLR / MoCo v2 / SimSiam pre-training on the released set, then linear probe and kNN",
)
class UnauthorizedSSL:
    """Attack form of :func:`pretrain_ssl` + :func:`evaluate_encoder`. ``observation.meta`` must hold ``test`` and
    ``clean_train`` (:class:`LabelledImages`, used for measurement only)."""

    def __init__(self, cfg: SSLAttackConfig | None = None) -> None:
        self.cfg = cfg or SSLAttackConfig()
        self.model: SSLModel | None = None

    def run(self, obs: Observation, *, seed: int = 0, device: Any = "cpu") -> AttackOutput:
        """Pre-train on ``obs.data``; ``stats`` hold ``linear_probe_accuracy`` and ``knn_accuracy``."""
        test, clean = obs.meta.get("test"), obs.meta.get("clean_train")
        if obs.data is None or obs.labels is None or not isinstance(test, LabelledImages):
            raise ConfigError("unauthorized-ssl needs observation.data/labels and meta['test'] (clean test split)")
        released = LabelledImages(obs.data, obs.labels, test.num_classes, mean=test.mean, std=test.std)
        clean = clean if isinstance(clean, LabelledImages) else released
        self.model, _ = pretrain_ssl(released, self.cfg, seed=seed, device=device)
        probe = released if self.cfg.probe_data == "poisoned" else clean
        return AttackOutput(stats=evaluate_encoder(self.model, probe, clean, test, self.cfg, device=device))
