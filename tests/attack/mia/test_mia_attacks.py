"""MIA attacks on synthetic targets whose answer is known."""

import numpy as np
import pytest
import torch
from scipy import stats

from privlab.attack import ATTACKS
from privlab.attack.mia import MIA_ATTACKS, MIAObservation, QueryModel, run_mia_attack
from privlab.attack.mia.base import View, logit_confidence
from privlab.attack.mia.entropy import modified_entropy
from privlab.attack.mia.lira import fit_gaussians
from privlab.errors import ConfigError
from privlab.measure.mia import score_attack

N, R = 400, 16


class Table:
    """A 'model' whose logits are looked up by the record index encoded in the 1×1×1 image (2 classes)."""

    def __init__(self, phi: torch.Tensor) -> None:
        self.phi = phi

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        idx = (x.view(-1) * len(self.phi)).long().clamp(0, len(self.phi) - 1)
        return torch.stack([self.phi[idx], torch.zeros(len(idx))], 1)  # label 0: logit confidence = phi


def _world(gap: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    difficulty = 3 * torch.randn(N, generator=g)  # per-record offset: what LiRA calibrates away and LOSS cannot

    def phi(inside: torch.Tensor) -> torch.Tensor:
        return difficulty + gap * inside.float() + 0.5 * torch.randn(N, generator=g)

    members = torch.rand(N, generator=g) < 0.5
    ref_in = torch.rand(R, N, generator=g) < 0.5
    x = ((torch.arange(N) + 0.5) / N).view(N, 1, 1, 1)
    pop_idx = torch.arange(N)[~members][:100]
    obs = MIAObservation(
        data=x,
        labels=torch.zeros(N, dtype=torch.long),
        target=QueryModel(Table(phi(members))),
        references=[QueryModel(Table(phi(ref_in[r]))) for r in range(R)],
        reference_in=ref_in,
        population=(x[pop_idx], torch.zeros(len(pop_idx), dtype=torch.long)),
    )
    return obs, members.numpy()


def _auc(name, obs, members, **kw):
    return score_attack(run_mia_attack(name, obs, **kw).numpy(), members).auc


def test_every_mia_attack_is_registered_with_a_config():
    assert {
        "loss",
        "confidence",
        "entropy",
        "modified-entropy",
        "lira-online",
        "lira-offline",
        "rmia",
        "label-only",
    } <= set(MIA_ATTACKS)
    for name in MIA_ATTACKS:
        assert ATTACKS.entry(name).meta["kind"] == "membership"


def test_identical_in_and_out_give_chance():
    obs, members = _world(gap=0.0)
    for name in ("loss", "lira-online", "lira-offline", "rmia"):
        assert abs(_auc(name, obs, members, **({} if name == "loss" else {"shifts": 0})) - 0.5) < 0.08


def test_lira_calibrates_per_record_difficulty_and_beats_loss():
    obs, members = _world(gap=2.0)
    loss = _auc("loss", obs, members)
    online = _auc("lira-online", obs, members, shifts=0)
    offline = _auc("lira-offline", obs, members, shifts=0)
    rmia = _auc("rmia", obs, members, shifts=0, gamma=1.0)
    assert 0.55 < loss < 0.8  # the offsets (sd 3) swamp the gap of 2
    assert online > 0.97 and offline > 0.95 and rmia > 0.9
    s = score_attack(run_mia_attack("lira-online", obs, shifts=0).numpy(), members)
    assert s.tpr_at_fpr_001 > 0.5


def test_lira_uses_n_references():
    obs, members = _world(gap=2.0)
    two = _auc("lira-offline", obs, members, shifts=0, n_references=2)
    assert 0.6 < two < _auc("lira-offline", obs, members, shifts=0) + 1e-9


def test_fit_gaussians_matches_scipy_norm_fit():
    g = torch.Generator().manual_seed(1)
    phi = torch.randn(12, 30, generator=g) * 2 + 1
    mask = torch.rand(12, 30, generator=g) < 0.5
    mask[:2] = True  # every column has ≥ 2 rows
    mu, sd = fit_gaussians(phi, mask, pooled=False)
    for j in range(30):
        m_ref, s_ref = stats.norm.fit(phi[mask[:, j], j].double().numpy())
        assert mu[j].item() == pytest.approx(m_ref, abs=1e-5) and sd[j].item() == pytest.approx(s_ref, abs=1e-5)


def test_logit_confidence_and_modified_entropy_formulas():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 0.0]])
    y = torch.tensor([0, 2])
    p = logits.softmax(1).double()
    want = torch.log(p[[0, 1], [0, 2]] / (1 - p[[0, 1], [0, 2]]))
    assert torch.allclose(logit_confidence(logits, y).double(), want, atol=1e-6)
    me = modified_entropy(logits.softmax(1), y)
    p0 = p[0].tolist()
    ref0 = -(1 - p0[0]) * np.log(p0[0]) - p0[1] * np.log(1 - p0[1]) - p0[2] * np.log(1 - p0[2])
    assert me[0].item() == pytest.approx(ref0, rel=1e-5)


def test_label_only_noise_finds_records_far_from_the_boundary():
    g = torch.Generator().manual_seed(0)
    members = torch.rand(200, generator=g) < 0.5
    # 1-D images; class 0 below 0.5. Members lie far from the boundary, non-members close to it.
    dist = torch.where(members, 0.3 + 0.1 * torch.rand(200, generator=g), 0.02 + 0.05 * torch.rand(200, generator=g))
    x = (0.5 - dist).view(200, 1, 1, 1)
    model = lambda t: torch.cat([0.5 - t.view(-1, 1), t.view(-1, 1) - 0.5], 1)  # noqa: E731
    obs = MIAObservation(data=x, labels=torch.zeros(200, dtype=torch.long), target=QueryModel(model, labels_only=True))
    assert _auc("label-only", obs, members.numpy(), sigmas=[0.1, 0.2], draws=20) > 0.9
    with pytest.raises(ConfigError, match="labels only"):
        run_mia_attack("loss", obs)


def test_missing_references_is_a_clear_error():
    obs, _ = _world(gap=1.0)
    obs.references = []
    with pytest.raises(ConfigError, match="reference model"):
        run_mia_attack("lira-online", obs)


def test_views_shift_with_zero_padding():
    x = torch.arange(9.0).view(1, 1, 3, 3)
    assert View(1, 0).apply(x)[0, 0].tolist() == [[0, 0, 0], [0, 1, 2], [3, 4, 5]]
    assert View(0, -1).apply(x)[0, 0, 0].tolist() == [1, 2, 0]
