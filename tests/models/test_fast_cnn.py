"""The fast CIFAR CNN and the 1×-width ResNet-20: sizes, shapes, split points."""

from __future__ import annotations

import torch

from privlab.models import MODELS, build_model, split_model


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_fast_cnn_size_and_shapes() -> None:
    m = build_model("fast_cnn", 10, (3, 32, 32))
    assert n_params(m) == 760_874 and n_params(m) <= 1_500_000
    assert sum(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules()) == 8
    assert sum(isinstance(x, torch.nn.Conv2d) for x in m.modules()) == 8
    x = torch.rand(3, 3, 32, 32)
    assert m(x).shape == (3, 10)
    edge, cloud = split_model(m, "layer1")
    assert edge(x).shape == (3, 64, 16, 16)  # prep pools 32 → 16
    assert build_model("fast_cnn", 100, (3, 64, 48))(torch.rand(2, 3, 64, 48)).shape == (2, 100)
    small = build_model("fast_cnn", 2, (1, 6, 6))  # below min_hw: resized up to 8×8 first
    assert [n for n, _ in small.named_children()][0] == "resize"
    assert small(torch.rand(2, 1, 6, 6)).shape == (2, 2)
    assert MODELS.entry("fast_cnn").meta["min_hw"] == (8, 8)


def test_resnet20_size() -> None:
    m = build_model("resnet20", 10, (3, 32, 32))
    assert n_params(m) == 272_474
    assert m(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    edge, _ = split_model(m, "layer2")
    assert edge(torch.rand(1, 3, 32, 32)).shape == (1, 32, 16, 16)
