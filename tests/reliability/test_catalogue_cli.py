"""The bad-input catalogue of every CLI command (docs/reliability.md, "Commands").

Each row runs ``privlab …`` in-process with one bad input and asserts a clean failure: exit code 2, exactly one
``error: …`` line on stderr, no traceback, a message matching the row's regex and naming the input. Arguments of the
wrong type (``--k x``) are refused by the argument parser itself (exit 2 with its usage box), checked separately.
With ``PRIVLAB_CATALOGUE=FILE`` set, each row appends ``{"id", "message"}`` to FILE (regenerates the docs table).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest


@dataclass(frozen=True)
class Row:
    """``args(tmp, good)`` → the command line (after ``privlab``)."""

    command: str
    bad: str
    args: Callable[[Path, dict[str, Path]], list[Any]]
    match: str
    names: str

    @property
    def id(self) -> str:
        return f"{self.command} | {self.bad}"


def record(row_id: str, message: str) -> None:
    out = os.environ.get("PRIVLAB_CATALOGUE")
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write(json.dumps({"id": row_id, "message": message}) + "\n")


def npy(tmp: Path, name: str, a: np.ndarray) -> Path:
    np.save(tmp / name, a, allow_pickle=False)
    return tmp / name


def yaml_file(tmp: Path, text: str) -> Path:
    (tmp / "spec.yaml").write_text(text)
    return tmp / "spec.yaml"


def manifest_with(tmp: Path, good: dict[str, Path], text: str) -> Path:
    """A copy of the good pairs folder with a manifest ``bad.csv`` holding ``text`` (the shared files stay intact)."""
    import shutil

    folder = tmp / "pairs"
    if not folder.exists():
        shutil.copytree(good["pairs"], folder)
    (folder / "bad.csv").write_text(text)
    return folder / "bad.csv"


def _mi(tmp: Path, good: dict[str, Path], *extra: Any) -> list[Any]:
    return ["mi", good["x.npy"], good["z.npy"], *extra]


def _ldp(tmp: Path, src: Path, *extra: Any) -> list[Any]:
    return ["ldp", "privatize", "-m", "laplace", "-e", "1", *extra, src, tmp / "out.npy"]


def _ue(tmp: Path, good: dict[str, Path], *extra: Any) -> list[Any]:
    return ["ldp", "privatize", "-m", "ue", "-e", "1", *extra, good["labels.npy"], tmp / "out.npy"]


OUT = ["--out"]
ROWS: list[Row] = [
    # privlab run
    Row("run", "spec file missing", lambda t, g: ["run", t / "none.yaml"], r"spec file not found: .*none\.yaml",
        "none.yaml"),
    Row("run", "neither a file nor an experiment", lambda t, g: ["run", "trian"],
        r"'trian' is neither a spec file nor an experiment; experiments: .*train", "trian"),
    Row("run", "unknown key in the spec", lambda t, g: ["run", yaml_file(t, "experiment: train\nmodle: lenet5\n"),
                                                        *OUT, t / "o"],
        r"spec\.yaml:2: unknown key 'modle'\. Did you mean 'model'\?", "modle"),
    Row("run", "unknown preset", lambda t, g: ["run", "train", "--preset", "fast"],
        r"experiment 'train' has no preset 'fast'; available: cpu, paper, smoke", "fast"),
    Row("run", "--set without '='", lambda t, g: ["run", "train", "--set", "train.epochs"],
        r"--set expects KEY=VALUE .*got 'train\.epochs'", "train.epochs"),
    Row("run", "--set wrong type", lambda t, g: ["run", "train", "--set", "train.epochs=abc"],
        r"train\.epochs: Input should be a valid integer", "train.epochs"),
    Row("run", "--set out of range", lambda t, g: ["run", "train", "--set", "train.epochs=-1"],
        r"train\.epochs: Input should be greater than or equal to 1 \(got -1\)", "train.epochs"),
    Row("run", "--set inf", lambda t, g: ["run", "train", "--set", "train.lr=.inf"],
        r"train\.lr: Input should be a finite number", "train.lr"),
    Row("run", "--set unknown key", lambda t, g: ["run", "train", "--set", "bogus=1"],
        r"unknown key 'bogus'\. Allowed here: experiment, name, seed", "bogus"),
    Row("run", "--device unknown", lambda t, g: ["run", "train", "--preset", "smoke", "--device", "tpu", *OUT, t / "o"],
        r"unknown device 'tpu'; use auto, cpu, cuda or cuda:N", "tpu"),
    Row("run", "data set without its data root", lambda t, g: [
        "run", yaml_file(t, "experiment: train\ndataset: {name: mnist}\n"), *OUT, t / "o", "--quiet"],
        r"dataset 'mnist' needs a data root: pass --data-root DIR", "mnist"),
    Row("run", "data root without the data", lambda t, g: [
        "run", yaml_file(t, "experiment: train\ndataset: {name: fashion_mnist}\n"), *OUT, t / "o", "--data-root", t,
        "--quiet"], r"dataset 'fashion_mnist' not found under data root .* \(missing '.*train-images-idx3-ubyte'\)",
        "fashion_mnist"),
    Row("run", "--out is a file", lambda t, g: ["run", "train", "--preset", "smoke", *OUT, g["x.npy"], "--quiet"],
        r"cannot create output folder .*x\.npy", "x.npy"),
    # privlab train
    Row("train", "unknown data set", lambda t, g: ["train", "--dataset", "mnits"],
        r"unknown dataset 'mnits'.*Did you mean 'mnist'", "mnits"),
    Row("train", "unknown model", lambda t, g: ["train", "--model", "lenet"],
        r"unknown model 'lenet'.*Did you mean 'lenet5'", "lenet"),
    Row("train", "--epochs 0", lambda t, g: ["train", "--epochs", "0"],
        r"train\.epochs: Input should be greater than or equal to 1 \(got 0\)", "epochs"),
    Row("train", "--lr negative", lambda t, g: ["train", "--lr", "-1"], r"train\.lr: Input should be greater than 0",
        "lr"),
    Row("train", "--optimizer unknown", lambda t, g: ["train", "--optimizer", "rmsprop"],
        r"Input should be 'adam', 'adamw', 'sgd' or 'adadelta' \(got \"rmsprop\"\)", "rmsprop"),
    Row("train", "--limit 0", lambda t, g: ["train", "--limit", "0"],
        r"dataset\.train_limit: Input should be greater than or equal to 1", "train_limit"),
    Row("train", "--device cuda without CUDA", lambda t, g: ["train", "--device", "cuda:7", *OUT, t / "o"]
        if not __import__("torch").cuda.is_available() else ["train", "--device", "cuda:99", *OUT, t / "o"],
        r"(CUDA is not available here|cuda:99)", "cuda"),
    # privlab invert
    Row("invert", "unknown attack", lambda t, g: ["invert", "--attack", "dgl"], r"unknown attack 'dgl'", "dgl"),
    Row("invert", "unknown defence", lambda t, g: ["invert", "--defense", "blur:3"], r"unknown defence 'blur'",
        "blur"),
    Row("invert", "defence noise σ < 0", lambda t, g: ["invert", "--defense", "noise:-1"],
        r"defense\.sigma: Input should be greater than or equal to 0", "sigma"),
    Row("invert", "--num-images 0", lambda t, g: ["invert", "--num-images", "0"],
        r"num_images: Input should be greater than or equal to 1", "num_images"),
    Row("invert", "checkpoint missing", lambda t, g: ["invert", "--checkpoint", t / "none.safetensors", *OUT, t / "o",
                                                      "--quiet"], r"file not found: .*none\.safetensors",
        "none.safetensors"),
    Row("invert", "checkpoint of another kind", lambda t, g: ["invert", "--checkpoint", g["semsim"], *OUT, t / "o",
                                                              "--quiet"],
        r"semsim\.safetensors: not a privlab checkpoint", "semsim.safetensors"),
    # listing commands
    Row("report", "folder without a store", lambda t, g: ["report", t], r"no results store at .*runs\.sqlite",
        "runs.sqlite"),
    Row("report", "corrupt store", lambda t, g: ["report", _corrupt_store(t)],
        r"runs\.sqlite is not a valid privlab store", "runs.sqlite"),
    Row("bench", "benchmarks folder missing", lambda t, g: ["bench", "--dir", t / "nope"],
        r"no benchmarks folder .*nope; run from the project root or pass --dir", "nope"),
    Row("bench", "unknown benchmark", lambda t, g: ["bench", "nope", "--dir", Path(__file__).parents[2] / "benchmarks"],
        r"unknown benchmark 'nope'", "nope"),
    # privlab audit
    Row("audit mia", "checkpoint missing", lambda t, g: ["audit", "mia", "--model", t / "no.safetensors", "--members",
        g["labels.npy"]], r"file not found: .*no\.safetensors", "no.safetensors"),
    Row("audit mia", "checkpoint of another architecture", lambda t, g: ["audit", "mia", "--model", g["checkpoint"],
        "--members", g["labels.npy"], "--dataset", "digits"],
        r"model\.safetensors: trained on \[1, 28, 28\] images .* but digits has \[1, 8, 8\]", "digits"),
    Row("audit mia", "state dict of another architecture", lambda t, g: ["audit", "mia", "--model", g["checkpoint"],
        "--arch", "lenet5", "--members", g["labels.npy"]],
        r"model\.safetensors: the state dict does not fit architecture 'lenet5' \(10 classes, \[1, 8, 8\] images, "
        r"without a normalize layer\): c1\.weight is missing from the file", "c1.weight"),
    Row("audit mia", "unknown --arch", lambda t, g: ["audit", "mia", "--model", g["checkpoint"], "--arch", "lenet",
        "--members", g["labels.npy"]], r"unknown model 'lenet'", "lenet"),
    Row("audit mia", "--normalize with a privlab checkpoint", lambda t, g: ["audit", "mia", "--model", g["checkpoint"],
        "--members", g["labels.npy"], "--no-normalize"],
        r"--normalize/--no-normalize apply to a state dict with --arch", "--arch"),
    Row("audit mia", "attack needing references without --references", lambda t, g: ["audit", "mia", "--model",
        g["checkpoint"], "--members", g["labels.npy"], "--attacks", "loss,lira-online"],
        r"--attacks: lira-online needs reference models; pass --references DIR", "lira-online"),
    Row("audit mia", "unknown attack", lambda t, g: ["audit", "mia", "--model", g["checkpoint"], "--members",
        g["labels.npy"], "--attacks", "lira-onlin"],
        r"--attacks: unknown membership-inference attack 'lira-onlin'\. Did you mean 'lira-online'\?", "lira-onlin"),
    Row("audit mia", "references folder missing", lambda t, g: ["audit", "mia", "--model", _lenet_state_dict(t),
        "--arch", "lenet5", "--members", g["labels.npy"], "--references", t / "nope"],
        r"--references .*nope: not a folder", "nope"),
    Row("audit mia", "reference without its membership file", lambda t, g: ["audit", "mia", "--model",
        _lenet_state_dict(t), "--arch", "lenet5", "--members", g["labels.npy"], "--references", _refs_folder(t)],
        r"refs/r0\.members\.npy: missing; reference model r0\.safetensors needs its membership file", "r0.members.npy"),
    Row("audit mia", "--scores with another suffix", lambda t, g: ["audit", "mia", "--model", _lenet_state_dict(t),
        "--arch", "lenet5", "--members", g["labels.npy"], "--scores", t / "s.txt"],
        r"--scores .*s\.txt: the suffix picks the format; use \.csv or \.parquet \(got '\.txt'\)", "s.txt"),
    Row("audit mia", "--param with an unknown setting", lambda t, g: ["audit", "mia", "--model", _lenet_state_dict(t),
        "--arch", "lenet5", "--members", g["labels.npy"], "--param", "label-only.shift=2"],
        r"--param 'label-only\.shift=2': label-only has no setting 'shift'\. Did you mean 'shifts'\? The settings of "
        r"label-only: mode, shifts", "label-only.shift"),
    Row("audit mia", "--param with a bad value", lambda t, g: ["audit", "mia", "--model", _lenet_state_dict(t),
        "--arch", "lenet5", "--members", g["labels.npy"], "--param", "label-only.draws=0"],
        r"--param 'label-only\.draws=0': .*draws: Input should be greater than or equal to 1 \(got 0\); settings of "
        r"label-only: mode, shifts", "label-only.draws"),
    Row("audit mia", "--param for an attack not run", lambda t, g: ["audit", "mia", "--model", _lenet_state_dict(t),
        "--arch", "lenet5", "--members", g["labels.npy"], "--attacks", "loss", "--param", "rmia.offline=true"],
        r"--param 'rmia\.offline=true': rmia is not among the attacks run \(loss\); add it to --attacks", "rmia"),
    # privlab examples
    Row("examples", "--copy onto a file", lambda t, g: ["examples", "--copy", g["x.npy"]],
        r"--copy .*: not a folder; name a folder to copy the examples into", "--copy"),
    # privlab similarity
    Row("similarity", "folder missing", lambda t, g: ["similarity", t / "nope"],
        r"originals folder .*nope does not exist", "nope"),
    Row("similarity", "folder without pairs", lambda t, g: ["similarity", t],
        r"no image pairs found in .*: expected files named \{idx\}_\{label\}_ori\.png", "_ori.png"),
    Row("similarity", "unknown metric", lambda t, g: ["similarity", g["pairs"], "--metrics", "psnr,nope"],
        r"unknown similarity metric 'nope'", "nope"),
    Row("similarity", "empty --metrics", lambda t, g: ["similarity", g["pairs"], "--metrics", ","],
        r"no similarity metric given", "metric"),
    Row("similarity", "SSIM on images under 11 px", lambda t, g: ["similarity", _tiny_pairs(t), "--metrics", "ssim"],
        r"SSIM needs images of at least 11×11 pixels .*got 8×8", "8×8"),
    Row("similarity", "LPIPS weights missing", lambda t, g: [
        "similarity", g["pairs"], "--metrics", "lpips", "--lpips-weights", t / "no.pth"],
        r"the given path .*no\.pth does not exist", "no.pth"),
    Row("similarity", "LPIPS unknown net", lambda t, g: ["similarity", g["pairs"], "--metrics", "lpips",
                                                         "--lpips-net", "res"], r"unknown LPIPS net 'res'", "res"),
    Row("similarity", "semsim without a checkpoint", lambda t, g: ["similarity", g["pairs"], "--metrics", "semsim"],
        r"'semsim' needs a trained SemSim checkpoint", "semsim"),
    Row("similarity", "classifier metric from the CLI", lambda t, g: ["similarity", g["pairs"], "--metrics",
                                                                      "classifier"],
        r"metric 'classifier' needs a model", "classifier"),
    Row("similarity", "a corrupt PNG", lambda t, g: ["similarity", _corrupt_pair(t, g)],
        r"cannot read image .*0_3_rec\.png", "0_3_rec.png"),
    # privlab ldp budget
    Row("ldp budget", "ε = 0", lambda t, g: ["ldp", "budget", "-e", "0"],
        r"epsilon must be finite and > 0 .*got 0\.0", "epsilon"),
    Row("ldp budget", "ε < 0", lambda t, g: ["ldp", "budget", "-e", "-1"], r"epsilon must be finite and > 0",
        "epsilon"),
    Row("ldp budget", "unknown mechanism", lambda t, g: ["ldp", "budget", "-e", "1", "-m", "lapalce"],
        r"unknown protection 'lapalce'.*Did you mean 'laplace'", "lapalce"),
    Row("ldp budget", "a label mechanism as image mechanism", lambda t, g: ["ldp", "budget", "-e", "1", "-m", "ue"],
        r"'ue' is not an image mechanism; use one of: laplace, gaussian, rr", "ue"),
    Row("ldp budget", "δ = 0", lambda t, g: ["ldp", "budget", "-e", "1", "-m", "gaussian", "--delta", "0"],
        r"delta must lie strictly between 0 and 1", "delta"),
    Row("ldp budget", "δ ≥ 1", lambda t, g: ["ldp", "budget", "-e", "1", "-m", "gaussian", "--delta", "1.5"],
        r"delta must lie strictly between 0 and 1 .*got 1\.5", "delta"),
    Row("ldp budget", "unknown calibration", lambda t, g: ["ldp", "budget", "-e", "1", "-m", "gaussian",
                                                           "--calibration", "exact"],
        r"calibration: Input should be 'analytic' or 'classical'", "calibration"),
    Row("ldp budget", "label fraction 1", lambda t, g: ["ldp", "budget", "-e", "1", "--label-mechanism", "sue",
                                                        "--label-fraction", "1"],
        r"label_fraction must lie in \[0, 1\), got 1\.0", "label_fraction"),
    Row("ldp budget", "label fraction < 0", lambda t, g: ["ldp", "budget", "-e", "1", "--label-mechanism", "oue",
                                                          "--label-fraction", "-0.1"],
        r"label_fraction must lie in \[0, 1\)", "label_fraction"),
    Row("ldp budget", "unknown label mechanism", lambda t, g: ["ldp", "budget", "-e", "1", "--label-mechanism", "rr"],
        r"--label-mechanism must be none, sue or oue, got 'rr'", "rr"),
    Row("ldp budget", "--epochs 0", lambda t, g: ["ldp", "budget", "-e", "1", "--epochs", "0"],
        r"--epochs must be ≥ 1, got 0", "--epochs"),
    Row("ldp budget", "--shape with a 0", lambda t, g: ["ldp", "budget", "-e", "1", "--shape", "1x0x8"],
        r"--shape must hold positive sizes, got '1x0x8'", "1x0x8"),
    Row("ldp budget", "--shape not NxHxW", lambda t, g: ["ldp", "budget", "-e", "1", "--shape", "big"],
        r"--shape must look like 1x28x28, got 'big'", "big"),
    Row("ldp budget", "dpsgd: data set of 1", lambda t, g: ["ldp", "budget", "-e", "1", "-m", "dpsgd",
                                                            "--dataset-size", "1"],
        r"DP-SGD needs at least 2 training examples, got 1", "training examples"),
    Row("ldp budget", "dpsgd: batch size 0", lambda t, g: ["ldp", "budget", "-e", "1", "-m", "dpsgd",
                                                           "--batch-size", "0"],
        r"--batch-size: Input should be greater than or equal to 1 \(got 0\)", "--batch-size"),
    Row("ldp budget", "dpsgd: δ = 0", lambda t, g: ["ldp", "budget", "-e", "1", "-m", "dpsgd", "--delta", "0"],
        r"--delta: Input should be greater than 0 \(got 0\.0\)", "--delta"),
    # privlab ldp privatize
    Row("ldp privatize", "input missing", lambda t, g: _ldp(t, t / "none.npy"), r"file not found: .*none\.npy",
        "none.npy"),
    Row("ldp privatize", "OUT not .npy", lambda t, g: ["ldp", "privatize", "-m", "laplace", "-e", "1",
                                                       g["images.npy"], t / "out.txt"],
        r"OUT must end in \.npy, got .*out\.txt", "out.txt"),
    Row("ldp privatize", "images outside [0, 1]", lambda t, g: _ldp(t, npy(t, "big.npy", np.full((2, 4), 7.0))),
        r"images must lie in \[0, 1\] .*got range \[7, 7\]; divide 0–255 data by 255", "[0, 1]"),
    Row("ldp privatize", "NaN pixels", lambda t, g: _ldp(t, npy(t, "nan.npy", np.full((2, 4), np.nan))),
        r"nan\.npy: holds 8 non-finite value\(s\) \(NaN or inf\) of 8; privlab needs finite numbers", "nan.npy"),
    Row("ldp privatize", "empty array (0 rows)", lambda t, g: _ldp(t, npy(t, "empty.npy", np.zeros((0, 4)))),
        r"empty\.npy: holds no rows \(shape \(0, 4\)\); nothing to privatise", "empty.npy"),
    Row("ldp privatize", "a scalar", lambda t, g: _ldp(t, npy(t, "s.npy", np.float64(3))),
        r"s\.npy: holds no rows", "s.npy"),
    Row("ldp privatize", "1-d array (labels as images)", lambda t, g: _ldp(t, g["labels.npy"]),
        r"labels\.npy: images need shape \(N, H, W\), \(N, C, H, W\) or \(N, d\), got \(4,\)", "labels.npy"),
    Row("ldp privatize", "int16 images", lambda t, g: _ldp(t, npy(t, "i.npy", np.zeros((2, 4), np.int16))),
        r"i\.npy: images must be uint8 \(0–255\) or float in \[0, 1\], got int16", "i.npy"),
    Row("ldp privatize", "unknown mechanism", lambda t, g: ["ldp", "privatize", "-m", "blur", "-e", "1",
                                                            g["images.npy"], t / "o.npy"],
        r"unknown protection 'blur'", "blur"),
    Row("ldp privatize", "rr threshold 2", lambda t, g: ["ldp", "privatize", "-m", "rr", "-e", "1", "--threshold",
                                                         "2", g["images.npy"], t / "o.npy"],
        r"rr mechanism: threshold: Input should be less than 1 \(got 2\.0\)", "threshold"),
    Row("ldp privatize", "unknown --scope", lambda t, g: _ldp(t, g["images.npy"], "--scope", "row"),
        r"laplace mechanism: scope: Input should be 'image' or 'pixel' \(got 'row'\)", "scope"),
    Row("ldp privatize", "gaussian with --scope pixel", lambda t, g: ["ldp", "privatize", "-m", "gaussian", "-e", "1",
                                                                      "--scope", "pixel", g["images.npy"],
                                                                      t / "o.npy"],
        r"--scope 'pixel': the Gaussian mechanism is calibrated per image only", "--scope"),
    Row("ldp privatize", "gaussian δ = 2", lambda t, g: ["ldp", "privatize", "-m", "gaussian", "-e", "1", "--delta",
                                                         "2", g["images.npy"], t / "o.npy"],
        r"delta must lie strictly between 0 and 1 .*got 2\.0", "delta"),
    Row("ldp privatize", "ue on float images", lambda t, g: ["ldp", "privatize", "-m", "ue", "-e", "1",
                                                             g["images.npy"], t / "o.npy"],
        r"images\.npy: ue needs a 1-d integer label array, got float32 \(4, 1, 8, 8\)", "images.npy"),
    Row("ldp privatize", "ue: negative label", lambda t, g: _ue(t, {"labels.npy": npy(t, "neg.npy",
                                                                                       np.array([0, -1]))}),
        r"labels must lie in \[0, 2\), got \[-1, 0\]; set num_classes", "num_classes"),
    Row("ldp privatize", "ue: --classes too small", lambda t, g: _ue(t, g, "--classes", "2"),
        r"labels must lie in \[0, 2\), got \[0, 2\]; set num_classes", "num_classes"),
    Row("ldp privatize", "ue: unknown --kind", lambda t, g: _ue(t, g, "--kind", "rappor"),
        r"ue mechanism: kind: Input should be 'sue' or 'oue' \(got 'rappor'\)", "kind"),
    # privlab mi
    Row("mi", "file missing", lambda t, g: ["mi", t / "none.npy", g["z.npy"]], r"file not found: .*none\.npy",
        "none.npy"),
    Row("mi", "row counts differ", lambda t, g: ["mi", g["x.npy"], npy(t, "z9.npy", np.zeros((9, 2)))],
        r"x has 40 rows but z has 9; rows must be paired samples", "x has 40 rows"),
    Row("mi", "1-row arrays", lambda t, g: ["mi", npy(t, "a.npy", np.ones((1, 2))), npy(t, "b.npy", np.ones((1, 2)))],
        r"ite-dkl with k = 3 needs at least 8 rows, got 1; lower k or add samples", "1"),
    Row("mi", "empty arrays", lambda t, g: ["mi", npy(t, "a.npy", np.ones((0, 2))), npy(t, "b.npy", np.ones((0, 2)))],
        r"x: expected rows of samples, got shape \(0, 2\)", "x"),
    Row("mi", "NaN rows", lambda t, g: ["mi", npy(t, "nan.npy", np.full((40, 3), np.nan)), g["z.npy"]],
        r"nan\.npy: holds 120 non-finite value\(s\) \(NaN or inf\)", "nan.npy"),
    Row("mi", "inf rows", lambda t, g: ["mi", g["x.npy"], npy(t, "inf.npy", np.full((40, 2), np.inf))],
        r"inf\.npy: holds 80 non-finite value\(s\) \(NaN or inf\)", "inf.npy"),
    Row("mi", "k ≥ n", lambda t, g: _mi(t, g, "--k", "40"), r"ite-dkl with k = 40 needs at least 82 rows, got 40",
        "k = 40"),
    Row("mi", "k = 0", lambda t, g: _mi(t, g, "--k", "0"), r"k must be a positive integer, got 0", "k"),
    Row("mi", "unknown estimator", lambda t, g: _mi(t, g, "--estimator", "kgs"),
        r"unknown MI estimator 'kgs'.*Did you mean 'ksg'", "kgs"),
    Row("mi", "--repeats 0", lambda t, g: _mi(t, g, "--repeats", "0"), r"repeats must be ≥ 1, got 0", "repeats"),
    Row("mi", "--jitter < 0", lambda t, g: _mi(t, g, "--jitter", "-1"), r"jitter must be ≥ 0, got -1\.0", "jitter"),
    Row("mi", "unknown backend", lambda t, g: _mi(t, g, "--backend", "gpu"), r"unknown kNN backend 'gpu'", "gpu"),
    Row("mi", "unknown split", lambda t, g: _mi(t, g, "--split", "half"),
        r"split must be 'first-half' or 'random', got 'half'", "half"),
    Row("mi", "string array", lambda t, g: ["mi", npy(t, "s.npy", np.array(["a"] * 40)), g["z.npy"]],
        r"s\.npy: expected a numeric array", "s.npy"),
    Row("mi calibrate", "--n below 10", lambda t, g: ["mi", "calibrate", "--n", "5"], r"--n must be ≥ 10, got 5",
        "--n"),
    Row("mi calibrate", "--k 0", lambda t, g: ["mi", "calibrate", "--k", "0"], r"--k must be ≥ 1, got 0", "--k"),
    Row("mi calibrate", "unknown task", lambda t, g: ["mi", "calibrate", "--task", "nope", "--n", "20"],
        r"unknown MI task 'nope'", "nope"),
    Row("mi calibrate", "unknown family", lambda t, g: ["mi", "calibrate", "--family", "nope", "--n", "20"],
        r"unknown MI task family 'nope'", "nope"),
    Row("mi calibrate", "no task that small", lambda t, g: ["mi", "calibrate", "--max-dim", "1", "--n", "20"],
        r"no ground-truth task matches the selection", "--max-dim"),
    Row("mi calibrate", "unknown estimator", lambda t, g: ["mi", "calibrate", "-e", "kgs", "--n", "20", "--task",
                                                           "bimodal-1x1"], r"unknown MI estimator 'kgs'", "kgs"),
    Row("mi tasks", "--max-dim below 2", lambda t, g: ["mi", "tasks", "--max-dim", "1"],
        r"no ground-truth MI task has d_x \+ d_z ≤ 1", "--max-dim"),
    # privlab runs
    Row("runs list", "folder without a store", lambda t, g: ["runs", "list", *OUT, t],
        r"no results store at .*runs\.sqlite: run an experiment with --out", "runs.sqlite"),
    Row("runs list", "corrupt store", lambda t, g: ["runs", "list", *OUT, _corrupt_store(t)],
        r"is not a valid privlab store .*move it away or choose another --out folder", "runs.sqlite"),
    Row("runs show", "unknown run id", lambda t, g: ["runs", "show", "nope", *OUT, g["store"]],
        r"no run 'nope' in .*runs\.sqlite; runs here: r1", "nope"),
    Row("runs export", "--json and --csv", lambda t, g: ["runs", "export", *OUT, g["store"], "--json", "--csv"],
        r"choose one of --json, --csv and --parquet", "--json"),
    Row("runs export", "--parquet without --to", lambda t, g: ["runs", "export", *OUT, g["store"], "--parquet"],
        r"--parquet writes a binary file; give its path with --to FILE\.parquet", "--to"),
    Row("runs export", "--to into a file's path", lambda t, g: ["runs", "export", *OUT, g["store"], "--to",
                                                                g["x.npy"] / "r.csv"],
        r"cannot write .*x\.npy/r\.csv", "r.csv"),
    # privlab semsim
    Row("semsim train", "manifest missing", lambda t, g: ["semsim", "train", "-m", t / "m.csv", *OUT, t / "o"],
        r"manifest .*m\.csv not found", "m.csv"),
    Row("semsim train", "binary manifest", lambda t, g: ["semsim", "train", "-m", g["x.npy"], *OUT, t / "o"],
        r"x\.npy: not a text file \(not UTF-8\)", "x.npy"),
    Row("semsim train", "manifest path with '..'", lambda t, g: [
        "semsim", "train", "-m", manifest_with(t, g, "original,reconstruction,recognised\n../a.png,b.png,yes\n"),
        *OUT, t / "o"], r"bad\.csv row 1: path '\.\./a\.png' contains '\.\.'", "../a.png"),
    Row("semsim train", "--epochs 0", lambda t, g: ["semsim", "train", "-m", g["manifest"], *OUT, t / "o", "--epochs",
                                                    "0"], r"--epochs: Input should be greater than or equal to 1",
        "--epochs"),
    Row("semsim train", "--sampler unknown", lambda t, g: ["semsim", "train", "-m", g["manifest"], *OUT, t / "o",
                                                           "--sampler", "x"],
        r"--sampler: Input should be 'paper' or 'psnr'", "--sampler"),
    Row("semsim score", "checkpoint missing", lambda t, g: ["semsim", "score", g["pairs"], "--model", t / "m"],
        r"file not found: .*/m$", "/m"),
    Row("semsim score", "checkpoint not safetensors", lambda t, g: ["semsim", "score", g["pairs"], "--model",
                                                                    g["x.npy"]],
        r"x\.npy: not a valid safetensors file", "x.npy"),
    Row("semsim score", "no ORIG and no --manifest", lambda t, g: ["semsim", "score", "--model", g["semsim"]],
        r"give ORIG and REC \(two PNGs or folders\), or --manifest M", "ORIG"),
    Row("semsim score", "ORIG file without REC", lambda t, g: ["semsim", "score", g["pairs"] / "0_3_ori.png",
                                                               "--model", g["semsim"]],
        r"ORIG is a file: give the reconstruction PNG as REC", "REC"),
    Row("semsim score", "ORIG and --manifest", lambda t, g: ["semsim", "score", g["pairs"], "--manifest",
                                                             g["manifest"], "--model", g["semsim"]],
        r"give either ORIG \[REC\] or --manifest, not both", "--manifest"),
    Row("semsim score", "RGB images, grey model", lambda t, g: ["semsim", "score", _rgb_pairs(t), "--model",
                                                                g["semsim"]], r"RGB|channel", "1"),
    Row("semsim agreement", "scores file missing", lambda t, g: ["semsim", "agreement", "-m", g["manifest"],
                                                                 "--scores", t / "s.csv"],
        r"scores file .*s\.csv not found", "s.csv"),
    Row("semsim agreement", "unknown metric column", lambda t, g: [
        "semsim", "agreement", "-m", g["manifest"], "--scores", _scores(t, "reconstruction,fancy\n0_3_rec.png,1\n")],
        r"columns fancy of .*scores\.csv are not known metrics", "fancy"),
    Row("semsim agreement", "no reconstruction in common", lambda t, g: [
        "semsim", "agreement", "-m", g["manifest"], "--scores", _scores(t, "reconstruction,psnr\nzz.png,1\n")],
        r"no reconstruction of .*scores\.csv appears in the manifest", "scores.csv"),
    Row("semsim annotate", "folder missing", lambda t, g: ["semsim", "annotate", t / "nope"],
        r"^\S*nope is not a folder of \{idx\}_\{label\}_ori\.png / _rec\.png pairs$", "nope"),
    Row("semsim annotate", "folder without pairs", lambda t, g: ["semsim", "annotate", _empty(t)],
        r"no pairs \{idx\}_\{label\}_ori\.png / _rec\.png found under", "found under"),
    Row("semsim annotate", "--port 99999", lambda t, g: ["semsim", "annotate", g["pairs"], "--port", "99999"],
        r"--port must be an integer in 0–65535 .*got 99999", "99999"),
    Row("semsim annotate", "unknown --host", lambda t, g: ["semsim", "annotate", g["pairs"], "--host",
                                                           "no.such.host.invalid", "--port", "0"],
        r"cannot serve on no\.such\.host\.invalid:0", "no.such.host.invalid"),
    Row("semsim annotate", "port in use", lambda t, g: ["semsim", "annotate", g["pairs"], "--port", _busy_port()],
        r"cannot serve on 127\.0\.0\.1:\d+ \(Address already in use\)", "127.0.0.1"),
    Row("semsim annotate", "manifest outside the folder", lambda t, g: ["semsim", "annotate", g["pairs"],
                                                                        "--manifest", t / "m.csv"],
        r"the manifest .*m\.csv must lie inside", "m.csv"),
    Row("semsim annotate", "annotator name with markup", lambda t, g: ["semsim", "annotate", g["pairs"],
                                                                       "--annotator", "<b>x</b>"],
        r"annotator name '<b>x</b>': use 1–64 letters", "<b>x</b>"),
    Row("semsim annotate", "corrupt existing manifest", lambda t, g: [
        "semsim", "annotate", manifest_with(t, g, "a,b\n").parent, "--manifest", "bad.csv"],
        r"bad\.csv: CSV header must contain", "bad.csv"),
    Row("semsim import", "folder missing", lambda t, g: ["semsim", "import", t / "nope"],
        r"nope is not a folder \(expected <id>/, -<id>/ and others/ inside\)", "nope"),
    Row("semsim import", "nothing to import", lambda t, g: ["semsim", "import", _empty(t)],
        r"nothing to import from .*: expected folders <id>/", "<id>/"),
    Row("semsim import", "two originals in one folder", lambda t, g: ["semsim", "import", _two_originals(t)],
        r"holds 2 originals \(files named \*_ori\*\); the layout needs exactly one", "2 originals"),
    Row("semsim proxy", "unknown preset", lambda t, g: ["semsim", "proxy", *OUT, t / "o", "--preset", "big"],
        r"experiment 'semsim' has no preset 'big'", "big"),
]  # fmt: skip


def _lenet_state_dict(tmp: Path) -> Path:
    """A plain safetensors state dict of an untrained LeNet-5 for digits (no privlab metadata)."""
    import torch
    from safetensors.torch import save_file

    from privlab.models import build_model

    torch.manual_seed(0)
    save_file(build_model("lenet5", 10, (1, 8, 8)).state_dict(), str(tmp / "lenet.safetensors"))
    return tmp / "lenet.safetensors"


def _refs_folder(tmp: Path) -> Path:
    """A references folder holding one model ``r0.safetensors`` and no membership file."""
    import shutil

    (tmp / "refs").mkdir(exist_ok=True)
    shutil.copy(_lenet_state_dict(tmp), tmp / "refs" / "r0.safetensors")
    return tmp / "refs"


def _empty(tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


def _corrupt_store(tmp: Path) -> Path:
    d = tmp / "corrupt"
    d.mkdir(exist_ok=True)
    (d / "runs.sqlite").write_bytes(b"SQLite format 3\0" + os.urandom(200))
    return d


def _tiny_pairs(tmp: Path) -> Path:
    import torch

    from privlab.data.reconstructions import save_pairs

    save_pairs(tmp / "tiny", torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8), [0])
    return tmp / "tiny"


def _rgb_pairs(tmp: Path) -> Path:
    import torch

    from privlab.data.reconstructions import save_pairs

    save_pairs(tmp / "rgb", torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), [0])
    return tmp / "rgb"


def _corrupt_pair(tmp: Path, good: dict[str, Path]) -> Path:
    import shutil

    shutil.copytree(good["pairs"], tmp / "cp")
    p = tmp / "cp" / "0_3_rec.png"
    p.write_bytes(p.read_bytes()[:30])
    return tmp / "cp"


def _scores(tmp: Path, text: str) -> Path:
    (tmp / "scores.csv").write_text(text)
    return tmp / "scores.csv"


def _two_originals(tmp: Path) -> Path:
    d = tmp / "layout" / "7"
    d.mkdir(parents=True)
    for n in ("a_ori.png", "b_ori.png", "c.png"):
        (d / n).write_bytes(b"x")
    return tmp / "layout"


_SOCKETS: list[Any] = []


def _busy_port() -> int:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    _SOCKETS.append(s)  # kept open until the test module ends
    return s.getsockname()[1]


@pytest.fixture(scope="module", autouse=True)
def _close_sockets():
    yield
    while _SOCKETS:
        _SOCKETS.pop().close()


@pytest.fixture(autouse=True)
def _never_serve(monkeypatch):
    """A row that wrongly got as far as serving fails at once instead of hanging the test run."""
    from privlab.measure.semsim.server import AnnotationServer

    def refuse(self, *a, **k):
        raise AssertionError("the annotation server started although the input was bad")

    monkeypatch.setattr(AnnotationServer, "serve_forever", refuse)


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_cli_catalogue(row, tmp_path, good, cli):
    msg = cli.error(*row.args(tmp_path, good))
    record(row.id, msg)
    assert re.search(row.match, msg), msg
    assert row.names in msg, msg
    assert not (tmp_path / "out.npy").exists()  # a refused privatisation writes nothing


COMMANDS = ["run", "train", "invert", "datasets", "models", "experiments", "attacks", "protections", "metrics",
            "examples", "audit mia", "audit dp", "report", "bench", "similarity", "ldp budget", "ldp privatize", "mi",
            "mi calibrate", "mi tasks", "runs list", "runs show", "runs export", "semsim train", "semsim score",
            "semsim agreement", "semsim annotate", "semsim import", "semsim proxy", "sweep"]  # fmt: skip


def test_the_catalogue_covers_every_command(cli):
    """Every command of ``privlab --help`` (and of each group) has rows here or in the parser rows below."""
    from privlab.cli import app

    listed = set()
    for group in app.registered_groups:
        listed |= {f"{group.name} {c.name or c.callback.__name__}" for c in group.typer_instance.registered_commands}
    listed |= {c.name or c.callback.__name__ for c in app.registered_commands}
    listed = {n.replace("_cmd", "").replace("list_", "list").replace("mi estimate", "mi") for n in listed}
    assert listed <= set(COMMANDS), listed - set(COMMANDS)
    covered = {r.command for r in ROWS} | {p[0] for p in PARSER_ROWS}
    assert set(COMMANDS) <= covered, set(COMMANDS) - covered


PARSER_ROWS = [
    ("datasets", ["datasets", "--bogus"], "No such option: --bogus"),
    ("models", ["models", "--bogus"], "No such option: --bogus"),
    ("experiments", ["experiments", "extra"], "unexpected extra argument"),
    ("attacks", ["attacks", "--json=2"], "Option '--json' does not take a value"),
    ("protections", ["protections", "-x"], "No such option: -x"),
    ("metrics", ["metrics", "--bogus"], "No such option: --bogus"),
    ("examples", ["examples", "--bogus"], "No such option: --bogus"),
    ("run", ["run", "train", "--seed", "-1"], "Invalid value for '--seed': Input should be greater than or equal to 0"),
    ("audit dp", ["audit", "dp", "--epsilon", "0"], "Invalid value for '--epsilon' / '-e'"),
    ("sweep", ["sweep", "--bogus"], "No such option: --bogus"),
    ("train", ["train", "--epochs", "three"], "Invalid value for '--epochs' / '-e': Input should be a valid integer"),
    ("ldp budget", ["ldp", "budget", "-e", "abc"], "Invalid value for '--epsilon' / '-e': Input should be a valid num"),
    ("ldp budget", ["ldp", "budget"], "Missing option '--epsilon'"),
    ("mi", ["mi", "a.npy"], "Missing argument 'z'"),
    ("mi", ["mi", "a.npy", "b.npy", "--k", "x"], "Invalid value for '--k' / '-k'"),
    ("semsim annotate", ["semsim", "annotate", ".", "--port", "http"], "Invalid value for '--port'"),
    ("runs show", ["runs", "show"], "Missing argument 'run_id'"),
    ("run", ["run"], "Missing argument 'spec'"),
    # non-finite numbers and sizes beyond an option's declared limit (shown by --help) are refused by the parser
    ("train", ["train", "--lr", "nan"], "Invalid value for '--lr'"),
    ("ldp budget", ["ldp", "budget", "-e", "inf"], "Invalid value for '--epsilon' / '-e'"),
    ("ldp budget", ["ldp", "budget", "-e", "nan"], "Invalid value for '--epsilon' / '-e'"),
    ("mi", ["mi", "a.npy", "b.npy", "--jitter", "nan"], "Invalid value for '--jitter'"),
    (
        "ldp privatize",
        ["ldp", "privatize", "-m", "ue", "-e", "1", "--classes", str(10**12), "l.npy", "o.npy"],
        "Invalid value for '--classes': Input should be less than or equal to 1000000",
    ),
    ("mi", ["mi", "a.npy", "b.npy", "--repeats", str(10**12)], "Invalid value for '--repeats' / '-r'"),
    ("train", ["train", "--resize", "100000"], "Invalid value for '--resize'"),
]


@pytest.mark.parametrize(("command", "args", "text"), PARSER_ROWS, ids=[" ".join(p[1]) for p in PARSER_ROWS])
def test_parser_refuses_wrong_types(command, args, text, cli):
    assert text in cli.usage_error(*args)
