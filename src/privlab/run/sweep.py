"""Spec loading and ``sweep:`` expansion.

``sweep`` maps dotted keys to lists of values; the spec expands to every combination (a grid), in the order the
keys are written. A ``zip`` entry varies its keys *together* (equally long lists, one run per position) and is
crossed with the grid keys; several zipped groups are a list of such mappings::

    sweep:
      seed: [0, 1]
      train.lr: [0.001, 0.01]            # grid: 2 × 2 = 4 runs
      zip:                               # × 2 zipped pairs = 8 runs
        protection.mechanism: [laplace, rr]
        protection.epsilon: [10.0, 3.0]

A **sweep file** lists several specs (of any experiments) under ``specs:``; each item is a spec mapping, or
``file: other.yaml`` (relative to the sweep file) with keys merged over that file's::

    name: my comparison
    specs:
      - {experiment: train, preset: cpu}
      - file: ldp-cpu.yaml
        sweep: {epsilon: [10, 1000]}
"""

from __future__ import annotations

import copy
import itertools
import math
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from privlab.config import ExperimentSpec, deep_merge, load_yaml, validate
from privlab.errors import ConfigError
from privlab.pipelines import PIPELINES, load_preset, pipeline_spec_class

__all__ = [
    "MAX_SWEEP_POINTS",
    "count_points",
    "expand",
    "expand_all",
    "load_spec",
    "load_specs",
    "max_sweep_points",
    "spec_from_mapping",
    "sweep_keys",
]

_SUITE_KEYS = ("specs", "name", "description")


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
    spec = validate(spec_cls, merged, source, lines)
    _sweep_groups(spec.sweep or {}, source)  # a malformed sweep block is a ConfigError at load time
    return spec


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

    Raises:
        ConfigError: the file is a sweep file with several specs (use :func:`load_specs`).
    """
    data: dict[str, Any] = {}
    lines: Mapping[tuple[Any, ...], int] = {}
    source = "spec"
    if path is not None:
        data, lines = load_yaml(path)
        source = str(path)
        if "specs" in data:
            raise ConfigError(f"{path} lists several specs under 'specs:'; run it with `privlab sweep {path}`")
    if experiment is not None:
        data["experiment"] = experiment
    if preset is not None:
        data["preset"] = preset
    return spec_from_mapping(data, source=source, lines=lines, overrides=overrides)


def load_specs(
    path: str | Path,
    *,
    preset: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    only: Collection[str] | None = None,
) -> list[ExperimentSpec]:
    """The specs of a spec file (one) or of a sweep file (its ``specs:`` list), each still with its ``sweep``.

    ``overrides`` (``--set``) and ``preset`` apply to every spec. ``only`` keeps the items whose experiment is one
    of these names (before overrides apply, so an override may name keys of those experiments only). Raises
    ConfigError/FileFormatError naming the file, the item and the line.
    """
    data, lines = load_yaml(path)
    if "specs" not in data:
        if only is not None and data.get("experiment") not in only:
            raise ConfigError(
                f"{path}: its experiment is {data.get('experiment')!r}, not one of --only {', '.join(sorted(only))}"
            )
        if preset is not None:
            data["preset"] = preset
        return [spec_from_mapping(data, source=str(path), lines=lines, overrides=overrides)]
    extra = sorted(set(data) - set(_SUITE_KEYS))
    if extra:
        raise ConfigError(
            f"{path}: a sweep file has only the keys {', '.join(_SUITE_KEYS)}; move {', '.join(map(repr, extra))} "
            "into the items of 'specs'"
        )
    items = data["specs"]
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{path}: 'specs' must be a non-empty list of spec mappings")
    base = Path(path).parent
    out: list[ExperimentSpec] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"{path}: specs[{i}]" + (f" (line {lines[('specs', i)]})" if ("specs", i) in lines else "")
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: each item must be a mapping (a spec, or 'file: other.yaml'), got {item!r}")
        item = dict(item)
        sub_lines = {k[2:]: v for k, v in lines.items() if k[:2] == ("specs", i) and len(k) > 2}
        source = where
        if "file" in item:
            ref = item.pop("file")
            if not isinstance(ref, str):
                raise ConfigError(f"{where}: 'file' must be a path, got {ref!r}")
            ref_path = Path(ref) if Path(ref).is_absolute() else base / ref
            file_data, _ = load_yaml(ref_path)
            if "specs" in file_data:
                raise ConfigError(f"{where}: {ref_path} is itself a sweep file; sweep files do not nest")
            item = deep_merge(file_data, item)
            source = f"{where} ({ref_path})"
        seen.add(str(item.get("experiment")))
        if only is not None and item.get("experiment") not in only:
            continue
        if preset is not None:
            item["preset"] = preset
        out.append(spec_from_mapping(item, source=source, lines=sub_lines, overrides=overrides))
    if not out:
        raise ConfigError(
            f"{path}: no spec of experiment {', '.join(sorted(only or ()))}; this file has {', '.join(sorted(seen))}"
        )
    return out


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    cur = data
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            raise ConfigError(f"sweep key {dotted!r}: {part!r} is not a mapping in this spec")
        cur = nxt
    cur[parts[-1]] = value


def _sweep_groups(sweep: Mapping[str, Any], source: str = "sweep") -> list[list[tuple[str, list[Any]]]]:
    """The sweep as groups of (key, values): a grid key is a group of one; a zipped mapping is one group whose
    keys move together. The runs are the product over groups."""
    groups: list[list[tuple[str, list[Any]]]] = []
    for key, values in sweep.items():
        if key == "zip":
            zipped = values if isinstance(values, list) else [values]
            for z in zipped:
                if not isinstance(z, dict) or not z:
                    raise ConfigError(f"{source}: sweep.zip must map keys to lists of equal length, got {z!r}")
                lengths = {k: len(v) if isinstance(v, list) else -1 for k, v in z.items()}
                if any(n <= 0 for n in lengths.values()) or len(set(lengths.values())) != 1:
                    shown = ", ".join(f"{k}: {n if n >= 0 else 'not a list'}" for k, n in lengths.items())
                    raise ConfigError(f"{source}: sweep.zip lists must be non-empty and equally long ({shown})")
                groups.append(list(z.items()))
            continue
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{source}: sweep key {key!r} needs a non-empty list of values, got {values!r}")
        groups.append([(key, values)])
    seen: set[str] = set()
    for group in groups:
        for key, _ in group:
            if key in ("experiment", "sweep", "preset"):
                raise ConfigError(f"{source}: sweep key {key!r} cannot be swept")
            if key in seen:
                raise ConfigError(f"{source}: sweep key {key!r} is given twice")
            seen.add(key)
    return groups


def sweep_keys(spec: ExperimentSpec) -> list[str]:
    """The dotted keys a spec's sweep varies (grid and zipped), in order."""
    return [k for group in _sweep_groups(spec.sweep or {}) for k, _ in group]


