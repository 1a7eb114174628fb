import pytest
import torch
from torch import nn

from privlab.data import load_dataset
from privlab.errors import ConfigError
from privlab.models import build_model
from privlab.train import TrainConfig, evaluate, fit


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "train", limit=400), load_dataset("digits", "test")


def test_fit_learns_and_is_seeded(digits):
    train, test = digits
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        m = build_model("lenet5", 10, train.shape, mean=train.mean, std=train.std)
        hist = fit(m, train, TrainConfig(epochs=4, batch_size=32, lr=3e-3), seed=0)
        results.append((hist[-1]["train_loss"], evaluate(m, test)["accuracy"]))
    assert results[0] == results[1]  # same seed → same numbers
    assert hist[0]["train_loss"] > hist[-1]["train_loss"]
    assert results[0][1] > 0.7  # 400 images, 4 epochs: well above chance (0.1)


def test_early_stopping_with_validation(digits):
    train, _ = digits
    m = build_model("mnist_cnn_shallow", 10, train.shape)
    cfg = TrainConfig(epochs=30, lr=1e-6, val_fraction=0.2, early_stop_patience=1)
    hist = fit(m, train, cfg, seed=1)
    assert len(hist) < 30  # a tiny lr makes no progress, so patience 1 stops early
    assert {"val_accuracy", "val_loss"} <= set(hist[0])


def test_schedulers_and_optimizers(digits):
    train, _ = digits
    for extra in (
        {"optimizer": "sgd", "scheduler": "multistep", "milestones": [1]},
        {"optimizer": "adadelta", "lr": 1.0, "scheduler": "cosine"},
        {"optimizer": "adamw", "scheduler": "step", "step_size": 1, "gamma": 0.5},
    ):
        m = build_model("lenet_dlg", 10, train.shape)
        hist = fit(m, train.subset(range(64)), TrainConfig(epochs=2, **extra), seed=0)
        assert hist[1]["lr"] <= hist[0]["lr"]
    with pytest.raises(ValueError, match="milestones"):
        TrainConfig(scheduler="multistep")


def test_divergence_is_a_clear_error(digits):
    train, _ = digits

    class Bad(nn.Module):
        def forward(self, x):
            return torch.full((x.shape[0], 10), float("nan"), requires_grad=True)

    with pytest.raises(ConfigError, match="training diverged"):
        fit(Bad(), train.subset(range(8)), TrainConfig(epochs=1), seed=0, params=[nn.Parameter(torch.zeros(1))])


def test_onecycle_steps_per_batch(digits):
    from privlab.train import make_optimizer, make_scheduler

    train, test = digits
    cfg = TrainConfig(epochs=4, batch_size=50, optimizer="sgd", lr=0.1, nesterov=True, scheduler="onecycle")
    m = build_model("lenet_dlg", 10, train.shape)
    opt = make_optimizer(m.parameters(), cfg)
    sched = make_scheduler(opt, cfg, steps_per_epoch=8)  # 32 steps: peak at the end of the first 25 %
    lrs = []
    for _ in range(32):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1 / 25) and max(lrs) == pytest.approx(0.1, rel=1e-3)
    assert lrs.index(max(lrs)) == 7 and lrs[-1] < 0.01  # steps 0..7 rise
    torch.manual_seed(0)
    m = build_model("lenet5", 10, train.shape, mean=train.mean, std=train.std)
    hist = fit(m, train, cfg, seed=0)  # 400 images / 50 = 8 batches per epoch, stepped per batch
    assert [round(h["lr"], 4) for h in hist][1] > hist[-1]["lr"] and hist[-1]["lr"] < 1e-3
    assert evaluate(m, test)["accuracy"] > 0.5  # learns (chance: 0.1)
