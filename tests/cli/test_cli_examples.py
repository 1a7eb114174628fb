"""``privlab examples`` and ``examples/NAME.yaml`` on the command line: the packaged example specs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from privlab.cli import app
from privlab.cli.run import resolve_specs
from privlab.errors import ConfigError
from privlab.examples import example_names, example_path, resolve_example

runner = CliRunner()


def test_examples_lists_and_copies(tmp_path: Path) -> None:
    r = runner.invoke(app, ["examples", "--json"], catch_exceptions=False)
    assert r.exit_code == 0
    rows = json.loads(r.output)["examples"]
    assert [x["name"] for x in rows] == example_names()
    assert {"demo", "train", "inversion-cpu", "ldp-cpu", "shredder-cpu", "unlearnable-cpu"} <= set(example_names())
    demo = next(x for x in rows if x["name"] == "demo")
    assert demo["summary"].startswith("What `make demo` runs")
    r = runner.invoke(app, ["examples", "--copy", str(tmp_path / "specs")], catch_exceptions=False)
    assert r.exit_code == 0 and f"copied {len(rows)} examples" in r.output
    assert (tmp_path / "specs" / "train.yaml").read_text() == example_path("train").read_text()
    # an edited copy is not overwritten without --force
    (tmp_path / "specs" / "train.yaml").write_text("experiment: train\n")
    r = runner.invoke(app, ["examples", "--copy", str(tmp_path / "specs")])
    assert r.exit_code == 2 and "--force" in r.output
    assert (tmp_path / "specs" / "train.yaml").read_text() == "experiment: train\n"
    r = runner.invoke(app, ["examples", "--copy", str(tmp_path / "specs"), "--force"], catch_exceptions=False)
    assert r.exit_code == 0 and (tmp_path / "specs" / "train.yaml").read_text() == example_path("train").read_text()


def test_examples_path_falls_back_to_the_packaged_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_example("examples/train.yaml") == example_path("train")
    (spec,) = resolve_specs("examples/train.yaml", None, {})
    assert spec.experiment == "train" and spec.name == "LeNet-5 on digits"
    assert len(resolve_specs("examples/demo.yaml", None, {})) >= 7  # a sweep file: one spec per pipeline
    # a file of that name in the current folder wins; other missing paths stay missing
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "train.yaml").write_text("experiment: train\nname: mine\n")
    assert resolve_example("examples/train.yaml") == Path("examples/train.yaml")
    (spec,) = resolve_specs("examples/train.yaml", None, {})
    assert spec.name == "mine"
    assert resolve_example("examples/nope.yaml") == Path("examples/nope.yaml")
    assert resolve_example("other/demo.yaml") == Path("other/demo.yaml")
    with pytest.raises(ConfigError, match="no example 'nope'"):
        example_path("nope")
