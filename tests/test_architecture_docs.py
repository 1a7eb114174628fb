"""The worked examples of docs/architecture.md ("Adding an attack", "Adding a protection", "Adding a metric") run as
written: each code block is executed, registers its component, and the component works where the doc says."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from privlab.attack import ATTACKS, Observation, build_attack
from privlab.errors import ConfigError
from privlab.measure.image import score
from privlab.measure.image.base import SIMILARITY_METRICS, metric_columns
from privlab.protect import PROTECTIONS
from privlab.protect.gradient import build_defense, parse_defense, resolve_defense
from privlab.registry import Registry

DOC = Path(__file__).parents[1] / "docs" / "architecture.md"


def example_code(heading: str) -> str:
    """The one ```python block under ``## heading`` in docs/architecture.md."""
    section = DOC.read_text("utf-8").split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    return code


@contextmanager
def executed(heading: str, registry: Registry[Any], name: str) -> Iterator[dict[str, Any]]:
    """Run the example of ``heading`` (which registers ``name`` in ``registry``); unregister it afterwards."""
    assert name not in registry  # the example adds it, nothing else does
    module = types.ModuleType(f"docs_example_{name.replace('-', '_')}")  # a real module: pydantic resolves hints
    sys.modules[module.__name__] = module
    try:
        exec(compile(example_code(heading), str(DOC), "exec"), module.__dict__)
        assert name in registry
        yield module.__dict__
    finally:
        sys.modules.pop(module.__name__, None)
        if name in registry:
            registry.remove(name)


def test_adding_an_attack_example_recovers_the_label_from_a_real_gradient() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 5))
    x = torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    with executed("Adding an attack", ATTACKS, "bias-label"):
        attack = build_attack("bias-label")
        assert ATTACKS.entry("bias-label").meta["requires"] == ("gradients",)
        for label in range(5):
            loss = nn.functional.cross_entropy(model(x), torch.tensor([label]))
            grads = list(torch.autograd.grad(loss, list(model.parameters())))
            obs = Observation.granted(attack.requires, gradients=grads, labels=torch.tensor([label]))
            assert obs.labels is None  # the threat model grants the gradient only
            out = attack.run(obs)
            assert out.labels.tolist() == [label] and out.stats["min_bias_gradient"] < 0
        with pytest.raises(ConfigError, match="bias_inde"):
            build_attack("bias-label", {"bias_inde": 0})
        with pytest.raises(ConfigError, match="gradients"):
            attack.run(Observation())


def test_adding_a_protection_example_clips_the_shared_gradient() -> None:
    with executed("Adding a protection", PROTECTIONS, "gradient-clipnorm"):
        assert parse_defense("clipnorm:1") == {"name": "clipnorm", "norm": 1.0}
        defense = build_defense(parse_defense("clipnorm:1"))
        clipped = defense.shared([torch.tensor([3.0]), torch.tensor([0.0, 4.0])], torch.Generator())
        assert torch.allclose(torch.cat(clipped), torch.tensor([0.6, 0.0, 0.8]))
        small = defense.shared([torch.tensor([0.3, 0.4])], torch.Generator())[0]
        assert torch.equal(small, torch.tensor([0.3, 0.4]))  # already within the norm: unchanged
        cfg = resolve_defense({"name": "clipnorm", "norm": 0.5})
        assert cfg.label() == "clipnorm 0.5"
        with pytest.raises(ConfigError, match="norm"):
            resolve_defense({"name": "clipnorm", "norm": -1})


def test_adding_a_metric_example_scores_images_with_its_metadata() -> None:
    x = torch.zeros(2, 1, 4, 4)
    y = torch.cat([torch.full((1, 1, 4, 4), 0.25), torch.full((1, 1, 4, 4), 0.5)])
    with executed("Adding a metric", SIMILARITY_METRICS, "mae"):
        table = score(x, y, ["mae", "mse"])
        assert table.means["mae"] == pytest.approx(0.375) and table.means["mse"] == pytest.approx(0.15625)
        info = metric_columns()["mae"]
        assert (info.unit, info.higher_is_better, info.kind) == (None, False, "privacy")
