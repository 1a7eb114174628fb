"""Tests of the attacker-side counter-measures (privlab.attack.countermeasures)."""

from __future__ import annotations

import pytest
import torch

from privlab.attack.countermeasures import COUNTERMEASURES, DRAW_BLOCK, apply_countermeasures, build_countermeasure
from privlab.data import LabelledImages
from privlab.data.wrappers import PoisonedImages
from privlab.errors import ConfigError, UnknownNameError


def _smooth_images(n: int = 6, c: int = 3, hw: int = 32) -> torch.Tensor:
    """Natural-ish images (smooth gradients + blobs), on the uint8 grid, so JPEG behaves as on photos."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, hw), torch.linspace(0, 1, hw), indexing="ij")
    imgs = []
    for _ in range(n):
        a, b, f = torch.rand(3, generator=g)
        base = torch.stack([(a * xx + (1 - a) * yy), torch.sin(6 * f * xx) * 0.5 + 0.5, b * yy][:c])
        imgs.append(base)
    x = torch.stack(imgs).clamp(0, 1)
    return (x * 255).round() / 255


def test_registry_names_and_configs() -> None:
    assert {"jpeg", "grayscale", "bit_depth", "strong_augment"} <= set(COUNTERMEASURES.names())
    for e in COUNTERMEASURES.entries():
        assert e.meta["config"] is not None and e.meta.get("description"), e.name


@pytest.mark.parametrize("name", ["jpeg", "grayscale", "bit_depth", "strong_augment"])
@pytest.mark.parametrize("channels", [3, 1])
def test_range_shape_dtype(name: str, channels: int) -> None:
    x = torch.rand(5, channels, 16, 12, generator=torch.Generator().manual_seed(1))
    y = build_countermeasure(name)(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == torch.float32
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert torch.isfinite(y).all()


def test_bit_depth_levels() -> None:
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    one = build_countermeasure("bit_depth", bits=1)(x)
    assert set(one.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(one, (x >= 0.5).float())  # 1 bit: threshold at 1/2
    three = build_countermeasure("bit_depth", bits=3)(x)
    assert len(three.unique()) <= 8 and (three - x).abs().max() <= 0.5 / 7 + 1e-6
    u8 = (x * 255).round() / 255
    assert torch.allclose(build_countermeasure("bit_depth", bits=8)(u8), u8, atol=1e-6)  # 8 bits: no change


def test_grayscale_channels_equal_luminance() -> None:
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    y = build_countermeasure("grayscale")(x)
    assert torch.equal(y[:, 0], y[:, 1]) and torch.equal(y[:, 1], y[:, 2])
    expect = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    assert torch.allclose(y[:, 0], expect, atol=1e-6)
    pure_red = torch.zeros(1, 3, 2, 2)
    pure_red[:, 0] = 1.0
    assert torch.allclose(build_countermeasure("grayscale")(pure_red), torch.full((1, 3, 2, 2), 0.299))


def test_jpeg_quality_orders_the_error() -> None:
    x = _smooth_images()
    err = {q: float((build_countermeasure("jpeg", quality=q)(x) - x).abs().mean()) for q in (100, 75, 10)}
    assert err[100] < 0.01  # nearly lossless (chroma subsampling and rounding only)
    assert err[100] < err[75] < err[10]
    assert err[10] > 2 * err[100]
    # an 8/255 sign pattern is mostly removed by strong compression (what makes JPEG a counter-measure)
    delta = (8 / 255) * torch.sign(torch.randn(x.shape, generator=torch.Generator().manual_seed(3)))
    xp = (x + delta).clamp(0, 1)
    kept = float(
        (build_countermeasure("jpeg", quality=10)(xp) - build_countermeasure("jpeg", quality=10)(x)).abs().mean()
    )
    assert kept < 0.5 * float(delta.abs().mean())


def test_determinism_with_seed() -> None:
    x = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    aug = build_countermeasure("strong_augment")
    a = aug(x, torch.Generator().manual_seed(5))
    b = aug(x, torch.Generator().manual_seed(5))
    c = aug(x, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert (a - x).abs().mean() > 0.02  # it does change the images
    for name in ("jpeg", "grayscale", "bit_depth"):  # deterministic ones ignore the generator
        f = build_countermeasure(name)
        assert torch.equal(f(x, torch.Generator().manual_seed(1)), f(x, None))


def test_apply_to_labelled_images() -> None:
    x = torch.rand(10, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    ds = LabelledImages(x, torch.arange(10) % 2, 2, name="toy", mean=(0.1, 0.2, 0.3), std=(1, 1, 1))
    steps = ["grayscale", {"name": "bit_depth", "bits": 1}]
    out = apply_countermeasures(ds, steps, seed=0, batch_size=3)
    assert torch.equal(out.labels, ds.labels) and out.mean == ds.mean and out.name == "toy"
    gray = build_countermeasure("grayscale")(x)
    assert torch.equal(out.images, build_countermeasure("bit_depth", bits=1)(gray))
    aug1 = apply_countermeasures(ds, ["strong_augment"], seed=4, batch_size=3).images
    aug2 = apply_countermeasures(ds, ["strong_augment"], seed=4, batch_size=3).images
    assert torch.equal(aug1, aug2)
    assert apply_countermeasures(ds, []) is ds


def test_random_countermeasure_depends_on_the_seed_only() -> None:
    """strong_augment draws per fixed block of DRAW_BLOCK images with a generator per (seed, step, block): the same
    seed gives the same images for any batch size, and identical images in different blocks get different views."""
    n = 2 * DRAW_BLOCK + 88
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)).expand(n, 3, 8, 8).contiguous()
    ds = LabelledImages(x, torch.zeros(n, dtype=torch.long), 2)
    runs = [apply_countermeasures(ds, ["strong_augment"], seed=3, batch_size=b).images for b in (7, 256, 1000)]
    assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0], runs[2])
    assert not torch.equal(runs[0], apply_countermeasures(ds, ["strong_augment"], seed=4).images)
    first, second = runs[0][:DRAW_BLOCK], runs[0][DRAW_BLOCK : 2 * DRAW_BLOCK]
    assert (first - second).abs().amax(dim=(1, 2, 3)).min() > 0  # no image repeats its twin's draw in the next block
    twice = apply_countermeasures(ds, ["strong_augment", "strong_augment"], seed=3).images
    again = apply_countermeasures(LabelledImages(runs[0], ds.labels, 2), ["strong_augment"], seed=3).images
    assert not torch.equal(twice, again)  # the second step draws its own stream, not the first step's again


def test_apply_reads_poisoned_images_with_their_noise() -> None:
    x = torch.full((4, 1, 4, 4), 0.5)
    clean = LabelledImages(x, torch.tensor([0, 1, 0, 1]), 2)
    noise = torch.stack([torch.full((1, 4, 4), 8 / 255), torch.full((1, 4, 4), -8 / 255)])
    poisoned = PoisonedImages(clean, noise, kind="class", quantize=False)
    out = apply_countermeasures(poisoned, [{"name": "bit_depth", "bits": 8}])
    assert torch.allclose(out.images[0], torch.full((1, 4, 4), round((0.5 + 8 / 255) * 255) / 255), atol=1e-6)
    assert type(out) is LabelledImages


def test_bad_names_and_parameters() -> None:
    with pytest.raises(UnknownNameError, match="jpeg"):
        build_countermeasure("jpg")
    with pytest.raises(ConfigError, match="quality"):
        build_countermeasure("jpeg", quality=0)
    with pytest.raises(ConfigError, match="bits"):
        apply_countermeasures(
            LabelledImages(torch.rand(1, 1, 2, 2), torch.tensor([0]), 1), [{"name": "bit_depth", "bits": 9}]
        )
    with pytest.raises(ConfigError, match="crop_scale"):
        build_countermeasure("strong_augment", crop_scale=(0.5, 0.2))
    with pytest.raises(ConfigError, match="name"):
        apply_countermeasures(LabelledImages(torch.rand(1, 1, 2, 2), torch.tensor([0]), 1), [42])  # type: ignore[list-item]
