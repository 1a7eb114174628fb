"""Pipelines: the experiments, each wiring stages 1–5 and registered by name.

A pipeline is a function ``run(spec, ctx) -> None`` registered with its spec class:
``@PIPELINES.register("train", spec=TrainSpec, description=...)``. It logs metrics through ``ctx`` (stored in
``runs.sqlite``) and writes artifacts into ``ctx.run_dir``. Presets live in ``presets/<experiment>.<preset>.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any

from privlab.config import ExperimentSpec, parse_yaml
from privlab.errors import ConfigError
from privlab.registry import Registry, import_submodules

__all__ = ["PIPELINES", "load_preset", "pipeline_spec_class", "preset_names"]

PIPELINES: Registry[Callable[..., None]] = Registry("experiment")


def pipeline_spec_class(experiment: str) -> type[ExperimentSpec]:
    """The spec class (pydantic model) of a registered experiment."""
    return PIPELINES.entry(experiment).meta["spec"]


def preset_names(experiment: str) -> list[str]:
    """Preset names available for ``experiment`` (``smoke``, ``cpu``, ``paper`` …)."""
    folder = resources.files("privlab.pipelines") / "presets"
    prefix = f"{experiment}."
    return sorted(
        p.name[len(prefix) : -len(".yaml")]
        for p in folder.iterdir()
        if p.name.startswith(prefix) and p.name.endswith(".yaml")
    )


def load_preset(experiment: str, preset: str) -> dict[str, Any]:
    """The preset's settings as a mapping.

    Raises:
        ConfigError: no such preset for this experiment (the message lists the available ones).
    """
    names = preset_names(experiment)
    if preset not in names:
        raise ConfigError(
            f"experiment {experiment!r} has no preset {preset!r}; available: {', '.join(names) or 'none'}"
        )
    text = (resources.files("privlab.pipelines") / "presets" / f"{experiment}.{preset}.yaml").read_text("utf-8")
    return parse_yaml(text, f"preset {experiment}.{preset}.yaml")[0]


import_submodules(__name__, __path__)
