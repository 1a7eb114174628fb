"""Every example spec loads and expands; the demo sweep covers every pipeline that exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from privlab.examples import example_names, example_path
from privlab.pipelines import PIPELINES
from privlab.run import expand_all, load_specs

EXAMPLES = [example_path(n) for n in example_names()]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_loads_and_expands(path: Path) -> None:
    points = expand_all(load_specs(path))
    assert points
    assert all(point.sweep is None for _, point in points)


def test_demo_sweep_covers_every_pipeline() -> None:
    demo = example_path("demo")
    experiments = {point.experiment for _, point in expand_all(load_specs(demo))}
    registered = {n for n in PIPELINES.names() if not n.startswith("test-")}  # test plugins are not pipelines
    assert experiments == registered


def test_examples_are_package_data_and_the_checkout_has_no_second_copy() -> None:
    assert len(EXAMPLES) >= 8 and all(p.is_file() for p in EXAMPLES)
    assert "privlab" in example_path("demo").parts  # inside the installed package, not the checkout root
    assert not (Path(__file__).parents[2] / "examples").exists()  # one copy: src/privlab/examples/
