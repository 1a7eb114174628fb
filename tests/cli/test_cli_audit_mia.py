"""``privlab audit mia`` on a model trained elsewhere: a plain state dict + --arch, reference models from a folder
(LiRA, RMIA), --attacks and --scores. Digits test split (360 candidates), tiny LeNet-5 models."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from privlab.cli import app
from privlab.data import load_dataset
from privlab.models import build_model
from privlab.store import save_tensors
from privlab.train import TrainConfig, fit

runner = CliRunner()
N_REFS = 4
EPOCHS = 30  # overfits 180 records: LOSS, LiRA, RMIA AUC 0.58–0.66 over 3 seeds (360 candidates, SE ≈ 0.03)


def _halves(n: int, rows: int, seed: int) -> np.ndarray:
    g = np.random.default_rng(seed)
    out = np.zeros((rows, n), bool)
    for r in range(rows):
        out[r, g.permutation(n)[: n // 2]] = True
    return out


def _train(data, mask: np.ndarray, epochs: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    m = build_model("lenet5", data.num_classes, data.shape, mean=data.mean, std=data.std)
    fit(m, data.subset(torch.from_numpy(np.flatnonzero(mask))), TrainConfig(epochs=epochs, lr=3e-3), seed=seed)
    return m.eval()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A target overfit on half of the digits test split, saved as a state dict and as a privlab checkpoint, and
    4 references on random halves in ``refs/`` (``ref-R.safetensors`` + ``ref-R.members.npy``)."""
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("auditmia")
    data = load_dataset("digits", "test")
    members = _halves(len(data), 1, seed=0)[0]
    np.save(d / "members.npy", members)
    target = _train(data, members, epochs=EPOCHS, seed=0)
    state = {k: v.contiguous() for k, v in target.state_dict().items()}
    save_file(state, str(d / "target.safetensors"))
    meta = {"model": "lenet5", "num_classes": 10, "in_shape": list(data.shape), "mean": list(data.mean),
            "std": list(data.std)}  # fmt: skip
    save_tensors(d / "checkpoint.safetensors", state, meta)
    refs = d / "refs"
    refs.mkdir()
    ref_in = _halves(len(data), N_REFS, seed=1)
    for r in range(N_REFS):
        m = _train(data, ref_in[r], epochs=EPOCHS, seed=10 + r)
        save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(refs / f"ref-{r}.safetensors"))
        # the membership as a 0/1 mask for even references, as member indices for odd ones
        np.save(refs / f"ref-{r}.members.npy", ref_in[r].astype(np.uint8) if r % 2 == 0 else np.flatnonzero(ref_in[r]))
    return d


def _audit(d: Path, *extra: str | Path):
    args = ["audit", "mia", "--members", d / "members.npy", "--dataset", "digits", "--split", "test", *extra]
    return runner.invoke(app, [str(a) for a in args])


def test_state_dict_with_arch_matches_the_checkpoint_route(setup):
    r1 = _audit(setup, "--model", setup / "target.safetensors", "--arch", "lenet5", "--json")
    assert r1.exit_code == 0, r1.output
    r2 = _audit(setup, "--model", setup / "checkpoint.safetensors", "--json")
    assert r2.exit_code == 0, r2.output
    a1, a2 = json.loads(r1.stdout)["attacks"], json.loads(r2.stdout)["attacks"]
    assert list(a1) == ["loss", "confidence", "entropy", "modified-entropy", "label-only"]  # reference-free only
    for name in ("loss", "confidence", "entropy", "modified-entropy"):
        assert a1[name] == a2[name]
    assert a1["loss"]["auc"] > 0.55  # the overfit target leaks
    # a text table too
    r3 = _audit(setup, "--model", setup / "target.safetensors", "--arch", "lenet5", "--attacks", "loss")
    assert r3.exit_code == 0 and "loss" in r3.stdout and "tpr_at_fpr_0.01" in r3.stdout


def test_state_dict_of_another_architecture_is_one_error_naming_the_key(setup, tmp_path):
    torch.manual_seed(0)
    bad = tmp_path / "shallow.safetensors"
    save_file(build_model("mnist_cnn_shallow", 10, (1, 8, 8)).state_dict(), str(bad))
    r = _audit(setup, "--model", bad, "--arch", "lenet5")
    assert r.exit_code == 2 and "Traceback" not in r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "shallow.safetensors" in lines[0] and "'lenet5'" in lines[0] and "c1.weight is missing" in lines[0]
    # wrong number of classes: a shape mismatch names the key and both shapes
    save_file(build_model("lenet5", 3, (1, 8, 8)).state_dict(), str(bad))
    r = _audit(setup, "--model", bad, "--arch", "lenet5")
    assert r.exit_code == 2 and "is [3, 84] in the file, [10, 84] in the model" in r.stderr
    # an unknown architecture
    r = _audit(setup, "--model", setup / "target.safetensors", "--arch", "lenet")
    assert r.exit_code == 2 and "lenet" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_normalize_options(setup, tmp_path):
    torch.manual_seed(0)
    raw = build_model("lenet5", 10, (1, 8, 8))  # no normalize layer: takes [0, 1] images
    path = tmp_path / "raw.safetensors"
    save_file(raw.state_dict(), str(path))
    auto = _audit(setup, "--model", path, "--arch", "lenet5", "--attacks", "loss", "--json")
    forced = _audit(setup, "--model", path, "--arch", "lenet5", "--attacks", "loss", "--normalize", "--json")
    assert auto.exit_code == 0 and forced.exit_code == 0, auto.output + forced.output
    # the data set's mean/std in front change the inputs, hence the losses
    assert json.loads(auto.stdout)["attacks"]["loss"] != json.loads(forced.stdout)["attacks"]["loss"]
    r = _audit(setup, "--model", setup / "target.safetensors", "--arch", "lenet5", "--no-normalize")
    assert r.exit_code == 2 and "normalize.mean" in r.stderr and "without a normalize layer" in r.stderr
    r = _audit(setup, "--model", setup / "checkpoint.safetensors", "--no-normalize")
    assert r.exit_code == 2 and "apply to a state dict with --arch" in r.stderr


