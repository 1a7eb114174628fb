"""IIC: the loss's known values, augmentations, a tiny training run."""

import math

import pytest
import torch

from privlab.errors import ConfigError
from privlab.models.iic import IICConfig, IICNet, augment, iic_loss, predict_clusters, train_iic


def test_loss_minimum_is_minus_log_k_and_degenerate_solution_is_minus_log_2():
    k = 5
    p = torch.eye(k).repeat(20, 1)
    assert iic_loss(p, p).item() == pytest.approx(-math.log(k), abs=1e-3)  # up to the 1e-6 clamp of P
    two = torch.zeros(100, k)
    two[:50, 0], two[50:, 1] = 1, 1
    assert iic_loss(two, two).item() == pytest.approx(-math.log(2), abs=1e-3)  # the original's "0.693 hole"
    u = torch.full((40, k), 1 / k)
    assert iic_loss(u, u).item() == pytest.approx(0.0, abs=1e-6)  # independent assignments: no information


def test_loss_is_bounded_for_random_assignments():
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        a = torch.rand(64, 10, generator=g).softmax(1)
        b = torch.rand(64, 10, generator=g).softmax(1)
        v = iic_loss(a, b).item()
        assert -math.log(10) - 1e-6 <= v <= 1e-6
    with pytest.raises(ConfigError):
        iic_loss(torch.rand(3, 2), torch.rand(3, 4))


def test_augment_is_seeded_in_range_and_changes_images():
    x = torch.rand(16, 1, 8, 8)
    a = augment(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, augment(x, torch.Generator().manual_seed(0)))
    assert (a - x).abs().mean() > 0.01
    same = augment(x, torch.Generator().manual_seed(0), rotation=0, min_scale=1.0, brightness=0, contrast=(1, 1))
    assert torch.allclose(same, x, atol=1e-5)  # identity parameters give the identity


def test_tiny_training_run_and_prediction_shapes():
    x = torch.rand(40, 1, 8, 8)
    cfg = IICConfig(epochs=2, batch_size=20, repeats=1, width=4, overcluster=6, subheads=2)
    net, res = train_iic(x, 3, cfg, seed=0)
    assert isinstance(net, IICNet) and len(res.history) == 2 and len(res.subhead_losses) == 2
    assert res.best_subhead in (0, 1)
    pred = predict_clusters(net, x[:7])
    assert pred.shape == (2, 7) and pred.max() < 3
    with pytest.raises(ConfigError):
        train_iic(x[:1], 3, cfg)


def test_augment_is_scale_equivariant_so_dim_unit_norm_images_get_the_same_views():
    # brightness is relative to each image's peak, so a Gaussian-LDP image (L2-normalised, values ≈ 0.1–0.3) gets the
    # same view as the raw image up to the scale, instead of a shift that is large against its contrast
    x = torch.rand(16, 1, 8, 8) * 0.5  # peaks ≤ 0.5: no clamping at 1 even with contrast 1.4 and brightness 0.4
    c = 0.2
    a = augment(x, torch.Generator().manual_seed(3))
    b = augment(x * c, torch.Generator().manual_seed(3))
    assert torch.allclose(b, a * c, atol=1e-6)


def test_both_views_only_adds_the_augmentation_of_the_first_view():
    x = torch.rand(24, 1, 8, 8)
    ident = {"rotation": 0.0, "min_scale": 1.0, "brightness": 0.0, "contrast": (1.0, 1.0)}
    base = IICConfig(epochs=1, batch_size=12, repeats=1, width=4, overcluster=6, subheads=2, **ident)
    _, r1 = train_iic(x, 3, base, seed=0)
    _, r2 = train_iic(x, 3, base.model_copy(update={"both_views": True}), seed=0)
    assert r1.subhead_losses == pytest.approx(r2.subhead_losses, abs=1e-4)  # identity g: the same training
    _, r3 = train_iic(
        x, 3, IICConfig(epochs=1, batch_size=12, repeats=1, width=4, overcluster=6, subheads=2, both_views=True), seed=0
    )
    assert r3.subhead_losses != pytest.approx(r1.subhead_losses, abs=1e-4)


def test_peak_normalisation_makes_training_and_prediction_blind_to_image_scale():
    # an L2-normalised local-DP image peaks near 0.1: with peak_normalize IIC sees it as the raw image would
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 1, 8, 8, generator=g)
    cfg = IICConfig(epochs=1, batch_size=20, subheads=1, width=4, overcluster=6, peak_normalize=True)
    net, _ = train_iic(x, 3, cfg, seed=0)
    net_dim, _ = train_iic(0.125 * x, 3, cfg, seed=0)  # a power of 2: the same floats after prepare()
    for p, q in zip(net.parameters(), net_dim.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-5)
    assert torch.equal(predict_clusters(net, x), predict_clusters(net, 0.125 * x))
    plain, _ = train_iic(0.125 * x, 3, cfg.model_copy(update={"peak_normalize": False}), seed=0)
    assert not all(torch.allclose(p, q, atol=1e-4) for p, q in zip(net.parameters(), plain.parameters(), strict=True))
    assert torch.isfinite(net.prepare(torch.zeros(2, 1, 8, 8))).all()  # an all-zero image stays zero
