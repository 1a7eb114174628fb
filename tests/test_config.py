import pytest

from privlab.config import deep_merge, load_yaml, parse_overrides, spec_hash
from privlab.errors import ConfigError, DataMissingError, FileFormatError
from privlab.run import expand, load_spec


def write(tmp_path, text, name="spec.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_preset_merges_under_file_values(tmp_path):
    spec = load_spec(write(tmp_path, "experiment: train\npreset: smoke\ntrain: {epochs: 2}\n"))
    assert spec.train.epochs == 2  # file wins
    assert spec.train.lr == pytest.approx(0.003)  # from the smoke preset
    assert spec.model == "lenet5"


def test_unknown_key_names_line_and_suggests(tmp_path):
    p = write(tmp_path, "experiment: train\nseed: 1\ntrain:\n  epoch: 3\n")
    with pytest.raises(ConfigError) as e:
        load_spec(p)
    msg = str(e.value)
    assert f"{p}:4" in msg
    assert "unknown key 'train.epoch'" in msg
    assert "Did you mean 'epochs'?" in msg
    assert "batch_size" in msg  # the allowed keys are listed


def test_out_of_range_value_says_what_and_where(tmp_path):
    p = write(tmp_path, "experiment: train\ntrain: {epochs: -1}\n")
    with pytest.raises(
        ConfigError,
        match=r"spec.yaml:2: train.epochs: Input should be greater than or equal to 1 "
        r"\(got -1\)",
    ):
        load_spec(p)


def test_every_problem_reported_at_once(tmp_path):
    p = write(tmp_path, "experiment: train\nmodle: x\ntrain: {lr: 0, optimizer: rmsprop}\n")
    with pytest.raises(ConfigError) as e:
        load_spec(p)
    msg = str(e.value)
    assert "modle" in msg and "train.lr" in msg and "train.optimizer" in msg
    assert "'adam'" in msg  # the allowed literals


def test_unknown_experiment_and_preset(tmp_path):
    with pytest.raises(ConfigError, match="unknown experiment 'trian'. Did you mean 'train'"):
        load_spec(write(tmp_path, "experiment: trian\n"))
    with pytest.raises(ConfigError, match="no preset 'huge'; available: cpu, paper, smoke"):
        load_spec(write(tmp_path, "experiment: train\npreset: huge\n"))
    with pytest.raises(ConfigError, match="missing key 'experiment'"):
        load_spec(write(tmp_path, "seed: 0\n"))


def test_bad_files(tmp_path):
    with pytest.raises(DataMissingError, match="spec file not found"):
        load_yaml(tmp_path / "nope.yaml")
    with pytest.raises(FileFormatError, match="not valid YAML"):
        load_yaml(write(tmp_path, "experiment: [unclosed\n"))
    with pytest.raises(FileFormatError, match="must be a YAML mapping"):
        load_yaml(write(tmp_path, "- a\n- b\n"))
    # Python objects are refused by the safe loader, never constructed.
    with pytest.raises(FileFormatError, match="not valid YAML"):
        load_yaml(write(tmp_path, "experiment: !!python/object/apply:os.system ['echo hi']\n"))


def test_early_stop_needs_validation_split(tmp_path):
    with pytest.raises(ConfigError, match="early_stop_patience needs a validation split"):
        load_spec(write(tmp_path, "experiment: train\ntrain: {early_stop_patience: 2}\n"))


def test_spec_hash_ignores_name_and_is_order_independent(tmp_path):
    a = load_spec(write(tmp_path, "experiment: train\nname: a\nseed: 1\nmodel: lenet5\n", "a.yaml"))
    b = load_spec(write(tmp_path, "model: lenet5\nseed: 1\nexperiment: train\nname: b\n", "b.yaml"))
    c = load_spec(write(tmp_path, "experiment: train\nseed: 2\n", "c.yaml"))
    assert spec_hash(a) == spec_hash(b) != spec_hash(c)
    assert len(spec_hash(a)) == 64


def test_sweep_expands_to_grid(tmp_path):
    spec = load_spec(write(tmp_path, "experiment: train\nsweep:\n  seed: [0, 1]\n  train.lr: [0.1, 0.2, 0.3]\n"))
    points = expand(spec)
    assert len(points) == 6
    assert [(p.seed, p.train.lr) for p in points[:3]] == [(0, 0.1), (0, 0.2), (0, 0.3)]
    assert all(p.sweep is None for p in points)
    assert len({spec_hash(p) for p in points}) == 6


def test_sweep_bad_key_and_value(tmp_path):
    with pytest.raises(ConfigError, match="'nosuch' is not a mapping"):
        expand(load_spec(write(tmp_path, "experiment: train\nsweep: {nosuch.lr: [1]}\n")))
    with pytest.raises(ConfigError, match="train.epochs"):
        expand(load_spec(write(tmp_path, "experiment: train\nsweep: {train.epochs: [1, 0]}\n")))
    with pytest.raises(ConfigError, match="empty list"):
        expand(load_spec(write(tmp_path, "experiment: train\nsweep: {seed: []}\n")))


def test_overrides_and_merge():
    assert parse_overrides(["train.epochs=3", "model=lenet5", "dataset.resize=null"]) == {
        "train": {"epochs": 3},
        "model": "lenet5",
        "dataset": {"resize": None},
    }
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_overrides(["epochs"])
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}) == {"a": {"b": 3, "c": 2}}
    spec = load_spec(experiment="train", preset="smoke", overrides={"train": {"epochs": 1}})
    assert spec.train.epochs == 1 and spec.preset == "smoke"
