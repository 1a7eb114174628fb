"""Every key of every experiment's spec at its boundaries, generated from the pydantic models (docs/reliability.md).

For each registered experiment the test validates its smoke preset, walks the resolved spec's fields (nested
sub-models and the first item of lists of models included, using the class the value really has, so a registry
sub-class's own keys are walked too) and feeds each field values generated from its type — integers 0, −1, 2⁶³,
10³⁰⁸, nan, text; floats 0, −1, 2⁶³, 10³⁰⁸, nan, ±inf, text; text empty, 5 000 characters, with a newline, a number;
names outside a ``Literal``; lists and mappings of the wrong shape or holding nan/2⁶³ — plus an unknown key in every
mapping. Each case is a spec file run through ``privlab run FILE --dry-run --json`` (the spec is loaded and its sweep
expanded; nothing runs) and must either

- load, with the value at that key in the resolved spec (a key is never silently dropped), only finite numbers and
  64-bit integers in it; or
- exit 2 with one ``error:`` line naming the file, the line and the key's dotted path — never a traceback.

nan, ±inf, integers past 64 bits, wrong types, unknown names and unknown keys must be refused. CI runs one value per
field, drawn with ``PRIVLAB_BOUNDARY_SEED`` (default 0); ``pytest -m boundaries_full`` runs them all.

The second test sweeps every key a ``sweep:`` can reach over two valid values and checks that the run each point
makes has that value in its resolved spec and a different spec hash (a sweep over a key that changes nothing would
store the same run twice and skip the second).
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import BaseModel

from privlab.config import ExperimentSpec, spec_hash, validate
from privlab.errors import PrivlabError
from privlab.pipelines import PIPELINES, preset_names
from privlab.run import expand, load_spec, spec_from_mapping

SEED = int(os.environ.get("PRIVLAB_BOUNDARY_SEED", "0"))
BIG = 2**63
NAN, INF = float("nan"), float("inf")
#: keys that choose what the spec is rather than a setting of it (walked for unknown keys only)
SKIP = {("experiment",), ("sweep",), ("reference",)}


@functools.cache
def base_spec(experiment: str) -> ExperimentSpec:
    """The experiment's smoke preset (or its defaults), resolved."""
    preset = "smoke" if "smoke" in preset_names(experiment) else None
    return load_spec(experiment=experiment, preset=preset)


def _strip_optional(ann: Any) -> Any:
    args = typing.get_args(ann)
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return rest[0] if len(rest) == 1 else ann
    return ann


def kind_of(ann: Any) -> str:
    """``int``, ``float``, ``bool``, ``str``, ``literal``, ``list``, ``dict``, ``tuple`` or ``other``."""
    ann = _strip_optional(ann)
    origin = typing.get_origin(ann)
    if origin is Literal:
        return "literal"
    if origin in (list, dict, tuple):
        return origin.__name__
    if ann in (bool, int, float, str):
        return ann.__name__
    return "other"


#: (value, must it be refused?) per kind of field
VALUES: dict[str, list[tuple[Any, bool]]] = {
    "int": [(0, False), (-1, False), (BIG, True), (1e308, True), (NAN, True), ("abc", True), ([1], True)],
    "float": [(0.0, False), (-1.0, False), (float(BIG), False), (1e308, False), (NAN, True), (INF, True),
              (-INF, True), ("abc", True)],
    "bool": [("maybe", True), (2, True), (NAN, True)],
    "str": [("", False), ("x" * 5000, True), ("a\nb", True), (5, True), ([], True)],
    "literal": [("nope", True), (7, True), (NAN, True)],
    "list": [("notalist", True), ([NAN], True), ([BIG], True)],
    "dict": [("notadict", True), ({"k": NAN}, True), ({"k": BIG}, True)],
    "tuple": [("x", True), ([NAN, 1.0], True)],
    "other": [(NAN, True), ({"unknown_key_x": 1}, True)],
}  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One spec file: ``value`` at ``path`` of ``experiment``'s base spec (``path[-1] == UNKNOWN``: a new key)."""

    experiment: str
    path: tuple[Any, ...]
    value: Any
    refuse: bool

    @property
    def dotted(self) -> str:
        return ".".join(str(p) for p in self.path)

    @property
    def id(self) -> str:
        v = self.value
        shown = f"str{len(v)}" if isinstance(v, str) and len(v) > 12 else repr(v)
        return f"{self.experiment}:{self.dotted}={shown}"