#: Most sweep points one command expands (grid × zip, summed over a sweep file's specs); past it the sweep is refused
#: before anything is built. ``PRIVLAB_MAX_SWEEP_POINTS`` raises it.
MAX_SWEEP_POINTS = 10_000


def max_sweep_points() -> int:
    """The sweep-size limit in force (:data:`MAX_SWEEP_POINTS`, or ``PRIVLAB_MAX_SWEEP_POINTS`` when set)."""
    raw = os.environ.get("PRIVLAB_MAX_SWEEP_POINTS", "")
    try:
        return max(1, int(raw)) if raw else MAX_SWEEP_POINTS
    except ValueError:
        raise ConfigError(f"PRIVLAB_MAX_SWEEP_POINTS={raw!r} is not an integer") from None


def count_points(spec: ExperimentSpec) -> int:
    """How many runs ``spec``'s sweep expands to, computed without expanding it."""
    return math.prod(len(group[0][1]) for group in _sweep_groups(spec.sweep)) if spec.sweep else 1


def _check_size(n: int, what: str) -> None:
    limit = max_sweep_points()
    if n > limit:
        raise ConfigError(
            f"{what} expands to {n:,} runs, more than the {limit:,} privlab expands at once; split it into smaller "
            "sweeps (or set PRIVLAB_MAX_SWEEP_POINTS if you really mean it)"
        )


def expand(spec: ExperimentSpec) -> list[ExperimentSpec]:
    """The specs of every sweep point (the spec itself when it has no ``sweep``), each without ``sweep``.

    Raises:
        ConfigError: the sweep has more points than :func:`max_sweep_points` (checked before expanding).
    """
    if not spec.sweep:
        return [spec]
    _check_size(count_points(spec), f"the sweep of {spec.experiment!r}")
    groups = _sweep_groups(spec.sweep)
    base = spec.model_dump(mode="json", exclude={"sweep"})
    # each group contributes one "position": a grid key one of its values, a zipped group one index into its lists
    choices = [[[(k, vals[i]) for k, vals in group] for i in range(len(group[0][1]))] for group in groups]
    out = []
    for combo in itertools.product(*choices):
        data = copy.deepcopy(base)
        assigned = [kv for part in combo for kv in part]
        for k, v in assigned:
            _set_dotted(data, k, v)
        out.append(validate(type(spec), data, f"sweep point {dict(assigned)}"))
    return out


def expand_all(specs: list[ExperimentSpec]) -> list[tuple[ExperimentSpec, ExperimentSpec]]:
    """Every sweep point of every spec, as ``(parent spec, point)`` pairs in order (the total is size-checked first)."""
    _check_size(sum(count_points(s) for s in specs), "the sweep file")
    return [(spec, point) for spec in specs for point in expand(spec)]
