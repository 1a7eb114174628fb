"""SemSim network, triplet losses (hand-made cases), samplers, training, checkpoints and the similarity metric."""

from __future__ import annotations

import math

import pytest
import torch

from privlab.errors import ConfigError, DataMissingError, FileFormatError
from privlab.measure.semsim import (
    SemSimNet,
    SemSimTrainConfig,
    TripletData,
    load_semsim,
    preprocess,
    psnr_weighted_triplet_loss,
    save_semsim,
    semsim_distance,
    set_default_model,
    train_semsim,
    triplet_loss,
)
from privlab.measure.semsim.train import sample_triplets
from privlab.store import save_tensors


def test_triplet_loss_hand_made_and_equal_to_torch():
    a = torch.zeros(2, 2)
    p = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    n = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    # row 1: max(0, 5 − 1 + 1) = 5; row 2: max(0, 1 − 3 + 1) = 0; mean 2.5
    assert float(triplet_loss(a, p, n)) == pytest.approx(2.5, abs=1e-5)
    assert float(triplet_loss(a, p, n)) == pytest.approx(float(torch.nn.TripletMarginLoss(1.0, p=2)(a, p, n)))
    assert float(triplet_loss(a, p, n, margin=0.5)) == pytest.approx(2.25, abs=1e-5)


def test_psnr_weighted_loss_hand_made():
    a = torch.zeros(1, 2)
    p1, p2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 0.0]])
    n1, n2 = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.5, 0.0]])
    # equal PSNRs: weights 1 → mean of relu(1−3+1), relu(1−.5+1), relu(2−3+1), relu(2−.5+1) = (0+1.5+0+2.5)/4
    same = torch.tensor([[20.0, 20.0, 20.0, 20.0]])
    assert float(psnr_weighted_triplet_loss(a, p1, p2, n1, n2, same)) == pytest.approx(1.0, abs=1e-6)
    # p2 has ln 3 dB more: w⁺₁ = 2σ(ln 3) = 1.5, w⁺₂ = 0.5 → (0 + 2 + 0 + 1.5)/4
    psnr = torch.tensor([[10.0, 10.0 + math.log(3.0), 20.0, 20.0]])
    assert float(psnr_weighted_triplet_loss(a, p1, p2, n1, n2, psnr)) == pytest.approx(0.875, abs=1e-6)


def test_network_shapes_l2_and_preprocess():
    net = SemSimNet(in_channels=3, width=2, input_size=8).eval()
    z = net.embed(torch.rand(3, 1, 12, 12))  # grey → RGB, resized to 8×8
    assert z.shape == (3, 16)
    assert torch.allclose(z.norm(dim=1), torch.ones(3), atol=1e-5)
    assert SemSimNet(width=64).dim == 512  # the paper's embedding
    assert preprocess(torch.rand(2, 1, 5, 5), in_channels=3, input_size=8).shape == (2, 3, 8, 8)
    with pytest.raises(ConfigError, match="1-channel"):
        preprocess(torch.rand(1, 3, 8, 8), in_channels=1, input_size=8)


def _synthetic(n: int, gen: torch.Generator) -> TripletData:
    """Recognised = original + light noise; unrecognised = a different random image; 2 of each per original."""
    base = torch.nn.functional.avg_pool2d(torch.rand(n, 1, 16, 16, generator=gen), 3, 1, 1)
    recs, owner, ok = [], [], []
    for k in range(n):
        for _ in range(2):
            recs.append((base[k] + 0.05 * torch.randn(1, 16, 16, generator=gen)).clamp(0, 1))
            owner.append(k)
            ok.append(True)
            recs.append(torch.rand(1, 16, 16, generator=gen))
            owner.append(k)
            ok.append(False)
    return TripletData.from_tensors(
        base, torch.stack(recs), torch.tensor(owner), torch.tensor(ok), in_channels=1, input_size=8
    )