def test_references_enable_lira_and_rmia(setup, tmp_path):
    out = tmp_path / "sub" / "scores.csv"
    r = _audit(setup, "--model", setup / "target.safetensors", "--arch", "lenet5", "--references", setup / "refs",
               "--attacks", "loss,lira-online,lira-offline,rmia", "--scores", out, "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["references"] == N_REFS and list(res["attacks"]) == ["loss", "lira-online", "lira-offline", "rmia"]
    for name in ("lira-online", "lira-offline", "rmia"):
        m = res["attacks"][name]
        assert m["auc"] > 0.55, (name, m)
        assert 0 <= m["tpr_at_fpr_0.001"] <= m["tpr_at_fpr_0.01"] <= 1 and 0.5 <= m["balanced_accuracy"] <= 1
    # --scores: one row per record, the right columns, the members as given
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["index", "label", "member", "loss", "lira-online", "lira-offline", "rmia"]
    assert len(rows) == 360 and [int(x["index"]) for x in rows] == list(range(360))
    members = np.load(setup / "members.npy")
    assert [int(x["member"]) for x in rows] == members.astype(int).tolist()
    # the CSV's scores give the AUC the command reported
    from privlab.measure.mia import score_attack

    lira = np.array([float(x["lira-online"]) for x in rows])
    assert abs(score_attack(lira, members).auc - res["attacks"]["lira-online"]["auc"]) < 1e-3
    assert not list(out.parent.glob(".*.tmp"))  # written atomically: no temporary file left


def test_default_attacks_with_references_are_all_of_them(setup):
    # the references are plain state dicts: read like --model, so without --arch they are refused
    r = _audit(setup, "--model", setup / "checkpoint.safetensors", "--references", setup / "refs",
               "--attacks", "lira-offline")  # fmt: skip
    assert r.exit_code == 2 and "ref-0.safetensors: not a privlab checkpoint" in r.stderr
    from privlab.attack.mia import MIA_ATTACKS
    from privlab.cli.audit import _attack_list

    assert sorted(_attack_list(None, True)) == sorted(MIA_ATTACKS)
    assert _attack_list(None, False) == ["loss", "confidence", "entropy", "modified-entropy", "label-only"]


def test_attack_needing_references_without_them_is_exit_2(setup):
    for attack in ("lira-online", "loss,rmia"):
        r = _audit(setup, "--model", setup / "target.safetensors", "--arch", "lenet5", "--attacks", attack)
        assert r.exit_code == 2 and "needs reference models; pass --references" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    r = _audit(setup, "--model", setup / "target.safetensors", "--arch", "lenet5", "--attacks", "lira-onlin")
    assert r.exit_code == 2 and "Did you mean 'lira-online'" in r.stderr


def test_reference_folder_errors(setup, tmp_path):
    refs = tmp_path / "refs"
    refs.mkdir()
    args = ["--model", setup / "target.safetensors", "--arch", "lenet5", "--attacks", "lira-offline"]
    r = _audit(setup, *args, "--references", refs)
    assert r.exit_code == 2 and "no reference model" in r.stderr
    (refs / "a.safetensors").write_bytes((setup / "refs" / "ref-0.safetensors").read_bytes())
    r = _audit(setup, *args, "--references", refs)
    assert r.exit_code == 2 and "a.members.npy: missing" in r.stderr
    np.save(refs / "a.members.npy", np.ones(10, bool))
    r = _audit(setup, *args, "--references", refs)
    assert r.exit_code == 2 and "a membership mask of 10 entries" in r.stderr


def test_load_state_dict_model_prefix_and_non_finite(tmp_path):
    from privlab.errors import FileFormatError
    from privlab.victim import load_state_dict_model

    torch.manual_seed(0)
    net = build_model("lenet5", 10, (1, 8, 8), mean=[0.3], std=[0.4]).eval()
    path = tmp_path / "ddp.safetensors"
    save_file({f"module.{k}": v for k, v in net.state_dict().items()}, str(path))  # a DataParallel state dict
    loaded = load_state_dict_model(path, "lenet5", 10, (1, 8, 8))
    x = torch.rand(3, 1, 8, 8)
    assert torch.equal(loaded(x), net(x))  # normalize layer and values from the file
    sd = net.state_dict()
    sd["c1.weight"][0, 0, 0, 0] = float("nan")
    save_file(sd, str(path))
    with pytest.raises(FileFormatError, match="c1.weight holds NaN or inf"):
        load_state_dict_model(path, "lenet5", 10, (1, 8, 8))
