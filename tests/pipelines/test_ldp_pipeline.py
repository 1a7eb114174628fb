"""The ``ldp`` experiment end to end on the smoke preset: every learner, folding of equivalent points, report."""

import json
import math

import pytest
import torch

from privlab.config import spec_hash
from privlab.data import load_dataset
from privlab.measure.utility.clustering import kmeans_classifier
from privlab.pipelines.ldp import LDPSpec, build_mechanisms
from privlab.run import execute, load_spec
from privlab.run.sweep import expand
from privlab.store import Store


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ldp")
    spec = load_spec(experiment="ldp", preset="smoke")
    spec = spec.model_copy(
        update={"sweep": {"mechanism": ["none", "laplace", "rr"], "epsilon": [5.0, 5000.0], "learner": ["kmeans"]}}
    )
    outcomes = execute(spec, out, quiet=True)
    return out, outcomes


def test_smoke_sweep_runs_folds_the_raw_baseline_and_accuracy_rises_with_epsilon(sweep_run):
    out, outcomes = sweep_run
    assert len(outcomes) == 6
    assert [o.status for o in outcomes].count("skipped") == 1  # "none" at two ε is one run
    with Store(out, create=False) as s:
        runs = {r.id: r for r in s.runs(experiment="ldp")}
    assert len(runs) == 5
    acc = {(r.spec["mechanism"], r.spec["epsilon"]): r.metrics["test_accuracy"] for r in runs.values()}
    for mech in ("laplace", "rr"):
        assert acc[(mech, 5000.0)] > acc[(mech, 5.0)] + 0.2  # ε = 5 per image on 64 pixels is near chance
        assert acc[(mech, 5.0)] < 0.35
    assert acc[("none", None)] > 0.6


def test_raw_baseline_is_scored_on_the_untouched_test_split(sweep_run):
    out, _ = sweep_run
    with Store(out, create=False) as s:
        (raw,) = [r for r in s.runs(experiment="ldp") if r.spec["mechanism"] == "none"]
    tr = load_dataset("digits", "train", limit=400, seed=0)
    te = load_dataset("digits", "test", limit=200, seed=0)
    direct = kmeans_classifier(tr.images, tr.labels, te.images, te.labels, num_clusters=10, seed=0, n_init=1)
    assert raw.metrics["test_accuracy"] == pytest.approx(direct.accuracy)
    assert math.isnan(raw.metrics.get("epsilon", math.nan)) or raw.metrics["epsilon"] is None


def test_budget_metrics_and_artifacts(sweep_run):
    out, _ = sweep_run
    with Store(out, create=False) as s:
        run = next(
            r for r in s.runs(experiment="ldp") if r.spec["mechanism"] == "laplace" and r.spec["epsilon"] == 5000
        )
        m = run.metrics
        kinds = {a["kind"] for a in s.artifacts(run.id)}
        budget = json.loads((out / next(a["path"] for a in s.artifacts(run.id) if a["kind"] == "budget")).read_text())
    assert (
        m["epsilon"] == 5000 and m["epsilon_image"] == pytest.approx(4500) and m["epsilon_label"] == pytest.approx(30)
    )
    assert m["epsilon_pixel"] == pytest.approx(4500 / 64)
    assert m["epsilon_composed"] == pytest.approx(4530)  # label ε 500 is implemented as the float64 cap 30
    assert m["laplace_scale"] == pytest.approx(64 / 4500)
    assert 0 <= m["label_agreement"] <= 1
    assert {"budget", "examples", "grid"} <= kinds
    assert budget["account"]["composed"]["epsilon"] == pytest.approx(4530)
    html = (out / "report.html").read_text()
    for text in ("Accuracy vs ε", "Budget", "Privatised training images", "composed ε"):
        assert text in html


def test_equivalent_points_share_one_hash_and_allocation_is_exact():
    a = LDPSpec(learner="dpsgd", mechanism="laplace", epsilon=3.0)
    b = LDPSpec(learner="dpsgd", mechanism="rr", epsilon=3.0)
    assert a.mechanism == "dpsgd" and a.label_mechanism == "none" and spec_hash(a) == spec_hash(b)
    s = LDPSpec(
        mechanism="gaussian", epsilon=100.0, label_fraction=0.2, fresh_noise=True, train={"epochs": 4, "batch_size": 64}
    )
    mech, label, alloc = build_mechanisms(s, 10)
    assert alloc.releases == 4 and alloc.image_epsilon == pytest.approx(20.0) and label.epsilon == pytest.approx(20.0)
    assert mech.config.delta == pytest.approx(s.delta / 4)
    with pytest.raises(ValueError, match="needs epsilon"):
        LDPSpec.model_validate({"mechanism": "laplace", "epsilon": None})
    assert len(expand(LDPSpec(sweep={"epsilon": [1.0, 2.0], "mechanism": ["none", "rr"]}))) == 4


