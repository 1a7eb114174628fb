import math
import warnings

import numpy as np
import pytest
import torch

from privlab.errors import ConfigError
from privlab.measure.functional.preprocess import copula_normalize, preprocess_pair
from privlab.measure.mi import MIWarning, estimate_mi


def correlated(n, d, rho, seed=0):
    g = np.random.default_rng(seed)
    x = g.normal(size=(n, d))
    z = rho * x + math.sqrt(1 - rho**2) * g.normal(size=(n, d))
    return x, z, -d / 2 * math.log(1 - rho**2)


def test_gaussian_copula_is_invariant_to_monotone_transforms():
    x, z, truth = correlated(4000, 3, 0.7)
    plain = estimate_mi(x, z, "gaussian-copula", diagnose=False).nats
    bent = estimate_mi(np.sinh(x) ** 3, np.exp(z), "gaussian-copula", diagnose=False).nats
    assert plain == pytest.approx(bent, abs=1e-12)  # ranks are unchanged by strictly increasing maps
    assert plain == pytest.approx(truth, abs=0.05)
    assert estimate_mi(np.sinh(x) ** 3, np.exp(z), "gaussian", diagnose=False).nats < truth - 0.3  # plain fit breaks


def test_copula_normal_scores():
    a = torch.tensor([[3.0, 1.0], [1.0, 1.0], [2.0, 5.0]])
    c = copula_normalize(a)
    assert torch.allclose(c[:, 0], torch.tensor([0.6744897501960817, -0.6744897501960817, 0.0], dtype=torch.float64))
    assert c[0, 1] == c[1, 1]  # ties share their average rank


def test_constant_columns_are_ignored_not_singular():
    x, z, truth = correlated(3000, 2, 0.6)
    x = np.hstack([x, np.zeros((3000, 3))])  # e.g. image border pixels that are always 0
    assert estimate_mi(x, z, "gaussian", diagnose=False).nats == pytest.approx(truth, abs=0.05)
    assert estimate_mi(np.zeros((100, 2)), z[:100], "gaussian", diagnose=False).nats == 0.0


def test_auto_states_its_rule_and_is_deterministic():
    x, z, truth = correlated(3000, 2, 0.6)
    a = estimate_mi(x, z, "auto", seed=0, diagnose=False)
    b = estimate_mi(x, z, "auto", seed=0, diagnose=False)
    assert a.nats == b.nats and a.details == b.details
    assert a.details["rule"].startswith("d_x + d_z = 4 ≤ 20")
    assert set(a.details["candidates"]) == {"gaussian-copula", "ksg (copula)"}
    assert a.nats == max(a.details["candidates"].values())
    assert a.nats == pytest.approx(truth, abs=0.05)


def test_auto_on_the_high_dimensional_uniform_task_is_within_20_percent():
    """X ~ U[0,1]^512, Z = 2·X[:, :64] + N(0, 1): true MI = 64 × 0.14371 = 9.20 nats; kNN estimators return ≈ 0–2."""
    g = np.random.default_rng(0)
    n = 5000
    x = g.random((n, 512))
    z = 2 * x[:, :64] + g.normal(size=(n, 64))
    r = estimate_mi(x, z, "auto", diagnose=False)
    assert r.details["rule"].startswith("d_x + d_z = 576 > 20")
    assert abs(r.nats - 64 * 0.14371) < 0.2 * 64 * 0.14371


def test_diagnostics_fire_in_high_dimension():
    g = np.random.default_rng(1)
    x = g.random((600, 100))
    z = x[:, :10] + g.normal(size=(600, 10))
    with pytest.warns(MIWarning) as caught:
        r = estimate_mi(x, z, "ksg")
    texts = " ".join(str(w.message) for w in caught)
    assert "biased low" in texts and "110 dimensions" in texts
    assert "disagree" in texts  # ksg collapses while the copula reference does not
    assert r.nats < 0.05 < 0.3 < r.diagnostics["reference"]  # true MI ≈ 10 × 0.04 nats; KSG collapses to ≈ 0
    assert any("biased low" in w for w in r.diagnostics["warnings"])
    with pytest.warns(MIWarning, match="< 10 per dimension"):
        estimate_mi(x[:500], z[:500], "gaussian-copula")  # 500 rows for 110 dimensions


def test_diagnostics_quiet_on_an_easy_case():
    x, z, _ = correlated(3000, 1, 0.6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MIWarning)
        r = estimate_mi(x, z, "ksg")
    assert r.diagnostics["warnings"] == [] and r.diagnostics["reference"] == pytest.approx(r.nats, abs=0.1)


def test_preprocess_is_labelled():
    x, z, truth = correlated(2000, 20, 0.5)
    r = estimate_mi(x, z, "gaussian", preprocess="pca", pca_dims=5, diagnose=False)
    assert r.dims == (5, 5) and "lower bound" in r.preprocess and r.nats < truth
    s = estimate_mi(x * 1000, z, "ksg", preprocess="standardize", diagnose=False)
    assert s.preprocess == "standardize"
    assert s.nats == pytest.approx(estimate_mi(x, z, "ksg", preprocess="standardize", diagnose=False).nats, abs=1e-9)
    xw, _, label = preprocess_pair(torch.from_numpy(x), torch.from_numpy(z), "whiten", dims=4)
    assert label.startswith("whiten") and torch.allclose(xw.std(0), torch.ones(4, dtype=torch.float64), atol=1e-6)
    with pytest.raises(ConfigError, match="preprocess must be"):
        estimate_mi(x, z, preprocess="umap")
    with pytest.raises(ConfigError, match="takes no options"):
        estimate_mi(x, z, "ksg", options={"epochs": 3})
