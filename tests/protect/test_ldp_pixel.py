"""Image mechanisms: vectorised, seeded, calibrated as stated, audited empirically."""

import math

import numpy as np
import pytest
import torch

from privlab.errors import BudgetError, ConfigError, UnknownNameError
from privlab.protect import PROTECTIONS
from privlab.protect.ldp_budget import empirical_epsilon, gaussian_sigma_analytic
from privlab.protect.ldp_pixel import (
    GaussianMechanism,
    LaplaceMechanism,
    RandomizedResponse,
    build_pixel_mechanism,
)


def g(seed=0):
    return torch.Generator().manual_seed(seed)


def test_registry_lists_every_mechanism_with_its_kind():
    for name in ("laplace", "gaussian", "rr", "ue", "dpsgd"):
        assert name in PROTECTIONS.names()
    assert PROTECTIONS.entry("laplace").meta["kind"] == "data"
    assert PROTECTIONS.entry("dpsgd").meta["kind"] == "training"
    assert PROTECTIONS.entry("ue").meta["target"] == "labels"


def test_laplace_is_seeded_leaves_input_alone_and_has_the_stated_scale():
    x = torch.full((2000, 1, 8, 8), 0.5)
    mech = LaplaceMechanism(epsilon=64.0 * 2, clip=False)  # ε_pixel = 2 → b = 0.5
    assert mech.scale(64) == pytest.approx(0.5)
    y1, y2 = mech.privatize(x, g(3)), mech.privatize(x, g(3))
    assert torch.equal(y1, y2) and not torch.equal(y1, mech.privatize(x, g(4)))
    assert torch.all(x == 0.5)  # input untouched
    noise = (y1 - x).double()
    assert noise.mean().item() == pytest.approx(0.0, abs=0.01)
    assert noise.var().item() == pytest.approx(2 * 0.5**2, rel=0.02)  # Var Laplace(b) = 2b²
    assert noise.abs().mean().item() == pytest.approx(0.5, rel=0.02)  # E|L| = b


def test_laplace_budget_per_pixel_and_per_image():
    b = LaplaceMechanism(epsilon=784.0).budget(pixels=784)
    assert (b.scope, b.epsilon, b.details["per_pixel_epsilon"], b.details["scale"]) == ("image", 784.0, 1.0, 1.0)
    b = LaplaceMechanism(epsilon=2.0, scope="pixel").budget(pixels=64)
    assert b.epsilon == 128.0 and b.details["per_pixel_epsilon"] == 2.0


def test_clipped_output_stays_in_unit_range_and_uint8_is_divided():
    x = torch.randint(0, 256, (10, 1, 4, 4), dtype=torch.uint8)
    y = LaplaceMechanism(epsilon=1.0).privatize(x, g())
    assert y.dtype == torch.float32 and y.min() >= 0 and y.max() <= 1
    y = LaplaceMechanism(epsilon=1e7).privatize(x, g())  # almost no noise: the values are x / 255
    assert torch.allclose(y, x.float() / 255, atol=1e-3)


def test_out_of_range_float_images_are_refused():
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        LaplaceMechanism(epsilon=1.0).privatize(torch.full((2, 3), 2.0), g())


def test_laplace_audit_on_one_pixel_of_two_neighbouring_images():
    # neighbours differ in one pixel (0 vs 1): with ε_image = 64 · 1, that pixel's output must be 1-LDP
    n = 100_000
    a = torch.zeros(n, 64)
    b = a.clone()
    b[:, 0] = 1.0
    bins = np.linspace(0, 1, 21)
    bins[0], bins[-1] = -1e-9, 1 + 1e-9
    for mech, claimed, ok in (
        (LaplaceMechanism(epsilon=64.0), 1.0, True),
        (LaplaceMechanism(epsilon=192.0), 1.0, False),
    ):
        ha = np.histogram(mech.privatize(a, g(0))[:, 0].numpy(), bins)[0]
        hb = np.histogram(mech.privatize(b, g(1))[:, 0].numpy(), bins)[0]
        _, low = empirical_epsilon(ha, hb)
        assert (low <= claimed) is ok  # the second mechanism really spends ε = 3 per pixel, not 1


