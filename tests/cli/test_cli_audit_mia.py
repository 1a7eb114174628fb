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


def test_scores_as_parquet_round_trip_equal_the_csv(setup, tmp_path):
    import pyarrow.parquet as pq

    args = ["--model", setup / "target.safetensors", "--arch", "lenet5", "--attacks", "loss,entropy", "--json"]
    r_csv = _audit(setup, *args, "--scores", tmp_path / "s.csv")
    r_pq = _audit(setup, *args, "--scores", tmp_path / "out" / "s.parquet")
    assert r_csv.exit_code == 0 and r_pq.exit_code == 0, r_csv.output + r_pq.output
    table = pq.read_table(tmp_path / "out" / "s.parquet")
    assert table.column_names == ["index", "label", "member", "loss", "entropy"]
    assert [str(t) for t in table.schema.types] == ["int64", "int64", "int8", "double", "double"]
    cols = table.to_pydict()
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert table.num_rows == len(rows) == 360
    for c in ("index", "label", "member"):
        assert cols[c] == [int(x[c]) for x in rows]
    assert cols["member"] == np.load(setup / "members.npy").astype(int).tolist()
    for c in ("loss", "entropy"):  # the CSV holds 6 significant digits, the Parquet file full precision
        np.testing.assert_allclose(cols[c], [float(x[c]) for x in rows], rtol=1e-5, atol=1e-30)
        assert len(set(cols[c])) > 10  # real per-record scores, not a constant
    from privlab.measure.mia import score_attack

    auc = score_attack(np.array(cols["loss"]), np.array(cols["member"], bool)).auc
    assert auc == pytest.approx(json.loads(r_pq.stdout)["attacks"]["loss"]["auc"], abs=1e-12)
    assert json.loads(r_pq.stdout)["scores"] == str(tmp_path / "out" / "s.parquet")
    assert not list((tmp_path / "out").glob(".*.tmp"))  # written atomically: no temporary file left


def test_scores_with_another_suffix_is_exit_2(setup, tmp_path):
    for name, got in (("s.txt", "'.txt'"), ("scores", "no suffix"), ("s.csv.gz", "'.gz'")):
        r = _audit(setup, "--model", setup / "target.safetensors", "--arch", "lenet5", "--attacks", "loss",
                   "--scores", tmp_path / name)  # fmt: skip
        assert r.exit_code == 2 and "Traceback" not in r.output
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: --scores ")
        assert "use .csv or .parquet" in lines[0] and f"(got {got})" in lines[0], lines[0]
    assert list(tmp_path.iterdir()) == []  # nothing written
    from privlab.errors import ConfigError
    from privlab.pipelines.mia import write_scores

    with pytest.raises(ConfigError, match=r"use \.csv or \.parquet \(got '\.xlsx'\)"):
        write_scores(tmp_path / "s.xlsx", torch.zeros(2, dtype=torch.long), np.array([True, False]), {})


def _lira_rmia_observation(setup):
    """The observation the command builds from ``setup``: target, 4 references, the train split as population."""
    from privlab.attack.mia import MIAObservation, QueryModel
    from privlab.pipelines.mia import load_references
    from privlab.victim import load_model_file

    data = load_dataset("digits", "test")

    def load(path):
        return load_model_file(path, data, dataset="digits", arch="lenet5", normalize=None)

    refs, ref_in = load_references(setup / "refs", len(data), load)
    population = load_dataset("digits", "train")
    return MIAObservation(data=data.images, labels=data.labels, target=QueryModel(load(setup / "target.safetensors")),
                          references=[QueryModel(m) for m in refs], reference_in=ref_in,
                          population=(population.images, population.labels))  # fmt: skip


