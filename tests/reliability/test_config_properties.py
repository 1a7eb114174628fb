"""Property-based tests of the spec loader: whatever mapping or YAML text comes in, the result is a valid spec or a
:class:`ConfigError` / :class:`FileFormatError` — never another exception, never a hang.

Deterministic (``derandomize=True``), so CI cannot flake; example counts are small (see docs/reliability.md).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privlab.config import ExperimentSpec, spec_hash
from privlab.errors import ConfigError, FileFormatError, PrivlabError
from privlab.examples import example_names, example_path
from privlab.pipelines import PIPELINES, load_preset, preset_names
from privlab.run import load_spec, spec_from_mapping

EXAMPLES = [example_path(n) for n in example_names()]  # the packaged example specs
assert len(EXAMPLES) >= 5, "the packaged examples went missing"
#: single-spec examples (a file with ``specs:`` lists several and is run by ``privlab sweep``)
SINGLE = [p for p in EXAMPLES if "specs" not in (yaml.safe_load(p.read_text("utf-8")) or {})]
EXPERIMENTS = PIPELINES.names()
PRESETS = {e: load_preset(e, "smoke") for e in EXPERIMENTS if "smoke" in preset_names(e)}

PROPS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

NAMES = st.sampled_from(["smoke", "cpu", "paper", "lenet5", "digits", "adam", "laplace", "ue", "dlg", "none", "x"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    NAMES,
)
VALUES = st.recursive(
    SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3), max_leaves=10
)
KEYS = st.one_of(st.sampled_from(["experiment", "preset", "seed", "name", "sweep", "dataset", "model", "train",
                                  "epsilon", "k", "attack", "defense", "protection"]), st.text(max_size=8))  # fmt: skip


def attempt(fn: Any, *args: Any) -> Any:
    """``fn(*args)``, or the :class:`PrivlabError` it raised (any other exception fails the test)."""
    try:
        return fn(*args)
    except PrivlabError as e:
        return e


def _check(result: Any, errors: tuple[type[PrivlabError], ...] = (ConfigError,)) -> None:
    """A refusal is one of ``errors`` with a one-line message; a spec that came back is JSON and hashes (what the store
    and the report rely on)."""
    if isinstance(result, PrivlabError):
        assert isinstance(result, errors), f"{type(result).__name__}: {result}"
        assert str(result) and "\n" not in str(result)
        return
    assert isinstance(result, ExperimentSpec)
    json.dumps(result.model_dump(mode="json"), allow_nan=False)
    assert len(spec_hash(result)) == 64


def _paths(d: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    if isinstance(d, dict):
        for k, v in d.items():
            out.append((*prefix, k))
            out += _paths(v, (*prefix, k))
    return out


@st.composite
def mutated_presets(draw: st.DrawFn) -> dict[str, Any]:
    """A real preset of a real experiment with 1–3 keys replaced by random values, deleted or added."""
    e = draw(st.sampled_from(sorted(PRESETS)))
    d = copy.deepcopy(PRESETS[e])
    d["experiment"] = e
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(d)
        path = draw(st.sampled_from(paths))
        parent = d
        for k in path[:-1]:
            parent = parent[k]
        op = draw(st.sampled_from(["replace", "delete", "add"]))
        if op == "replace":
            parent[path[-1]] = draw(VALUES)
        elif op == "delete" and path[-1] != "experiment":
            del parent[path[-1]]
        else:
            parent[draw(st.text(max_size=6))] = draw(VALUES)
    return d


@PROPS
@given(st.dictionaries(KEYS, VALUES, max_size=6))
def test_random_mappings_give_a_spec_or_a_config_error(data):
    _check(attempt(spec_from_mapping, data))


@PROPS
@given(mutated_presets())
def test_mutated_presets_give_a_spec_or_a_config_error(data):
    _check(attempt(spec_from_mapping, data))


@settings(PROPS, max_examples=60)
@given(st.sampled_from(sorted(PRESETS)), st.data())
def test_wrong_types_at_known_keys_name_the_key(experiment, data):
    """A value of the wrong type at a real key: refused with a message that names that key."""
    d = copy.deepcopy(PRESETS[experiment]) | {"experiment": experiment}
    leaves = [p for p in _paths(d) if not isinstance(_get(d, p), dict) and p[0] not in ("experiment", "name")]
    path = data.draw(st.sampled_from(leaves))
    old = _get(d, path)
    bad = data.draw(st.sampled_from([{"a": 1}, [[1]], "not-a-number", float("nan"), -(10**30)]))
    if bad == old or (isinstance(old, str) and isinstance(bad, str)) or isinstance(old, list):
        return
    _set(d, path, bad)
    result = attempt(spec_from_mapping, d)
    _check(result)
    if isinstance(result, PrivlabError):
        assert str(path[-1]) in str(result)


def _get(d: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        d = d[k]
    return d


def _set(d: Any, path: tuple[Any, ...], value: Any) -> None:
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = value


# -- fuzzing the YAML parser with mutations of the shipped example specs ------------------------------------------

MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "replace", "dup-line", "truncate", "indent"]),
        st.integers(0, 10**6),
        st.sampled_from([*":-[]{}&*!|>#'\"\t\n ,?%@`", "\x00", "é", "0", "-1", ".nan", "!!python/object:os.system",
                         "&a", "*a", "<<: *a", "~", "1e400"]),
    ),
    min_size=1,
    max_size=4,
)  # fmt: skip


def mutate(text: str, ops: list[tuple[str, int, str]]) -> str:
    for op, at, piece in ops:
        i = at % (len(text) + 1)
        lines = text.splitlines(keepends=True) or [""]
        j = at % len(lines)
        if op == "insert":
            text = text[:i] + piece + text[i:]
        elif op == "delete":
            text = text[:i] + text[i + len(piece) :]
        elif op == "replace":
            text = text[:i] + piece + text[i + 1 :]
        elif op == "dup-line":
            text = "".join(lines[: j + 1] + lines[j:])
        elif op == "truncate":
            text = text[:i]
        else:
            text = "".join([*lines[:j], "  " + lines[j], *lines[j + 1 :]])
    return text


@settings(PROPS, max_examples=150)
@given(st.sampled_from(EXAMPLES), MUTATIONS)
def test_fuzzed_example_specs_load_or_fail_cleanly(tmp_path_factory, example, ops):
    path = tmp_path_factory.mktemp("fuzz") / example.name
    path.write_text(mutate(example.read_text("utf-8"), ops), encoding="utf-8")
    _check(attempt(load_spec, path), (ConfigError, FileFormatError))


@pytest.mark.parametrize("example", SINGLE, ids=[p.name for p in SINGLE])
def test_the_unmutated_examples_load(example):
    """Control for the fuzz: every shipped single-spec example is valid before mutation."""
    _check(load_spec(example))


def test_yaml_aliases_cannot_expand_into_a_huge_spec(tmp_path):
    """The alias bomb is refused from the parser's events, before anything is expanded (no hang, no memory)."""
    lines = ["experiment: train", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 12)]  # 10^12 values
    (tmp_path / "bomb.yaml").write_text("\n".join(lines))
    with pytest.raises(FileFormatError, match="more than 100000 YAML values"):
        load_spec(tmp_path / "bomb.yaml")
    # a few honest aliases are fine
    (tmp_path / "ok.yaml").write_text("experiment: train\ntrain: &t {epochs: 2}\nname: x\n")
    assert load_spec(tmp_path / "ok.yaml").train.epochs == 2


