"""Unary encoding of labels: output frequencies, decoding, ε cap, errors."""

import math

import pytest
import torch

from privlab.errors import BudgetError, ConfigError
from privlab.protect.ldp_label import LABEL_EPSILON_MAX, UnaryEncoding


@pytest.mark.parametrize("kind", ["sue", "oue"])
def test_bit_frequencies_match_p_and_q(kind):
    ue = UnaryEncoding(kind=kind, epsilon=1.5, num_classes=10)
    y = torch.randint(0, 10, (100_000,), generator=torch.Generator().manual_seed(0))
    bits = ue.privatize(y, torch.Generator().manual_seed(1)).bool()
    onehot = torch.nn.functional.one_hot(y, 10).bool()
    assert bits[onehot].double().mean().item() == pytest.approx(ue.p, abs=0.01)
    assert bits[~onehot].double().mean().item() == pytest.approx(ue.q, abs=0.005)
    if kind == "sue":
        assert ue.p == pytest.approx(math.exp(0.75) / (1 + math.exp(0.75)))
    else:
        assert ue.p == 0.5 and ue.q == pytest.approx(1 / (math.exp(1.5) + 1))
    freq = ue.estimate_frequencies(bits)
    true = torch.bincount(y, minlength=10).double() / len(y)
    assert torch.allclose(freq, true, atol=0.02)  # unbiased estimator
    assert ue.budget().epsilon == pytest.approx(1.5)


def test_map_decoding_picks_a_set_bit_or_a_uniform_class():
    ue = UnaryEncoding(kind="oue", epsilon=1.0, num_classes=4)
    bits = torch.tensor([[0, 0, 1, 0], [1, 0, 0, 1]] * 2000, dtype=torch.uint8)
    dec = ue.decode(bits, torch.Generator().manual_seed(0))
    assert torch.all(dec[0::2] == 2)
    second = dec[1::2]
    assert set(second.tolist()) == {0, 3} and (second == 0).double().mean().item() == pytest.approx(0.5, abs=0.04)
    empty = ue.decode(torch.zeros(4000, 4, dtype=torch.uint8), torch.Generator().manual_seed(0))
    assert torch.bincount(empty, minlength=4).min().item() > 850  # uniform over the 4 classes


def test_label_accuracy_after_decoding_rises_with_epsilon():
    y = torch.randint(0, 10, (20_000,), generator=torch.Generator().manual_seed(0))
    acc = []
    for eps in (0.5, 2.0, 8.0):
        ue = UnaryEncoding(kind="oue", epsilon=eps, num_classes=10)
        acc.append((ue.privatize_labels(y, torch.Generator().manual_seed(1)) == y).double().mean().item())
    assert acc[0] < acc[1] < acc[2] and acc[0] > 0.1  # better than chance even at ε = 0.5
    # exact: p·E[1/(1+K)] + (1−p)·(1−q)^9/10 with K ~ Bin(9, q) other set bits, E[1/(1+K)] = (1−(1−q)^10)/(10q)
    for eps, a in zip((0.5, 2.0, 8.0), acc, strict=True):
        p, q = 0.5, 1 / (math.exp(eps) + 1)
        expected = p * (1 - (1 - q) ** 10) / (10 * q) + (1 - p) * (1 - q) ** 9 / 10
        assert a == pytest.approx(expected, abs=0.01)


def test_sample_decoding_follows_the_posterior():
    ue = UnaryEncoding(kind="sue", epsilon=math.log(3), num_classes=2, decode="sample")
    bits = torch.tensor([[1, 0]] * 20_000, dtype=torch.uint8)
    dec = ue.decode(bits, torch.Generator().manual_seed(0))
    assert (dec == 0).double().mean().item() == pytest.approx(0.75, abs=0.01)  # e^ε / (e^ε + 1)


def test_huge_label_epsilon_is_capped_not_broken():
    ue = UnaryEncoding(kind="oue", epsilon=1e5, num_classes=10)
    assert ue.q > 0 and ue.budget().epsilon == pytest.approx(LABEL_EPSILON_MAX)
    assert ue.budget().details["requested_epsilon"] == 1e5


def test_bad_inputs():
    with pytest.raises(BudgetError, match="label epsilon"):
        UnaryEncoding(kind="sue", epsilon=0.0)
    ue = UnaryEncoding(kind="sue", epsilon=1.0, num_classes=3)
    with pytest.raises(ConfigError, match=r"\[0, 3\)"):
        ue.privatize(torch.tensor([0, 3]))
    with pytest.raises(ConfigError, match="shape"):
        ue.decode(torch.zeros(2, 5))
