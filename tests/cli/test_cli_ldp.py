"""``privlab ldp budget`` and ``privlab ldp privatize``."""

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from privlab.cli import app

runner = CliRunner()


def test_budget_json_numbers():
    r = runner.invoke(
        app,
        [
            "ldp",
            "budget",
            "--mechanism",
            "laplace",
            "--epsilon",
            "640",
            "--label-mechanism",
            "sue",
            "--label-fraction",
            "0.25",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["per_image"]["epsilon"] == pytest.approx(480) and d["per_pixel"]["epsilon"] == pytest.approx(7.5)
    assert d["per_label"]["epsilon"] == pytest.approx(30)  # 160 asked, capped at LABEL_EPSILON_MAX
    assert d["per_image"]["details"]["scale"] == pytest.approx(64 / 480)
    assert d["composed"]["epsilon"] == pytest.approx(480 + 30)


def test_budget_text_with_fresh_noise_and_gaussian():
    r = runner.invoke(
        app,
        [
            "ldp",
            "budget",
            "-m",
            "gaussian",
            "-e",
            "3000",
            "--delta",
            "1.6e-6",
            "--shape",
            "1x28x28",
            "--epochs",
            "20",
            "--fresh-noise",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "per image" in r.output and "composed" in r.output and "20 image releases of ε 150" in r.output
    assert "sigma" in r.output and "d = 784" in r.output


def test_budget_dpsgd():
    r = runner.invoke(
        app,
        [
            "ldp",
            "budget",
            "-m",
            "dpsgd",
            "-e",
            "3",
            "--dataset-size",
            "60000",
            "--batch-size",
            "256",
            "--epochs",
            "2",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["noise_multiplier"] > 0 and d["sample_rate"] == pytest.approx(1 / math.ceil(60000 / 256))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["budget", "-e", "0"], "epsilon must be finite and > 0"),
        (["budget", "-e", "-3"], "epsilon must be finite and > 0"),
        (["budget", "-e", "1", "-m", "gaussian", "--delta", "1.5"], "delta"),
        (["budget", "-e", "1", "--shape", "1xAx2"], "--shape"),
        (["budget", "-e", "1", "-m", "lapalce"], "Did you mean 'laplace'"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message):
    r = runner.invoke(app, ["ldp", *args])
    assert r.exit_code == 2
    assert message in r.output
    assert r.output.count("\n") == 1 and "Traceback" not in r.output


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", rng.integers(0, 10, 20))
    return tmp_path


def test_privatize_laplace_writes_npy_and_sidecar_deterministically(images):
    out = images / "p.npy"
    args = ["ldp", "privatize", "-m", "laplace", "-e", "64000", str(images / "x.npy"), str(out), "--seed", "3"]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    y = np.load(out, allow_pickle=False)
    x = np.load(images / "x.npy") / 255
    assert y.shape == (20, 8, 8) and y.dtype == np.float32
    assert np.abs(y - x).mean() < 0.01  # ε_pixel = 1000: almost no noise, and uint8 was read as /255
    side = json.loads((images / "p.npy.json").read_text())
    assert side["budget"]["epsilon"] == 64000 and side["budget"]["details"]["per_pixel_epsilon"] == 1000
    assert side["seed"] == 3 and side["pixels"] == 64
    first = y.copy()
    assert runner.invoke(app, args).exit_code == 0
    assert np.array_equal(np.load(out), first)


def test_privatize_rr_and_ue(images):
    r = runner.invoke(
        app,
        [
            "ldp",
            "privatize",
            "-m",
            "rr",
            "-e",
            "1e6",
            str(images / "x.npy"),
            str(images / "b.npy"),
            "--threshold",
            "0.5",
        ],
    )
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.load(images / "b.npy"), (np.load(images / "x.npy") / 255 > 0.5).astype(np.float32))
    r = runner.invoke(
        app,
        [
            "ldp",
            "privatize",
            "-m",
            "ue",
            "-e",
            "2",
            "--classes",
            "10",
            str(images / "y.npy"),
            str(images / "l.npy"),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    bits = np.load(images / "l.npy")
    assert bits.shape == (20, 10) and bits.dtype == np.uint8
    assert json.loads(r.output)["budget"]["scope"] == "label"


def test_privatize_errors(images):
    r = runner.invoke(
        app, ["ldp", "privatize", "-m", "laplace", "-e", "0", str(images / "x.npy"), str(images / "o.npy")]
    )
    assert r.exit_code == 2 and "epsilon" in r.output
    r = runner.invoke(
        app, ["ldp", "privatize", "-m", "laplace", "-e", "1", str(images / "x.npy"), str(images / "o.txt")]
    )
    assert r.exit_code == 2 and ".npy" in r.output
    r = runner.invoke(app, ["ldp", "privatize", "-m", "ue", "-e", "1", str(images / "x.npy"), str(images / "o.npy")])
    assert r.exit_code == 2 and "label array" in r.output
    r = runner.invoke(
        app, ["ldp", "privatize", "-m", "laplace", "-e", "1", str(images / "nope.npy"), str(images / "o.npy")]
    )
    assert r.exit_code == 2 and "not found" in r.output


def test_privatize_rr_dither_keeps_grey_levels_as_dot_density(tmp_path):
    grey = np.full((4, 16, 16), 0.3, dtype=np.float32)  # a flat grey: thresholding at 0.5 gives all zeros
    np.save(tmp_path / "g.npy", grey)
    base = ["ldp", "privatize", "-m", "rr", "-e", "1e6", str(tmp_path / "g.npy")]
    assert runner.invoke(app, [*base, str(tmp_path / "t.npy")]).exit_code == 0
    assert runner.invoke(app, [*base, str(tmp_path / "d.npy"), "--binarize", "dither"]).exit_code == 0
    assert np.load(tmp_path / "t.npy").mean() == 0.0
    assert abs(np.load(tmp_path / "d.npy").mean() - 0.3) < 0.02  # Floyd–Steinberg: 30 % of the dots on
    r = runner.invoke(
        app,
        ["ldp", "privatize", "-m", "laplace", "-e", "3", "--binarize", "dither", *base[-1:], str(tmp_path / "x.npy")],
    )
    assert r.exit_code == 2 and "applies to --mechanism rr only" in r.stderr