def test_param_sets_attack_settings(setup, tmp_path):
    import pyarrow.parquet as pq

    from privlab.attack.mia import run_mia_attack

    base = ["--model", setup / "target.safetensors", "--arch", "lenet5", "--references", setup / "refs",
            "--attacks", "lira-online,rmia", "--json"]  # fmt: skip
    r0 = _audit(setup, *base, "--scores", tmp_path / "default.parquet")
    r1 = _audit(setup, *base, "--param", "lira-online.shifts=0", "--param", "lira-online.shifts=2",  # later wins
                "--param", "lira-online.flip=true", "--param", "rmia.offline=true", "--param", "rmia.a=0.5",
                "--scores", tmp_path / "set.parquet")  # fmt: skip
    assert r0.exit_code == 0 and r1.exit_code == 0, r0.output + r1.output
    assert json.loads(r0.stdout)["params"] == {}
    assert json.loads(r1.stdout)["params"] == {"lira-online": {"shifts": 2, "flip": True},
                                               "rmia": {"offline": True, "a": 0.5}}  # fmt: skip
    default, chosen = pq.read_table(tmp_path / "default.parquet"), pq.read_table(tmp_path / "set.parquet")
    # the settings reached the attacks: the scores are those of the attacks run with them directly
    obs = _lira_rmia_observation(setup)
    for name, params in (("lira-online", {"shifts": 2, "flip": True}), ("rmia", {"offline": True, "a": 0.5})):
        want = run_mia_attack(name, obs, **params).numpy()
        np.testing.assert_allclose(chosen.column(name).to_numpy(), want, rtol=1e-6)
        assert not np.allclose(default.column(name).to_numpy(), want, rtol=1e-3)  # and differ from the defaults


def test_bad_param_is_one_error_naming_the_option_and_the_keys(setup):
    base = ["--model", setup / "target.safetensors", "--arch", "lenet5", "--references", setup / "refs",
            "--attacks", "loss,lira-online,rmia"]  # fmt: skip
    lira_keys = "settings of lira-online: shifts, flip, variance, n_references"
    cases = {
        "lira-online.shifts=20": ("less than or equal to 8 (got 20)", lira_keys),
        "lira-online.shift=2": ("lira-online has no setting 'shift'. Did you mean 'shifts'?", lira_keys),
        "lira-online.variance=bogus": ("'auto', 'per-example' or 'global'", lira_keys),
        "rmia.offlin=true": ("Did you mean 'offline'?", "gamma, offline, a, shifts, flip, n_references, n_population"),
        "lira-onlin.shifts=2": (
            "unknown membership-inference attack 'lira-onlin'. Did you mean 'lira-online'?",
            "Registered: loss, confidence",
        ),
        "label-only.mode=noise": ("label-only is not among the attacks run (loss, lira-online, rmia)", "--attacks"),
        "loss.eps=1": ("loss has no settings", "loss"),
        "lira-online.flip=yes": ("yes/no switch", "write true or false"),
        "shifts=2": ("expected ATTACK.KEY=VALUE", "lira-online.shifts=2"),
    }
    for item, (what, names) in cases.items():
        r = _audit(setup, *base, "--param", item)
        assert r.exit_code == 2 and "Traceback" not in r.output, r.output
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: --param {item!r}: "), lines
        assert what in lines[0] and names in lines[0], lines[0]


def test_audit_model_params_are_checked_before_any_attack_runs(setup):
    from privlab.errors import ConfigError
    from privlab.pipelines.mia import audit_model

    data = load_dataset("digits", "test")
    net = build_model("lenet5", 10, data.shape)
    members = np.load(setup / "members.npy")
    with pytest.raises(ConfigError, match="settings given for 'rmia', which is not among the attacks run: loss"):
        audit_model(net, data, members, ["loss"], params={"rmia": {"offline": True}})
    with pytest.raises(ConfigError, match="unknown key 'shift'"):
        audit_model(net, data, members, ["loss", "label-only"], params={"label-only": {"shift": 2}})
    out = audit_model(net, data, members, ["label-only"], params={"label-only": {"mode": "augment", "shifts": 1}})
    assert set(out) == {"label-only"} and out["label-only"]["scores"].shape == (360,)
