"""Error-minimising / -maximising / random noise: budget, class-wise structure, effect on the loss, banks on disk."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from privlab.data import load_dataset
from privlab.data.wrappers import PoisonedImages
from privlab.errors import BudgetError, FileFormatError
from privlab.models import build_model
from privlab.protect import PROTECTIONS
from privlab.protect.unlearnable_em import (
    EMConfig,
    ErrorMaxConfig,
    ErrorMaxNoise,
    ErrorMinimizingNoise,
    PerturbationBank,
    RandomNoise,
    RandomNoiseConfig,
    class_pgd,
    sample_pgd,
)

EPS = 8 / 255


@pytest.fixture(scope="module")
def tiny():
    return load_dataset("digits", "train", resize=16, limit=120, seed=0)


def test_registered_as_data_protections() -> None:
    for name in ("em", "error-max", "random"):
        assert PROTECTIONS.entry(name).meta["kind"] == "data"


@pytest.mark.parametrize("direction", ["min", "max"])
def test_sample_pgd_stays_in_ball_and_box(direction: str) -> None:
    torch.manual_seed(0)
    model = build_model("lenet5", 10, (1, 16, 16)).eval()
    x = torch.rand(8, 1, 16, 16)
    x[:, :, :4] = 0.0  # pixels at the box edges
    x[:, :, -4:] = 1.0
    d0 = (torch.rand_like(x) * 2 - 1) * EPS
    d = sample_pgd(model, x, torch.arange(8) % 10, d0, epsilon=EPS, step_size=2 / 255, num_steps=5, direction=direction)
    assert d.abs().max().item() <= EPS + 1e-6
    assert (x + d).min() >= 0 and (x + d).max() <= 1
    loss0 = F.cross_entropy(model((x + d0).clamp(0, 1)), torch.arange(8) % 10)
    loss1 = F.cross_entropy(model(x + d), torch.arange(8) % 10)
    assert (loss1 < loss0) if direction == "min" else (loss1 > loss0)


def test_class_pgd_updates_only_present_classes() -> None:
    torch.manual_seed(0)
    model = build_model("lenet5", 10, (1, 16, 16)).eval()
    noise = (torch.rand(10, 1, 16, 16) * 2 - 1) * EPS
    y = torch.tensor([0, 0, 3, 3])
    new = class_pgd(model, torch.rand(4, 1, 16, 16), y, noise, epsilon=EPS, step_size=1 / 255, num_steps=3)
    assert new.abs().max() <= EPS + 1e-7
    untouched = [c for c in range(10) if c not in (0, 3)]
    assert torch.equal(new[untouched], noise[untouched])
    assert not torch.equal(new[0], noise[0])


def test_em_steps_and_stop_error_default_per_kind_as_in_ue() -> None:
    assert (EMConfig().num_steps, EMConfig().stop_error) == (20, 0.01)
    assert (EMConfig(kind="class").num_steps, EMConfig(kind="class").stop_error) == (1, 0.1)
    given = EMConfig(kind="class", num_steps=4, stop_error=0.05)
    assert (given.num_steps, given.stop_error) == (4, 0.05)


def test_class_wise_em_is_constant_within_a_class(tiny) -> None:
    cfg = EMConfig(
        kind="class",
        backbone="lenet5",
        num_steps=1,
        train_steps=2,
        max_rounds=1,
        batch_size=40,
        optimizer="adam",
        lr=1e-3,
    )
    bank = ErrorMinimizingNoise(cfg).generate(tiny, seed=0)
    assert bank.noise.shape == (10, 1, 16, 16) and bank.noise.abs().max() <= EPS + 1e-7
    p = PoisonedImages(tiny, bank.noise, kind="class", epsilon=EPS, quantize=False)
    delta = p.images - tiny.images
    inside = ((tiny.images > EPS) & (tiny.images < 1 - EPS)).flatten(1)  # where no clamp at 0/1 happened
    for c in range(10):
        rows = delta[tiny.labels == c].flatten(1)
        ok = inside[tiny.labels == c]
        ref = bank.noise[c].flatten()
        assert torch.allclose(rows[ok], ref.expand_as(rows)[ok], atol=1e-6)


def test_em_lowers_the_training_loss_compared_with_random_noise(tiny) -> None:
    cfg = EMConfig(
        kind="sample",
        backbone="lenet5",
        num_steps=10,
        step_size=2 / 255,
        train_steps=5,
        max_rounds=3,
        batch_size=40,
        optimizer="adam",
        lr=2e-3,
        weight_decay=0.0,
    )
    em = ErrorMinimizingNoise(cfg).generate(tiny, seed=0)
    rnd = RandomNoise(RandomNoiseConfig(kind="sample")).generate(tiny, seed=0)
    assert len(em.history) >= 1 and em.meta["images_per_second"] > 0
    for seed in (1, 2):  # two weight initialisations of a fresh model
        losses = {}
        for name, bank in (("em", em), ("random", rnd)):
            data = PoisonedImages(tiny, bank.noise, kind="sample", epsilon=EPS)
            torch.manual_seed(seed)
            model = build_model("lenet5", 10, tiny.shape, mean=tiny.mean, std=tiny.std)
            opt = torch.optim.Adam(model.parameters(), lr=2e-3)
            x, y = data.images, data.labels
            for _ in range(15):
                opt.zero_grad()
                F.cross_entropy(model(x), y).backward()
                opt.step()
            losses[name] = F.cross_entropy(model(x), y).item()
        # measured after 15 full-batch Adam steps: seed 1 em 0.245 vs random 0.325 nats; seed 2 ≈ 0.84× as well
        assert losses["em"] < 0.9 * losses["random"], losses


def test_error_max_raises_the_backbone_error(tiny) -> None:
    cfg = ErrorMaxConfig(
        kind="sample",
        backbone="lenet5",
        num_steps=5,
        step_size=2 / 255,
        pretrain_epochs=3,
        batch_size=40,
        optimizer="adam",
        lr=3e-3,
        weight_decay=0.0,
    )
    bank = ErrorMaxNoise(cfg).generate(tiny, seed=0)
    assert bank.noise.abs().max() <= EPS + 1e-7
    assert bank.history[0]["perturbed_error"] > 1 - bank.meta["backbone_clean_accuracy"]


def test_random_noise_is_uniform_in_the_ball(tiny) -> None:
    bank = RandomNoise(RandomNoiseConfig(kind="sample")).generate(tiny, seed=3)
    assert bank.noise.shape == (120, 1, 16, 16)
    assert bank.noise.abs().max() <= EPS
    assert bank.noise.mean().abs() < 0.05 * EPS
    assert bank.noise.std().item() == pytest.approx(EPS / 3**0.5, rel=0.05)  # U(−ε, ε): σ = ε/√3


def test_step_larger_than_budget_is_refused() -> None:
    with pytest.raises(BudgetError, match="step_size"):
        ErrorMinimizingNoise(EMConfig(step_size=16 / 255))


def test_bank_round_trip_and_checks(tmp_path, tiny) -> None:
    bank = RandomNoise(RandomNoiseConfig(kind="class")).generate(tiny, seed=0)
    bank.meta.update({"backbone": "lenet5"})
    path = tmp_path / "bank.safetensors"
    bank.save(path)
    back = PerturbationBank.load(path, expected_shape=(10, 1, 16, 16), kind="class")
    assert torch.equal(back.noise, bank.noise)
    assert back.kind == "class" and back.epsilon == pytest.approx(EPS)
    assert back.meta["backbone"] == "lenet5" and back.meta["dataset"] == "digits" and back.meta["seed"] == 0
    assert back.budget.radius == pytest.approx(EPS) and back.budget.kind == "linf"
    with pytest.raises(
        FileFormatError,
        match=r"bank\.safetensors: noise has shape \(10, 1, 16, 16\), expected "
        r"\(120, 1, 16, 16\)",
    ):
        PerturbationBank.load(path, expected_shape=(120, 1, 16, 16))
    with pytest.raises(FileFormatError, match="holds class-wise noise, expected sample-wise"):
        PerturbationBank.load(path, kind="sample")
    over = PerturbationBank(bank.noise * 2, "class", EPS)
    over.save(tmp_path / "over.safetensors")
    with pytest.raises(FileFormatError, match="exceeds its budget"):
        PerturbationBank.load(tmp_path / "over.safetensors")
