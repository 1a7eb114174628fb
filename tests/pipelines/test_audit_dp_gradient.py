"""White-box gradient (Dirac) canaries in the audit-dp experiment: soundness, power, the accounting's hook into
DP-SGD and the errors (tiny digits runs)."""

import json

import pytest
import torch
from typer.testing import CliRunner

from privlab.cli import app
from privlab.config import spec_hash
from privlab.errors import ConfigError
from privlab.protect import dpsgd
from privlab.run import execute, load_spec

runner = CliRunner()


def _spec(epsilon, *, canary="gradient", seed=0, n=200, canaries=200, guesses=50, batch=64, **extra):
    return load_spec(experiment="audit-dp", overrides={
        "dataset": {"name": "digits", "train_limit": n, "test_limit": 60}, "train": {"epochs": 3},
        "target": {"kind": "dpsgd", "epsilon": epsilon, "dpsgd_batch_size": batch}, "canary": canary,
        "canaries": canaries, "guesses": guesses, "seed": seed, **extra})  # fmt: skip


def _run(spec, out):
    o = execute(spec, out, quiet=True)[0]
    assert o.status == "finished", o.error
    audit = json.loads(next(out.rglob("audit.json")).read_text("utf-8"))
    return o.metrics, audit


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bound_stays_below_the_accountant_at_small_epsilon(tmp_path, seed):
    """ε = 2, 200 gradient canaries, 100 guesses: the bound (95 %) never exceeds the accountant's ε."""
    m, a = _run(_spec(2.0, seed=seed), tmp_path)
    assert 1.9 < m["epsilon"] <= 2.0
    assert 0 <= m["epsilon_lower_bound"] <= m["epsilon"]
    assert a["canary"] == "gradient" and len(a["scores"]) == len(a["coordinates"]) == 200
    assert a["counts"]["guesses"] == 100 and a["epsilon"] == m["epsilon_lower_bound"]
    # 3 epochs × 4 steps, each of the ~100 included canaries joins a step with rate 1/4: ~300 insertions
    assert 200 < a["canary_insertions"] < 420


def test_a_canary_in_every_step_breaks_the_accounting_and_is_caught(tmp_path, monkeypatch):
    """A bug: the canaries join every step instead of the sampling rate 1/7 (batch 32). The accountant still says
    ε = 2 (σ = 1.87 over 21 steps); the canary is then a Gaussian mechanism with μ = √21/1.87 = 2.45, and the audit
    certifies more than 2 (the soundness test above is able to fail)."""
    insert = dpsgd._insert_dirac_canaries
    monkeypatch.setattr(
        dpsgd, "_insert_dirac_canaries", lambda opt, model, c, clip, rate, g: insert(opt, model, c, clip, 1.0, g)
    )
    m, a = _run(_spec(2.0, batch=32), tmp_path)
    assert m["epsilon"] <= 2.0 < m["epsilon_lower_bound"]
    assert a["canary_insertions"] == 21 * sum(a["included"])


def test_white_box_canaries_beat_input_canaries_at_large_epsilon(tmp_path):
    """ε = 1000 (σ ≈ 0): nearly every guess on the gradient canaries is right; mislabelled records are not
    detected at all on the same training."""
    mg, _ = _run(_spec(1000.0), tmp_path / "g")
    mi, _ = _run(_spec(1000.0, canary="mislabel", canaries=40, guesses=10), tmp_path / "i")
    assert mg["guess_accuracy"] >= 0.9 and mg["epsilon_lower_bound"] > 2.0
    assert mg["epsilon_lower_bound"] > mi["epsilon_lower_bound"] + 1.5


def test_the_hook_adds_the_clipping_norm_before_the_noise():
    """``add_noise`` sees ``clip`` added at the canary coordinates drawn this step, nothing elsewhere."""
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    seen = []

    class Opt:
        def add_noise(self):
            seen.append([p.summed_grad.clone() for p in model.parameters()])

    for p in model.parameters():
        p.summed_grad = torch.zeros_like(p)
    opt = Opt()
    # flat layout: weight0 (6), bias0 (2), weight1 (2), bias1 (1); coordinates 1 (w0[0,1]), 7 (b0[1]), 10 (b1[0])
    count = dpsgd._insert_dirac_canaries(opt, model, torch.tensor([1, 7, 10]), 2.5, 1.0, torch.Generator())
    opt.add_noise()
    flat = torch.cat([g.reshape(-1) for g in seen[0]])
    expected = torch.zeros(11)
    expected[[1, 7, 10]] = 2.5
    assert torch.equal(flat, expected) and count == [3]
    for p in model.parameters():
        p.summed_grad.zero_()
    never = dpsgd._insert_dirac_canaries(Opt(), model, torch.tensor([0]), 1.0, 0.0, torch.Generator())
    assert never == [0]
    with pytest.raises(ConfigError, match="distinct flat indices"):
        dpsgd._insert_dirac_canaries(Opt(), model, torch.tensor([3, 3]), 1.0, 1.0, torch.Generator())
    with pytest.raises(ConfigError, match="distinct flat indices"):
        dpsgd._insert_dirac_canaries(Opt(), model, torch.tensor([11]), 1.0, 1.0, torch.Generator())


def test_cache_key_holds_the_canaries(tmp_path):
    """Another seed draws other coordinates and inclusions: another cached model; the same spec reuses it."""
    spec = _spec(2.0, canaries=20, guesses=5)
    _, a0 = _run(spec, tmp_path)
    cache = tmp_path / "cache" / "models"
    first = {p.name for p in cache.iterdir()}
    assert len(first) == 1
    _run(spec.model_copy(update={"seed": 1}), tmp_path)
    assert len(list(cache.iterdir())) == 2
    o = execute(spec, tmp_path, quiet=True, force=True)[0]
    assert o.status == "finished" and len(list(cache.iterdir())) == 2
    assert spec_hash(spec) != spec_hash(spec.model_copy(update={"canary": "mislabel"}))


def test_several_runs_with_one_gradient_canary(tmp_path):
    m, a = _run(_spec(2.0, canaries=20, guesses=5, mode="several-runs", runs=6), tmp_path)
    assert a["canary"] == "gradient" and a["mode"] == "several-runs" and len(a["scores"]) == 6
    assert 0 <= m["epsilon_lower_bound"] <= m["epsilon"] <= 2.0
    assert len(list((tmp_path / "cache" / "models").iterdir())) == 6


def test_gradient_canaries_need_a_dpsgd_target(tmp_path):
    r = runner.invoke(app, ["run", "audit-dp", "--preset", "smoke", "--set", "canary=gradient", "--set",
                            "target.kind=plain", "--out", str(tmp_path)])  # fmt: skip
    assert r.exit_code == 2, r.output
    assert "error:" in r.output and "target.kind: dpsgd" in r.output
    assert r.output.count("error:") == 1
    with pytest.raises(ConfigError, match="at most the model's"):
        _run(_spec(4.0, canaries=100_000, guesses=5), tmp_path)
