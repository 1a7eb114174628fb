"""The class-wise shortcut on real CIFAR-10 (issue 19): a ±8/255 block pattern per class, added to the training
images, makes a model trained on them clearly worse on clean test images than one trained on the clean images.

A real, failing-if-broken check of the poisoning path (PoisonedImages, class-wise noise, uint8 re-quantisation,
training): if the noise were not added, were added to the wrong rows, or were clipped away, both models would score
alike. Sized to run in well under a minute on one CPU thread: 2 000 training images (200 per class), 1 000 test
images, LeNet-5, 8 epochs, no augmentation (≈ 6 s on an idle core). Measured with pattern/training seeds 1, 2, 3:
clean 41.5 / 42.2 / 41.8 %, poisoned 19.1 / 13.3 / 15.2 % test accuracy, so the asserted 12-point drop has a wide
margin.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from privlab.data import load_dataset
from privlab.data.wrappers import PoisonedImages
from privlab.models import build_model
from privlab.train import TrainConfig, evaluate, fit


def _cifar_subset(shared_dir: Path, dest: Path, per_class: dict[str, int]) -> Path:
    """Symlink the first ``per_class[split]`` images of every class of the shared CIFAR-10 JPEG folder into ``dest``."""
    src = shared_dir / "data" / "cifar10-jpeg"
    if not (src / "train").is_dir():
        pytest.skip(f"CIFAR-10 JPEG folder not found at {src} (optional: real-data tests only)")
    for split, n in per_class.items():
        for cls in sorted(p for p in (src / split).iterdir() if p.is_dir()):
            (dest / split / cls.name).mkdir(parents=True)
            for f in sorted(cls.iterdir())[:n]:
                (dest / split / cls.name / f.name).symlink_to(f)
    return dest


def block_pattern(num_classes: int, shape: tuple[int, int, int], block: int, eps: float, seed: int) -> torch.Tensor:
    """``(num_classes, C, H, W)`` noise: per class and channel, a random ±eps sign on each ``block×block`` block."""
    c, h, w = shape
    g = torch.Generator().manual_seed(seed)
    signs = torch.randint(0, 2, (num_classes, c, -(-h // block), -(-w // block)), generator=g).float() * 2 - 1
    return eps * signs.repeat_interleave(block, 2).repeat_interleave(block, 3)[:, :, :h, :w]


def test_classwise_pattern_drops_clean_accuracy(shared_dir: Path, tmp_path: Path) -> None:
    root = _cifar_subset(shared_dir, tmp_path / "cifar", {"train": 200, "test": 100})
    train = load_dataset("image_folder", "train", root=root)
    test = load_dataset("image_folder", "test", root=root)
    assert len(train) == 2000 and len(test) == 1000
    noise = block_pattern(10, train.shape, block=8, eps=8 / 255, seed=0)
    poisoned = PoisonedImages(train, noise, kind="class", epsilon=8 / 255)
    x, _ = poisoned.batch(torch.arange(len(train)))
    assert (x - train.images).abs().max() <= 8 / 255 + 1e-6  # within budget after uint8 re-quantisation
    cfg = TrainConfig(
        epochs=8, batch_size=64, optimizer="sgd", lr=0.05, nesterov=True, weight_decay=5e-4, scheduler="onecycle"
    )
    acc = {}
    for tag, data in (("clean", train), ("poisoned", poisoned)):
        torch.manual_seed(0)
        model = build_model("lenet5", 10, train.shape, mean=train.mean, std=train.std)
        fit(model, data, cfg, seed=0)
        acc[tag] = evaluate(model, test)["accuracy"]
    assert acc["clean"] > 0.3, acc  # it learns CIFAR at all (chance: 0.1)
    assert acc["poisoned"] < acc["clean"] - 0.12, acc  # the shortcut replaces the features
