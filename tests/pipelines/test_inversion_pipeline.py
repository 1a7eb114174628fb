"""The inversion experiment end to end: smoke preset, artifacts, defences, victims, label strategies."""

from __future__ import annotations

import json

import pytest

from privlab.data.reconstructions import load_pairs
from privlab.errors import ConfigError
from privlab.run import execute, load_spec, spec_from_mapping
from privlab.store import Store


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("inv")
    (o,) = execute(load_spec(experiment="inversion", preset="smoke"), out, quiet=True)
    return out, o


def test_smoke_dlg_recovers_the_image_and_label(smoke):
    out, o = smoke
    assert o.status == "finished"
    assert o.metrics["psnr"] >= 30.0  # issue target for DLG on lenet_dlg, one digits image
    assert o.metrics["label_accuracy"] == 1.0
    assert o.metrics["psnr"] > o.metrics["psnr_noise_baseline"] + 20
    assert o.metrics["gradient_cosine"] == pytest.approx(1.0)  # no defence: the exact gradient
    # the preset's 4 restarts ran as one batch; every restart's final loss and the winner are stored
    assert (o.metrics["restarts"], o.metrics["restarts_batched"]) == (4.0, 1.0)
    (batch,) = json.loads((out / o.id / "attack.json").read_text("utf-8"))["batches"]
    losses = batch["restart_losses"]
    assert len(losses) == 4 and batch["restart_mode"] == "batched"
    assert o.metrics["restart_best"] == batch["restart_best"] == min(range(4), key=losses.__getitem__)
    assert o.metrics["label_accuracy_matched"] == 1.0


def test_artifacts_pngs_table_grid_and_report(smoke):
    out, o = smoke
    run_dir = out / o.id
    pairs = load_pairs(run_dir / "images")
    assert len(pairs.indices) == 1 and pairs.originals.shape == (1, 1, 8, 8)
    table = json.loads((run_dir / "per_image.json").read_text())
    (row,) = table["rows"]
    assert row["label_correct"] is True and row["psnr"] >= 30
    assert (run_dir / "grid.png").read_bytes()[:4] == b"\x89PNG"
    assert (run_dir / "per_image.csv").read_text().splitlines()[0].startswith("index")
    with Store(out, create=False) as s:
        kinds = {a["kind"] for a in s.artifacts(o.id)}
        info = s.metric_info()
    assert {"grid", "per_image", "attack", "table"} <= kinds
    assert info["psnr"]["unit"] == "dB" and info["psnr"]["kind"] == "privacy"
    html = (out / "report.html").read_text()
    assert "Gradient inversion" in html and "originals (top)" in html


def test_defences_lower_leakage(tmp_path):
    base = {"experiment": "inversion", "preset": "smoke", "attack": "idlg", "attack_config": {"iterations": 30}}
    runs = {}
    for name, d in {"none": {"name": "none"}, "noise": {"name": "gaussian", "sigma": 0.1}}.items():
        (o,) = execute(spec_from_mapping({**base, "defense": d}), tmp_path / name, quiet=True)
        runs[name] = o.metrics
    assert runs["none"]["psnr"] > 30
    assert runs["noise"]["psnr"] < runs["none"]["psnr"] - 15
    assert runs["noise"]["gradient_cosine"] < 0.9
    # the run stores the defence's label; the report shows it without importing protect
    noise_run = next(p for p in (tmp_path / "noise").iterdir() if (p / "attack.json").exists())
    assert json.loads((noise_run / "attack.json").read_text())["defense"] == "gaussian σ=0.1"
    assert "<td>gaussian σ=0.1</td>" in (tmp_path / "noise" / "report.html").read_text()
    (o,) = execute(
        spec_from_mapping({**base, "defense": {"name": "dpsgd", "noise_multiplier": 1.0}}), tmp_path / "dp", quiet=True
    )
    assert o.metrics["epsilon"] > 0


def test_batch_with_label_recovery_and_trained_victim(tmp_path):
    spec = spec_from_mapping(
        {
            "experiment": "inversion",
            "preset": "smoke",
            "num_images": 2,
            "batch_size": 2,
            "attack_config": {"labels": "batch", "iterations": 20},
            "victim": {"model": "lenet_dlg", "init": "dlg-uniform", "train": {"epochs": 1}},
        }
    )
    (o,) = execute(spec, tmp_path, quiet=True)
    assert o.status == "finished"
    assert "victim_test_accuracy" in o.metrics
    assert list((tmp_path / "cache" / "models").glob("inversion-victim-*.safetensors"))  # cached for the next run


