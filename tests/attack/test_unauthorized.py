"""Unauthorized supervised and self-supervised training: they learn from clean data and measure on clean test data."""

from __future__ import annotations

import pytest
import torch

from privlab.attack import ATTACKS, Observation
from privlab.attack.unauthorized_ssl import SSLAttackConfig, UnauthorizedSSL, pretrain_ssl
from privlab.attack.unauthorized_supervised import SupervisedAttackConfig, UnauthorizedSupervised
from privlab.data import load_dataset
from privlab.errors import ConfigError
from privlab.pipelines.unlearnable import SSLEvalSpec, evaluate_encoder
from privlab.train import TrainConfig, evaluate


@pytest.fixture(scope="module")
def split():
    train = load_dataset("digits", "train", resize=16, limit=200, seed=0)
    test = load_dataset("digits", "test", resize=16, limit=100, seed=0)
    return train, test


CFG = SupervisedAttackConfig(
    model="lenet5", augment="none", train=TrainConfig(epochs=5, batch_size=32, lr=3e-3, scheduler="cosine")
)


def _attack(train, test, seed: int = 0) -> tuple[float, float, list[dict[str, float]]]:
    """The attack as the pipeline runs it: the released set only; clean test accuracy measured by a hook after
    every epoch. Returns (train accuracy, final test accuracy, history)."""
    hook = lambda epoch, stats, model: {"test_accuracy": evaluate(model, test)["accuracy"]}  # noqa: E731
    attack = ATTACKS.get("unauthorized-supervised")(CFG, on_epoch=hook)
    out = attack.run(Observation(data=train, labels=train.labels), seed=seed)
    return out.stats["train_accuracy"], out.stats["history"][-1]["test_accuracy"], out.stats["history"]


def test_supervised_clean_vs_contentless_training(split) -> None:
    train, test = split
    _, test_acc, history = _attack(train, test)
    assert len(history) == 5
    assert test_acc > 0.7  # measured 0.82 (chance 0.1)
    # an attacker whose released images carry no content learns nothing that transfers to clean test images
    blank = train.with_images(torch.zeros_like(train.images))
    assert _attack(blank, test)[1] < 0.25  # measured 0.11


def test_supervised_attack_sees_only_the_released_set_and_returns_its_model(split) -> None:
    train, test = split
    attack = ATTACKS.get("unauthorized-supervised")(CFG)
    assert isinstance(attack, UnauthorizedSupervised) and attack.requires == ("data", "labels")
    with pytest.raises(ConfigError, match="num_classes"):
        attack.run(Observation(data=train.images, labels=train.labels))
    obs = Observation(data=train.images[:100], labels=train.labels[:100], meta={"num_classes": 10})
    out = attack.run(obs)
    assert out.model is not None and not out.model.training
    released = train.subset(torch.arange(100))
    assert out.stats["train_accuracy"] == pytest.approx(evaluate(out.model, released)["accuracy"])
    assert 0 <= evaluate(out.model, test)["accuracy"] <= 1


def test_ssl_pretraining_and_probes(split) -> None:
    train, test = split
    cfg = SSLAttackConfig(encoder="lenet5", epochs=3, batch_size=100, augment={"crop_scale": (0.5, 1.0), "flip": False})
    model, hist = pretrain_ssl(train, cfg, seed=0)
    assert len(hist) == 3 and hist[-1]["ssl_loss"] < hist[0]["ssl_loss"]
    ev = evaluate_encoder(model, train, train, test, SSLEvalSpec(knn_k=20))
    assert ev["linear_probe_accuracy"] > 0.7 and ev["knn_accuracy"] > 0.5  # measured 0.93 and 0.76
    out = UnauthorizedSSL(cfg.model_copy(update={"method": "simsiam", "epochs": 1})).run(Observation(data=train))
    assert out.model is not None and out.model.method == "simsiam" and len(out.stats["history"]) == 1


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
    train_acc, test_acc, _ = _attack(poisoned, test)
    assert train_acc > 0.95  # the noise alone identifies the class
    assert test_acc < 0.25  # and nothing transfers to clean digits (chance 0.1)
    # without the noise the same grey images carry no label information at all
    assert _attack(grey, test)[0] < 0.35