def test_unlearnable_protection_name_of_wrong_type_is_a_config_error():
    """Found by the mutation fuzz: `protection: {name: {...}}` hashed a dict inside a validator (TypeError)."""
    d = copy.deepcopy(PRESETS["unlearnable"]) | {"experiment": "unlearnable"}
    d["protection"] = {"name": {"em": 1}}
    assert isinstance(attempt(spec_from_mapping, d), ConfigError)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("experiment: train\nseed: 1\nseed: 2\n", ":3: key 'seed' is given twice"),  # readers disagree on which wins
        ("experiment: train\n? [a, b]\n: 1\n", "not valid YAML"),  # a list as a key
        ("--- \nexperiment: train\n---\nexperiment: mi\n", "not valid YAML"),  # two documents
        ("experiment: train\ntrain: !!binary aGVsbG8=\n", "train"),  # bytes where a mapping belongs
        ("experiment: train\nseed: 2020-01-01\n", "seed"),  # a date
        ("experiment: train\nseed: 1e400\n", "seed"),  # overflows to inf
        ("experiment: train\nseed: !!set {1, 2}\n", "seed"),
    ],
)
def test_odd_yaml(tmp_path, text, match):
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises((ConfigError, FileFormatError), match=match):
        load_spec(tmp_path / "s.yaml")


def test_yaml_safe_dump_of_every_preset_round_trips():
    """Presets are plain YAML: dumping and re-validating gives the same spec hash."""
    for e, d in PRESETS.items():
        a = spec_from_mapping(d | {"experiment": e})
        b = spec_from_mapping(yaml.safe_load(yaml.safe_dump(a.model_dump(mode="json"))))
        assert spec_hash(a) == spec_hash(b)
