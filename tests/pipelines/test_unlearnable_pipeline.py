"""The ``unlearnable`` experiment end to end on the smoke preset: EM drops the attacker's accuracy, random noise not."""

from __future__ import annotations

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from privlab.cli import app
from privlab.errors import ConfigError, FileFormatError
from privlab.protect.unlearnable_em import PerturbationBank
from privlab.run import execute, load_spec
from privlab.store import Store

EPS64 = 64 / 255  # digits resist 8/255 (docs/unlearnable.md); the drop is shown at a larger budget
HEADLINE = (
    "clean_train_test_accuracy",
    "poisoned_train_test_accuracy",
    "clean_linear_probe_accuracy",
    "poisoned_linear_probe_accuracy",
)

DEFENCES = [[], [{"name": "bit_depth", "bits": 1}], [{"name": "jpeg", "quality": 10}]]


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("unlearnable")
    results = {}
    for name in ("em", "random"):
        spec = load_spec(
            experiment="unlearnable",
            preset="smoke",
            overrides={
                "protection": {"name": name, "epsilon": EPS64},
                "protection_defaults": {"em": {"step_size": EPS64 / 10}},
                # attacker defences on the EM run only (the random run's spec is re-used by the CLI test)
                "countermeasures": DEFENCES if name == "em" else [],
            },
        )
        (outcome,) = execute(spec, out, quiet=True)
        assert outcome.status == "finished", outcome.error
        results[name] = outcome
    return out, results


def test_em_drops_accuracy_and_random_noise_does_not(smoke_runs) -> None:
    _, runs = smoke_runs
    em, rnd = runs["em"].metrics, runs["random"].metrics
    for m in (em, rnd):
        assert set(HEADLINE) <= set(m)
        assert m["poisoned_linf"] <= 64 + 1e-4  # budget in 1/255 units, after uint8 re-quantisation
        # |δ| ≤ 64/255 everywhere bounds the MSE, so PSNR ≥ 20·log10(255/64) = 12.0 dB; some change was made
        assert 20 * math.log10(255 / 64) - 1e-6 <= m["protected_psnr"] < 60
    # both runs share the cached clean baselines
    assert em["clean_train_test_accuracy"] == rnd["clean_train_test_accuracy"] >= 0.8  # measured 0.90
    # measured (300 train / 150 test images, seed 0): EM 0.90 → 0.71, random 0.90 → 0.87
    assert em["supervised_accuracy_drop"] >= 0.10
    assert abs(rnd["supervised_accuracy_drop"]) < 0.08
    assert em["supervised_accuracy_drop"] > rnd["supervised_accuracy_drop"] + 0.08


def test_the_poisoned_victim_gets_a_membership_probe(smoke_runs) -> None:
    out, runs = smoke_runs
    for outcome in runs.values():
        m = outcome.metrics
        for k in ("mia_loss_auc", "mia_loss_tpr_at_fpr_0.01", "mia_loss_balanced_accuracy"):
            assert math.isfinite(m[k]) and 0.0 <= m[k] <= 1.0, (k, m[k])
        assert m["mia_loss_records"] == 150  # capped by the 150 test images of the smoke preset
    info = Store(out).metric_info()
    assert info["mia_loss_tpr_at_fpr_0.01"] == {"unit": "fraction", "kind": "privacy", "higher_is_better": False}


def test_artifacts_units_and_report(smoke_runs) -> None:
    out, runs = smoke_runs
    store = Store(out)
    info = store.metric_info()
    for name in HEADLINE:
        assert info[name] == {"unit": "fraction", "kind": "utility", "higher_is_better": True}
    run_dir = out / runs["em"].dir
    bank = PerturbationBank.load(run_dir / "perturbation.safetensors", expected_shape=(10, 1, 32, 32), kind="class")
    assert bank.meta["backbone"] == "lenet5" and bank.meta["dataset"] == "digits" and bank.meta["seed"] == 0
    rec = json.loads((run_dir / "transfer.json").read_text())
    assert rec["settings"] == ["supervised:lenet5", "simclr-probe:lenet5", "simclr-knn:lenet5"]
    assert rec["poisoned"]["supervised:lenet5"] == pytest.approx(runs["em"].metrics["poisoned_train_test_accuracy"])
    from privlab.report.build import build_report

    html = build_report(out).read_text()
    assert "Transfer matrix" in html and "perturbation grid" in html and "em class-wise (lenet5)" in html


