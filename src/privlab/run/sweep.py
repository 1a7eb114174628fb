"""Spec loading and ``sweep:`` expansion.

``sweep`` maps dotted keys to lists of values; the spec expands to every combination (a grid), in the order the
keys are written::

    sweep:
      seed: [0, 1]
      train.lr: [0.001, 0.01]      # → 4 runs
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from privlab.config import ExperimentSpec, deep_merge, load_yaml, validate
from privlab.errors import ConfigError
from privlab.pipelines import PIPELINES, load_preset, pipeline_spec_class

__all__ = ["expand", "load_spec", "spec_from_mapping"]


def spec_from_mapping(
    data: Mapping[str, Any],
    *,
    source: str = "spec",
    lines: Mapping[tuple[Any, ...], int] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ExperimentSpec:
    """Validate a spec mapping: find its experiment, merge its preset under it and ``overrides`` over it."""
    merged = deep_merge(data, overrides or {})
    experiment = merged.get("experiment")
    if experiment is None:
        raise ConfigError(f"{source}: missing key 'experiment'; one of: {', '.join(PIPELINES.names())}")
    if not isinstance(experiment, str):
        raise ConfigError(f"{source}: 'experiment' must be a name, got {experiment!r}")
    spec_cls = pipeline_spec_class(experiment)
    preset = merged.get("preset")
    if preset is not None:
        merged = deep_merge(load_preset(experiment, str(preset)), merged)
    return validate(spec_cls, merged, source, lines)


def load_spec(
    path: str | Path | None = None,
    *,
    experiment: str | None = None,
    preset: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ExperimentSpec:
    """Load a spec from a YAML file, or build one from an experiment name and a preset.

    Args:
        path: YAML spec file (None: start from ``{experiment, preset}``).
        experiment, preset: used when ``path`` is None, or to override the file's values.
        overrides: nested mapping applied last (from ``--set key=value``).
    """
    data: dict[str, Any] = {}
    lines: Mapping[tuple[Any, ...], int] = {}
    source = "spec"
    if path is not None:
        data, lines = load_yaml(path)
        source = str(path)
    if experiment is not None:
        data["experiment"] = experiment
    if preset is not None:
        data["preset"] = preset
    return spec_from_mapping(data, source=source, lines=lines, overrides=overrides)


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    cur = data
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            raise ConfigError(f"sweep key {dotted!r}: {part!r} is not a mapping in this spec")
        cur = nxt
    cur[parts[-1]] = value


def expand(spec: ExperimentSpec) -> list[ExperimentSpec]:
    """The specs of every sweep point (the spec itself when it has no ``sweep``), each without ``sweep``."""
    if not spec.sweep:
        return [spec]
    for key, values in spec.sweep.items():
        if not values:
            raise ConfigError(f"sweep key {key!r} has an empty list of values")
        if key in ("experiment", "sweep", "preset"):
            raise ConfigError(f"sweep key {key!r} cannot be swept")
    base = spec.model_dump(mode="json", exclude={"sweep"})
    keys = list(spec.sweep)
    out = []
    for combo in itertools.product(*(spec.sweep[k] for k in keys)):
        data = copy.deepcopy(base)
        for k, v in zip(keys, combo, strict=True):
            _set_dotted(data, k, v)
        point = validate(type(spec), data, f"sweep point {dict(zip(keys, combo, strict=True))}")
        out.append(point)
    return out
