import math

import numpy as np
import pytest
from scipy import integrate, special, stats

from privlab.errors import ConfigError, UnknownNameError
from privlab.measure.mi import tasks as mt
from privlab.measure.mi.tasks import TASKS, get_task, suite

MC_N = 200_000


def base_of(task):
    return get_task(task.name[len(task.transform) + 1 : -1])


# ------------------------------------------------------------------------------------------------ normal


def test_normal_mi_against_hand_computations():
    assert get_task("normal-corr0.8-1x1").mi == pytest.approx(-0.5 * math.log(1 - 0.8**2), abs=1e-12)
    assert get_task("normal-dense-1x1").mi == pytest.approx(-0.5 * math.log(1 - 0.5**2), abs=1e-12)
    # dense 2x2, every correlation 0.5: det Σ_x = det Σ_z = 1 − 0.25 = 0.75; det Σ (4×4) = 0.5³·(1 + 3·0.5) = 0.3125
    assert get_task("normal-dense-2x2").mi == pytest.approx(0.5 * math.log(0.75 * 0.75 / 0.3125), abs=1e-12)
    assert get_task("normal-dense-2x2").mi == pytest.approx(0.5 * math.log(1.8), abs=1e-12)
    # two independent pairs (ρ = 0.6 and 0.3) plus a within-X correlation that carries no information about Z
    cov = np.eye(4)
    cov[0, 2] = cov[2, 0] = 0.6
    cov[1, 3] = cov[3, 1] = 0.3
    assert mt.gaussian_mi(cov, 2) == pytest.approx(-0.5 * math.log(1 - 0.36) - 0.5 * math.log(1 - 0.09), abs=1e-12)
    for d in (1, 2, 3, 5, 25, 50):  # equicorrelation α: eigenvalues 1 − α (×(k−1)) and 1 + (k−1)α
        a = 0.5
        closed = 0.5 * (-math.log(1 - a) + 2 * math.log(1 + (d - 1) * a) - math.log(1 + (2 * d - 1) * a))
        assert get_task(f"normal-dense-{d}x{d}").mi == pytest.approx(closed, abs=1e-10)


def test_sparse_normal_mi_and_samplers_match_their_covariance():
    for d in (2, 3, 5, 25, 50):
        cov = np.eye(2 * d)
        for i in range(2):
            cov[i, d + i] = cov[d + i, i] = 0.8
        assert get_task(f"normal-sparse-{d}x{d}").mi == pytest.approx(mt.gaussian_mi(cov, d), abs=1e-10)
        if d == 5:
            x, z = get_task("normal-sparse-5x5").sample(40_000, seed=1)
            assert np.abs(np.cov(np.hstack([x, z]), rowvar=False) - cov).max() < 0.03
    assert get_task("normal-sparse-500x500").mi == pytest.approx(-math.log(1 - 0.64), abs=1e-12)
    x, z = get_task("normal-dense-3x3").sample(40_000, seed=1)
    assert np.abs(np.cov(np.hstack([x, z]), rowvar=False) - (0.5 * np.eye(6) + 0.5)).max() < 0.03


# ---------------------------------------------------------------------------------------------- student t


def test_student_t_mi_matches_scipy_entropies():
    ts = suite(families=["student-t"])
    assert len(ts) >= 8
    for t in ts:
        nu = int(t.name.split("-df")[1].split("-")[0])

        def h(d, nu=nu):
            return stats.multivariate_t(np.zeros(d), np.eye(d), df=nu).entropy()

        assert t.mi == pytest.approx(h(t.dim_x) + h(t.dim_z) - h(t.dim_x + t.dim_z), abs=1e-9), t.name
    assert get_task("student-t-df1-1x1").mi == pytest.approx(0.2242, abs=1e-4)


@pytest.mark.parametrize("name", ["student-t-df1-1x1", "student-t-df3-2x2"])
def test_student_t_mi_by_monte_carlo_with_exact_densities(name):
    t = get_task(name)
    nu = int(name.split("-df")[1].split("-")[0])
    x, z = t.sample(MC_N, seed=7)
    d = t.dim_x + t.dim_z

    def logp(y, k):
        return stats.multivariate_t(np.zeros(k), np.eye(k), df=nu).logpdf(y)

    ratio = logp(np.hstack([x, z]), d) - logp(x, t.dim_x) - logp(z, t.dim_z)
    assert ratio.mean() == pytest.approx(t.mi, abs=0.01)


# ------------------------------------------------------------------------------------- uniform noise, bimodal


