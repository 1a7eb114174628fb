"""Poisoned-data wrapper (indexing, rate, budget after quantisation) and the batch transforms."""

from __future__ import annotations

import pytest
import torch

from privlab.data import LabelledImages
from privlab.data.transforms import build_transform, crop_flip, random_resized_crop
from privlab.data.wrappers import PoisonedImages, quantize_within, two_views
from privlab.errors import BudgetError, ConfigError, FileFormatError

EPS = 8 / 255


def _data(n: int = 40, grid: bool = True) -> LabelledImages:
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (n, 1, 6, 6), generator=g).float() / 255 if grid else torch.rand(n, 1, 6, 6, generator=g)
    return LabelledImages(x, torch.arange(n) % 4, 4)


@pytest.mark.parametrize("grid", [True, False])
def test_budget_holds_exactly_after_quantisation(grid: bool) -> None:
    clean = _data(grid=grid)
    noise = (torch.rand(len(clean), 1, 6, 6, generator=torch.Generator().manual_seed(2)) * 2 - 1) * 0.2  # > ε
    p = PoisonedImages(clean, noise, kind="sample", epsilon=EPS, quantize=True)
    diff = (p.images - clean.images).abs()
    assert diff.max().item() <= EPS + 1e-7
    levels = p.images * 255
    assert (levels - levels.round()).abs().max().item() < 1e-4  # on the uint8 grid
    assert p.images.min() >= 0 and p.images.max() <= 1


def test_quantize_within_never_overshoots() -> None:
    x = torch.tensor([0.5, 0.5, 0.0, 1.0])
    out = quantize_within(torch.tensor([0.5 + EPS + 0.4 / 255, 0.5 - EPS - 0.4 / 255, 0.0, 1.0]), x, EPS)
    assert (out - x).abs().max() <= EPS + 1e-7
    assert torch.allclose(out * 255, (out * 255).round(), atol=1e-4)


def test_poison_rate_and_untouched_samples() -> None:
    clean = _data(n=50)
    noise = torch.full((50, 1, 6, 6), EPS)
    p = PoisonedImages(clean, noise, kind="sample", epsilon=EPS, poison_rate=0.3, seed=3, quantize=False)
    assert int(p.poisoned_mask.sum()) == 15
    same = (p.images == clean.images).flatten(1).all(1)
    assert torch.equal(same, ~p.poisoned_mask | (clean.images >= 1 - 1e-9).flatten(1).all(1))
    p2 = PoisonedImages(clean, noise, kind="sample", epsilon=EPS, poison_rate=0.3, seed=3, quantize=False)
    assert torch.equal(p.poisoned_mask, p2.poisoned_mask)  # seeded
    assert int(PoisonedImages(clean, noise, kind="sample", poison_rate=0.0).poisoned_mask.sum()) == 0


def test_sample_wise_is_indexed_by_sample_and_class_wise_by_label() -> None:
    clean = LabelledImages(torch.full((6, 1, 2, 2), 0.5), torch.tensor([0, 0, 1, 1, 2, 2]), 3)
    rows = torch.arange(6).float().view(6, 1, 1, 1).expand(6, 1, 2, 2) / 255
    p = PoisonedImages(clean, rows, kind="sample", epsilon=EPS, quantize=False)
    assert torch.allclose((p.images - 0.5)[:, 0, 0, 0] * 255, torch.arange(6).float(), atol=1e-4)  # not by label
    cls = torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1, 1).expand(3, 1, 2, 2) / 255
    pc = PoisonedImages(clean, cls, kind="class", epsilon=EPS, quantize=False)
    d = (pc.images - 0.5) * 255
    assert torch.allclose(d[:, 0, 0, 0], torch.tensor([1.0, 1, 2, 2, 3, 3]), atol=1e-4)
    for c in range(3):  # constant within a class
        rows_c = d[clean.labels == c]
        assert torch.equal(rows_c[0], rows_c[1])


def test_wrong_shapes_and_bad_settings() -> None:
    clean = _data(n=10)
    with pytest.raises(FileFormatError, match=r"must have shape \(10, 1, 6, 6\)"):
        PoisonedImages(clean, torch.zeros(4, 1, 6, 6), kind="sample")
    with pytest.raises(FileFormatError, match=r"\(4, 1, 6, 6\)"):
        PoisonedImages(clean, torch.zeros(10, 1, 6, 6), kind="class")
    with pytest.raises(ConfigError, match="poison_rate"):
        PoisonedImages(clean, torch.zeros(10, 1, 6, 6), poison_rate=1.5)
    with pytest.raises(BudgetError):
        PoisonedImages(clean, torch.zeros(10, 1, 6, 6), epsilon=0.0)
    with pytest.raises(ConfigError, match="needs the training augmentation"):
        PoisonedImages(clean, torch.zeros(10, 1, 6, 6), noise_position="after")


def test_noise_after_augmentation() -> None:
    clean = LabelledImages(torch.full((4, 1, 4, 4), 0.5), torch.tensor([0, 1, 0, 1]), 2)
    noise = torch.zeros(4, 1, 4, 4)
    noise[:, :, 0, 0] = EPS  # a corner dot
    aug = build_transform("crop", padding=2)
    p = PoisonedImages(clean, noise, kind="sample", epsilon=EPS, quantize=False, noise_position="after", transform=aug)
    x, _ = p.batch(torch.arange(4))
    # the dot is added after the crop, so it sits at (0, 0) whatever the shift: 0.5 + ε (image) or 0 + ε (padding)
    assert torch.allclose(x[:, 0, 0, 0] - EPS, torch.where(x[:, 0, 0, 0] > 0.1, 0.5, 0.0), atol=1e-5)


def test_transforms_are_seeded_shape_preserving_and_differentiable() -> None:
    x = torch.rand(6, 3, 8, 8)
    t = build_transform("simclr")
    a = t(x, torch.Generator().manual_seed(0))
    b = t(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    v1, v2 = two_views(x, t, torch.Generator().manual_seed(0))
    assert not torch.equal(v1, v2)
    xr = x.clone().requires_grad_(True)
    random_resized_crop(xr, torch.Generator().manual_seed(1)).sum().backward()
    assert xr.grad is not None and xr.grad.abs().sum() > 0
    # pad-and-crop only moves pixels: every output value is an input value or the zero padding
    y = crop_flip(x, torch.Generator().manual_seed(2), padding=2)
    allowed = torch.cat([x.flatten(), torch.zeros(1)])
    assert torch.isin(y.flatten(), allowed).all()
    # per_sample=False: one crop for the whole batch
    same = crop_flip(x[:1].expand(4, -1, -1, -1), torch.Generator().manual_seed(3), per_sample=False)
    assert torch.equal(same[0], same[3])
    with pytest.raises(ConfigError, match="unknown augmentation"):
        build_transform("mixup")
