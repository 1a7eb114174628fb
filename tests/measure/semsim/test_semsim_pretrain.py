"""SemSim trunk initialisation: classifier pretraining on clean labelled images, and weights from a local file."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from privlab.data.base import LabelledImages
from privlab.errors import ConfigError, DataMissingError, FileFormatError
from privlab.measure.semsim import SemSimNet, SemSimTrainConfig, TripletData, save_semsim, train_semsim
from privlab.measure.semsim.train import load_pretrained_trunk, pretrain_classifier
from privlab.store import save_tensors


def _bars(n: int, gen: torch.Generator) -> LabelledImages:
    """Two classes of 8×8 grey images: a bright left half (0) or a bright right half (1), plus noise."""
    y = torch.arange(n) % 2
    x = torch.full((n, 1, 8, 8), 0.1)
    for i in range(n):
        cols = slice(0, 4) if int(y[i]) == 0 else slice(4, 8)
        x[i, :, :, cols] = 0.9
    x = (x + 0.1 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    return LabelledImages(x, y, 2, name="bars")


def _triplets(gen: torch.Generator) -> TripletData:
    o = torch.rand(4, 1, 8, 8, generator=gen)
    recs = torch.cat([(o + 0.05 * torch.randn(o.shape, generator=gen)).clamp(0, 1), torch.rand(4, 1, 8, 8)])
    return TripletData.from_tensors(o, recs, torch.arange(8) % 4, torch.arange(8) < 4, in_channels=1, input_size=8)


def test_classifier_pretraining_learns_classes_and_changes_the_trunk():
    gen = torch.Generator().manual_seed(0)
    data = _bars(64, gen)
    cfg = SemSimTrainConfig(width=4, input_size=8, pretrain="classifier", pretrain_epochs=6, pretrain_lr=0.01,
                            pretrain_noise=0.2)  # fmt: skip
    test = _bars(20, torch.Generator().manual_seed(5))
    same = test.labels[:, None] == test.labels[None, :]
    off = ~torch.eye(len(test), dtype=torch.bool)

    def within_over_across(net: SemSimNet) -> float:
        with torch.no_grad():
            d = torch.cdist(*[net.eval().embed(test.images)] * 2)
        return float(d[same & off].mean()) / float(d[~same].mean())

    torch.manual_seed(0)
    net = SemSimNet(1, 4, 8, l2_normalize=True)
    before = {k: v.clone() for k, v in net.trunk.state_dict().items()}
    ratio_before = within_over_across(net)  # ≈ 0.40 at random init (the classes differ in pixels too)
    hist = pretrain_classifier(net, data, cfg, seed=0)
    assert len(hist) == 6 and hist[-1]["train_accuracy"] >= 0.9
    assert not torch.equal(before["stem.conv.weight"], net.trunk.state_dict()["stem.conv.weight"])
    # the embedding is now class-semantic: unseen images of one class cluster far more tightly (≈ 0.06)
    assert within_over_across(net) < 0.5 * ratio_before


def test_train_semsim_with_classifier_pretraining_records_both_phases():
    gen = torch.Generator().manual_seed(1)
    cfg = SemSimTrainConfig(epochs=2, batch_size=4, lr=0.002, width=2, input_size=8, augment="none",
                            pretrain="classifier", pretrain_epochs=2)  # fmt: skip
    res = train_semsim(_triplets(gen), cfg, seed=0, pretrain_data=_bars(32, gen))
    assert len(res.pretrain_history) == 2 and len(res.history) == 2
    assert res.config["pretrain"] == "classifier"
    with pytest.raises(ConfigError, match="no labelled clean images"):
        train_semsim(_triplets(gen), cfg, seed=0)
    rgb = LabelledImages(torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 0, 1]), 2)
    with pytest.raises(ConfigError, match="1-channel"):  # RGB images cannot pretrain a grey trunk
        train_semsim(_triplets(gen), cfg, seed=0, pretrain_data=rgb)
    none = train_semsim(_triplets(gen), cfg.model_copy(update={"pretrain": "none"}), seed=0)
    assert none.pretrain_history == []


def test_pretrained_trunk_from_a_checkpoint_or_a_bare_state_dict(tmp_path):
    torch.manual_seed(3)
    src = SemSimNet(1, 2, 8, l2_normalize=False, mean=[0.2], std=[0.4])
    save_semsim(tmp_path / "ckpt.safetensors", src)
    save_tensors(tmp_path / "trunk.safetensors", dict(src.trunk.state_dict()), {"what": "trunk"})
    for name in ("ckpt.safetensors", "trunk.safetensors"):
        torch.manual_seed(4)
        net = load_pretrained_trunk(SemSimNet(1, 2, 8), tmp_path / name)
        for k, v in src.trunk.state_dict().items():
            assert torch.equal(net.trunk.state_dict()[k], v), k
    assert float(load_pretrained_trunk(SemSimNet(1, 2, 8), tmp_path / "ckpt.safetensors").std) == pytest.approx(0.4)
    # train_semsim starts from the file: with a vanishing learning rate the conv weights stay the file's
    cfg = SemSimTrainConfig(epochs=1, batch_size=4, lr=1e-9, weight_decay=0, width=2, input_size=8,
                            augment="none", pretrain=str(tmp_path / "trunk.safetensors"))  # fmt: skip
    res = train_semsim(_triplets(torch.Generator().manual_seed(0)), cfg, seed=0)
    w = res.model.trunk.state_dict()["stem.conv.weight"]
    assert torch.allclose(w, src.trunk.state_dict()["stem.conv.weight"], atol=1e-6)


def test_bad_pretrain_values_and_files(tmp_path):
    with pytest.raises(ValidationError, match="none, classifier or a path"):
        SemSimTrainConfig(pretrain="imagenet")
    with pytest.raises(DataMissingError):
        load_pretrained_trunk(SemSimNet(1, 2, 8), tmp_path / "missing.safetensors")
    save_semsim(tmp_path / "wide.safetensors", SemSimNet(1, 4, 8))
    with pytest.raises(FileFormatError, match="width 2 with 1 input channel"):
        load_pretrained_trunk(SemSimNet(1, 2, 8), tmp_path / "wide.safetensors")
    (tmp_path / "pickle.safetensors").write_bytes(b"\x80\x04not safetensors")
    with pytest.raises(FileFormatError, match="not a valid safetensors"):
        load_pretrained_trunk(SemSimNet(1, 2, 8), tmp_path / "pickle.safetensors")
    cfg = SemSimTrainConfig(epochs=1, width=2, input_size=8, pretrain=str(tmp_path / "wide.safetensors"))
    with pytest.raises(FileFormatError, match="do not fit"):
        train_semsim(_triplets(torch.Generator().manual_seed(0)), cfg, seed=0)