def test_noise_file_kind_and_shape_are_checked(smoke_runs, tmp_path) -> None:
    out, runs = smoke_runs
    bank_path = out / runs["em"].dir / "perturbation.safetensors"  # class-wise, 10×1×32×32
    spec = load_spec(
        experiment="unlearnable",
        preset="smoke",
        overrides={"protection": {"name": "em", "kind": "sample"}, "noise_file": str(bank_path)},
    )
    with pytest.raises(
        FileFormatError, match=r"perturbation\.safetensors: holds class-wise noise, expected sample-wise"
    ):
        execute(spec, tmp_path / "a", quiet=True)
    wrong = tmp_path / "wrong.safetensors"
    PerturbationBank(torch.zeros(10, 1, 16, 16), "class", EPS64).save(wrong)
    spec = load_spec(experiment="unlearnable", preset="smoke", overrides={"noise_file": str(wrong)})
    with pytest.raises(
        FileFormatError, match=r"wrong\.safetensors: noise has shape \(10, 1, 16, 16\), expected \(10, 1, 32"
    ):
        execute(spec, tmp_path / "b", quiet=True)


def test_bad_protection_defaults_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="protection_defaults"):
        load_spec(experiment="unlearnable", preset="smoke", overrides={"protection_defaults": {"emm": {}}})
    with pytest.raises(ConfigError, match="num_step"):
        load_spec(experiment="unlearnable", preset="smoke", overrides={"protection_defaults": {"tue": {"num_step": 3}}})


def test_name_kind_defaults_go_over_the_name_defaults_for_that_kind_only() -> None:
    defaults = {"em": {"num_steps": 5, "max_rounds": 3}, "em:class": {"num_steps": 1, "stop_error": 0.2}}
    cls = load_spec(
        experiment="unlearnable",
        preset="smoke",
        overrides={"protection_defaults": defaults, "protection": {"name": "em", "kind": "class"}},
    ).protection
    assert (cls.num_steps, cls.stop_error, cls.max_rounds) == (1, 0.2, 3)
    smp = load_spec(
        experiment="unlearnable",
        preset="smoke",
        overrides={"protection_defaults": defaults, "protection": {"name": "em", "kind": "sample"}},
    ).protection
    assert (smp.num_steps, smp.stop_error, smp.max_rounds) == (5, 0.001, 3)  # smoke preset: stop_error 0.001
    explicit = load_spec(
        experiment="unlearnable",
        preset="smoke",
        overrides={"protection_defaults": defaults, "protection": {"name": "em", "kind": "class", "num_steps": 7}},
    ).protection
    assert explicit.num_steps == 7  # the spec's own protection settings win over both default blocks
    with pytest.raises(ConfigError, match=r"protection_defaults\.em:klass: .*'sample' or 'class'"):
        load_spec(experiment="unlearnable", preset="smoke", overrides={"protection_defaults": {"em:klass": {}}})


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        # sample-wise: 1 step of 4/255, 20 backbone batches per round, stop below 5 %, ≤ 15 rounds (24.4 / 23.0 %)
        ("sample", (1, 4 / 255, 20, 15, 0.05)),
        # class-wise: UE's class-wise settings (1 step of 1.6/255, 10 batches, stop below 10 %), ≤ 20 rounds
        ("class", (1, 1.6 / 255, 10, 20, 0.1)),
    ],
)
def test_cifar10_cpu_preset_gives_each_em_kind_its_measured_settings(kind: str, expected: tuple) -> None:
    p = load_spec(experiment="unlearnable", preset="cifar10-cpu", overrides={"protection": {"kind": kind}}).protection
    got = (p.num_steps, p.step_size, p.train_steps, p.max_rounds, p.stop_error)
    assert got == pytest.approx(expected)
    assert (p.backbone, p.batch_size, p.lr) == ("fast_cnn", 128, 0.05)  # the shared em block under both kinds