def test_samplers_draw_the_right_kinds():
    data = _synthetic(4, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    rows = sample_triplets(data, "paper", 3, g)
    assert rows.shape == (12, 3)
    assert bool((data.rec_original[rows[:, 1]] == rows[:, 0]).all()) and bool(data.recognised[rows[:, 1]].all())
    assert bool((data.rec_original[rows[:, 2]] == rows[:, 0]).all()) and not bool(data.recognised[rows[:, 2]].any())
    rows5 = sample_triplets(data, "psnr", 2, g)
    assert rows5.shape == (8, 5)
    assert bool(data.recognised[rows5[:, 1:3]].all()) and not bool(data.recognised[rows5[:, 3:]].any())
    # PSNR of recognised (light noise) recs is far above the unrecognised (random) ones
    assert float(data.psnr[data.recognised].min()) > float(data.psnr[~data.recognised].max()) + 5
    none_ok = TripletData(data.originals, data.recs, data.rec_original, torch.zeros_like(data.recognised), data.psnr)
    with pytest.raises(ConfigError, match="positives"):
        sample_triplets(none_ok, "paper", 1, g)


@pytest.mark.parametrize("sampler", ["paper", "psnr"])
def test_training_lowers_the_loss_and_separates_held_out_pairs(sampler):
    gen = torch.Generator().manual_seed(0)
    train, held = _synthetic(10, gen), _synthetic(6, gen)
    cfg = SemSimTrainConfig(epochs=12, batch_size=10, lr=0.05, width=2, input_size=8, sampler=sampler, augment="none")
    res = train_semsim(train, cfg, seed=0)
    assert len(res.history) == 12
    assert res.history[-1]["loss"] < 0.5 * res.history[0]["loss"]
    d = semsim_distance(res.model, held.originals[held.rec_original], held.recs)
    # unseen originals: every recognised pair is closer than the mean unrecognised pair
    assert float(d[held.recognised].max()) < float(d[~held.recognised].mean())


def test_checkpoint_round_trip_and_refusals(tmp_path):
    net = SemSimNet(in_channels=1, width=2, input_size=8, l2_normalize=False).eval()
    save_semsim(tmp_path / "s.safetensors", net, {"note": "x"})
    back, meta = load_semsim(tmp_path / "s.safetensors")
    x = torch.rand(2, 1, 8, 8)
    assert torch.allclose(back.embed(x), net.embed(x), atol=1e-6)
    assert meta["config"]["l2_normalize"] is False and meta["note"] == "x"
    save_tensors(tmp_path / "other.safetensors", {"w": torch.zeros(2)}, {"what": "else"})
    with pytest.raises(FileFormatError, match="not a SemSim checkpoint"):
        load_semsim(tmp_path / "other.safetensors")
    with pytest.raises(DataMissingError):
        load_semsim(tmp_path / "missing.safetensors")


def test_registered_similarity_metric_uses_the_checkpoint(tmp_path, monkeypatch):
    from privlab.measure.image import score

    net = SemSimNet(in_channels=1, width=2, input_size=8).eval()
    path = tmp_path / "s.safetensors"
    save_semsim(path, net)
    x, y = torch.rand(3, 1, 8, 8), torch.rand(3, 1, 8, 8)
    monkeypatch.delenv("PRIVLAB_SEMSIM_MODEL", raising=False)
    set_default_model(None)
    with pytest.raises(DataMissingError, match="PRIVLAB_SEMSIM_MODEL"):
        score(x, y, ["semsim"])
    monkeypatch.setenv("PRIVLAB_SEMSIM_MODEL", str(path))
    table = score(x, y, ["psnr", "semsim"], device="cpu")
    expected = semsim_distance(net, x, y)
    assert [r["semsim"] for r in table.rows] == pytest.approx(expected.tolist(), abs=1e-5)
    assert table.higher_is_better["semsim"] is False and "SemSim" in table.notes["semsim"]