def test_bad_specs_name_the_problem():
    with pytest.raises(ConfigError, match="multiple of batch_size"):
        spec_from_mapping({"experiment": "inversion", "num_images": 3, "batch_size": 2})
    with pytest.raises(ConfigError, match="iteration"):
        spec_from_mapping({"experiment": "inversion", "attack_config": {"iteration": 3}})
    with pytest.raises(ConfigError, match="(?i)did you mean 'dlg'"):
        spec_from_mapping({"experiment": "inversion", "attack": "dgl"})
    with pytest.raises(ConfigError, match="sigma must be > 0"):
        spec_from_mapping({"experiment": "inversion", "defense": {"name": "gaussian"}})


@pytest.mark.parametrize("preset", ["cpu", "dlg", "idlg", "inverting-gradients", "paper", "cifar10-cpu"])
def test_presets_validate(preset):
    spec = load_spec(experiment="inversion", preset=preset)
    assert spec.attack in ("dlg", "idlg", "inverting-gradients")


def test_example_sweeps_expand():
    from privlab.examples import example_path
    from privlab.run import expand

    assert len(expand(load_spec(example_path("inversion-cpu")))) == 8
    assert len(expand(load_spec(example_path("inversion-ig")))) == 2


def test_victim_from_a_train_checkpoint(tmp_path):
    train = spec_from_mapping(
        {"experiment": "train", "model": "lenet_dlg", "dataset": {"name": "digits"}, "train": {"epochs": 1}}
    )
    (t,) = execute(train, tmp_path / "t", quiet=True)
    ckpt = tmp_path / "t" / t.id / "model.safetensors"
    spec = spec_from_mapping(
        {"experiment": "inversion", "preset": "smoke", "attack": "idlg", "victim": {"checkpoint": str(ckpt)}}
    )
    (o,) = execute(spec, tmp_path / "inv", quiet=True)
    assert o.status == "finished"
    assert o.metrics["victim_test_accuracy"] == pytest.approx(t.metrics["test_accuracy"])
    assert o.metrics["label_accuracy"] == 1.0
    # a checkpoint trained on other image sizes is refused with the fix
    bad = spec_from_mapping(
        {
            "experiment": "inversion",
            "preset": "smoke",
            "dataset": {"name": "digits", "resize": 16},
            "victim": {"checkpoint": str(ckpt)},
        }
    )
    with pytest.raises(ConfigError, match=r"dataset\.resize"):
        execute(bad, tmp_path / "bad", quiet=True)


@pytest.mark.parametrize("attack", ["dlg", "idlg", "inverting-gradients", "gradient-inversion"])
def test_switching_attack_on_a_preset_keeps_shared_settings(attack):
    """``privlab run inversion --preset smoke --set attack=X``: the preset's ``iterations`` and ``restarts`` (settings
    every inversion attack has) apply to X on top of X's own preset; a key X lacks is a ConfigError naming it."""
    from privlab.attack import ATTACKS, attack_config

    spec = load_spec(experiment="inversion", preset="smoke", overrides={"attack": attack})
    cfg = attack_config(spec.attack, spec.attack_config)
    assert spec.attack == attack and cfg.iterations == 30 and cfg.restarts == 4
    # the rest of X's preset holds
    own = ATTACKS.entry(attack).meta.get("preset", {})
    assert all(getattr(cfg, k) == v for k, v in own.items() if k not in ("iterations", "restarts"))
    with pytest.raises(ConfigError, match="(?i)unknown key 'iteration'.*did you mean 'iterations'"):
        load_spec(
            experiment="inversion", preset="smoke", overrides={"attack": attack, "attack_config": {"iteration": 3}}
        )
    with pytest.raises(ConfigError, match="not a gradient-inversion attack"):
        load_spec(experiment="inversion", preset="smoke", overrides={"attack": "activation_adversary"})


def test_lpips_weights_in_the_spec_reach_the_metric_and_a_missing_file_is_refused_first(tmp_path):
    from typer.testing import CliRunner

    from privlab.cli import app

    base = {"experiment": "inversion", "preset": "smoke", "attack_config": {"iterations": 2}}
    spec = spec_from_mapping({**base, "metrics": ["psnr", "lpips"], "lpips_weights": "random"})
    (o,) = execute(spec, tmp_path / "ok", quiet=True)
    assert o.status == "finished" and "lpips-random" in o.metrics  # the untrained backbone, labelled as such
    out = tmp_path / "missing"
    r = CliRunner().invoke(
        app,
        ["run", "inversion", "--preset", "smoke", "--set", "metrics=[psnr,lpips]", "--set",
         f"lpips_weights={tmp_path / 'nope.pth'}", "--out", str(out), "--quiet"],
    )  # fmt: skip
    assert r.exit_code == 2 and "nope.pth does not exist" in r.output
