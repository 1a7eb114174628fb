from collections import OrderedDict

import pytest
import torch
from torch import nn

from privlab.attack import ATTACKS, Observation
from privlab.attack.activation_adversary import ActivationAdversary, original_adversary_accuracy
from privlab.errors import ConfigError


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
    assert original_adversary_accuracy(model, "l1", None, x, y) == 1.0
    assert original_adversary_accuracy(model, "l1", nn.Identity(), x, y) == 1.0
    assert original_adversary_accuracy(model, "l1", _Swap(), x, y) == 0.0  # the inserted layer flips every answer


def _separable(n=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    centres = torch.tensor([[0.0, 0.0, 0.0, 0.0], [4.0, 0.0, 0.0, 0.0], [0.0, 4.0, 0.0, 0.0]])
    return centres[y] + 0.5 * torch.randn(n, 4, generator=g), y


def test_retrained_adversary_learns_clean_and_fails_under_destructive_noise():
    acts, y = _separable()
    test_acts, test_y = _separable(seed=1)
    clean = ActivationAdversary(3, hidden=16).fit(acts, y, epochs=20, seed=0)
    assert clean.accuracy(test_acts, test_y) > 0.95
    # a fixed offset and scale (a noise the adversary can learn around) costs nothing
    shift = ActivationAdversary(3, hidden=16).fit(acts, y, noise=lambda a, g: 50 * a + 1000.0, epochs=20, seed=0)
    assert shift.accuracy(50 * test_acts + 1000.0, test_y) > 0.95

    # noise 100× the class separation leaves chance level (1/3): at most ~0.45 on 600 test points
    def big(a, g):
        return a + 400.0 * torch.randn(a.shape, generator=g, device=a.device)

    noisy = ActivationAdversary(3, hidden=16).fit(acts, y, noise=big, epochs=20, seed=0)
    assert noisy.accuracy(big(test_acts, torch.Generator().manual_seed(9)), test_y) < 0.45
    out = clean.attack(Observation(activations=test_acts))
    assert out.labels.shape == (600,) and out.labels.dtype == torch.long


def test_adversary_errors_and_registry():
    assert ATTACKS.entry("activation_adversary").obj is ActivationAdversary
    with pytest.raises(ConfigError):
        ActivationAdversary(1)
    with pytest.raises(ConfigError, match="before fit"):
        ActivationAdversary(3).predict(torch.zeros(2, 4))
    with pytest.raises(ConfigError, match="activations"):
        ActivationAdversary(3).attack(Observation())