@pytest.mark.parametrize("eps", [0.1, 0.75])
def test_uniform_noise_mi_by_monte_carlo_and_quadrature(eps):
    t = get_task(f"uniform-noise-eps{eps}-1x1")
    x, z = t.sample(MC_N, seed=3)
    assert np.all(np.abs(z - x) <= eps) and x.min() >= 0 and x.max() < 1
    # p(z|x) = 1/(2ε) on [x−ε, x+ε]; p(z) = |[0,1] ∩ [z−ε, z+ε]| / (2ε): the log ratio is −log of the overlap
    overlap = np.minimum(1.0, z + eps) - np.maximum(0.0, z - eps)
    assert (-np.log(overlap)).mean() == pytest.approx(t.mi, abs=0.01)

    def pz(v):
        return (min(1.0, v + eps) - max(0.0, v - eps)) / (2 * eps)

    hz, _ = integrate.quad(lambda v: -pz(v) * math.log(pz(v)), -eps, 1 + eps, points=[eps, 1 - eps], limit=200)
    assert t.mi == pytest.approx(hz - math.log(2 * eps), abs=1e-7)
    assert mt.uniform_noise_mi(0.5) == pytest.approx(0.5) == pytest.approx(0.5 - math.log(1.0))  # continuous at ½


def mixture_logpdf(v, mean, var):
    return np.logaddexp(stats.norm.logpdf(v, -mean, math.sqrt(var)), stats.norm.logpdf(v, mean, math.sqrt(var))) - (
        math.log(2)
    )


def test_bimodal_additive_mi_by_monte_carlo_with_exact_densities():
    t = get_task("bimodal-additive-1x1")
    x, z = t.sample(MC_N, seed=5)
    m, s, sn = mt.BIMODAL_MEAN, mt.BIMODAL_SD, mt.BIMODAL_NOISE_SD
    assert np.mean(x > 0) == pytest.approx(0.5, abs=0.01)
    ratio = stats.norm.logpdf(z, x, sn) - mixture_logpdf(z, m, s**2 + sn**2)
    assert ratio.mean() == pytest.approx(t.mi, abs=0.01)


def test_bimodal_map_makes_bimodal_marginals_and_keeps_the_gaussian_mi():
    t = get_task("bimodal-1x1")
    assert t.mi == pytest.approx(-0.5 * math.log(1 - 0.75**2), abs=1e-12)
    grid = np.linspace(-9, 9, 20001)
    y = mt.bimodal_map(grid)
    assert np.all(np.diff(y) > 0) and np.allclose(y, -y[::-1], atol=1e-12)
    assert np.abs(mt.bimodal_map_inverse(y) - grid).max() < 1e-8
    x, z = t.sample(40_000, seed=2)
    m, s = mt.BIMODAL_MEAN, mt.BIMODAL_SD
    for v in (-1.5, -1.0, -0.3, 0.0, 0.4, 1.2):  # marginals follow the mixture: empirical vs exact CDF
        cdf = 0.5 * (stats.norm.cdf(v, -m, s) + stats.norm.cdf(v, m, s))
        assert np.mean(x <= v) == pytest.approx(cdf, abs=0.01)
        assert np.mean(z <= v) == pytest.approx(cdf, abs=0.01)
    g = np.random.default_rng(0)  # the copula is that of the Gaussian pair: same seed, same draws before the map
    base = g.standard_normal((1000, 2)) @ np.linalg.cholesky(np.array([[1, 0.75], [0.75, 1]])).T
    x0, z0 = t.sample(1000, seed=0)
    assert np.abs(mt.bimodal_map_inverse(x0[:, 0]) - base[:, 0]).max() < 1e-8
    assert np.abs(mt.bimodal_map_inverse(z0[:, 0]) - base[:, 1]).max() < 1e-8


# ---------------------------------------------------------------------------------------------- uniform-gauss


def test_uniform_gauss_per_dimension_value():
    assert mt.uniform_gauss_mi_per_dim(2.0, 1.0) == pytest.approx(0.14371, abs=1e-4)
    t = get_task("uniform-gauss-512x64")
    assert (t.dim_x, t.dim_z) == (512, 64)
    assert round(t.mi / 64, 4) == 0.1437 and t.mi == pytest.approx(9.20, abs=0.005)
    assert get_task("uniform-gauss-1024x120").mi == pytest.approx(120 * 0.14371, abs=1e-3)
    # Monte Carlo with the exact densities: log N(z; 2x, 1) − log[(Φ(z) − Φ(z − 2)) / 2]
    x, z = get_task("uniform-gauss-1x1").sample(MC_N, seed=4)
    ratio = stats.norm.logpdf(z, 2 * x, 1.0) - np.log((special.ndtr(z) - special.ndtr(z - 2)) / 2)
    assert ratio.mean() == pytest.approx(mt.uniform_gauss_mi_per_dim(2.0, 1.0), abs=0.01)
    x, z = get_task("uniform-gauss-20x5").sample(1000, seed=0)
    assert np.all((x >= 0) & (x < 1)) and z.shape == (1000, 5)


# --------------------------------------------------------------------------------------------- transforms


