"""Linear probe and weighted kNN against hand-made cases."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from privlab.data import LabelledImages
from privlab.errors import ConfigError
from privlab.measure.utility.ssl_eval import extract_features, knn_accuracy, knn_predict, linear_probe_accuracy


def test_knn_weighting_beats_majority() -> None:
    # query (1, 0): one very close bank row of class 1, two farther rows of class 0
    bank = torch.tensor([[1.0, 0.01], [0.6, 0.8], [0.6, -0.8]])
    labels = torch.tensor([1, 0, 0])
    q = torch.tensor([[1.0, 0.0]])
    s_close, s_far = 1 / math.sqrt(1 + 1e-4), 0.6
    # τ = 0.1: exp(s_close/τ) = 2.2e4 > 2·exp(6) = 807 → class 1; τ = 10: 1.105 < 2·1.062 → class 0
    assert math.exp(s_close / 0.1) > 2 * math.exp(s_far / 0.1)
    assert knn_predict(bank, labels, q, k=3, temperature=0.1).item() == 1
    assert knn_predict(bank, labels, q, k=3, temperature=10.0).item() == 0
    assert knn_predict(bank, labels, q, k=1, temperature=10.0).item() == 1  # only the nearest votes


def test_knn_k_is_capped_and_empty_bank_rejected() -> None:
    bank = torch.eye(3)
    assert knn_accuracy(bank, torch.tensor([0, 1, 2]), bank, torch.tensor([0, 1, 2]), k=200) == 1.0
    with pytest.raises(ConfigError, match="non-empty"):
        knn_predict(torch.empty(0, 3), torch.empty(0, dtype=torch.long), bank)


def test_linear_probe_separable_and_random_labels() -> None:
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0]])
    y = torch.arange(3).repeat(40)
    x = centres[y] + torch.randn(len(y), 2, generator=g) * 0.5
    assert linear_probe_accuracy(x[:90], y[:90], x[90:], y[90:]) == 1.0
    noise = torch.randn(200, 5, generator=g)
    rand_y = torch.randint(0, 2, (200,), generator=g)
    assert linear_probe_accuracy(noise[:150], rand_y[:150], noise[150:], rand_y[150:]) < 0.75
    with pytest.raises(ConfigError, match="two classes"):
        linear_probe_accuracy(x[:5], torch.zeros(5, dtype=torch.long), x[:5], y[:5])


def test_extract_features_shape_and_mode() -> None:
    enc = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.Dropout(0.5))
    enc.train()
    data = LabelledImages(torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 0, 1, 0]), 2)
    f = extract_features(enc, data, batch_size=2)
    assert f.shape == (5, 3) and enc.training  # eval inside, mode restored
    assert torch.allclose(f, extract_features(enc, data))  # dropout off → deterministic
