"""``privlab invert`` from the command line."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from privlab.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_invert_json_per_image_and_means(tmp_path):
    r = invoke(
        "invert", "--attack", "idlg", "--num-images", "2", "--iterations", "30", "--resize", "0",
        "--metrics", "mse,psnr", "--out", tmp_path, "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert len(d["images"]) == 2
    for row in d["images"]:
        assert row["label_correct"] is True and row["psnr"] > 30
    assert d["means"]["label_accuracy"] == 1.0
    assert d["means"]["psnr"] > 30
    assert d["metrics"]["restarts"] == 4.0 and d["metrics"]["restarts_batched"] == 1.0  # restarts on by default
    names = sorted(p.name for p in (tmp_path / d["run_id"] / "images").iterdir())
    assert len(names) == 4 and all(n.endswith(("_ori.png", "_rec.png")) for n in names)
    # the folder is what `privlab similarity` reads
    r2 = invoke("similarity", tmp_path / d["run_id"] / "images", "--metrics", "mse,psnr", "--json")
    assert r2.exit_code == 0, r2.output
    # 8-bit PNGs of near-exact reconstructions are often identical (PSNR = ∞, null in JSON)
    assert json.loads(r2.stdout)["means"]["mse"] < 1e-3


def test_invert_restarts_1_turns_restarts_off(tmp_path):
    r = invoke(
        "invert", "--attack", "idlg", "--iterations", "2", "--resize", "0", "--metrics", "mse", "--restarts", "1",
        "--out", tmp_path, "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["metrics"]["restarts"] == 1.0 and d["metrics"]["restart_best"] == 0.0
    batches = json.loads((tmp_path / d["run_id"] / "attack.json").read_text("utf-8"))["batches"]
    assert batches[0]["restart_mode"] == "single" and len(batches[0]["restart_losses"]) == 1


def test_invert_bad_inputs_exit_2_with_one_line(tmp_path):
    for args, text in (
        (["--defense", "blur:2"], "unknown defence"),
        (["--attack", "dgl"], "did you mean"),
        (["--num-images", "3", "--batch-size", "2"], "multiple of batch_size"),
        (["--checkpoint", tmp_path / "missing.safetensors"], "missing.safetensors"),
    ):
        r = invoke("invert", *args, "--iterations", "1", "--resize", "0", "--out", tmp_path, "--quiet")
        assert r.exit_code == 2, (args, r.output)
        assert text in r.output.lower() or text in r.output
        assert "Traceback" not in r.output


def test_attacks_and_protections_are_listed():
    r = invoke("attacks", "--json")
    assert r.exit_code == 0
    attacks = {a["name"]: a for a in json.loads(r.stdout)["attacks"]}
    assert {"dlg", "idlg", "inverting-gradients"} <= set(attacks)
    assert attacks["dlg"]["requires"] == ["model", "gradients"]  # the server knows the global model
    r = invoke("protections", "--json")
    kinds = {p["name"]: p["kind"] for p in json.loads(r.stdout)["protections"]}
    assert kinds["gradient-prune"] == "gradient" and kinds["shredder"] == "activation" and kinds["laplace"] == "data"
    assert kinds["gradient-none"] == "gradient"
