"""The one vocabulary of a self-supervised model's settings, shared by every config that trains one (the TUE
protection, the SSL attacker): ``method`` / ``encoder`` / ``momentum`` …; see :mod:`privlab.models.ssl`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from privlab.config import Spec
from privlab.data.transforms import AugmentConfig
from privlab.models import ModelName

__all__ = ["SSLConfig", "build_ssl_from_config"]


class SSLConfig(Spec):
    """SSL model and optimiser settings (defaults: SimCLR with Adam, as in the original CIFAR code)."""

    method: Literal["simclr", "moco", "simsiam"] = Field(default="simclr", description="SSL method")
    encoder: ModelName = Field(default="resnet18", description="encoder trunk (privlab models; last linear removed)")
    normalize: bool = Field(default=True, description="normalise inside the encoder with the data set's mean/std")
    optimizer: Literal["adam", "sgd"] = Field(default="adam", description="adam (SimCLR) or sgd (MoCo, SimSiam)")
    lr: float = Field(default=1e-3, gt=0, description="learning rate")
    weight_decay: float = Field(default=1e-6, ge=0, description="weight decay")
    temperature: float | None = Field(default=None, gt=0, description="NT-Xent/InfoNCE τ (None: 0.5 / 0.2)")
    queue_size: int = Field(default=4096, ge=1, description="MoCo queue length")
    momentum: float = Field(default=0.99, ge=0, lt=1, description="MoCo key-encoder momentum")
    augment: AugmentConfig = Field(default_factory=AugmentConfig, description="view augmentation")


def build_ssl_from_config(cfg: SSLConfig, in_shape: Any, mean: Any = None, std: Any = None) -> Any:
    """:func:`~privlab.models.ssl.build_ssl_model` from ``cfg`` (``mean``/``std`` used when ``cfg.normalize``)."""
    from privlab.models.ssl import build_ssl_model

    norm = {"mean": mean, "std": std} if cfg.normalize else {}
    return build_ssl_model(
        cfg.method,
        cfg.encoder,
        in_shape,
        temperature=cfg.temperature,
        queue_size=cfg.queue_size,
        momentum=cfg.momentum,
        **norm,
    )
