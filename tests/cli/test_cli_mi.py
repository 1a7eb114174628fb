import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from privlab.cli import app

runner = CliRunner()


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1500, 2))
    z = 0.8 * x + 0.6 * rng.normal(size=(1500, 2))  # I = −2/2 · log(1 − 0.64) = 1.02 nats
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "z.npy", z.reshape(1500, 1, 2))  # other axes are flattened
    return tmp_path


def test_mi_json(pair):
    r = runner.invoke(app, ["mi", str(pair / "x.npy"), str(pair / "z.npy"), "--estimator", "ksg", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert set(d) >= {"nats", "bits", "ci95", "estimator", "k", "n", "dims", "seconds"}
    assert d["estimator"] == "ksg" and d["n"] == 1500 and d["dims"] == [2, 2]
    assert d["nats"] == pytest.approx(-math.log(1 - 0.64), abs=0.06)
    assert d["bits"] == pytest.approx(d["nats"] / math.log(2))


def test_mi_text_with_repeats_and_explicit_subcommand(pair):
    r = runner.invoke(app, ["mi", "estimate", str(pair / "x.npy"), str(pair / "z.npy"), "--repeats", "3"])
    assert r.exit_code == 0, r.output
    assert "nats" in r.output and "95 % CI" in r.output and "ite-dkl" in r.output


def test_ksg_repeats_say_why_there_is_no_interval(pair):
    """KSG is deterministic: --repeats 2 computes one draw; the output says so instead of a silent ci95: null."""
    args = ["mi", str(pair / "x.npy"), str(pair / "z.npy"), "--estimator", "ksg", "--repeats", "2"]
    d = json.loads(runner.invoke(app, [*args, "--json"]).output)
    assert d["ci95"] is None and d["repeats"] == 1 and d["repeats_requested"] == 2 and len(d["values"]) == 1
    assert "ksg is deterministic" in d["ci95_note"] and "--jitter" in d["ci95_note"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0 and "95 % CI" not in r.output
    assert any(line.startswith("note: no 95 % interval: ksg is deterministic") for line in r.output.splitlines())
    # with jitter the repeats are independent draws: an interval around the mean, and no note
    d = json.loads(runner.invoke(app, [*args, "--jitter", "1e-3", "--json"]).output)
    assert d["repeats"] == 2 and d["ci95_note"] is None
    lo, hi = d["ci95"]
    assert lo <= d["nats"] <= hi and lo < hi


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--k", "0"], "k must be a positive integer"),
        (["--estimator", "kgs"], "Did you mean 'ksg'"),
        (["--backend", "annoy"], "unknown kNN backend"),
    ],
)
def test_mi_bad_options_exit_2(pair, extra, message):
    r = runner.invoke(app, ["mi", str(pair / "x.npy"), str(pair / "z.npy"), *extra])
    assert r.exit_code == 2 and message in r.stderr


def test_mi_bad_files_exit_2(pair):
    np.save(pair / "short.npy", np.zeros((10, 2)))
    r = runner.invoke(app, ["mi", str(pair / "x.npy"), str(pair / "short.npy")])
    assert r.exit_code == 2 and "x has 1500 rows but z has 10" in r.stderr
    r = runner.invoke(app, ["mi", str(pair / "x.npy"), str(pair / "missing.npy")])
    assert r.exit_code == 2 and "file not found" in r.stderr
    np.save(pair / "nan.npy", np.full((1500, 2), np.nan))
    r = runner.invoke(app, ["mi", str(pair / "x.npy"), str(pair / "nan.npy")])
    assert r.exit_code == 2 and "NaN or inf" in r.stderr and "Traceback" not in r.output


def test_mi_help_has_examples():
    r = runner.invoke(app, ["mi", "estimate", "--help"])
    assert r.exit_code == 0 and "Examples" in r.output and "--json" in r.output
