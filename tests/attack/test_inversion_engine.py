"""The gradient-inversion engine: objectives, labels, threat models, and attacks converging on tiny cases."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from privlab.attack import ATTACKS, Observation
from privlab.attack.inversion import GradientInversion, ThreatModel, client_update, make_attack
from privlab.attack.inversion.labels import batch_labels, idlg_label
from privlab.attack.inversion.objectives import OBJECTIVES, layer_weights, select_layers
from privlab.attack.inversion.regularizers import total_variation
from privlab.data import load_dataset
from privlab.errors import ConfigError, UnknownNameError
from privlab.models import build_model
from privlab.models.lenet import dlg_uniform_init_


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1 / float(((a - b) ** 2).mean()))


@pytest.fixture(scope="module")
def digits() -> object:
    return load_dataset("digits", "test")


def _dlg_model(data: object, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    m = build_model("lenet_dlg", 10, data.shape, mean=data.mean, std=data.std)
    return dlg_uniform_init_(m).eval()


# -- objectives ---------------------------------------------------------------------------------------------------
def test_l2_value_and_gradient_closed_form() -> None:
    a = torch.tensor([1.0, 2.0, -1.0], requires_grad=True)
    b = torch.tensor([0.5, 0.0, 1.0])
    val = OBJECTIVES.get("l2")([a], [b], torch.ones(1))
    assert val.item() == pytest.approx(0.25 + 4 + 4)
    (g,) = torch.autograd.grad(val, a)
    torch.testing.assert_close(g, 2 * (a.detach() - b))


def test_cosine_value_bounds_and_gradient() -> None:
    t = [torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])]
    w = torch.ones(2)
    cos = OBJECTIVES.get("cosine")
    assert float(cos(t, t, w)) == pytest.approx(0.0, abs=1e-7)
    assert float(cos([-x for x in t], t, w)) == pytest.approx(2.0)
    orth = [torch.tensor([0.0, 1.0]), torch.tensor([0.0, 0.0])]
    # global cosine over the concatenation [0,1,0,0]·[1,0,0,2] = 0 → 1
    assert float(cos(orth, t, w)) == pytest.approx(1.0)
    # the gradient matches finite differences (double precision)
    g = [
        torch.randn(3, dtype=torch.float64, requires_grad=True),
        torch.randn(2, dtype=torch.float64, requires_grad=True),
    ]
    tt = [torch.randn(3, dtype=torch.float64), torch.randn(2, dtype=torch.float64)]
    ww = torch.tensor([1.0, 0.5], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a, b: cos([a, b], tt, ww), tuple(g))
    assert torch.autograd.gradcheck(lambda a, b: OBJECTIVES.get("cosine-local")([a, b], tt, ww), tuple(g))


def test_objective_gradient_through_the_model_matches_finite_differences() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.Sigmoid(), nn.Linear(3, 2)).double()
    y = torch.tensor([1])
    target = client_update(model, torch.rand(1, 1, 2, 2, dtype=torch.float64), y, ThreatModel())
    w = torch.ones(len(target), dtype=torch.float64)

    def f(x: torch.Tensor) -> torch.Tensor:
        g = client_update(model, x, y, ThreatModel(), create_graph=True)
        return OBJECTIVES.get("l2")(g, target, w) + 0.1 * OBJECTIVES.get("cosine")(g, target, w)

    x0 = torch.rand(1, 1, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(f, (x0,))


def test_layer_selection_and_weights() -> None:
    t = [torch.full((2,), float(v)) for v in (1, 5, 2, 4)]
    assert select_layers("all", t) == [0, 1, 2, 3]
    assert select_layers("first:2", t) == [0, 1]
    assert select_layers("last:1", t) == [3]
    assert select_layers("top:2", t) == [1, 3]
    assert select_layers([0, -1], t) == [0, 3]
    with pytest.raises(ConfigError, match="first:N"):
        select_layers("middle:2", t)
    with pytest.raises(ConfigError, match="indices"):
        select_layers([7], t)
    torch.testing.assert_close(layer_weights("linear", 4), torch.tensor([1.0, 0.75, 0.5, 0.25]))
    assert float(layer_weights("exp", 2)[1]) == pytest.approx(math.exp(-0.5))


def test_total_variation_is_anisotropic_mean() -> None:
    x = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])  # horizontal steps of 1, no vertical change
    assert float(total_variation(x)) == pytest.approx(1.0)
    assert float(total_variation(torch.ones(1, 3, 4, 4))) == 0.0


# -- labels ---------------------------------------------------------------------------------------------------
def test_idlg_recovers_every_single_label(digits: object) -> None:
    model = _dlg_model(digits, 0)
    for i in range(30):
        x, y = digits.batch(torch.tensor([i]))
        g = client_update(model, x, y, ThreatModel())
        assert idlg_label(g[-1], g[-2]) == int(y)  # bias gradient
        assert idlg_label(None, g[-2]) == int(y)  # weight row sums (sigmoid features ≥ 0)


def test_batch_label_recovery_with_repeats(digits: object) -> None:
    model = _dlg_model(digits, 1)
    x, y = digits.batch(torch.arange(8))
    y = torch.tensor([3, 3, 3, 1, 1, 7, 0, 9])
    g = client_update(model, x, y, ThreatModel())
    with torch.no_grad():  # the attacker's estimate of the mean prediction: the model on dummy images
        probs = model(torch.rand(64, *digits.shape, generator=torch.Generator().manual_seed(0))).softmax(1).mean(0)
    assert batch_labels(g[-1], g[-2], 8, mean_probs=probs).tolist() == sorted(y.tolist())
    g_half = client_update(model, x, y, ThreatModel(loss_scale=0.5))
    got = batch_labels(g_half[-1], None, 8, loss_scale=0.5, mean_probs=probs).tolist()
    assert got == sorted(y.tolist())
    # distinct labels: the present ones are exactly the negative entries, even without an estimate
    y2 = torch.tensor([0, 2, 4, 6])
    g2 = client_update(model, x[:4], y2, ThreatModel())
    assert batch_labels(g2[-1], g2[-2], 4).tolist() == [0, 2, 4, 6]


def test_batch_attack_recovers_labels_through_the_engine(digits: object) -> None:
    model = _dlg_model(digits, 1)
    x, _ = digits.batch(torch.arange(4))
    y = torch.tensor([5, 5, 2, 8])
    obs = Observation(
        model=model,
        gradients=client_update(model, x, y, ThreatModel()),
        meta={"batch_size": 4, "image_shape": digits.shape},
    )
    out = make_attack("dlg", labels="batch", iterations=1).run(obs)
    assert sorted(out.labels.tolist()) == [2, 5, 5, 8]


# -- threat models ------------------------------------------------------------------------------------------------
def test_fedsgd_is_the_mean_loss_gradient_and_fedavg_unrolls_sgd() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x, y = torch.rand(4, 1, 2, 2), torch.tensor([0, 1, 2, 1])
    g = client_update(model, x, y, ThreatModel(loss_scale=0.5))
    ref = torch.autograd.grad(0.5 * F.cross_entropy(model(x), y), list(model.parameters()))
    for a, b in zip(g, ref, strict=True):
        torch.testing.assert_close(a, b)
    # two local epochs of SGD over mini-batches of 2, by hand
    w, b = (p.detach().clone() for p in model.parameters())
    for _ in range(2):
        for i in (0, 2):
            w.requires_grad_(True)
            b.requires_grad_(True)
            loss = F.cross_entropy(F.linear(x[i : i + 2].flatten(1), w, b), y[i : i + 2])
            gw, gb = torch.autograd.grad(loss, [w, b])
            w, b = (w - 0.1 * gw).detach(), (b - 0.1 * gb).detach()
    upd = client_update(model, x, y, ThreatModel(kind="fedavg", local_steps=2, local_lr=0.1, local_batch_size=2))
    torch.testing.assert_close(upd[0], model[1].weight.detach() - w)
    torch.testing.assert_close(upd[1], model[1].bias.detach() - b)


# -- attacks -----------------------------------------------------------------------------------------------------
def test_presets_registered_and_configurable() -> None:
    assert {"dlg", "idlg", "inverting-gradients"} <= set(ATTACKS.names())
    ig = make_attack("inverting-gradients")
    assert (ig.config.objective, ig.config.tv, ig.config.signed, ig.config.lr, ig.config.iterations) == (
        "cosine", 1e-4, True, 0.1, 8000
    )  # fmt: skip
    assert make_attack("dlg", iterations=5).config.iterations == 5
    with pytest.raises(ConfigError, match="L-BFGS"):
        GradientInversion({"optimizer": "lbfgs", "signed": True})
    with pytest.raises(ConfigError, match="(?i)did you mean 'cosine'"):
        GradientInversion({"objective": "cosin"})
    with pytest.raises(ConfigError, match="iteration"):
        make_attack("dlg", iteration=5)  # a misspelt key
    with pytest.raises(UnknownNameError):
        make_attack("dlgg")


def test_dlg_recovers_a_digit_exactly(digits: object) -> None:
    model = _dlg_model(digits, 2)
    x, y = digits.batch(torch.tensor([5]))
    obs = Observation(
        model=model,
        gradients=client_update(model, x, y, ThreatModel()),
        meta={"batch_size": 1, "image_shape": digits.shape},
    )
    out = make_attack("dlg").run(obs, generator=torch.Generator().manual_seed(0))
    assert out.labels.tolist() == y.tolist()  # soft labels found the right class
    assert _psnr(out.data, x) >= 30.0  # the target; measured ≈ 80 dB
    assert out.stats["label_strategy"] == "joint"


def test_idlg_and_restarts_keep_the_best(digits: object) -> None:
    model = _dlg_model(digits, 3)
    x, y = digits.batch(torch.tensor([7]))
    obs = Observation(
        model=model,
        gradients=client_update(model, x, y, ThreatModel()),
        meta={"batch_size": 1, "image_shape": digits.shape},
    )
    out = make_attack("idlg", iterations=40, restarts=3).run(obs, generator=torch.Generator().manual_seed(1))
    scores = out.stats["restart_scores"]
    assert out.stats["restart"] == min(range(3), key=scores.__getitem__)
    assert out.labels.tolist() == y.tolist()
    assert _psnr(out.data, x) > 25.0


def test_dlg_inverts_a_fedavg_update(digits: object) -> None:
    model = _dlg_model(digits, 4)
    x, y = digits.batch(torch.tensor([11]))
    threat = ThreatModel(kind="fedavg", local_steps=2, local_lr=0.01)
    obs = Observation(
        model=model,
        gradients=client_update(model, x, y, threat),
        labels=y,
        meta={"batch_size": 1, "image_shape": digits.shape, "threat": threat.model_dump()},
    )
    attack = make_attack("dlg", labels="known", iterations=25)
    out = attack.run(obs, generator=torch.Generator().manual_seed(0))
    assert _psnr(out.data, x) > 25.0


def test_inverting_gradients_beats_noise_and_stays_in_the_box(digits: object) -> None:
    torch.manual_seed(0)
    model = _dlg_model(digits, 5)
    x, y = digits.batch(torch.tensor([3]))
    obs = Observation(
        model=model,
        gradients=client_update(model, x, y, ThreatModel()),
        labels=y,
        meta={"batch_size": 1, "image_shape": digits.shape},
    )
    out = make_attack("inverting-gradients", iterations=200).run(obs, generator=torch.Generator().manual_seed(0))
    assert float(out.data.min()) >= 0.0 and float(out.data.max()) <= 1.0
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    assert _psnr(out.data, x) > _psnr(noise, x) + 5.0
    hist = out.stats["history"]
    assert hist[-1][1] < hist[0][1]  # the objective went down


def test_bad_observations_are_clear_errors(digits: object) -> None:
    model = _dlg_model(digits, 0)
    x, y = digits.batch(torch.arange(2))
    g = client_update(model, x, y, ThreatModel())
    meta = {"batch_size": 2, "image_shape": digits.shape}
    with pytest.raises(ConfigError, match="reveals no labels"):
        GradientInversion({"iterations": 1}).run(Observation(model=model, gradients=g, meta=meta))
    with pytest.raises(ConfigError, match="use batch"):
        make_attack("idlg", iterations=1).run(Observation(model=model, gradients=g, meta=meta))
    with pytest.raises(ConfigError, match="image_shape"):
        make_attack("dlg", iterations=1).run(Observation(model=model, gradients=g, meta={"batch_size": 2}))
    with pytest.raises(ConfigError, match="trainable parameters"):
        make_attack("dlg", iterations=1).run(Observation(model=model, gradients=g[:-1], meta=meta))
