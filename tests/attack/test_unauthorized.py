"""Unauthorized supervised and self-supervised training: they learn from clean data and measure on clean test data."""

from __future__ import annotations

import pytest
import torch

from privlab.attack import ATTACKS, Observation
from privlab.attack.unauthorized_ssl import SSLAttackConfig, UnauthorizedSSL, evaluate_encoder, pretrain_ssl
from privlab.attack.unauthorized_supervised import (
    SupervisedAttackConfig,
    UnauthorizedSupervised,
    train_unauthorized,
)
from privlab.data import load_dataset
from privlab.errors import ConfigError
from privlab.train import TrainConfig


@pytest.fixture(scope="module")
def split():
    train = load_dataset("digits", "train", resize=16, limit=200, seed=0)
    test = load_dataset("digits", "test", resize=16, limit=100, seed=0)
    return train, test


CFG = SupervisedAttackConfig(
    model="lenet5", augment="none", train=TrainConfig(epochs=5, batch_size=32, lr=3e-3, scheduler="cosine")
)


def test_supervised_clean_vs_contentless_training(split) -> None:
    train, test = split
    res = train_unauthorized(train, test, CFG, seed=0)
    assert len(res.history) == 5 and res.history[-1]["test_accuracy"] == res.test_accuracy
    assert res.test_accuracy > 0.7  # measured 0.82 (chance 0.1)
    # an attacker whose released images carry no content learns nothing that transfers to clean test images
    blank = train.with_images(torch.zeros_like(train.images))
    assert train_unauthorized(blank, test, CFG, seed=0).test_accuracy < 0.25  # measured 0.11


def test_supervised_attack_form_needs_the_test_split(split) -> None:
    train, test = split
    attack = ATTACKS.get("unauthorized-supervised")(CFG)
    assert isinstance(attack, UnauthorizedSupervised)
    with pytest.raises(ConfigError, match="meta\\['test'\\]"):
        attack.run(Observation(data=train.images, labels=train.labels))
    out = attack.run(Observation(data=train.images[:100], labels=train.labels[:100], meta={"test": test}))
    assert 0 <= out.stats["test_accuracy"] <= 1 and attack.model is not None


def test_ssl_pretraining_and_probes(split) -> None:
    train, test = split
    cfg = SSLAttackConfig(
        encoder="lenet5", epochs=3, batch_size=100, augment={"crop_scale": (0.5, 1.0), "flip": False}, knn_k=20
    )
    model, hist = pretrain_ssl(train, cfg, seed=0)
    assert len(hist) == 3 and hist[-1]["ssl_loss"] < hist[0]["ssl_loss"]
    ev = evaluate_encoder(model, train, train, test, cfg)
    assert ev["linear_probe_accuracy"] > 0.7 and ev["knn_accuracy"] > 0.5  # measured 0.93 and 0.76
    out = UnauthorizedSSL(cfg.model_copy(update={"method": "simsiam", "epochs": 1})).run(
        Observation(data=train.images, labels=train.labels, meta={"test": test, "clean_train": train})
    )
    assert set(out.stats) == {"linear_probe_accuracy", "knn_accuracy"}


def test_class_wise_noise_reaches_the_victim_through_the_wrapper(split) -> None:
    """The victim trains on the poisoned copy: class-wise noise on content-free images survives the uint8
    re-quantisation and is learned (train accuracy), but teaches nothing about clean test digits."""
    from privlab.data.wrappers import PoisonedImages

    train, test = split
    eps = 32 / 255
    g = torch.Generator().manual_seed(0)
    blocks = torch.sign(torch.randn(train.num_classes, 1, 4, 4, generator=g)) * eps  # low-frequency ±ε pattern
    noise = torch.nn.functional.interpolate(blocks, size=train.shape[1:], mode="nearest")
    grey = train.with_images(torch.full_like(train.images, 0.5))
    poisoned = PoisonedImages(grey, noise, kind="class", epsilon=eps, quantize=True)
    assert (poisoned.images - grey.images).abs().max().item() == pytest.approx(eps, abs=0.5 / 255)
    res = train_unauthorized(poisoned, test, CFG, seed=0)
    assert res.train_accuracy > 0.95  # the noise alone identifies the class
    assert res.test_accuracy < 0.25  # and nothing transfers to clean digits (chance 0.1)
    # without the noise the same grey images carry no label information at all
    assert train_unauthorized(grey, test, CFG, seed=0).train_accuracy < 0.35
