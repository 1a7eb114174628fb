"""``privlab semsim`` train / score / agreement / import from the command line, and `similarity --metrics semsim`."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from privlab.cli import app
from privlab.data.reconstructions import save_pairs
from privlab.measure.semsim import Annotation, save_manifest

runner = CliRunner()


def invoke(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False, env=env)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """6 originals; per original a light-noise (recognised) and a random (unrecognised) reconstruction."""
    root = tmp_path_factory.mktemp("labels")
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.avg_pool2d(torch.rand(6, 1, 12, 12, generator=g), 3, 1, 1)
    near = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    far = torch.rand(x.shape, generator=g)
    save_pairs(root / "weak", x, far, list(range(6)))
    save_pairs(root / "strong", x, near, list(range(6)))
    rows = []
    for i in range(6):
        rows.append(Annotation(f"strong/{i}_{i}_ori.png", f"strong/{i}_{i}_rec.png", "strong", True, "a"))
        rows.append(Annotation(f"strong/{i}_{i}_ori.png", f"weak/{i}_{i}_rec.png", "weak", False, "a"))
    save_manifest(root / "m.csv", rows)
    r = invoke("semsim", "train", "--manifest", root / "m.csv", "--out", root / "model", "--epochs", "3",
               "--batch-size", "6", "--width", "2", "--input-size", "8", "--augment", "none", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    return root, json.loads(r.stdout)


def test_train_json(labelled):
    root, d = labelled
    assert d["pairs"] == 12 and d["originals"] == 6 and d["embedding_dim"] == 16 and len(d["history"]) == 3
    assert (root / "model" / "semsim.safetensors").exists()


def test_score_files_folders_and_manifest(labelled):
    root, d = labelled
    ckpt = d["checkpoint"]
    r = invoke("semsim", "score", root / "strong/0_0_ori.png", root / "strong/0_0_ori.png", "--model", ckpt, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["rows"][0]["semsim"] == pytest.approx(0.0, abs=1e-5)  # identical images
    r = invoke("semsim", "score", root / "weak", "--model", ckpt, "--json")
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)["rows"]) == 6
    r = invoke("semsim", "score", "--manifest", root / "m.csv", "--model", ckpt, "--metrics", "psnr,ssim,semsim",
               "--csv", root / "scores.csv", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["rows"]
    assert len(rows) == 12 and {"psnr", "ssim", "semsim"} <= set(rows[0])
    r = invoke("semsim", "agreement", "--manifest", root / "m.csv", "--scores", root / "scores.csv",
               "--n-boot", "50", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    agr = json.loads(r.stdout)
    assert agr["n_images"] == 12 and agr["n_settings"] == 2
    # PSNR separates light noise from random images perfectly
    assert agr["metrics"]["psnr"]["image"]["ordering_accuracy"] == 1.0
    assert [p["human_rate"] for p in agr["per_setting"]] == [1.0, 0.0]
    r = invoke("semsim", "agreement", "--manifest", root / "m.csv", "--scores", root / "scores.csv", "--n-boot", "0")
    assert r.exit_code == 0 and "Spearman" in r.stdout


def test_similarity_command_accepts_semsim(labelled):
    root, d = labelled
    r = invoke("similarity", root / "strong", "--metrics", "psnr,semsim", "--json",
               env={"PRIVLAB_SEMSIM_MODEL": d["checkpoint"]})  # fmt: skip
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert "semsim" in out["metrics"] and len(out["images"]) == 6


def test_import_and_bad_inputs_exit_2(labelled, tmp_path):
    root, d = labelled
    from PIL import Image

    for rel in ("7/7_ori.png", "7/a.png", "-7/b.png"):
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        Image.new("L", (8, 8)).save(tmp_path / rel)
    r = invoke("semsim", "import", tmp_path, "--setting", "cifar", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"manifest": str(tmp_path / "manifest.csv"), "rows": 2, "recognised": 1,
                                    "not_recognised": 1}  # fmt: skip
    (tmp_path / "evil.csv").write_text("original,reconstruction,setting,recognised,annotator\n../x.png,y.png,s,1,a\n")
    for args, text in (
        (("semsim", "train", "--manifest", tmp_path / "evil.csv", "--out", tmp_path / "o"), "'..'"),
        (("semsim", "train", "--manifest", tmp_path / "none.csv", "--out", tmp_path / "o"), "not found"),
        (("semsim", "train", "--manifest", root / "m.csv", "--out", tmp_path / "o", "--sampler", "x"), "sampler"),
        (("semsim", "score", root / "weak", "--model", root / "m.csv"), "safetensors"),
        (("semsim", "agreement", "--manifest", root / "m.csv", "--scores", tmp_path / "none.csv"), "not found"),
    ):
        r = invoke(*args)
        assert r.exit_code == 2, (args, r.output)
        assert text in r.stderr and "Traceback" not in r.output
        assert len(r.stderr.strip().splitlines()) == 1


def test_train_with_pretraining_and_its_refusals(labelled, tmp_path):
    root, first = labelled
    common = ("semsim", "train", "--manifest", root / "m.csv", "--epochs", "1", "--batch-size", "6", "--width", "2",
              "--input-size", "8", "--augment", "none")  # fmt: skip
    r = invoke(*common, "--out", tmp_path / "pre", "--pretrain", "classifier", "--pretrain-dataset", "digits",
               "--pretrain-epochs", "1", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["config"]["pretrain"] == "classifier" and len(d["pretrain_history"]) == 1
    # a trunk from a local file: the first fixture's checkpoint fits (same width and channels)
    r = invoke(*common, "--out", tmp_path / "file", "--pretrain", first["checkpoint"], "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["pretrain_history"] == []
    for extra, msg in [
        (("--pretrain", "classifier"), "--pretrain-dataset"),
        (("--pretrain", "imagenet"), "none, classifier or a path"),
        (("--pretrain", tmp_path / "missing.safetensors"), "missing.safetensors"),
        (("--pretrain-dataset", "digits"), "only used with --pretrain classifier"),
    ]:
        r = invoke(*common, "--out", tmp_path / "bad", *extra)
        assert r.exit_code == 2, r.output
        assert msg in r.output and "Traceback" not in r.output