UNKNOWN = "unknown_key_x"


def walk(obj: BaseModel, prefix: tuple[Any, ...] = ()) -> typing.Iterator[tuple[tuple[Any, ...], Any]]:
    """``(path, annotation)`` of every field below ``obj`` (annotation None: a mapping, for the unknown key)."""
    yield (*prefix, UNKNOWN), None
    for name, field in type(obj).model_fields.items():
        path = (*prefix, name)
        if path in SKIP:
            continue
        value = getattr(obj, name)
        yield path, field.annotation
        if isinstance(value, BaseModel):
            yield from walk(value, path)
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            yield from walk(value[0], (*path, 0))


def all_cases() -> list[Case]:
    """Every generated case of every experiment."""
    out: list[Case] = []
    for e in PIPELINES.names():
        for path, ann in walk(base_spec(e)):
            if ann is None:
                out.append(Case(e, path, 1, True))
                continue
            values = VALUES[kind_of(ann)]
            if kind_of(ann) == "list" and typing.get_args(_strip_optional(ann)) == (float,):
                values = [(v, refuse and v != [BIG]) for v, refuse in values]  # 2⁶³ is a finite float
            if path == ("preset",):
                values = [("nope", True)]
            out += [Case(e, path, v, refuse) for v, refuse in values]
    return out


CASES = all_cases()


def sampled() -> list[Any]:
    """One value per field (seeded) in CI; every value under ``-m boundaries_full``."""
    rng = random.Random(SEED)
    by_field: dict[tuple[str, tuple[Any, ...]], list[Case]] = {}
    for c in CASES:
        by_field.setdefault((c.experiment, c.path), []).append(c)
    params = []
    for cases in by_field.values():
        chosen = rng.choice(cases)
        for c in cases:
            marks = [] if c is chosen else [pytest.mark.boundaries_full]
            params.append(pytest.param(c, id=c.id, marks=marks))
    return params


def _set(data: Any, path: tuple[Any, ...], value: Any) -> None:
    for p in path[:-1]:
        data = data[p]
    data[path[-1]] = value


def _get(data: Any, path: tuple[Any, ...], attr: bool = False) -> Any:
    for p in path:
        data = getattr(data, p) if attr else data[p]
    return data


def _with(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(data))
    _set(out, path, value)
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _finite(data: Any) -> None:
    """Only finite numbers and 64-bit integers (what the store's JSON and SQLite hold)."""
    json.dumps(data, allow_nan=False)
    if isinstance(data, bool):
        return
    if isinstance(data, int):
        assert abs(data) < BIG, data
    elif isinstance(data, dict):
        for v in data.values():
            _finite(v)
    elif isinstance(data, list):
        for v in data:
            _finite(v)


@pytest.fixture(autouse=True, scope="module")
def _one_click_command() -> typing.Iterator[None]:
    """Build the CLI's Click command once for the module (CliRunner rebuilds it per call: half the time here)."""
    import typer.testing

    original = typer.testing._get_command
    typer.testing._get_command = functools.cache(original)
    yield
    typer.testing._get_command = original


def test_the_walk_covers_every_experiment_and_kind() -> None:
    """The generator reaches every experiment, nested sub-models and list items (so it cannot pass by finding none)."""
    experiments = {c.experiment for c in CASES if not c.experiment.startswith("test-")}
    # experiments that other tests register on the fly (tests/run/sleepy_plugin.py: "test-…") are not the product's
    assert experiments == {n for n in PIPELINES.names() if not n.startswith("test-")}
    fields = {(c.experiment, c.path) for c in CASES}
    assert len(fields) >= 300, len(fields)
    assert ("train", ("train", "epochs")) in fields
    assert any(len(p) >= 3 for _, p in fields)  # sub-model of a sub-model (e.g. victim.train.epochs)
    assert any(0 in p for _, p in fields)  # an item of a list of models (e.g. attacks.0.attack)
    assert len(CASES) >= 1000, len(CASES)