def test_elementwise_maps_are_strictly_increasing():
    grid = np.linspace(-6, 6, 12001)
    for name, f in mt.ELEMENTWISE_TRANSFORMS.items():
        y = f(grid)
        assert np.all(np.diff(y) > 0), name
        assert np.abs(mt.ELEMENTWISE_INVERSES[name](y) - grid).max() < 1e-6, name
    fine = np.linspace(-50, 50, 1_000_001)
    derivative = 1 + 0.4 * np.cos(fine) + 0.4 * np.cos(4 * fine + 1)
    assert derivative.min() >= 0.2 - 1e-12
    assert np.allclose(np.gradient(mt.ELEMENTWISE_TRANSFORMS["wiggly"](fine), fine)[1:-1], derivative[1:-1], atol=1e-6)


def test_transformed_tasks_keep_the_base_mi_and_invert_to_the_base_samples():
    transformed = [t for t in suite() if t.transform is not None]
    assert {t.transform for t in transformed} == set(mt.TRANSFORMS)
    for t in transformed:
        base = base_of(t)
        assert t.name == f"{t.transform}({base.name})" and base.transform is None
        assert t.mi == base.mi and t.family == base.family and t.dim_z == base.dim_z
        x, z = t.sample(2000, seed=11)
        bx, bz = base.sample(2000, seed=11)
        if t.transform in mt.ELEMENTWISE_TRANSFORMS:
            inv = mt.ELEMENTWISE_INVERSES[t.transform]
            tol = 1e-6 if t.transform == "normal-cdf" else 1e-8  # Φ⁻¹ near 1 loses digits in the upper tail
            assert np.abs(inv(x) - bx).max() < tol and np.abs(inv(z) - bz).max() < tol, t.name
        elif t.transform == "spiral":
            assert x.shape == bx.shape and np.array_equal(z, bz)
            assert np.allclose(np.linalg.norm(x, axis=1), np.linalg.norm(bx, axis=1), atol=1e-12)
            assert np.abs(x - bx).max() > 0.5  # it does move the points
            assert np.abs(mt.spiral_inverse(x) - bx).max() < 1e-8, t.name
        else:
            assert t.transform == "swiss-roll"
            assert x.shape == (2000, 2) and bx.shape == (2000, 1) and t.dim_x == 2 and np.array_equal(z, bz)
            assert np.abs(mt.swiss_roll_inverse(x) - bx).max() < 1e-8
    with pytest.raises(ValueError, match="d >= 2"):
        mt.spiral(np.zeros((3, 1)))
    with pytest.raises(ValueError, match=r"\(n, 1\)"):
        mt.swiss_roll(np.zeros((3, 2)))


# ------------------------------------------------------------------------------------------ suite, seeding


def test_every_task_is_seeded_and_shaped():
    for t in suite():
        x, z = t.sample(64, seed=3)
        assert x.dtype == np.float64 and z.dtype == np.float64, t.name
        assert x.shape == (64, t.dim_x) and z.shape == (64, t.dim_z), t.name
        assert np.isfinite(x).all() and np.isfinite(z).all(), t.name
        x2, z2 = t.sample(64, seed=3)
        assert np.array_equal(x, x2) and np.array_equal(z, z2), t.name
        x3, z3 = t.sample(64, seed=4)
        assert not np.array_equal(x, x3) and not np.array_equal(z, z3), t.name
        assert math.isfinite(t.mi) and t.mi > 0, t.name
    with pytest.raises(ConfigError, match="positive integer"):
        get_task("normal-dense-1x1").sample(0)
    with pytest.raises(ConfigError, match="positive integer"):
        get_task("normal-dense-1x1").sample(2.5)


def test_suite_selection_names_and_registry():
    all_tasks = suite()
    names = [t.name for t in all_tasks]
    assert len(all_tasks) >= 30 and len(set(names)) == len(names) and names == sorted(names)
    assert any(t.dim_x + t.dim_z >= 1000 for t in all_tasks)
    small = suite(max_dim=10)
    assert small and all(t.dim_x + t.dim_z <= 10 for t in small)
    assert {t.name for t in small} == {t.name for t in all_tasks if t.dim_x + t.dim_z <= 10}
    assert {t.family for t in all_tasks} == set(mt.FAMILIES)
    normals = suite(families=["normal"])
    assert normals and all(t.family == "normal" for t in normals)
    assert any(t.transform == "swiss-roll" for t in normals)
    for required in ("normal-sparse-5x5", "uniform-gauss-512x64", "uniform-gauss-1024x120", "student-t-df3-5x5"):
        assert required in TASKS
    entry = TASKS.entry("swiss-roll(normal-corr0.8-1x1)")
    assert entry.meta["dims"] == (2, 1) and entry.meta["family"] == "normal"
    assert entry.meta["transform"] == "swiss-roll"
    with pytest.raises(UnknownNameError, match="Did you mean 'normal-dense-5x5'"):
        get_task("normal-dense-5x6")
    with pytest.raises(UnknownNameError, match="family"):
        suite(families=["gaussian"])
    assert "normal" in repr(get_task("normal-dense-1x1")) and "_sampler" not in repr(get_task("normal-dense-1x1"))