def test_cli_json_lists_headline_metrics(smoke_runs) -> None:
    out, _ = smoke_runs
    result = CliRunner().invoke(
        app,
        [
            "run",
            "unlearnable",
            "--preset",
            "smoke",
            "--set",
            "protection.name=random",
            "--set",
            f"protection.epsilon={EPS64}",
            "--set",
            "protection_defaults.em.step_size=" + str(EPS64 / 10),
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["runs"][0]["status"] == "skipped"  # same spec as the fixture's random run
    assert set(HEADLINE) <= set(data["runs"][0]["metrics"])


def test_a_bad_clean_baseline_cache_is_reported_and_recomputed(smoke_runs) -> None:
    out, runs = smoke_runs
    (cache,) = (out / "cache").glob("unlearnable-clean-*.json")
    cache.write_text("{not json", "utf-8")
    spec = load_spec(
        experiment="unlearnable", preset="smoke", overrides={"protection": {"name": "random", "epsilon": 32 / 255}}
    )
    with pytest.warns(UserWarning, match=r"clean-baseline cache .*unlearnable-clean-.*\.json is unusable"):
        (outcome,) = execute(spec, out, quiet=True)
    assert outcome.status == "finished", outcome.error
    # recomputed: the same clean numbers as the first runs, and a good file again
    assert outcome.metrics["clean_train_test_accuracy"] == runs["em"].metrics["clean_train_test_accuracy"]
    from privlab.pipelines.unlearnable import setting_names

    assert set(json.loads(cache.read_text("utf-8"))["accuracy"]) == set(setting_names(spec))


def test_countermeasures_are_trained_on_the_washed_set_and_reported(smoke_runs) -> None:
    out, runs = smoke_runs
    m = runs["em"].metrics
    # [] is the plain poisoned result; the washed sets give their own trainings
    assert m["countermeasure/none/poisoned_test_accuracy"] == m["poisoned_train_test_accuracy"]
    washed = [m[f"countermeasure/{label}/poisoned_test_accuracy"] for label in ("bit_depth-bits1", "jpeg-quality10")]
    assert all(0.1 <= a <= 1 for a in washed)  # they learn digits (chance: 0.1)
    assert washed[0] != m["poisoned_train_test_accuracy"]  # 1-bit images differ from the poisoned ones: a new training
    assert not any(k.startswith("countermeasure/") for k in runs["random"].metrics)
    rec = json.loads((out / runs["em"].dir / "transfer.json").read_text())
    assert set(rec["countermeasures"]) == {"none", "bit_depth-bits1", "jpeg-quality10"}
    from privlab.report.build import build_report

    html = build_report(out).read_text()
    assert "Attacker defences" in html and "jpeg-quality10" in html
    assert "Why the digits runs show no drop" in html and "cifar10-cpu" in html


def test_bad_countermeasures_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="quality"):
        load_spec(
            experiment="unlearnable", preset="smoke", overrides={"countermeasures": [[{"name": "jpeg", "quality": 0}]]}
        )
    with pytest.raises(ConfigError, match="listed twice"):
        load_spec(
            experiment="unlearnable", preset="smoke", overrides={"countermeasures": [["grayscale"], ["grayscale"]]}
        )
    with pytest.raises(ConfigError, match="noise_position: before"):
        load_spec(
            experiment="unlearnable",
            preset="smoke",
            overrides={"countermeasures": [["grayscale"]], "poison": {"noise_position": "after"}},
        )


def test_cifar10_cpu_preset_runs_on_a_tiny_cifar_subset(shared_dir, tmp_path) -> None:
    """The cifar10-cpu preset end to end on 300 real CIFAR-10 images (tiny schedule; skipped without shared data)."""
    src = shared_dir / "data" / "cifar10-jpeg"
    if not (src / "train").is_dir():
        pytest.skip(f"CIFAR-10 JPEG folder not found at {src} (optional: real-data tests only)")
    spec = load_spec(
        experiment="unlearnable",
        preset="cifar10-cpu",
        overrides={
            "dataset": {"train_limit": 300, "test_limit": 200},
            "protection": {"name": "em", "kind": "class"},
            "protection_defaults": {"em": {"max_rounds": 1, "num_steps": 1, "train_steps": 2}},
            "supervised": {"models": ["fast_cnn"], "train": {"epochs": 1}},
            "ssl": {"epochs": 1, "knn_k": 20},
            "countermeasures": [[], [{"name": "jpeg", "quality": 10}]],
            "grid_images": 4,
        },
    )
    assert spec.dataset.name == "image_folder" and spec.protection.epsilon == pytest.approx(8 / 255)
    (outcome,) = execute(spec, tmp_path, data_root=src, quiet=True)
    assert outcome.status == "finished", outcome.error
    m = outcome.metrics
    assert set(HEADLINE) <= set(m) and "countermeasure/jpeg-quality10/poisoned_test_accuracy" in m
    assert m["poisoned_linf"] <= 8 + 1e-4  # 1/255 units, after re-quantisation
    assert all(0 <= m[k] <= 1 for k in HEADLINE)
    bank = PerturbationBank.load(
        tmp_path / outcome.dir / "perturbation.safetensors", expected_shape=(10, 3, 32, 32), kind="class"
    )
    assert bank.meta["backbone"] == "fast_cnn"


def test_two_workers_needing_the_same_clean_baselines_compute_them_once(tmp_path, monkeypatch, capsys) -> None:
    # a 2-worker sweep into one --out: the lock beside the cache entry makes the second worker wait, then read it
    import threading
    import time
    from types import SimpleNamespace

    from privlab.pipelines import unlearnable as ue

    spec = load_spec(experiment="unlearnable", preset="smoke", overrides={"protection": {"name": "random"}})
    calls: list[str] = []

    def fake_attack_settings(spec, train, clean_train, test, ctx, tag):
        calls.append(tag)
        time.sleep(0.3)  # long enough for the other thread to reach the lock
        return {"accuracy": dict.fromkeys(ue.setting_names(spec), 0.5), "curves": {}}, None

    monkeypatch.setattr(ue, "_attack_settings", fake_attack_settings)
    ctx = SimpleNamespace(out=tmp_path, seed=0, device="cpu")
    results: list[dict] = []
    start = threading.Barrier(2)

    def worker() -> None:
        start.wait()
        results.append(ue._clean_baselines(spec, None, None, ctx))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["clean"]  # without the lock both workers would train the clean attackers
    assert results[0] == results[1] and len(results) == 2
    assert "waiting for another process that computes the same clean baselines" in capsys.readouterr().err


def test_clean_busy_only_while_another_holder_computes_the_missing_entry(tmp_path) -> None:
    from types import SimpleNamespace

    from privlab.pipelines import unlearnable as ue
    from privlab.store.lock import wait_lock

    spec = load_spec(experiment="unlearnable", preset="smoke", overrides={"protection": {"name": "random"}})
    ctx = SimpleNamespace(out=tmp_path, seed=0, device="cpu")
    path = ue._clean_path(spec, ctx)
    assert not ue._clean_busy(spec, ctx)  # no lock file yet
    with wait_lock(ue._clean_lock(path, ctx)):
        assert ue._clean_busy(spec, ctx)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
        assert not ue._clean_busy(spec, ctx)  # the entry is there: reading it does not wait
        path.unlink()
    assert not ue._clean_busy(spec, ctx)  # released


@pytest.mark.parametrize("busy", [False, True])
def test_a_run_trains_its_attackers_before_waiting_for_clean_baselines_another_worker_computes(
    tmp_path, monkeypatch, busy
) -> None:
    from privlab.pipelines import unlearnable as ue

    calls: list[str] = []

    def fake_attack_settings(spec, train, clean_train, test, ctx, tag):
        calls.append(tag)
        names = ue.setting_names(spec)
        return {"accuracy": dict.fromkeys(names, 0.5), "curves": {n: [0.5] for n in names}}, None

    def fake_clean(spec, train, test, ctx):
        calls.append("clean-baselines")
        names = ue.setting_names(spec)
        return {"accuracy": dict.fromkeys(names, 0.9), "curves": {n: [0.9] for n in names}}

    monkeypatch.setattr(ue, "_attack_settings", fake_attack_settings)
    monkeypatch.setattr(ue, "_clean_baselines", fake_clean)
    monkeypatch.setattr(ue, "_clean_busy", lambda spec, ctx: busy)
    monkeypatch.setattr(ue, "_defences", lambda *a: calls.append("defences") or {})
    spec = load_spec(
        experiment="unlearnable",
        preset="smoke",
        overrides={"protection": {"name": "random"}, "mia": {"enabled": False}, "grid_images": 0},
    )
    outcome = execute(spec, tmp_path, quiet=True)[0]
    expected = ["poisoned", "defences", "clean-baselines"] if busy else ["clean-baselines", "poisoned", "defences"]
    assert calls == expected
    transfer = json.loads((tmp_path / outcome.dir / "transfer.json").read_text())
    assert set(transfer["clean"].values()) == {0.9} and set(transfer["poisoned"].values()) == {0.5}
