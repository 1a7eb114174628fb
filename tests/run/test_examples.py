"""Every example spec loads and expands; the demo sweep covers every pipeline that exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from privlab.pipelines import PIPELINES
from privlab.run import expand_all, load_specs

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_loads_and_expands(path: Path) -> None:
    points = expand_all(load_specs(path))
    assert points
    assert all(point.sweep is None for _, point in points)


def test_demo_sweep_covers_every_pipeline() -> None:
    demo = Path(__file__).parents[2] / "examples" / "demo.yaml"
    experiments = {point.experiment for _, point in expand_all(load_specs(demo))}
    registered = {n for n in PIPELINES.names() if not n.startswith("test-")}  # test plugins are not pipelines
    assert experiments == registered
