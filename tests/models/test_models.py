"""Tests of the model zoo (privlab.models) and of split_model / insert_at / freeze."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from privlab.errors import ConfigError, UnknownNameError
from privlab.models import MODELS, build_model
from privlab.models.convnet import convnet
from privlab.models.lenet import dlg_uniform_init_
from privlab.models.split import freeze, insert_at, output_shape, split_model

# Natural input shape per model and a small shape (resized by build_model for fixed-size models).
NATURAL = {
    "lenet5": (1, 28, 28),
    "mnist_cnn_shallow": (1, 28, 28),
    "mnist_cnn_deep": (1, 28, 28),
    "resnet20_4": (3, 32, 32),
    "resnet18": (3, 32, 32),
    "convnet64": (3, 32, 32),
    "lenet_dlg": (3, 32, 32),
}
SMALL = {"convnet64": (1, 9, 9)}  # two 3×3/stride-3 max-pools need H, W ≥ 9; every other model takes 1×8×8


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


HEAVY = {"alexnet"}  # 57 M parameters: one shape and one head are enough to check it


def shapes_of(name: str) -> list[tuple[int, int, int]]:
    if name in HEAVY:
        return [SMALL.get(name, (1, 8, 8))]
    return [NATURAL.get(name, (3, 32, 32)), SMALL.get(name, (1, 8, 8))]


CASES = [
    (name, shape, nc)
    for name in MODELS.names()
    for shape in shapes_of(name)
    for nc in ((10,) if name in HEAVY else (10, 2))
]


@pytest.mark.parametrize(("name", "in_shape", "num_classes"), CASES)
def test_forward_backward(name: str, in_shape: tuple[int, int, int], num_classes: int) -> None:
    torch.manual_seed(0)
    model = build_model(name, num_classes, in_shape)
    assert isinstance(model, nn.Sequential)
    assert model.training  # factories leave the model in training mode (output_shape restores the flags)
    out = model(torch.rand(2, *in_shape))
    assert out.shape == (2, num_classes)
    assert torch.isfinite(out).all()
    out.logsumexp(1).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_registry_metadata() -> None:
    for entry in MODELS.entries():
        assert "input_hw" in entry.meta, entry.name
        assert entry.meta.get("description"), entry.name
        assert entry.obj.__doc__, entry.name
    assert MODELS.entry("lenet5").meta["input_hw"] == (32, 32)
    assert MODELS.entry("mnist_cnn_deep").meta["input_hw"] == (28, 28)
    assert MODELS.entry("resnet18").meta["input_hw"] is None


def test_factories_do_not_touch_batchnorm_statistics() -> None:
    model = build_model("convnet64", 10, (3, 32, 32))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert int(m.num_batches_tracked) == 0
            assert torch.equal(m.running_var, torch.ones_like(m.running_var))


# ---------------------------------------------------------------------------------------------------- param counts


def conv(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def linear(nin: int, nout: int) -> int:
    return nin * nout + nout


def test_lenet5_params() -> None:
    # c1 1·6·25+6=156, c3 6·16·25+16=2416, c5 16·120·25+120=48120, f6 120·84+84=10164, f7 84·10+10=850 → 61706
    assert n_params(build_model("lenet5", 10, (1, 32, 32))) == 61_706
    assert n_params(build_model("lenet5", 2, (1, 32, 32))) == 61_706 - 8 * 85


def test_lenet_dlg_params() -> None:
    # conv1 3·12·25+12 = 912; conv2..4 3·(12·12·25+12) = 3·3612 = 10836; 32→16→8→8→8: fc 12·8·8=768 → 768·100+100
    # = 76900; total 912 + 10836 + 76900 = 88648
    assert n_params(build_model("lenet_dlg", 100, (3, 32, 32))) == 88_648
    assert conv(3, 12, 5) + 3 * conv(12, 12, 5) + linear(768, 100) == 88_648
    model = build_model("lenet_dlg", 10, (1, 28, 28))  # 28→14→7 (ceil): 12·7·7 = 588 inputs
    assert model.fc.in_features == 588


def resnet_params(blocks: list[int], widths: list[int], in_ch: int, num_classes: int) -> int:
    """Closed-form parameter count of a CIFAR ResNet of basic blocks (bias-free convs, BN = 2 params/channel)."""
    total = conv(in_ch, widths[0], 3, bias=False) + 2 * widths[0]
    ch = widths[0]
    for stage, (count, width) in enumerate(zip(blocks, widths, strict=True)):
        for j in range(count):
            total += conv(ch, width, 3, bias=False) + conv(width, width, 3, bias=False) + 4 * width
            if j == 0 and (stage > 0 or ch != width):  # 1×1 projection shortcut: stride 2 or channel change
                total += conv(ch, width, 1, bias=False) + 2 * width
            ch = width
    return total + linear(ch, num_classes)


def test_resnet_params() -> None:
    expected = resnet_params([3, 3, 3], [64, 128, 256], 3, 10)
    assert expected == 4_327_754
    assert n_params(build_model("resnet20_4", 10, (3, 32, 32))) == expected
    assert n_params(build_model("resnet18", 10, (3, 32, 32))) == 11_173_962
    assert resnet_params([2, 2, 2, 2], [64, 128, 256, 512], 3, 10) == 11_173_962


def test_convnet_params_and_width() -> None:
    w = 64
    convs = (
        conv(3, w, 3) + conv(w, 2 * w, 3) + conv(2 * w, 2 * w, 3) + conv(2 * w, 4 * w, 3) + 4 * conv(4 * w, 4 * w, 3)
    )
    bns = 2 * (w + 2 * w + 2 * w + 5 * 4 * w)
    model = build_model("convnet64", 10, (3, 32, 32))
    assert model.linear.in_features == 36 * w  # 32 → 10 → 3 after two 3×3 max-pools: 4w·3·3
    assert n_params(model) == convs + bns + linear(36 * w, 10)
    small = convnet(8)(5, (3, 32, 32))
    assert small.conv7.out_channels == 32 and small.linear.in_features == 36 * 8
    assert "convnet8" not in MODELS


def test_convnet_too_small_input() -> None:
    # The bare factory refuses an input its two 3×3 pools cannot take …
    with pytest.raises(ConfigError, match="does not fit"):
        MODELS.get("convnet64")(10, (1, 8, 8))
    # … and build_model resizes it up to the declared minimum (min_hw = 9×9) instead.
    m = build_model("convnet64", 10, (1, 8, 8))
    assert list(dict(m.named_children()))[0] == "resize" and m.resize.size == (9, 9)
    assert m(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_mnist_cnn_sizes() -> None:
    shallow = build_model("mnist_cnn_shallow", 10, (1, 28, 28))
    assert shallow.fc1.in_features == 64 * 12 * 12
    deep = build_model("mnist_cnn_deep", 10, (1, 28, 28))
    assert deep.fc1.in_features == 64 * 7 * 7 and deep.fc1.out_features == 1024
    assert not any(isinstance(m, nn.Softmax) for m in deep.modules())


def test_dlg_uniform_init() -> None:
    model = dlg_uniform_init_(build_model("lenet_dlg", 10, (3, 32, 32)), 0.5)
    for p in model.parameters():
        assert p.abs().max() <= 0.5


# ---------------------------------------------------------------------------------------------------- split


def test_lenet5_c5_cut() -> None:
    model = build_model("lenet5", 10, (1, 32, 32))
    edge, cloud = split_model(model, "c5")
    assert list(dict(edge.named_children())) == ["c1", "relu1", "s2", "c3", "relu3", "s4", "c5"]
    assert edge(torch.rand(3, 1, 32, 32)).shape == (3, 120, 1, 1)
    assert output_shape(edge, (1, 32, 32)) == (120, 1, 1)
    edge, cloud = split_model(model, "relu5")
    assert next(iter(dict(cloud.named_children()))) == "flatten"
    assert edge.c5 is model.c5  # shared, not copied


def cut_points(model: nn.Sequential) -> list[str]:
    names = [n for n, _ in model.named_children()]
    return sorted({names[len(names) // 2], names[-2]})


@pytest.mark.parametrize("name", MODELS.names())
def test_split_recomposes(name: str) -> None:
    torch.manual_seed(0)
    in_shape = NATURAL.get(name, (3, 32, 32))
    model = build_model(name, 10, in_shape).eval()
    x = torch.rand(2, *in_shape)
    with torch.no_grad():
        ref = model(x)
        points = cut_points(model)
        assert len(points) == 2
        for at in points:
            edge, cloud = split_model(model, at)
            out = cloud(edge(x))
            assert torch.allclose(out, ref, atol=1e-6, rtol=0), (name, at)
            assert len(edge) + len(cloud) == len(model)


def test_split_errors_and_index() -> None:
    model = build_model("lenet5", 10, (1, 32, 32)).eval()
    names = [n for n, _ in model.named_children()]
    with pytest.raises(ConfigError) as err:
        split_model(model, "relu_5")
    assert all(n in str(err.value) for n in names) and "Did you mean 'relu5'" in str(err.value)
    with pytest.raises(ConfigError, match="empty"):
        split_model(model, "f7")
    with pytest.raises(ConfigError, match="empty"):
        split_model(model, -1)
    with pytest.raises(ConfigError, match="out of range"):
        split_model(model, len(names))
    with pytest.raises(ConfigError, match="nn.Sequential"):
        split_model(nn.Linear(2, 2), 0)  # type: ignore[arg-type]
    edge_i, _ = split_model(model, 6)
    edge_n, _ = split_model(model, "c5")
    edge_neg, _ = split_model(model, 6 - len(names))
    assert list(dict(edge_i.named_children())) == list(dict(edge_n.named_children()))
    assert list(dict(edge_neg.named_children())) == list(dict(edge_n.named_children()))
    x = torch.rand(2, 1, 32, 32)
    assert torch.equal(edge_i(x), edge_n(x))


def test_insert_at_identity_and_freeze() -> None:
    model = build_model("resnet20_4", 10, (3, 32, 32)).eval()
    x = torch.rand(2, 3, 32, 32)
    wrapped = insert_at(model, "layer2", nn.Identity())
    assert list(dict(wrapped.named_children())) == ["edge", "inserted", "cloud"]
    assert isinstance(wrapped.inserted, nn.Identity)
    with torch.no_grad():
        assert torch.allclose(wrapped(x), model(x), atol=1e-6, rtol=0)
    frozen = freeze(build_model("mnist_cnn_deep", 10, (1, 28, 28)))
    assert not frozen.training and not any(m.training for m in frozen.modules())
    assert not any(p.requires_grad for p in frozen.parameters())


def test_insert_at_changes_activation() -> None:
    class AddOne(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + 1

    model = build_model("lenet5", 2, (1, 32, 32))
    edge, cloud = split_model(model, "c5")
    x = torch.rand(2, 1, 32, 32)
    assert torch.allclose(insert_at(model, "c5", AddOne())(x), cloud(edge(x) + 1))


# ---------------------------------------------------------------------------------------------------- build_model


def test_build_model_normalize() -> None:
    torch.manual_seed(0)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    model = build_model("lenet_dlg", 10, (3, 32, 32), mean=mean, std=std)
    names = [n for n, _ in model.named_children()]
    assert names[0] == "normalize" and "resize" not in names
    body = nn.Sequential(OrderedDict(list(model.named_children())[1:]))
    x = torch.rand(2, 3, 32, 32)
    xn = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(model(x), body(xn), atol=1e-6)
    assert not torch.allclose(model(x), body(x), atol=1e-4)


def test_build_model_resize_and_errors() -> None:
    model = build_model("lenet5", 10, (1, 8, 8))
    assert next(iter(dict(model.named_children()))) == "resize"
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 10)
    assert "resize" not in dict(build_model("lenet5", 10, (1, 32, 32)).named_children())
    with_norm = build_model("lenet5", 10, (1, 8, 8), mean=(0.1,), std=(0.3,))
    assert list(dict(with_norm.named_children()))[:2] == ["resize", "normalize"]
    with pytest.raises(UnknownNameError, match="Did you mean 'lenet5'"):
        build_model("lenet6", 10, (1, 32, 32))
    with pytest.raises(ConfigError):
        build_model("lenet5", 0, (1, 32, 32))