def test_gaussian_normalises_and_adds_the_calibrated_noise():
    x = torch.rand(3000, 1, 8, 8)
    mech = GaussianMechanism(epsilon=2.0, delta=1e-5, clip=False)
    pre = mech.preprocess(x)
    assert torch.allclose(pre.flatten(1).norm(dim=1), torch.ones(3000), atol=1e-5)
    sigma = gaussian_sigma_analytic(2.0, 1e-5, math.sqrt(2))
    assert mech.sigma(64) == pytest.approx(sigma)
    noise = mech.privatize(x, g()) - pre
    assert noise.std().item() == pytest.approx(sigma, rel=0.01)
    b = mech.budget(pixels=64)
    assert b.epsilon == 2.0 and b.delta == 1e-5 and b.details["proven"] is True
    assert b.details["sensitivity_l2"] == pytest.approx(math.sqrt(2))
    zero = mech.preprocess(torch.zeros(1, 1, 2, 2))
    assert torch.equal(zero, torch.zeros(1, 1, 2, 2))  # no division by zero on blank images


def test_gaussian_classical_condition_and_delta_checks():
    with pytest.raises(BudgetError, match="epsilon < 1"):
        GaussianMechanism(epsilon=150.0, calibration="classical").sigma(784)
    m = GaussianMechanism(epsilon=150.0, delta=1 / 784**2, calibration="classical", strict=False, sensitivity=1.0)
    with pytest.warns(UserWarning, match="only proven for epsilon < 1"):
        sigma = m.sigma(784)
    assert sigma == pytest.approx(0.0347, rel=5e-3)
    assert m.budget(784).details["proven"] is False
    with pytest.raises(BudgetError, match="delta"):
        GaussianMechanism(epsilon=1.0, delta=0.0)


def test_randomized_response_flip_frequency_matches_q():
    x = torch.rand(2000, 1, 8, 8)
    mech = RandomizedResponse(epsilon=1.0, scope="pixel", threshold=0.5)
    p, q = mech.probabilities(64)
    assert p == pytest.approx(math.e / (1 + math.e))
    bits = mech.preprocess(x)
    out = mech.privatize(x, g())
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert (out != bits).double().mean().item() == pytest.approx(q, abs=0.005)  # 128 000 bits
    assert mech.budget(64).epsilon == pytest.approx(64.0)


def test_randomized_response_at_huge_epsilon_is_exact_binarisation():
    x = torch.rand(50, 1, 8, 8)
    mech = RandomizedResponse(epsilon=1e6, threshold=0.3)
    out = mech.privatize(x, g())
    assert not torch.isnan(out).any()
    assert torch.equal(out, (x > 0.3).float())


def test_randomized_response_audit_detects_a_wrong_epsilon():
    n = 100_000
    zeros, ones = torch.zeros(n, 1), torch.ones(n, 1)
    for eps, claimed, ok in ((1.0, 1.0, True), (2.5, 1.0, False)):
        mech = RandomizedResponse(epsilon=eps)
        ha = np.bincount(mech.privatize(zeros, g(0))[:, 0].long().numpy(), minlength=2)
        hb = np.bincount(mech.privatize(ones, g(1))[:, 0].long().numpy(), minlength=2)
        assert (empirical_epsilon(ha, hb)[1] <= claimed) is ok


def test_build_pixel_mechanism_errors():
    assert isinstance(build_pixel_mechanism("laplace", epsilon=1.0), LaplaceMechanism)
    with pytest.raises(UnknownNameError, match="did you mean|Did you mean"):
        build_pixel_mechanism("laplase", epsilon=1.0)
    with pytest.raises(ConfigError, match="not an image mechanism"):
        build_pixel_mechanism("ue", epsilon=1.0)
    with pytest.raises(BudgetError, match="epsilon"):
        build_pixel_mechanism("laplace", epsilon=0.0)
    with pytest.raises(ConfigError, match="threshold"):
        build_pixel_mechanism("rr", epsilon=1.0, threshold=2.0)


