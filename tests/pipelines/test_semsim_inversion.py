"""SemSim scores for gradient-inversion runs (issue 21): the inversion spec's ``semsim_model``, ``privlab invert
--semsim-model``, and the semsim ``cifar10-cpu`` preset that makes a CIFAR-10 checkpoint."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from privlab.cli import app
from privlab.config import spec_hash
from privlab.errors import ConfigError, DataMissingError, FileFormatError
from privlab.measure.semsim import load_semsim
from privlab.measure.semsim.model import SemSimNet, save_semsim
from privlab.measure.semsim.score import semsim_distance
from privlab.run import execute, load_spec, spec_from_mapping
from privlab.store import Store, load_tensors

runner = CliRunner()


def _checkpoint(path: Path, *, in_channels: int = 1, input_size: int = 8) -> Path:
    """A tiny untrained SemSim checkpoint (width 2 → 16-d), seeded."""
    torch.manual_seed(0)
    save_semsim(path, SemSimNet(in_channels=in_channels, width=2, input_size=input_size).eval(), {"test": True})
    return path


def _smoke(**extra: object) -> dict[str, object]:
    """The inversion smoke preset (digits at 8×8, DLG), 3 images, few iterations."""
    return {"experiment": "inversion", "preset": "smoke", "num_images": 3, "attack_config": {"iterations": 4}, **extra}


def test_old_spec_hashes_are_kept() -> None:
    # hashes of the presets before semsim_model / reference_model existed (main at a45c64d): their runs stay found
    assert spec_hash(load_spec(experiment="inversion", preset="smoke")) == (
        "e2bfcc1a479e00069ca431f45decfcb55b798a393efd377273924123d30bd679"
    )
    assert spec_hash(load_spec(experiment="semsim", preset="smoke")) == (
        "381391bcb8adc7909179750e8c9b0b6b5fc9ec111a5ba74b13c1cb7c3df434c3"
    )
    with_model = spec_from_mapping(_smoke(semsim_model="x.safetensors"))
    assert spec_hash(with_model) != spec_hash(spec_from_mapping(_smoke()))


def test_inversion_with_semsim_model_scores_every_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRIVLAB_SEMSIM_MODEL", raising=False)
    _checkpoint(tmp_path / "semsim.safetensors")
    monkeypatch.chdir(tmp_path)  # a relative path is read against the working folder
    spec = spec_from_mapping(_smoke(semsim_model="semsim.safetensors", metrics=["mse", "psnr"]))
    (o,) = execute(spec, tmp_path / "out", quiet=True)
    assert o.status == "finished", o.error
    run = tmp_path / "out" / o.id
    per_image = json.loads((run / "per_image.json").read_text("utf-8"))
    values = [r["semsim"] for r in per_image["rows"]]
    assert len(values) == 3 and all(math.isfinite(v) and v >= 0 for v in values)
    assert max(values) > 0  # 4 DLG steps do not reproduce a digit exactly
    assert "semsim.safetensors" in per_image["notes"]["semsim"]
    assert o.metrics["semsim"] == pytest.approx(sum(values) / 3)
    # the scores are the network's distances between the stored pairs (8-bit there: a small rounding difference)
    tensors, meta = load_tensors(run / "pairs.safetensors")
    net, _ = load_semsim(tmp_path / "semsim.safetensors")
    again = semsim_distance(net, tensors["originals"] / 255.0, tensors["reconstructions"] / 255.0)
    assert again.tolist() == pytest.approx(values, abs=0.02)
    assert meta["scores"]["semsim"] == pytest.approx(values) and meta["higher_is_better"]["semsim"] is False
    html = (tmp_path / "out" / "report.html").read_text("utf-8")
    assert "sorted by SemSim (lowest distance first: most similar, most leaked)" in html
    with Store(tmp_path / "out", create=False) as s:
        assert s.metric_info()["semsim"]["kind"] == "privacy"


def test_missing_semsim_model_is_one_clear_error(tmp_path: Path) -> None:
    spec = spec_from_mapping(_smoke(semsim_model=str(tmp_path / "nope.safetensors")))
    with pytest.raises(DataMissingError) as e:
        execute(spec, tmp_path / "out", quiet=True, report=False)
    msg = str(e.value)
    assert msg.startswith("semsim_model: SemSim checkpoint") and "nope.safetensors not found" in msg
    assert "privlab run semsim --preset cifar10-cpu" in msg
    assert not list((tmp_path / "out").glob("*/images"))  # it failed before attacking


def test_mismatching_semsim_model_is_one_clear_error(tmp_path: Path) -> None:
    for name, kw, want in [
        ("rgb", {"in_channels": 3, "input_size": 8}, "3-channel 8×8 images but the data set gives 1-channel 8×8"),
        ("big", {"in_channels": 1, "input_size": 32}, "1-channel 32×32 images but the data set gives 1-channel 8×8"),
    ]:
        ckpt = _checkpoint(tmp_path / f"{name}.safetensors", **kw)
        with pytest.raises(ConfigError, match="semsim.input_size=8") as e:
            execute(spec_from_mapping(_smoke(semsim_model=str(ckpt))), tmp_path / name, quiet=True, report=False)
        assert want in str(e.value)
        assert not list((tmp_path / name).glob("*/images"))
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    spec = spec_from_mapping(_smoke(semsim_model=str(tmp_path / "junk.safetensors")))
    with pytest.raises(FileFormatError, match="junk.safetensors"):
        execute(spec, tmp_path / "junk", quiet=True, report=False)


def test_invert_cli_takes_semsim_model(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "semsim.safetensors", input_size=32)
    args = ["invert", "--num-images", "1", "--iterations", "2", "--restarts", "1", "--metrics", "mse",
            "--out", str(tmp_path / "out"), "--json"]  # fmt: skip
    r = runner.invoke(app, [*args, "--semsim-model", str(ckpt)])
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.output)["images"]
    assert math.isfinite(row["semsim"]) and row["semsim"] >= 0 and "mse" in row
    r = runner.invoke(app, [*args, "--semsim-model", str(tmp_path / "missing.safetensors")])
    assert r.exit_code == 2 and "error: " in r.output and "missing.safetensors not found" in r.output


def test_cifar10_cpu_preset_is_cifar_at_32_rgb(tmp_path: Path) -> None:
    spec = load_spec(experiment="semsim", preset="cifar10-cpu")
    assert (spec.dataset.name, spec.dataset.resize, spec.dataset.train_limit) == ("cifar10", None, 10000)
    assert spec.semsim.input_size == 32 and spec.semsim.pretrain == "classifier"
    assert spec.reference_model == "fast_cnn" and spec.victim == "lenet_dlg"
    attacks = {s.attack for s in spec.settings}
    assert {"inverting-gradients", "dlg", "idlg"} <= attacks
    assert any(s.defense.name == "gaussian" for s in spec.settings)
    assert any(s.defense.name == "none" for s in spec.settings)
    r = runner.invoke(app, ["run", "semsim", "--preset", "cifar10-cpu", "--dry-run", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "1 run(s); nothing was run" in r.output


def test_cifar10_cpu_preset_runs_on_real_images(shared_dir: Path, tmp_path: Path, mini_cifar10) -> None:
    """The preset on 30 + 30 real CIFAR-10 JPEGs, 8 images, two cheap settings, 1 epoch everywhere; its checkpoint
    is 3-channel 32×32 and scores an inversion run on CIFAR-10."""
    src = shared_dir / "data" / "cifar10-jpeg"
    if not (src / "train").is_dir():
        pytest.skip(f"CIFAR-10 JPEG folder not found at {src} (optional: real-data tests only)")
    root = mini_cifar10(src, tmp_path / "data", per_class=3)  # no 60 000-file decode in a test
    spec = load_spec(
        experiment="semsim",
        preset="cifar10-cpu",
        overrides={
            "num_images": 8, "n_boot": 20, "metrics": ["mse", "psnr", "ssim"],
            "settings": [{"name": "ig-5", "attack_config": {"iterations": 5}},
                         {"name": "idlg-5", "attack": "idlg", "attack_config": {"iterations": 5}}],
            "dataset": {"train_limit": None, "test_limit": None}, "reference_classifier": {"epochs": 1},
            "semsim": {"pretrain_epochs": 1, "epochs": 1, "triplets_per_original": 2},
        },
    )  # fmt: skip
    (o,) = execute(spec, tmp_path / "out", data_root=root, quiet=True, report=False)
    assert o.status == "finished", o.error
    net, meta = load_semsim(tmp_path / "out" / o.id / "semsim.safetensors")
    assert (net.in_channels, net.input_size) == (3, 32) and meta["proxy"] is True
    assert meta["train_config"]["input_size"] == 32 and len(meta["pretrain_history"]) == 1
    assert {"semsim_ordering_accuracy", "psnr_ordering_accuracy", "reference_test_accuracy"} <= set(o.metrics)
    # the checkpoint scores CIFAR-10 reconstructions of an inversion run
    inv = spec_from_mapping(
        {"experiment": "inversion", "preset": "dlg", "dataset": {"name": "cifar10", "resize": None}, "num_images": 1,
         "attack_config": {"iterations": 2, "restarts": 1}, "metrics": ["psnr"],
         "semsim_model": str(tmp_path / "out" / o.id / "semsim.safetensors")}
    )  # fmt: skip
    (i,) = execute(inv, tmp_path / "inv", data_root=root, quiet=True, report=False)
    assert i.status == "finished", i.error
    assert math.isfinite(i.metrics["semsim"]) and i.metrics["semsim"] >= 0
