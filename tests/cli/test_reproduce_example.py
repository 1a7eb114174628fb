"""``examples/reproduce-cpu.yaml``: every CPU reproduction of the seed papers in one sweep, each with its references."""

from privlab.cli.run import resolve_specs
from privlab.config import spec_hash
from privlab.run.sweep import expand


def test_the_reproduction_sweep_covers_the_papers_with_their_published_values() -> None:
    specs = resolve_specs("examples/reproduce-cpu.yaml", None, {})
    points = [p for s in specs for p in expand(s)]
    by_exp: dict[str, list] = {}
    for p in points:
        by_exp.setdefault(p.experiment, []).append(p)
    assert set(by_exp) == {"shredder", "ldp", "unlearnable", "inversion", "mia"}
    (idlg,) = by_exp["inversion"]
    assert idlg.attack == "idlg" and idlg.num_images == 20 and idlg.dataset.name == "cifar10"
    assert idlg.attack_config["stop_loss"] == 1e-5 and idlg.reference["label_accuracy"].value == 1.0
    (mia,) = by_exp["mia"]
    assert mia.model == "fast_cnn" and mia.references == 16 and mia.reference["rmia/auc"].value == 0.7225
    ldp = by_exp["ldp"]
    assert {p.dataset.name for p in ldp} == {"mnist"} and len(ldp) == 44
    # the study's ε grid for every learner that sees privatised data
    grid = {150.0, 500.0, 2000.0, 3000.0, 5000.0, 200000.0}
    for learner in ("cnn_shallow", "kmeans", "dpsgd"):
        assert {p.epsilon for p in ldp if p.learner == learner and p.mechanism != "none"} == grid, learner
    iic = {p.epsilon: p for p in ldp if p.learner == "iic" and p.mechanism == "gaussian"}
    # the study's grid, plus the study's 150 / 2000 / 3000 / 5000 mapped to privlab's ε at the same noise/signal ratio
    assert set(iic) == grid | {8.2, 317.5, 640.9, 1616.5}
    assert iic[3000.0].reference["test_error"].value == 0.29 and iic[150.0].reference["test_error"].value == 0.89
    assert iic[640.9].reference["test_error"].value == 0.29 and iic[317.5].reference["test_error"].value == 0.865
    raw = [p for p in ldp if p.learner == "iic" and p.mechanism == "none"]
    assert sorted(p.iic.both_views for p in raw) == [False, True]  # (x, g(x)) as usual, and the noisy points' pairs
    assert all(p.dataset.train_limit == 10000 for p in iic.values())  # IIC on a documented subset
    (shredder,) = by_exp["shredder"]
    assert shredder.preset == "paper-v2-cpu" and shredder.reference["mi_clean_nats"].value == 284.14
    ue = by_exp["unlearnable"]
    kinds = {(p.protection.name, p.protection.kind) for p in ue}
    assert kinds == {("em", "class"), ("em", "sample"), ("random", "sample")}
    assert all(p.dataset.name == "cifar10" and p.reference for p in ue)
    assert len({spec_hash(p) for p in points}) == len(points)  # no two entries make the same run


def test_only_keeps_one_experiment_and_its_overrides_apply_to_it_alone(tmp_path) -> None:
    from privlab.config import parse_overrides

    specs = resolve_specs("examples/reproduce-cpu.yaml", None, parse_overrides(["iic.epochs=2"]), ["ldp"])
    points = [p for s in specs for p in expand(s)]
    assert len(points) == 44 and {p.experiment for p in points} == {"ldp"}
    assert {p.iic.epochs for p in points} == {2}  # an ldp-only key: would be refused by the shredder spec


def test_only_with_a_wrong_name_exits_2_before_anything_runs(tmp_path) -> None:
    from typer.testing import CliRunner

    from privlab.cli import app

    out = tmp_path / "o"
    r = CliRunner().invoke(app, ["sweep", "examples/reproduce-cpu.yaml", "--only", "ldpp", "--out", str(out)])
    assert r.exit_code == 2 and "--only ldpp: not an experiment" in r.output and "ldp" in r.output
    assert not out.exists()
    r = CliRunner().invoke(app, ["sweep", "examples/ldp-cpu.yaml", "--only", "mia", "--out", str(out)])
    assert r.exit_code == 2 and "not one of --only mia" in r.output and not out.exists()
