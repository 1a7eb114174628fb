"""Neural MI lower bounds (infonce, nwj, mine, smile): accuracy, seeding, the InfoNCE ceiling, option checks."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from privlab.errors import ConfigError
from privlab.measure.functional.mi_neural import ConcatCritic, dv_bound, infonce_bound, nwj_bound, smile_bound
from privlab.measure.mi import MI_ESTIMATORS, estimate_mi
from privlab.measure.mi.neural import make_config, neural_mi

NAMES = ["infonce", "nwj", "mine", "smile"]
TRUE_1D = -0.5 * math.log(1 - 0.64)  # correlation 0.8: 0.511 nats
SMALL = {"hidden": 32, "max_epochs": 4}


def gaussian_pair(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, generator=g)
    return x, 0.8 * x + 0.6 * torch.randn(n, 1, generator=g)


def quiet_estimate(x: torch.Tensor, z: torch.Tensor, name: str, **kw) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimate_mi(x, z, name, diagnose=False, **kw).nats


def test_registered_with_metadata() -> None:
    for name in NAMES:
        meta = MI_ESTIMATORS.entry(name).meta
        assert meta["stochastic"] and meta["uses_device"] and not meta["uses_knn"]
        assert meta["description"]


@pytest.mark.parametrize("name", NAMES)
def test_recovers_1d_gaussian_mi(name: str) -> None:
    x, z = gaussian_pair(3000)
    r = estimate_mi(x, z, name, seed=0, options={"hidden": 64, "max_epochs": 40}, diagnose=False)
    assert abs(r.nats - TRUE_1D) < 0.1, (name, r.nats)
    assert r.details["n_test"] == 900 and r.details["best_epoch"] >= 1


def test_seeded_and_leaves_global_rng_alone() -> None:
    x, z = gaussian_pair(1000)
    state = torch.get_rng_state()
    a = quiet_estimate(x, z, "nwj", seed=3, options=SMALL)
    assert torch.equal(state, torch.get_rng_state())
    assert quiet_estimate(x, z, "nwj", seed=3, options=SMALL) == a
    assert quiet_estimate(x, z, "nwj", seed=4, options=SMALL) != a


@pytest.mark.parametrize("name", ["infonce", "mine", "smile"])
def test_same_seed_same_value(name: str) -> None:
    x, z = gaussian_pair(600)
    opts = {"hidden": 16, "max_epochs": 2, "batch_size": 64}
    a = quiet_estimate(x, z, name, seed=1, options=opts)
    assert quiet_estimate(x, z, name, seed=1, options=opts) == a
    assert quiet_estimate(x, z, name, seed=2, options=opts) != a


def test_infonce_ceiling_and_warning() -> None:
    # 5 independent coordinates with I = ½ log(1 + 1/σ²) = 2 nats each: 10 nats ≫ log 8
    g = torch.Generator().manual_seed(0)
    s2 = 1 / (math.e**4 - 1)
    x = torch.randn(2000, 5, generator=g)
    z = x + math.sqrt(s2) * torch.randn(2000, 5, generator=g)
    with pytest.warns(RuntimeWarning, match=r"ceiling log B.*increase batch_size"):
        r = estimate_mi(x, z, "infonce", options={"batch_size": 8, "max_epochs": 3, "hidden": 64}, diagnose=False)
    assert r.details["ceiling"] == pytest.approx(math.log(8))
    assert r.nats <= math.log(8) + 1e-5
    assert r.nats > 0.9 * math.log(8)


def test_infonce_no_warning_far_below_ceiling() -> None:
    x, z = gaussian_pair(1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        r = estimate_mi(x, z, "infonce", options=SMALL, diagnose=False)
    assert r.nats <= r.details["ceiling"] + 1e-5 and r.details["ceiling"] == pytest.approx(math.log(256))


@pytest.mark.parametrize("name", NAMES)
def test_independent_data_near_zero(name: str) -> None:
    g = torch.Generator().manual_seed(1)
    x, z = torch.randn(2000, 3, generator=g), torch.randn(2000, 3, generator=g)
    assert quiet_estimate(x, z, name, options={"hidden": 64, "max_epochs": 15}) < 0.05


def test_unknown_option_names_valid_ones() -> None:
    x, z = gaussian_pair(200)
    with pytest.raises(ConfigError, match=r"unknown option.*'depth'.*valid options: batch_size, epochs, hidden"):
        estimate_mi(x, z, "nwj", options={"depth": 3})
    with pytest.raises(ConfigError, match="tau"):  # smile's option, not infonce's
        estimate_mi(x, z, "infonce", options={"tau": 3.0})
    with pytest.raises(ConfigError, match="valid options:.*ema"):
        estimate_mi(x, z, "mine", options={"momentum": 0.1})


@pytest.mark.parametrize(
    "opts",
    [
        {"batch_size": 1},
        {"batch_size": 2.5},
        {"lr": 0},
        {"lr": -1e-3},
        {"test_fraction": 0.0},
        {"test_fraction": 1.0},
        {"epochs": 0},
        {"epochs": 5, "max_epochs": 6},
        {"hidden": 0},
    ],
)
def test_bad_values_rejected(opts: dict) -> None:
    x, z = gaussian_pair(200)
    with pytest.raises(ConfigError):
        estimate_mi(x, z, "infonce", options=opts)


def test_bad_bound_specific_values_rejected() -> None:
    with pytest.raises(ConfigError, match="tau"):
        make_config("smile", tau=0)
    with pytest.raises(ConfigError, match="ema"):
        make_config("mine", ema=1.5)
    assert make_config("mine", epochs=7, ema=0.1).max_epochs == 7


def test_too_few_rows_rejected() -> None:
    with pytest.raises(ConfigError, match="at least 2"):
        neural_mi(torch.randn(4, 1), torch.randn(4, 1), make_config("nwj"), generator=torch.Generator())


def test_bound_formulas() -> None:
    b = 16
    perfect = torch.full((b, b), -100.0)
    perfect.fill_diagonal_(100.0)
    assert float(infonce_bound(perfect)) == pytest.approx(math.log(b))
    assert float(infonce_bound(torch.zeros(b, b))) == pytest.approx(0.0)
    pos, neg = torch.tensor([2.0, 4.0]), torch.tensor([0.0, math.log(3.0)])
    assert float(nwj_bound(pos, neg)) == pytest.approx(3.0 - math.exp(-1) * 2.0)
    assert float(dv_bound(pos, neg)) == pytest.approx(3.0 - math.log(2.0))
    assert float(smile_bound(pos, torch.tensor([10.0, 10.0]), 5.0)) == pytest.approx(3.0 - 5.0)


def test_critic_pairs_match_concat_mlp() -> None:
    g = torch.Generator().manual_seed(0)
    c = ConcatCritic(3, 2, hidden=8, layers=2, generator=g, device=torch.device("cpu"))
    x, z = torch.randn(5, 3), torch.randn(4, 2)
    s = c.pairs(x, z)
    assert s.shape == (5, 4)
    mlp = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), c.body[0], torch.nn.ReLU(), c.out)
    with torch.no_grad():
        mlp[0].weight.copy_(torch.cat([c.in_x.weight, c.in_z.weight], dim=1))
        mlp[0].bias.copy_(c.in_x.bias)
        ref = mlp(torch.cat([x[:, None, :].expand(5, 4, 3), z[None].expand(5, 4, 2)], dim=-1)).squeeze(-1)
    assert torch.allclose(s, ref, atol=1e-5)
    assert torch.allclose(c.shifted(x[:4], z, 1)[:, 0], c(x[:4], z), atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_runs() -> None:
    x, z = gaussian_pair(1000)
    r = estimate_mi(x, z, "smile", device="cuda", options=SMALL, diagnose=False)
    assert math.isfinite(r.nats)