def test_laplace_noise_matches_the_laplace_cdf_and_does_not_depend_on_chunking(monkeypatch):
    from scipy import stats

    import privlab.protect.ldp_pixel as lp

    x = torch.zeros(1000, 1000)
    mech = LaplaceMechanism(epsilon=2.0, scope="pixel", clip=False)  # b = 0.5
    y = mech.privatize(x, g(7)).double().numpy().ravel()
    assert stats.kstest(y, "laplace", args=(0.0, 0.5)).pvalue > 0.01
    assert stats.kstest(y, "laplace", args=(0.0, 0.5 * 1.02)).pvalue < 1e-6  # a 2 % wrong scale is visible
    assert np.abs(y).max() <= 0.5 * 24 * math.log(2) + 1e-6  # the tail cut: U ≥ 2⁻²⁴
    monkeypatch.setattr(lp, "_CPU_CHUNK", 999)  # the stream is consumed in order: any chunk size, same output
    assert np.array_equal(mech.privatize(x, g(7)).double().numpy().ravel(), y)
    # the torch path (used on GPUs) makes the same draws and arithmetic: equal up to the last bit of log
    t = lp._add_laplace_torch(x, 0.5, g(7), clip=False).double().numpy().ravel()
    assert np.abs(t - y).max() < 1e-5


def test_floyd_steinberg_keeps_grey_levels_as_densities_and_matches_a_scalar_reference():
    from privlab.protect.ldp_pixel import floyd_steinberg

    # a constant grey image: error diffusion reproduces its mean over the image (up to the border's lost error)
    for level in (0.25, 0.5, 0.75):
        d = floyd_steinberg(torch.full((1, 1, 16, 16), level))
        assert set(d.unique().tolist()) <= {0.0, 1.0}
        assert d.mean().item() == pytest.approx(level, abs=0.03)
    # against a plain scalar implementation of the raster-order kernel (7, 3, 5, 1)/16
    x = torch.rand(3, 1, 6, 5, generator=g(2))
    ref = x.double().numpy().copy()
    for img in ref[:, 0]:
        for i in range(6):
            for j in range(5):
                old = img[i, j]
                img[i, j] = 1.0 if old > 0.5 else 0.0
                e = old - img[i, j]
                for di, dj, w in ((0, 1, 7), (1, -1, 3), (1, 0, 5), (1, 1, 1)):
                    if i + di < 6 and 0 <= j + dj < 5:
                        img[i + di, j + dj] += e * w / 16
    assert np.array_equal(floyd_steinberg(x).numpy(), ref.astype(np.float32))


def test_randomized_response_with_dithering_flips_the_dithered_bits_and_reports_the_per_pixel_cost():
    from privlab.protect.ldp_pixel import floyd_steinberg

    x = torch.rand(500, 1, 8, 8, generator=g(3))
    mech = RandomizedResponse(epsilon=64.0, binarize="dither")  # ε_bit = 1
    bits = mech.preprocess(x)
    assert torch.equal(bits, floyd_steinberg(x))
    assert torch.equal(RandomizedResponse(epsilon=1e6, binarize="dither").privatize(x, g()), bits)
    _, q = mech.probabilities(64)
    assert (mech.privatize(x, g()) != bits).double().mean().item() == pytest.approx(q, abs=0.01)  # 32 000 bits
    b = mech.budget(pixels=64)
    assert b.epsilon == 64.0 and b.details["per_bit_epsilon"] == 1.0
    assert b.details["per_pixel_epsilon"] == 64.0  # one pixel's error reaches later bits: only the image ε holds
    assert RandomizedResponse(epsilon=64.0).budget(pixels=64).details["per_pixel_epsilon"] == 1.0
