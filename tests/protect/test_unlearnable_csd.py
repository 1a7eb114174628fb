"""TUE: the CSD term on hand-made separable / inseparable noise, and the generator's budget and effect."""

from __future__ import annotations

import math

import pytest
import torch

from privlab.data import load_dataset
from privlab.protect import PROTECTIONS
from privlab.protect.unlearnable_csd import TransferableUnlearnable, TUEConfig, csd_loss

EPS = 8 / 255


def test_csd_hand_computed_two_classes() -> None:
    # class 0 at (0, 0) ± (0, 0.1), class 1 at (1, 0) ± (0, 0.1): S = 0.1 each, M = 1
    d = torch.tensor([[0.0, -0.1], [0.0, 0.1], [1.0, -0.1], [1.0, 0.1]])
    y = torch.tensor([0, 0, 1, 1])
    assert csd_loss(d, y).item() == pytest.approx((0.2 + 1e-5) / (1 + 1e-5), abs=1e-5)


def test_csd_three_classes_is_the_mean_over_pairs() -> None:
    d = torch.tensor([[0.0, 0.0], [0.0, 0.0], [3.0, 0.0], [3.0, 0.0], [0.0, 4.0], [0.0, 2.0]])
    y = torch.tensor([0, 0, 1, 1, 2, 2])  # S = 0, 0, 1; centres (0,0), (3,0), (0,3)
    pairs = [(0 + 0, 3.0), (0 + 1, 3.0), (0 + 1, math.sqrt(18))]
    expected = sum((s + 1e-5) / (m + 1e-5) for s, m in pairs) / 3
    assert csd_loss(d, y).item() == pytest.approx(expected, rel=1e-5)


def test_csd_separable_is_low_and_inseparable_is_high() -> None:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(4).repeat(25)
    centres = torch.randn(4, 50, generator=g) * 3
    separable = centres[y] + 0.1 * torch.randn(100, 50, generator=g)
    inseparable = torch.randn(100, 50, generator=g)  # same distribution for every class
    low, high = csd_loss(separable, y).item(), csd_loss(inseparable, y).item()
    assert low < 0.1 and high > 5  # measured 0.046 and 7.4
    assert csd_loss(separable, torch.zeros(100, dtype=torch.long)).item() == 0.0  # one class: 0


def test_csd_detached_spread_only_moves_centres() -> None:
    d = torch.tensor([[0.0, -0.1], [0.0, 0.1], [1.0, -0.1], [1.0, 0.3]], requires_grad=True)
    y = torch.tensor([0, 0, 1, 1])
    (g_full,) = torch.autograd.grad(csd_loss(d, y), d)
    (g_det,) = torch.autograd.grad(csd_loss(d, y, detach_spread=True), d)
    # with the spread detached, every sample of a class gets the same gradient (only its centre matters)
    assert torch.allclose(g_det[0], g_det[1]) and torch.allclose(g_det[2], g_det[3])
    assert not torch.allclose(g_full[0], g_full[1])


def test_tue_registered_and_generates_class_separable_noise_in_budget() -> None:
    assert PROTECTIONS.entry("tue").meta["kind"] == "data"
    data = load_dataset("digits", "train", resize=16, limit=60, seed=0)
    cfg = TUEConfig(
        encoder="lenet5",
        epochs=1,
        num_steps=5,
        step_size=2 / 255,
        train_steps=1,
        batch_size=30,
        ssl_weight=1.0,
        csd_weight=1.0,
        augment={"crop_scale": (0.5, 1.0), "flip": False},
    )
    bank = TransferableUnlearnable(cfg).generate(data, seed=0)
    assert bank.noise.shape == (60, 1, 16, 16) and bank.kind == "sample"
    assert bank.noise.abs().max().item() <= EPS + 1e-6
    start = csd_loss((torch.rand(60, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1) * EPS, data.labels)
    assert bank.history[-1]["csd"] < 0.5 * start.item()  # measured: random start 2.99 → 0.97 after one epoch
    assert math.isfinite(bank.history[-1]["ssl_loss"]) and bank.meta["backbone"] == "simclr:lenet5"


@pytest.mark.parametrize("method", ["moco", "simsiam"])
def test_tue_other_backbones_and_class_wise(method: str) -> None:
    data = load_dataset("digits", "train", resize=16, limit=40, seed=0)
    cfg = TUEConfig(
        method=method,
        kind="class",
        encoder="lenet5",
        epochs=1,
        num_steps=2,
        step_size=2 / 255,
        train_steps=1,
        batch_size=20,
        ssl_weight=1.0,
        csd_weight=0.1,
        queue_size=64,
        optimizer="sgd",
        lr=0.01,
        allow_key_grad=True,
    )
    bank = TransferableUnlearnable(cfg).generate(data, seed=0)
    assert bank.noise.shape == (10, 1, 16, 16) and bank.noise.abs().max() <= EPS + 1e-6


def test_shuffled_sweeps_make_the_noise_class_separable_over_the_whole_set() -> None:
    # CSD is a per-batch loss: with fixed contiguous batches each batch's classes converge to their own pattern
    # (separable within the batch, not over the set); a new random partition per sweep gives one pattern per class
    data = load_dataset("digits", "train", resize=16, limit=120, seed=0)

    def dataset_csd(shuffle: bool) -> float:
        cfg = TUEConfig(
            encoder="lenet5",
            epochs=4,
            num_steps=4,
            step_size=2 / 255,
            train_steps=0,
            batch_size=30,
            ssl_weight=0.0,
            csd_weight=0.1,
            shuffle_sweeps=shuffle,
        )
        return TransferableUnlearnable(cfg).generate(data, seed=0).history[-1]["csd"]

    fixed, shuffled = dataset_csd(False), dataset_csd(True)
    assert shuffled < 0.5 * fixed, (shuffled, fixed)  # measured: 0.58 against 1.96 after 4 sweeps


@pytest.mark.parametrize("per_sample", [False, True])
def test_noise_objective_draws_its_augmentation_per_batch_unless_asked(monkeypatch, per_sample: bool) -> None:
    # the released code augments the noise objective's batch tensor with one parameter draw; SSL training per image
    from privlab.data import transforms

    seen: dict[str, set[bool]] = {"train": set(), "sweep": set()}
    phase = {"now": "train"}
    real_call, real_sweep = transforms.SimCLRAugment.__call__, TransferableUnlearnable._sweep

    def spy_call(self, x, g):
        seen[phase["now"]].add(self.cfg.per_sample)
        return real_call(self, x, g)

    def spy_sweep(self, *args, **kwargs):
        phase["now"] = "sweep"
        try:
            return real_sweep(self, *args, **kwargs)
        finally:
            phase["now"] = "train"

    monkeypatch.setattr(transforms.SimCLRAugment, "__call__", spy_call)
    monkeypatch.setattr(TransferableUnlearnable, "_sweep", spy_sweep)
    data = load_dataset("digits", "train", resize=16, limit=40, seed=0)
    cfg = TUEConfig(
        encoder="lenet5",
        epochs=1,
        num_steps=1,
        train_steps=1,
        batch_size=20,
        ssl_weight=1.0,
        noise_aug_per_sample=per_sample,
        augment={"flip": False},
    )
    TransferableUnlearnable(cfg).generate(data, seed=0)
    assert seen == {"train": {True}, "sweep": {per_sample}}