@pytest.mark.parametrize("learner", ["iic", "cnn_shallow", "dpsgd"])
def test_every_learner_runs_on_the_smoke_preset(tmp_path, learner):
    overrides = {"learner": learner, "dataset": {"train_limit": 120, "test_limit": 60}}
    (o,) = execute(load_spec(experiment="ldp", preset="smoke", overrides=overrides), tmp_path, quiet=True, report=False)
    assert o.status == "finished", o.error
    assert 0.0 <= o.metrics["test_accuracy"] <= 1.0
    probe = [o.metrics.get(k) for k in ("mia_loss_auc", "mia_loss_tpr_at_fpr_0.01")]
    if learner == "iic":  # clustering: no classifier to probe
        assert probe == [None, None]
    else:  # the membership probe of the trained classifier: 60 raw training vs 60 test records
        assert all(v is not None and math.isfinite(v) and 0.0 <= v <= 1.0 for v in probe), probe
        assert o.metrics["mia_loss_records"] == 60
    if learner == "dpsgd":
        assert 0 < o.metrics["epsilon_spent"] <= 1000 * 1.01
    if learner == "iic":
        assert (
            o.metrics["iic_subhead_accuracy_min"] <= o.metrics["test_accuracy"] <= o.metrics["iic_subhead_accuracy_max"]
        )


def test_fresh_noise_cnn_splits_the_budget_over_epochs(tmp_path):
    overrides = {
        "learner": "cnn_shallow",
        "fresh_noise": True,
        "train": {"epochs": 2},
        "dataset": {"train_limit": 100, "test_limit": 50},
    }
    (o,) = execute(load_spec(experiment="ldp", preset="smoke", overrides=overrides), tmp_path, quiet=True, report=False)
    assert o.status == "finished", o.error
    assert o.metrics["releases"] == 2 and o.metrics["epsilon_image"] == pytest.approx(450)
    torch.manual_seed(0)


def test_noise_false_is_the_preprocessed_baseline_and_folds_where_it_cannot_differ(tmp_path):
    rr = LDPSpec.model_validate({"mechanism": "rr", "epsilon": 30, "noise": False})
    assert rr.epsilon is None and rr.label_mechanism == "none" and rr.mechanism == "rr"
    lap = LDPSpec.model_validate({"mechanism": "laplace", "epsilon": 30, "noise": False})
    assert lap.mechanism == "none" and lap.noise and spec_hash(lap) == spec_hash(LDPSpec(mechanism="none"))
    assert LDPSpec.model_validate({"learner": "dpsgd", "noise": False}).noise
    # binarisation without noise = RR in its ε → ∞ limit (flip probability 0, labels exact): same k-means result
    base = {"learner": "kmeans", "mechanism": "rr", "dataset": {"train_limit": 150, "test_limit": 60}}
    (a,) = execute(
        load_spec(experiment="ldp", preset="smoke", overrides={**base, "noise": False}),
        tmp_path,
        quiet=True,
        report=False,
    )
    (b,) = execute(
        load_spec(experiment="ldp", preset="smoke", overrides={**base, "epsilon": 1e6, "label_mechanism": "none"}),
        tmp_path,
        quiet=True,
        report=False,
    )
    assert a.status == b.status == "finished", (a.error, b.error)
    assert b.metrics["rr_flip_probability"] < 1e-100
    assert a.metrics["test_accuracy"] == pytest.approx(b.metrics["test_accuracy"])
    assert "epsilon_composed" not in a.metrics and "label_agreement" not in a.metrics  # nothing released


def test_rr_binarisation_rule_reaches_the_mechanism_and_the_cpu_preset_dithers():
    spec = LDPSpec.model_validate({"mechanism": "rr", "epsilon": 100.0, "binarize": "dither"})
    mech, _, alloc = build_mechanisms(spec, 10)
    assert mech.config.binarize == "dither" and alloc.image_epsilon == pytest.approx(90.0)
    budget = mech.budget(pixels=64)
    assert budget.details["per_bit_epsilon"] == pytest.approx(90.0 / 64)
    assert budget.details["per_pixel_epsilon"] == pytest.approx(90.0)  # error diffusion: only the image ε per pixel
    assert LDPSpec.model_validate({"mechanism": "rr", "epsilon": 100.0}).binarize == "threshold"  # the original
    assert load_spec(experiment="ldp", preset="cpu").binarize == "dither"
    assert load_spec(experiment="ldp", preset="smoke").binarize == "threshold"