@pytest.mark.parametrize("case", sampled())
def test_spec_key_boundary(case: Case, tmp_path: Path, cli: Any) -> None:
    """One value at one key through ``privlab run FILE --dry-run --json``: loads with that value or a clear error."""
    data = base_spec(case.experiment).model_dump(mode="json", exclude={"sweep"})
    _set(data, case.path, case.value)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False, width=10_000), encoding="utf-8")
    r = cli.invoke("run", spec, "--dry-run", "--json")
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    if r.exit_code == 0:
        assert not case.refuse, f"{case.id} was accepted"
        points = json.loads(r.stdout)["points"]
        assert points, r.stdout
        for p in points:
            _finite(p["spec"])
            assert _same(_get(p["spec"], case.path), case.value), (case.id, _get(p["spec"], case.path))
        return
    assert r.exit_code == 2, (r.exit_code, r.output[-2000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr[-2000:]
    msg = lines[0]
    assert case.dotted in msg or (case.path == ("preset",) and "preset 'nope'" in msg), (case.id, msg)
    if case.path != ("preset",):
        assert f"{spec}:" in msg, msg  # file:line


#: registered names to try where a text key is checked against a registry at load (attack, defence, estimator …)
NAMES = ["idlg", "inverting-gradients", "prune", "laplace", "gaussian", "rr", "ksg", "gaussian-copula", "em",
         "confidence", "entropy", "lenet5", "lenet_dlg", "digits", "mnist", "none", "cosine"]  # fmt: skip


def _alternatives(value: Any, ann: Any) -> list[Any]:
    """Valid-looking values other than ``value`` for a field of annotation ``ann``."""
    kind = kind_of(ann)
    if kind == "bool":
        return [not value]
    if kind == "literal":
        return [c for c in typing.get_args(_strip_optional(ann)) if c != value]
    if kind == "int":
        return [1, 2] if value is None else [value + 1, value - 1, 1]
    if kind == "float":
        return [0.5, 0.25] if value is None else [value / 2, value * 0.99, value * 2 + 0.5, 0.5, 0.0]
    if kind == "str":
        return ([] if value is None else [value + "_b"]) + ["x", *NAMES]
    if kind == "list":
        return [value[:-1], value + value[:1], []] if value else [[1], ["x"], [0.5]]
    if kind == "dict":
        return [{}] if value else [{"a": 1}]
    if kind == "tuple":
        return [list(value)[::-1], [0.5, 1.5]] if value else []
    return [None] if value is not None else [{}]  # an optional sub-model: its defaults


def sweep_keys(experiment: str) -> list[tuple[tuple[str, ...], Any]]:
    """Every key a ``sweep:`` can set (reached through mappings only; sub-models by their own keys) with its
    annotation."""
    spec = base_spec(experiment)
    return [(p, a) for p, a in walk(spec) if a is not None and all(isinstance(x, str) for x in p)
            and p[0] != "preset" and not isinstance(_get(spec, p, attr=True), BaseModel)]  # fmt: skip


@pytest.mark.parametrize("experiment", PIPELINES.names())
def test_every_sweepable_key_changes_the_resolved_spec(experiment: str) -> None:
    """Sweep each key over (its value, another valid value): the second run's spec holds the new value and has
    another spec hash; only the free ``name`` label leaves the hash alone."""
    base = base_spec(experiment)
    data = base.model_dump(mode="json", exclude={"sweep"})
    checked, untested, canonical = 0, [], []
    for path, ann in sweep_keys(experiment):
        old = _get(data, path)
        dotted = ".".join(path)
        for alt in _alternatives(old, ann):
            if _same(alt, old):
                continue
            try:
                parent = spec_from_mapping({**data, "sweep": {dotted: [old, alt]}})
                points = expand(parent)
            except PrivlabError:
                continue  # not a valid value here: try the next one
            break
        else:
            untested.append(dotted)
            continue
        assert len(points) == 2
        first, second = (p.model_dump(mode="json") for p in points)
        assert _same(_get(first, path), old), dotted
        # the sweep point is the resolved spec written with that value (validators that canonicalise apply alike) …
        direct = validate(type(base), _with(data, path, alt))
        assert spec_hash(direct) == spec_hash(points[1]), dotted
        if path == ("name",):
            assert spec_hash(points[0]) == spec_hash(points[1])
        elif spec_hash(points[0]) == spec_hash(points[1]):
            # … and only a validator that maps the value back to the same run leaves the hash alone
            assert first == second, dotted
            canonical.append(dotted)
        elif not _same(_get(second, path), alt):
            canonical.append(dotted)  # another run, but rewritten (ldp: noise=false → mechanism none)
        checked += 1
    assert checked >= 10, (checked, untested)
    # names (model, data set) are checked against their registries at load; NAMES holds a second valid one of
    # each, so few keys are left without a valid second value
    assert len(untested) <= max(2, checked // 10), untested
    assert len(canonical) <= 2, canonical
