import json
import warnings

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from privlab.cli import app
from privlab.data import LabelledImages
from privlab.data.relabel import relabel, task_num_classes
from privlab.errors import ConfigError, DataMissingError
from privlab.examples import example_path
from privlab.pipelines import preset_names
from privlab.run import execute, load_spec
from privlab.store import Store, load_tensors

runner = CliRunner()

REQUIRED = {
    "public_accuracy_clean": ("fraction", "utility", True),
    "public_accuracy_noisy": ("fraction", "utility", True),
    "adversary_accuracy_clean": ("fraction", "privacy", False),
    "adversary_accuracy_noisy": ("fraction", "privacy", False),
    "adversary_retrained_accuracy_noisy": ("fraction", "privacy", False),
    "mi_clean_nats": ("nats", "privacy", None),
    "mi_noisy_nats": ("nats", "privacy", None),
    "mi_reduction": ("%", "privacy", True),
    "snr": ("ratio", "privacy", False),
}


def test_relabel_tasks():
    d = LabelledImages(torch.zeros(10, 1, 2, 2), torch.arange(10), 10)
    assert relabel(d, "greater_than_5").labels.tolist() == [0] * 6 + [1] * 4
    assert relabel(d, "parity").labels.tolist() == [0, 1] * 5
    assert torch.equal(relabel(d, "identity").labels, d.labels)
    assert task_num_classes("greater_than_5", 10) == 2
    with pytest.raises(ConfigError, match="unknown task"):
        task_num_classes("digit>5", 10)
    with pytest.raises(ConfigError, match="K must lie"):
        task_num_classes("greater_than_9", 10)


def test_presets_exist_and_validate():
    assert {"smoke", "cpu", "paper-v1", "paper-v2"} <= set(preset_names("shredder"))
    v2 = load_spec(experiment="shredder", preset="paper-v2")
    assert v2.dataset.name == "mnist" and v2.dataset.resize == 32 and v2.noise.laplace_scale == 20
    assert v2.loss.contrastive_weight == 0.01 and v2.bank.min_epochs == 29 and v2.bank.accuracy_threshold == 0.95
    v1 = load_spec(experiment="shredder", preset="paper-v1")
    assert v1.model == "alexnet" and v1.cut == "pool5" and v1.noise.mode == "additive"
    assert (v1.noise.laplace_loc, v1.noise.laplace_scale) == (0.6, 1.2) and v1.deploy.sampler == "v1-laplace"
    cpu = load_spec(example_path("shredder-cpu"))
    assert cpu.model_dump(exclude={"name", "preset"}) == load_spec(experiment="shredder", preset="cpu").model_dump(
        exclude={"name", "preset"}
    )
    with pytest.raises(ConfigError, match="min_epochs"):
        load_spec(experiment="shredder", preset="smoke", overrides={"bank": {"min_epochs": 50}})


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("shredder")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (o,) = execute(load_spec(experiment="shredder", preset="smoke"), out, quiet=True)
    return out, o


def test_smoke_run_end_to_end(smoke_run):
    out, o = smoke_run
    assert o.status == "finished"
    m = o.metrics
    with Store(out, create=False) as s:
        info = s.metric_info()
        arts = s.artifacts(o.id)
    for name, (unit, kind, hib) in REQUIRED.items():
        assert name in m, name
        assert (info[name]["unit"], info[name]["kind"], info[name]["higher_is_better"]) == (unit, kind, hib), name
    # utility survives, privacy improves (bounds measured on this preset, seed 0, with margin)
    assert m["public_accuracy_clean"] > 0.9
    assert m["public_accuracy_noisy"] > m["public_accuracy_clean"] - 0.08
    assert m["mi_noisy_nats"] < m["mi_clean_nats"]
    assert m["mi_reduction"] > 30 and m["mi_reduction_ci_low"] <= m["mi_reduction"] <= m["mi_reduction_ci_high"]
    # permutation nulls (Z rows shuffled, true MI 0): the clean estimate is far above its floor
    assert m["mi_clean_null_nats"] < 0.5 * m["mi_clean_nats"]
    above = 100 * (1 - (m["mi_noisy_nats"] - m["mi_null_nats"]) / (m["mi_clean_nats"] - m["mi_clean_null_nats"]))
    assert m["mi_reduction_above_null"] == pytest.approx(above)
    assert m["adversary_accuracy_noisy"] < m["adversary_accuracy_clean"] - 0.3
    assert m["adversary_retrained_accuracy_noisy"] < m["adversary_retrained_accuracy_clean"] - 0.1
    assert 0 < m["snr"] < 1 and m["snr_db"] == pytest.approx(10 * np.log10(m["snr"]))
    assert m["bank_size"] == 3
    # the bank and its metadata
    (bank_art,) = [a for a in arts if a["kind"] == "noise_bank"]
    tensors, meta = load_tensors(out / bank_art["path"])
    assert tensors["n"].shape == tensors["w"].shape == (3, 120, 1, 1)
    assert meta["shape"] == [120, 1, 1] and meta["seed"] == 0 and "> 0.9" in meta["acceptance"]
    assert len(meta["accuracies"]) == 3 and all(a > 0.9 for a in meta["accuracies"])
    # MI records through log_mi: ite-dkl with k = 3
    rec = json.loads((out / o.id / "mi-mi_clean_nats.json").read_text())
    assert rec["estimator"] == "ite-dkl" and rec["k"] == 3 and rec["dims"] == [1024, 120]
    html = (out / "report.html").read_text()
    assert "Shredder (learned activation noise)" in html and "clean → noisy" in html and "noise histogram" in html


