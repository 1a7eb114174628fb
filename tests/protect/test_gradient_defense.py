"""Defences on the shared gradient: parsing, exact effects, DP-SGD clipping and its ε."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from privlab.attack.inversion import ThreatModel, client_update
from privlab.errors import ConfigError
from privlab.protect import PROTECTIONS
from privlab.protect.gradient import build_defense, parse_defense, per_example_gradients
from privlab.protect.gradient.client import trainable


def test_parse_short_forms() -> None:
    assert parse_defense("noise:0.01") == {"name": "gaussian", "sigma": 0.01}
    assert parse_defense("laplace:0.1") == {"name": "laplace", "sigma": 0.1}
    assert parse_defense("dpsgd:noise_multiplier=1,clip=0.5") == {"name": "dpsgd", "noise_multiplier": 1.0, "clip": 0.5}
    assert parse_defense("augment:flip") == {"name": "augment", "transform": "flip"}
    assert parse_defense("none") == {"name": "none"}
    with pytest.raises(ConfigError, match="unknown defence 'blur'"):
        parse_defense("blur:3")
    with pytest.raises(ConfigError, match="not a number"):
        parse_defense("prune:lots")
    with pytest.raises(ConfigError, match="sigma must be > 0"):
        build_defense({"name": "gaussian"})
    assert "gradient-prune" in PROTECTIONS


def test_prune_zeroes_exactly_the_smallest_entries() -> None:
    g = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    (out,) = build_defense({"name": "prune", "percent": 70}).shared([g], torch.Generator())
    assert int((out == 0).sum()) == 700
    kept = out != 0
    assert float(g[kept].abs().min()) >= float(g[~kept].abs().max())
    torch.testing.assert_close(out[kept], g[kept])


def test_noise_has_the_stated_scale() -> None:
    zeros = [torch.zeros(200_000)]
    gen = torch.Generator().manual_seed(0)
    (ga,) = build_defense({"name": "gaussian", "sigma": 0.1}).shared(zeros, gen)
    (la,) = build_defense({"name": "laplace", "sigma": 0.1}).shared(zeros, gen)
    assert float(ga.std()) == pytest.approx(0.1, rel=0.01)
    assert float(la.std()) == pytest.approx(0.1 * 2**0.5, rel=0.02)  # Laplace(b) has std b·√2
    assert float(la.abs().mean()) == pytest.approx(0.1, rel=0.02)  # and mean |x| = b


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 3))


def test_per_example_gradients_match_a_loop() -> None:
    model = _model()
    x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 1, 0])
    per = per_example_gradients(model, trainable(model), x, y)
    for i in range(5):
        ref = torch.autograd.grad(F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]), list(model.parameters()))
        for p, r in zip(per, ref, strict=True):
            torch.testing.assert_close(p[i], r)


def test_dpsgd_clips_each_example_and_adds_calibrated_noise() -> None:
    model = _model()
    x, y = torch.rand(6, 1, 2, 2) * 10, torch.tensor([0, 1, 2, 1, 0, 2])
    plain = client_update(model, x, y, ThreatModel())
    loose = build_defense({"name": "dpsgd", "clip": 1e6, "noise_multiplier": 0.0})
    same = client_update(model, x, y, ThreatModel(), gradient_fn=loose.gradient_fn(torch.Generator()))
    for a, b in zip(same, plain, strict=True):
        torch.testing.assert_close(a, b)
    tight = build_defense({"name": "dpsgd", "clip": 0.01, "noise_multiplier": 0.0})
    clipped = client_update(model, x, y, ThreatModel(), gradient_fn=tight.gradient_fn(torch.Generator()))
    norm = float(torch.sqrt(sum(g.pow(2).sum() for g in clipped)))
    assert norm <= 0.01 + 1e-6  # the mean of vectors of norm ≤ C has norm ≤ C
    # noise: std z·C/B per entry, around the clipped mean
    noisy = build_defense({"name": "dpsgd", "clip": 0.01, "noise_multiplier": 50.0})
    draws = torch.stack(
        [
            torch.cat(
                [
                    t.flatten()
                    for t in client_update(
                        model, x, y, ThreatModel(), gradient_fn=noisy.gradient_fn(torch.Generator().manual_seed(s))
                    )
                ]
            )
            for s in range(400)
        ]
    )
    assert float(draws.std(0).mean()) == pytest.approx(50.0 * 0.01 / 6, rel=0.05)


def test_dpsgd_epsilon_comes_from_the_opacus_accountant() -> None:
    from opacus.accountants import RDPAccountant

    acc = RDPAccountant()
    acc.step(noise_multiplier=1.0, sample_rate=0.1)
    ref = acc.get_epsilon(delta=1e-5)
    b = build_defense({"name": "dpsgd", "noise_multiplier": 1.0, "sample_rate": 0.1}).budget()
    assert b.epsilon == pytest.approx(ref)
    assert (b.kind, b.delta) == ("dp", 1e-5)
    more = build_defense({"name": "dpsgd", "noise_multiplier": 2.0, "sample_rate": 0.1}).budget()
    assert more.epsilon < b.epsilon
    assert build_defense({"name": "prune", "percent": 10}).budget().kind == "none"


def test_augment_hook_transforms_the_inputs() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4)
    d = build_defense({"name": "augment", "transform": "flip"})
    torch.testing.assert_close(d.inputs(x, torch.Generator()), x.flip(-1))
    assert build_defense({"name": "none"}).inputs(x, torch.Generator()) is x
