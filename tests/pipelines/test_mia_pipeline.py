"""The mia and audit-dp experiments end to end on digits (smoke presets), the CLI and bad inputs."""

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from privlab.cli import app
from privlab.run import execute, load_spec

runner = CliRunner()


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("mia")
    outcomes = execute(load_spec(experiment="mia", preset="smoke"), out, quiet=True)
    assert outcomes[0].status == "finished", outcomes[0].error
    return out, outcomes[0]


def test_smoke_measures_every_attack(smoke):
    out, o = smoke
    for attack in (
        "loss",
        "confidence",
        "entropy",
        "modified-entropy",
        "lira-online",
        "lira-offline",
        "rmia",
        "label-only",
    ):
        for k in ("auc", "balanced_accuracy", "tpr_at_fpr_0.001", "tpr_at_fpr_0.01"):
            assert 0.0 <= o.metrics[f"{attack}/{k}"] <= 1.0
    assert o.metrics["loss/auc"] > 0.52  # an overfit target leaks even at smoke size
    assert o.metrics["mia_auc"] == max(
        o.metrics[f"{a}/auc"]
        for a in (
            "loss",
            "rmia",
            "lira-online",
            "label-only",
            "lira-offline",
            "confidence",
            "entropy",
            "modified-entropy",
        )
    )
    run_dir = out / o.dir
    rows = list(csv.DictReader((run_dir / "scores.csv").open()))
    assert len(rows) == 300 and sum(int(r["member"]) for r in rows) == 150
    # the same scores as Parquet, registered as an artifact of its own
    import pyarrow.parquet as pq

    from privlab.store import Store

    table = pq.read_table(run_dir / "scores.parquet").to_pydict()
    assert list(table) == list(rows[0]) and table["member"] == [int(r["member"]) for r in rows]
    np.testing.assert_allclose(table["lira-online"], [float(r["lira-online"]) for r in rows], rtol=1e-5)
    with Store(out, create=False) as s:
        kinds = {a["kind"]: a for a in s.artifacts(o.id)}
    assert kinds["mia_scores_parquet"]["path"].endswith("scores.parquet") and "mia_scores" in kinds
    roc = json.loads((run_dir / "roc.json").read_text())
    assert roc["loss"]["fpr"][0] == 0 and roc["loss"]["tpr"][-1] == 1


def test_reference_cache_is_reused_and_a_bad_entry_rebuilt(smoke, tmp_path):
    out, _ = smoke
    cache = sorted((out / "cache" / "models").glob("*.safetensors"))
    assert len(cache) == 3  # target + 2 references
    cache[0].write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unusable"):
        o = execute(
            load_spec(experiment="mia", preset="smoke", overrides={"seed": 0, "top_records": 4}), out, quiet=True
        )[0]
    assert o.status == "finished" and len(list((out / "cache" / "models").glob("*.safetensors"))) == 3


def test_unknown_attack_is_a_config_error(tmp_path):
    r = runner.invoke(
        app, ["run", "mia", "--preset", "smoke", "--out", str(tmp_path), "--set", "attacks=[{attack: lira-onlin}]"]
    )
    assert r.exit_code != 0


def test_audit_mia_on_a_train_checkpoint_and_bad_inputs(tmp_path):
    r = runner.invoke(
        app,
        [
            "train",
            "--dataset",
            "digits",
            "--model",
            "lenet5",
            "--epochs",
            "2",
            "--out",
            str(tmp_path),
            "--json",
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    ckpt = next(tmp_path.glob("*/model.safetensors"))
    members = tmp_path / "m.npy"
    np.save(members, np.arange(0, 1437, 2))
    r = runner.invoke(
        app, ["audit", "mia", "--model", str(ckpt), "--dataset", "digits", "--members", str(members), "--json"]
    )
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)["attacks"]
    assert set(res) == {"loss", "confidence", "entropy", "modified-entropy", "label-only"}
    np.save(members, np.arange(0, 5000))  # indices beyond the data set
    r = runner.invoke(app, ["audit", "mia", "--model", str(ckpt), "--dataset", "digits", "--members", str(members)])
    assert r.exit_code == 2 and "must be integers in [0, 1437)" in r.stderr
    np.save(members, np.ones(10, bool))
    r = runner.invoke(app, ["audit", "mia", "--model", str(ckpt), "--dataset", "digits", "--members", str(members)])
    assert r.exit_code == 2 and "mask of 10 entries" in r.stderr
    np.save(members, np.arange(10))
    r = runner.invoke(
        app,
        [
            "audit",
            "mia",
            "--model",
            str(ckpt),
            "--dataset",
            "cifar10",
            "--members",
            str(members),
            "--data-root",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 2  # another data set (missing here, or another shape): one clear error line


def test_audit_mia_wrong_architecture_is_a_clear_error(tmp_path):
    import torch

    from privlab.models import build_model
    from privlab.store import save_tensors

    sd = build_model("mnist_cnn_shallow", 10, (1, 8, 8)).state_dict()
    path = tmp_path / "bad.safetensors"
    save_tensors(path, sd, {"model": "lenet5", "num_classes": 10, "in_shape": [1, 8, 8]})
    np.save(tmp_path / "m.npy", np.arange(10))
    r = runner.invoke(app, ["audit", "mia", "--model", str(path), "--members", str(tmp_path / "m.npy")])
    assert r.exit_code == 2 and "do not fit model 'lenet5'" in r.stderr
    assert torch.is_tensor(next(iter(sd.values())))


def test_audit_dp_smoke_bound_below_accountant(tmp_path):
    r = runner.invoke(app, ["audit", "dp", "--preset", "smoke", "--out", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)["runs"][0]["metrics"]
    assert 0 <= m["epsilon_lower_bound"] <= m["epsilon"] <= 4.05


def test_cifar10_cpu_preset_runs_on_a_tiny_cifar_subset(shared_dir, tmp_path):
    """The cifar10-cpu preset end to end on 160 real CIFAR-10 images, references trained in 2 worker processes
    (which must find the data root too); tiny schedule, skipped without the shared data."""
    root = shared_dir / "data"
    if not (root / "cifar10-jpeg" / "train").is_dir():
        pytest.skip(f"CIFAR-10 JPEG folder not found under {root} (optional: real-data tests only)")
    spec = load_spec(experiment="mia", preset="cifar10-cpu")
    assert (spec.model, spec.references, spec.dataset.train_limit) == ("fast_cnn", 16, 10_000)
    assert {a.attack for a in spec.attacks} >= {"loss", "lira-online", "lira-offline", "rmia"}
    spec = load_spec(
        experiment="mia",
        preset="cifar10-cpu",
        overrides={
            "dataset": {"train_limit": 160, "test_limit": 40},
            "references": 2,
            "train": {"epochs": 1},
            "attacks": [{"attack": "loss"}, {"attack": "lira-online", "params": {"shifts": 0, "flip": True}}],
        },
    )
    (o,) = execute(spec, tmp_path, data_root=root, quiet=True)
    assert o.status == "finished", o.error
    assert 0.0 <= o.metrics["lira-online/auc"] <= 1.0 and 0.0 <= o.metrics["test_accuracy"] <= 1.0
    assert len(list((tmp_path / "cache" / "models").glob("mia-reference-*.safetensors"))) == 2
