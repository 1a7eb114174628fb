"""The membership probe of the training-time protections: the LOSS attack on the trained model (members: its raw
training records, non-members: test records). It separates an over-fitted model's members and is at chance when the
model learnt from noise at a tiny ε."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from privlab.measure.mia import MIAScore
from privlab.measure.mia.probe import membership_probe, probe_indices, probe_records
from privlab.run import execute, load_spec

MIA_METRICS = ("mia_loss_auc", "mia_loss_balanced_accuracy", "mia_loss_tpr_at_fpr_0.001", "mia_loss_tpr_at_fpr_0.01")


class _FlagModel(nn.Module):
    """Logits ``[10·x₀, 0]`` (x₀: the first pixel): confident on class 0 exactly where the flag pixel is set."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flag = x.flatten(1)[:, :1] * 10
        return torch.cat([flag, torch.zeros_like(flag)], 1)


def test_probe_scores_a_model_that_knows_its_members_and_names_metrics_like_the_mia_pipeline() -> None:
    x = torch.rand(40, 1, 2, 2)
    x[:20, 0, 0, 0], x[20:, 0, 0, 0] = 1.0, 0.0  # members carry the flag the model is confident on
    y = torch.zeros(40, dtype=torch.long)
    s = membership_probe(_FlagModel(), (x[:20], y[:20]), (x[20:], y[20:]))
    assert (s.auc, s.tpr_at_fpr_001, s.n_members, s.n_nonmembers) == (1.0, 1.0, 20, 20)
    swapped = membership_probe(_FlagModel(), (x[20:], y[20:]), (x[:20], y[:20]))
    assert swapped.auc == 0.0  # members are told apart by their loss only: reversed roles, reversed score
    recs = {r.name: r for r in probe_records(s)}
    assert set(recs) == {*MIA_METRICS, "mia_loss_records"}
    assert {f"mia_loss_{k}" for k in MIAScore(0.5, 0.5, 0, 0, 1, 1).metrics()} == set(MIA_METRICS)
    assert all((r.kind, r.higher_is_better, r.unit) == ("privacy", False, "fraction") for n, r in recs.items()
               if n != "mia_loss_records")  # fmt: skip


def test_probe_indices_are_seeded_distinct_and_capped() -> None:
    m, n = probe_indices(100, 30, 1000, torch.Generator().manual_seed(3))
    assert len(m) == len(n) == 30 and len(set(m.tolist())) == 30 and int(m.max()) < 100 and int(n.max()) < 30
    m2, _ = probe_indices(100, 30, 1000, torch.Generator().manual_seed(3))
    assert torch.equal(m, m2)


def _ldp(tmp_path, **overrides):
    (o,) = execute(load_spec(experiment="ldp", preset="smoke", overrides=overrides), tmp_path, quiet=True, report=False)
    assert o.status == "finished", o.error
    return o.metrics


def test_an_overfit_cnn_leaks_membership(tmp_path) -> None:
    # 100 raw digits, 30 epochs: training loss → 0, test accuracy ≈ 0.9; measured AUC 0.74 (seed 0)
    m = _ldp(tmp_path, learner="cnn_shallow", mechanism="none", dataset={"train_limit": 100, "test_limit": 360},
             train={"epochs": 30, "batch_size": 16, "lr": 0.003})  # fmt: skip
    assert m["mia_loss_records"] == 100
    assert m["mia_loss_auc"] > 0.65
    assert m["test_accuracy"] > 0.8


def test_ldp_at_a_tiny_epsilon_is_at_chance(tmp_path) -> None:
    # ε = 0.1 for 64 pixels: Laplace scale ≈ 700 per pixel, the model never sees a raw record; measured AUC 0.51
    data, train = {"train_limit": 400, "test_limit": 360}, {"epochs": 5, "batch_size": 32, "lr": 0.003}
    m = _ldp(tmp_path, learner="cnn_shallow", mechanism="laplace", epsilon=0.1, dataset=data, train=train)
    assert m["mia_loss_records"] == 360  # capped by the test split
    assert abs(m["mia_loss_auc"] - 0.5) < 0.08  # 360 vs 360 records: AUC s.d. ≈ 0.02 at chance
    assert m["mia_loss_tpr_at_fpr_0.01"] < 0.06


def test_the_probe_is_switchable_and_skips_clustering_learners(tmp_path) -> None:
    small = {"dataset": {"train_limit": 120, "test_limit": 60}}
    off = _ldp(tmp_path / "off", learner="cnn_shallow", mia={"enabled": False}, **small)
    km = _ldp(tmp_path / "km", learner="kmeans", **small)
    assert not any(k.startswith("mia_") for k in (*off, *km))
    few = _ldp(tmp_path / "few", learner="cnn_shallow", mia={"records": 25}, **small)
    assert few["mia_loss_records"] == 25
    assert all(0.0 <= few[k] <= 1.0 and math.isfinite(few[k]) for k in MIA_METRICS)


def test_records_are_bounded() -> None:
    from privlab.errors import PrivlabError

    for bad in (0, 2001):
        with pytest.raises(PrivlabError, match="mia.records"):
            load_spec(experiment="ldp", preset="smoke", overrides={"mia": {"records": bad}})
