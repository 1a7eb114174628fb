from collections import OrderedDict

import pytest
import torch
from torch import nn

from privlab.attack import ATTACKS, Observation, build_attack
from privlab.attack.activation_adversary import (
    ActivationAdversary,
    ActivationAdversaryConfig,
    OriginalAdversary,
)
from privlab.errors import ConfigError
from privlab.measure.utility.accuracy import classifier_accuracy, predict_labels


class _Swap(nn.Module):
    def forward(self, a):
        return a.flip(1)


def _argmax_model():
    # predicts argmax of a 2-d input: identity layers, cut after 'l1'
    m = nn.Sequential(OrderedDict(l1=nn.Linear(2, 2), l2=nn.Linear(2, 2)))
    with torch.no_grad():
        for layer in (m.l1, m.l2):
            layer.weight.copy_(torch.eye(2))
            layer.bias.zero_()
    return m


def test_original_adversary_is_the_private_model_with_the_noise_inserted():
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
    y = x.argmax(1)
    model = _argmax_model()
    attack = build_attack("original_adversary")

    def accuracy(noise):
        obs = Observation.granted(attack.requires, {"cut": "l1", "noise": noise}, model=model, labels=y)
        assert obs.labels is None  # the threat model grants the private model, not the labels
        return classifier_accuracy(attack.run(obs).model, x, y)

    assert accuracy(None) == 1.0
    assert accuracy(nn.Identity()) == 1.0
    assert accuracy(_Swap()) == 0.0  # the inserted layer flips every answer
    with pytest.raises(ConfigError, match="cut"):
        attack.run(Observation(model=model))


def _separable(n=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    centres = torch.tensor([[0.0, 0.0, 0.0, 0.0], [4.0, 0.0, 0.0, 0.0], [0.0, 4.0, 0.0, 0.0]])
    return centres[y] + 0.5 * torch.randn(n, 4, generator=g), y


def _retrained(acts, y, noise=None, num_classes=3):
    adv = build_attack("activation_adversary", {"hidden": 16, "train": {"epochs": 20, "batch_size": 128, "lr": 1e-3}})
    obs = Observation.granted(adv.requires, {"num_classes": num_classes, "noise": noise}, activations=acts, labels=y)
    return adv.run(obs, seed=0).model


def _accuracy(model, acts, y):
    return float((predict_labels(model, acts) == y).float().mean())


def test_retrained_adversary_learns_clean_and_fails_under_destructive_noise():
    acts, y = _separable()
    test_acts, test_y = _separable(seed=1)
    clean = _retrained(acts, y)
    assert not clean.training and _accuracy(clean, test_acts, test_y) > 0.95
    # a fixed offset and scale (a noise the adversary can learn around) costs nothing
    shift = _retrained(acts, y, noise=lambda a, g: 50 * a + 1000.0)
    assert _accuracy(shift, 50 * test_acts + 1000.0, test_y) > 0.95

    # noise 100× the class separation leaves chance level (1/3): at most ~0.45 on 600 test points
    def big(a, g):
        return a + 400.0 * torch.randn(a.shape, generator=g, device=a.device)

    noisy = _retrained(acts, y, noise=big)
    assert _accuracy(noisy, big(test_acts, torch.Generator().manual_seed(9)), test_y) < 0.45
    # the same seed gives the same adversary
    again = _retrained(acts, y)
    assert all(torch.equal(a, b) for a, b in zip(clean.state_dict().values(), again.state_dict().values(), strict=True))


def test_adversary_errors_and_registry():
    entry = ATTACKS.entry("activation_adversary")
    assert entry.obj is ActivationAdversary and entry.meta["config"] is ActivationAdversaryConfig
    assert entry.meta["requires"] == ("activations", "labels")
    assert ATTACKS.entry("original_adversary").obj is OriginalAdversary
    acts, y = torch.zeros(4, 2), torch.tensor([0, 1, 0, 1])
    with pytest.raises(ConfigError, match="num_classes"):
        _retrained(acts, y, num_classes=1)
    with pytest.raises(ConfigError, match="activations"):
        ActivationAdversary().run(Observation())
    with pytest.raises(ConfigError, match="hidden"):
        build_attack("activation_adversary", {"hidden": 0})
