"""SSL wrappers: NT-Xent against a hand computation, MoCo's queue and momentum update, SimSiam's stop-gradient."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from privlab.errors import ConfigError
from privlab.models.ssl import MoCo, SimSiam, build_encoder, build_ssl_model, nt_xent


def test_nt_xent_matches_hand_computation() -> None:
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[1.0, 1.0], [0.0, 2.0]])  # normalised: (1/√2, 1/√2), (0, 1)
    tau = 0.5
    u = [(1.0, 0.0), (0.0, 1.0), (1 / math.sqrt(2), 1 / math.sqrt(2)), (0.0, 1.0)]
    pos = {0: 2, 1: 3, 2: 0, 3: 1}
    total = 0.0
    for i in range(4):
        sims = {k: (u[i][0] * u[k][0] + u[i][1] * u[k][1]) / tau for k in range(4) if k != i}
        total += -math.log(math.exp(sims[pos[i]]) / sum(math.exp(s) for s in sims.values()))
    assert nt_xent(z1, z2, tau).item() == pytest.approx(total / 4, abs=1e-6)


def test_encoder_drops_last_linear() -> None:
    enc, dim = build_encoder("lenet5", (1, 32, 32))
    assert dim == 84
    assert enc(torch.rand(3, 1, 32, 32)).shape == (3, 84)


def test_unknown_method_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown SSL method 'byol'"):
        build_ssl_model("byol", "lenet5", (1, 32, 32))


def test_moco_queue_and_momentum_update() -> None:
    torch.manual_seed(0)
    m = build_ssl_model("moco", "lenet5", (1, 16, 16), queue_size=6, out=4, momentum=0.9, symmetric=False)
    assert isinstance(m, MoCo)
    before_q = m.queue.clone()
    keys = torch.nn.functional.normalize(torch.randn(4, 4), dim=1)
    m.enqueue(keys)
    assert int(m.queue_ptr) == 4
    assert torch.allclose(m.queue[:, :4], keys.t()) and torch.equal(m.queue[:, 4:], before_q[:, 4:])
    m.enqueue(keys[:3])  # wraps: columns 4, 5, 0
    assert int(m.queue_ptr) == 1
    assert torch.allclose(m.queue[:, [4, 5, 0]], keys[:3].t())
    # momentum update θ_k ← 0.9 θ_k + 0.1 θ_q
    with torch.no_grad():
        for p in m.encoder.parameters():
            p.add_(1.0)
    pk_before = [p.clone() for p in m.key_encoder.parameters()]
    pq = [p.clone() for p in m.encoder.parameters()]
    m.momentum_update()
    for a, b, q in zip(m.key_encoder.parameters(), pk_before, pq, strict=True):
        assert torch.allclose(a, 0.9 * b + 0.1 * q, atol=1e-6)
    # ssl_loss + after_step pushes the batch's keys
    v = torch.rand(2, 1, 16, 16)
    m.ssl_loss(v, v)
    m.after_step()
    assert int(m.queue_ptr) == 3
    assert not any(p.requires_grad for p in m.key_encoder.parameters())


def test_simsiam_stop_gradient() -> None:
    torch.manual_seed(0)
    m = build_ssl_model("simsiam", "lenet5", (1, 16, 16))
    assert isinstance(m, SimSiam)
    # a constant predictor: with the stop-gradient the loss cannot reach the encoder at all
    last = m.predictor[-1]
    assert isinstance(last, nn.Linear)
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(1.0)
    v1, v2 = torch.rand(4, 1, 16, 16), torch.rand(4, 1, 16, 16)
    m.ssl_loss(v1, v2).backward()
    assert all(p.grad is None or p.grad.abs().max() == 0 for p in m.encoder.parameters())
    m.zero_grad(set_to_none=True)
    m.ssl_loss(v1, v2, allow_key_grad=True).backward()  # without it, the target branch carries gradient
    assert max(p.grad.abs().max().item() for p in m.encoder.parameters() if p.grad is not None) > 0


def test_simclr_loss_is_lower_for_matching_views() -> None:
    torch.manual_seed(0)
    m = build_ssl_model("simclr", "lenet5", (1, 16, 16)).eval()
    x = torch.rand(8, 1, 16, 16)
    same = m.ssl_loss(x, x).item()
    other = m.ssl_loss(x, torch.rand(8, 1, 16, 16)).item()
    assert same < other
