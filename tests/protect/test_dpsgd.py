"""DP-SGD baseline through opacus: noise calibration, model repair, a tiny private training run."""

import pytest
import torch

from privlab.data import load_dataset
from privlab.errors import BudgetError
from privlab.models import build_model
from privlab.protect.dpsgd import DPSGDConfig, noise_multiplier, prepare_model, train_dpsgd


def test_noise_multiplier_decreases_with_epsilon_and_matches_the_accountant():
    from opacus.accountants import RDPAccountant

    sig = [noise_multiplier(DPSGDConfig(epsilon=e, epochs=3, batch_size=64), 1437) for e in (2.0, 8.0)]
    assert sig[0] > sig[1] > 0
    acc = RDPAccountant()
    rate = 1 / 23  # opacus: 1 / ceil(1437 / 64), 23 steps per epoch
    acc.history = [(sig[0], rate, 3 * 23)]
    assert acc.get_epsilon(1e-5) == pytest.approx(2.0, abs=0.05)  # the accountant spends what was asked


def test_bad_budget_is_a_budget_error():
    with pytest.raises(BudgetError):
        noise_multiplier(
            DPSGDConfig.model_construct(epsilon=0.0, delta=1e-5, epochs=1, batch_size=8, accountant="rdp"), 100
        )


def test_prepare_model_repairs_batchnorm_only_when_needed():
    from opacus.validators import ModuleValidator

    shallow = build_model("mnist_cnn_shallow", 10, (1, 8, 8))
    assert prepare_model(shallow)[1] is False
    deep = build_model("mnist_cnn_deep", 10, (1, 8, 8))
    assert not ModuleValidator.is_valid(deep)
    fixed, changed = prepare_model(deep)
    assert changed and ModuleValidator.is_valid(fixed)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fixed.modules())


def test_tiny_private_training_spends_the_target_epsilon():
    data = load_dataset("digits", "train", limit=64)
    torch.manual_seed(0)
    model = build_model("mnist_cnn_shallow", 10, data.shape, mean=data.mean, std=data.std)
    model, res = train_dpsgd(model, data, DPSGDConfig(epsilon=4.0, delta=1e-3, epochs=1, batch_size=32), seed=0)
    assert len(res.history) == 1 and res.noise_multiplier > 0
    assert 3.5 < res.epsilon <= 4.0 * 1.01
    b = res.budget()
    assert (b.kind, b.scope, b.delta) == ("dp", "example", 1e-3)
    assert not hasattr(model, "_module")  # the plain module comes back
    assert model(data.images[:2]).shape == (2, 10)
