"""Overhead of :func:`privlab.train.fit` over a bare PyTorch training loop doing the same work.

Both sides train a freshly built LeNet-5 (same seed, so the same initial weights) on the 1437 digits training
images for 2 epochs with Adam (lr 1e-3), batch size 64, shuffled with ``torch.randperm``, cross-entropy loss, and
accumulate the training loss and accuracy per epoch as ``fit`` does. The candidate adds what ``fit`` brings: config
validation, seeding, the batch iterator, the finite-loss check, progress hooks and per-epoch stats.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from privlab.bench import Benchmark
from privlab.data import LabelledImages, load_dataset
from privlab.models import build_model
from privlab.train import TrainConfig, fit

EPOCHS = 2
BATCH_SIZE = 64
LR = 1e-3
SEED = 0

_DATA: dict[str, LabelledImages] = {}


def _setup() -> None:
    _DATA["train"] = load_dataset("digits", "train")


def _model(data: LabelledImages) -> torch.nn.Module:
    torch.manual_seed(SEED)
    return build_model("lenet5", data.num_classes, data.shape)


def candidate() -> list[dict[str, float]]:
    """``privlab.train.fit`` for 2 epochs on digits (model built inside the call)."""
    data = _DATA["train"]
    model = _model(data)
    return fit(model, data, TrainConfig(epochs=EPOCHS, batch_size=BATCH_SIZE, lr=LR), seed=SEED)


def baseline() -> list[dict[str, float]]:
    """The same training written as a bare PyTorch loop (model built inside the call)."""
    data = _DATA["train"]
    model = _model(data)
    images, labels = data.images, data.labels
    n = len(labels)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(SEED)
    history = []
    model.train()
    for _ in range(EPOCHS):
        order = torch.randperm(n, generator=gen)
        loss_sum, correct, seen = 0.0, 0, 0
        for i in range(0, n, BATCH_SIZE):
            idx = order[i : i + BATCH_SIZE]
            x, y = images[idx], labels[idx]
            opt.zero_grad(set_to_none=True)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
        history.append({"train_loss": loss_sum / seen, "train_accuracy": correct / seen})
    return history


BENCHMARK = Benchmark(
    name="train_loop_overhead",
    description="privlab.train.fit vs a bare PyTorch loop: LeNet-5 on digits (1437 images), 2 epochs, batch 64, Adam",
    candidate=candidate,
    baseline=baseline,
    setup=_setup,
    repeats=5,
    warmup=1,
    goal="privlab.train.fit overhead ≤ 1.15× a bare PyTorch loop",
    max_ratio=1.15,
)
