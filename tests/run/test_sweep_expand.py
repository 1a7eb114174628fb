"""Sweep grids, zipped keys and sweep files (several specs, file references)."""

from __future__ import annotations

from pathlib import Path

import pytest

from privlab.errors import ConfigError, DataMissingError
from privlab.run import expand, expand_all, load_spec, load_specs
from privlab.run.local import sweep_params


def test_grid_times_zip_in_order() -> None:
    spec = load_spec(
        experiment="mi",
        preset="smoke",
        overrides={"sweep": {"seed": [0, 1, 2], "zip": {"n": [200, 300], "k": [3, 5]}}},
    )
    points = expand(spec)
    assert len(points) == 6
    assert [(p.seed, p.n, p.k) for p in points] == [
        (0, 200, 3),
        (0, 300, 5),
        (1, 200, 3),
        (1, 300, 5),
        (2, 200, 3),
        (2, 300, 5),
    ]
    assert all(p.sweep is None for p in points)
    assert sweep_params(spec, points[3].model_dump(mode="json")) == {"seed": 1, "n": 300, "k": 5}


def test_two_zip_groups_cross() -> None:
    spec = load_spec(
        experiment="mi",
        preset="smoke",
        overrides={"sweep": {"zip": [{"n": [200, 300], "k": [3, 5]}, {"seed": [7, 8, 9], "repeats": [1, 1, 2]}]}},
    )
    assert len(expand(spec)) == 2 * 3


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        ({"zip": {"n": [200, 300], "k": [3]}}, "equally long"),
        ({"zip": {"n": []}}, "non-empty"),
        ({"zip": 3}, "sweep.zip must map"),
        ({"seed": []}, "non-empty list"),
        ({"seed": 3}, "non-empty list"),
        ({"experiment": ["mi"]}, "cannot be swept"),
        ({"seed": [0], "zip": {"seed": [1]}}, "given twice"),
    ],
)
def test_bad_sweeps_are_config_errors(sweep: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_spec(experiment="mi", preset="smoke", overrides={"sweep": sweep})


def test_sweep_point_that_breaks_validation_names_the_point() -> None:
    spec = load_spec(experiment="mi", preset="smoke", overrides={"sweep": {"k": [3, 0]}})
    with pytest.raises(ConfigError, match=r"sweep point \{'k': 0\}"):
        expand(spec)


def test_sweep_file_lists_specs_and_file_references(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mi.yaml").write_text("experiment: mi\npreset: smoke\nn: 250\n")
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(
        "name: comparison\n"
        "specs:\n"
        "  - experiment: mi\n"
        "    preset: smoke\n"
        "    sweep: {seed: [0, 1]}\n"
        "  - file: sub/mi.yaml\n"
        "    k: 5\n"
    )
    specs = load_specs(sweep_file, overrides={"repeats": 2})
    assert [s.experiment for s in specs] == ["mi", "mi"]
    assert (specs[1].n, specs[1].k) == (250, 5)
    assert all(s.repeats == 2 for s in specs)  # --set applies to every spec
    pairs = expand_all(specs)
    assert len(pairs) == 3
    assert pairs[2][0] is specs[1]
    with pytest.raises(ConfigError, match="privlab sweep"):
        load_spec(sweep_file)


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("specs: []\n", ConfigError, "non-empty list"),
        ("specs: [3]\n", ConfigError, r"specs\[0\].*must be a mapping"),
        ("specs:\n  - {experiment: mi, preset: smoke}\nseed: 3\n", ConfigError, "only the keys"),
        ("specs:\n  - {file: missing.yaml}\n", DataMissingError, "missing.yaml"),
        ("specs:\n  - {experiment: mi, preset: smoke, kk: 3}\n", ConfigError, r"specs\[0\].*line 2.*kk"),
        ("specs:\n  - {file: self.yaml}\n", ConfigError, "do not nest"),
    ],
)
def test_bad_sweep_files(tmp_path: Path, text: str, error: type, message: str) -> None:
    path = tmp_path / "self.yaml"
    path.write_text(text)
    with pytest.raises(error, match=message):
        load_specs(path)