def test_victim_cache_is_reused_and_a_corrupt_one_retrained(tmp_path):
    from privlab.context import RunContext
    from privlab.data.spec import load_datasets
    from privlab.pipelines.shredder import get_victim

    spec = load_spec(
        experiment="shredder",
        preset="smoke",
        overrides={"dataset": {"train_limit": 200}, "victim": {"train": {"epochs": 1}}},
    )
    with Store(tmp_path) as store:
        ctx = RunContext(run_id="r", out=tmp_path, run_dir=tmp_path / "r", store=store)
        train, _ = load_datasets(spec.dataset, ctx)
        pub = relabel(train, "greater_than_5")
        m1, info1 = get_victim(spec, ctx, "greater_than_5", pub)
        m2, info2 = get_victim(spec, ctx, "greater_than_5", pub)
        assert not info1["cached"] and info2["cached"] and info1["key"] == info2["key"]
        assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True))
        # another task or another seed is another cache entry
        other = load_spec(
            experiment="shredder",
            preset="smoke",
            overrides={"seed": 1, "dataset": {"train_limit": 200}, "victim": {"train": {"epochs": 1}}},
        )
        _, info3 = get_victim(other, ctx, "greater_than_5", pub)
        assert info3["key"] != info1["key"] and not info3["cached"]
        # a corrupt cache file is retrained (same seed → same weights) and rewritten
        path = tmp_path / "cache" / "models" / f"shredder-greater_than_5-{info1['key']}.safetensors"
        assert info1["path"] == str(path)
        path.write_bytes(b"x")
        with pytest.warns(UserWarning, match="unusable"):
            m4, info4 = get_victim(spec, ctx, "greater_than_5", pub)
        assert not info4["cached"]
        assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m4.state_dict().values(), strict=True))
        assert get_victim(spec, ctx, "greater_than_5", pub)[1]["cached"]


def test_cli_json_reports_the_metrics(tmp_path):
    args = [
        "run",
        "shredder",
        "--preset",
        "smoke",
        "--out",
        str(tmp_path),
        "--json",
        "--quiet",
        "--set",
        "bank.size=1",
        "--set",
        "mi.repeats=1",
        "--set",
        "adversary.train.epochs=1",
        "--set",
        "victim.train.epochs=2",
        "--set",
        "bank.accuracy_threshold=0.5",
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    metrics = data["runs"][0]["metrics"]
    assert set(REQUIRED) <= set(metrics)


def test_unreachable_acceptance_is_a_clear_error(tmp_path):
    spec = load_spec(
        experiment="shredder",
        preset="smoke",
        overrides={
            "bank": {"accuracy_threshold": 1.0, "max_restarts": 1, "max_epochs": 2},
            "victim": {"train": {"epochs": 1}},
        },
    )
    with pytest.raises(ConfigError, match="no noise sample passed"):
        execute(spec, tmp_path, quiet=True)


def _fake_folder(root, n=4, hw=64):
    from PIL import Image

    g = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in ("cat", "dog"):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                base = 60 if c == "cat" else 190
                arr = np.clip(base + g.normal(0, 30, (hw, hw, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(arr).save(d / f"{i}.png")


_V1_SMALL = {
    "dataset": {"resize": 64},
    "victim": {"train": {"epochs": 1, "batch_size": 8}},
    "bank": {"size": 1, "max_restarts": 2, "max_epochs": 1, "accuracy_threshold": 0.0, "batch_size": 8},
    "mi": {"x_dims": 2000, "repeats": 1},
}


def test_paper_v1_path_on_a_tiny_folder(tmp_path, shared_dir):
    weights = shared_dir / "weights" / "alexnet-features-imagenet.safetensors"
    if not weights.is_file():
        pytest.skip(f"{weights} absent (optional: shared AlexNet weights)")
    _fake_folder(tmp_path / "data")
    over = {**_V1_SMALL, "victim": {**_V1_SMALL["victim"], "edge_weights": str(weights)}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (o,) = execute(
            load_spec(experiment="shredder", preset="paper-v1", overrides=over),
            tmp_path / "out",
            data_root=tmp_path / "data",
            quiet=True,
        )
    assert o.status == "finished"
    m = o.metrics
    assert "adversary_accuracy_noisy" not in m  # paper-v1 has no private task
    assert m["bank_size"] == 1 and m["snr"] > 0 and np.isfinite(m["mi_clean_nats"])
    rec = json.loads((tmp_path / "out" / o.id / "mi-mi_noisy_nats.json").read_text())
    assert rec["dims"] == [2000, 256]  # 64×64 input: pool5 is 256×1×1


def test_paper_v1_without_weights_says_how_to_get_them(tmp_path):
    _fake_folder(tmp_path / "data", n=1)
    over = {**_V1_SMALL, "victim": {**_V1_SMALL["victim"], "edge_weights": "no-such-weights.safetensors"}}
    with pytest.raises(DataMissingError, match="never downloads"):
        execute(
            load_spec(experiment="shredder", preset="paper-v1", overrides=over),
            tmp_path / "out",
            data_root=tmp_path / "data",
            quiet=True,
        )
