"""A new protection or attack is one file: plugins loaded through $PRIVLAB_PLUGINS, used by name end to end."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from privlab.attack import ATTACKS
from privlab.errors import ConfigError
from privlab.plugins import PLUGINS_ENV, load_plugins
from privlab.protect import PROTECTIONS
from privlab.protect.gradient import parse_defense
from privlab.run import execute, load_spec, spec_from_mapping

PLUGIN = """
from typing import Literal

import torch
from pydantic import Field

from privlab.attack import ATTACKS, Attack, AttackOutput
from privlab.config import Spec
from privlab.protect import PROTECTIONS
from privlab.protect.gradient import DefenseConfig, GradientDefense
from privlab.protect.perturbation import NoiseConfig, NoiseGenerator, PerturbationBank, noise_shape


class SignFlipConfig(DefenseConfig):
    name: Literal["signflip"] = "signflip"
    scale: float = Field(default=1.0, gt=0)

    def label(self):
        return f"signflip x{self.scale:g}"


@PROTECTIONS.register("gradient-signflip", kind="gradient", config=SignFlipConfig, primary="scale",
                      description="test: shares -scale * gradient")
class SignFlip(GradientDefense):
    config_class = SignFlipConfig

    def shared(self, grads, generator):
        return [-self.config.scale * g for g in grads]


class GreyConfig(Spec):
    level: float = Field(default=0.5, ge=0, le=1)


@ATTACKS.register("test-grey", requires=("gradients",), config=GreyConfig, description="test: grey images")
class Grey(Attack):
    config_class = GreyConfig
    requires = ("gradients",)

    def run(self, observation, *, seed=0, generator=None, device="cpu", progress=None):
        assert observation.labels is None and observation.model is None  # only what it asked for
        n, shape = observation.meta["batch_size"], observation.meta["image_shape"]
        norm = float(sum(g.pow(2).sum() for g in observation.gradients)) ** 0.5
        return AttackOutput(data=torch.full((n, *shape), self.config.level), stats={"grad_norm": norm})


class ConstantConfig(NoiseConfig):
    name: Literal["test-constant"] = "test-constant"


@PROTECTIONS.register("test-constant", kind="data", config=ConstantConfig, description="test: +epsilon everywhere")
class Constant(NoiseGenerator):
    config_class = ConstantConfig

    def generate(self, data, *, seed=0, device="cpu", progress=None, on_round=None, monitor=None):
        noise = torch.full(noise_shape(data, self.cfg.kind), self.cfg.epsilon)
        return PerturbationBank(noise, self.cfg.kind, self.cfg.epsilon, {"protection": "test-constant"})
"""


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "my_components.py"
    path.write_text(textwrap.dedent(PLUGIN), "utf-8")
    monkeypatch.setenv(PLUGINS_ENV, str(path))
    load_plugins()
    yield
    for name in ("gradient-signflip", "test-constant"):
        PROTECTIONS.remove(name)
    ATTACKS.remove("test-grey")


def test_plugin_defense_and_attack_run_in_the_inversion_pipeline(plugin, tmp_path: Path) -> None:
    assert parse_defense("signflip:2") == {"name": "signflip", "scale": 2.0}
    # the smoke preset's attack_config belongs to dlg, so the spec is written out
    base = {
        "experiment": "inversion",
        "dataset": {"name": "digits"},
        "victim": {"model": "lenet_dlg"},
        "attack": "test-grey",
        "attack_config": {"level": 0.25},
        "num_images": 2,
        "metrics": ["mse"],
    }
    runs = {}
    for name, defense in (("none", {"name": "none"}), ("flip", parse_defense("signflip:2"))):
        spec = spec_from_mapping({**base, "defense": defense})
        (runs[name],) = execute(spec, tmp_path / name, quiet=True)
    # the attack's output is what was scored: MSE of a constant 0.25 image against the original
    for o in runs.values():
        assert o.status == "finished"
    assert runs["flip"].metrics["mse"] == pytest.approx(runs["none"].metrics["mse"])
    assert runs["none"].metrics["gradient_cosine"] == pytest.approx(1.0)
    assert runs["flip"].metrics["gradient_cosine"] == pytest.approx(-1.0)  # −2·g points the other way
    with pytest.raises(ConfigError, match="level"):
        spec_from_mapping({**base, "attack_config": {"level": 2}})


def test_plugin_noise_protection_runs_in_the_unlearnable_pipeline(plugin, tmp_path: Path) -> None:
    spec = load_spec(
        experiment="unlearnable",
        preset="smoke",
        overrides={"protection": {"name": "test-constant", "kind": "class"}, "ssl": {"methods": []}},
    )
    (o,) = execute(spec, tmp_path, quiet=True)
    assert o.status == "finished"
    eps = spec.protection.epsilon
    assert o.metrics["noise_linf"] == pytest.approx(eps * 255, rel=1e-6)
    assert o.metrics["budget_epsilon"] == pytest.approx(eps * 255, rel=1e-6)


def test_a_swept_protection_default_is_a_config_error() -> None:
    sweep = {"protection_defaults.tue.method": ["simclr", "moco", "simsiam"]}
    with pytest.raises(ConfigError, match="protection.method"):
        load_spec(experiment="unlearnable", preset="smoke", overrides={"protection": {"name": "tue"}, "sweep": sweep})
    # the sweep that works: every run trains with its own method
    from privlab.run.sweep import expand

    spec = load_spec(
        experiment="unlearnable",
        preset="smoke",
        overrides={"protection": {"name": "tue"}, "sweep": {"protection.method": ["simclr", "moco", "simsiam"]}},
    )
    assert [p.protection.method for p in expand(spec)] == ["simclr", "moco", "simsiam"]
