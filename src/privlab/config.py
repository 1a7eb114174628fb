"""Specs: pydantic models loaded from YAML, with errors that name the bad key, its line and the fix.

A spec file names an ``experiment`` (a registered pipeline) and that pipeline's settings::

    experiment: train
    preset: smoke          # optional: start from pipelines/presets/train.smoke.yaml
    seed: 0
    dataset: {name: digits}
    model: lenet5
    train: {epochs: 5, lr: 0.001}

Keys given in the file override the preset's. ``sweep:`` (a mapping of dotted keys to lists of values) expands
one spec into a grid of runs, see :func:`privlab.run.sweep.expand`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from privlab.errors import ConfigError, DataMissingError, FileFormatError, UnknownNameError

__all__ = [
    "ExperimentSpec",
    "Reference",
    "Spec",
    "ambiguous_scalar",
    "deep_merge",
    "format_validation_error",
    "load_yaml",
    "parse_overrides",
    "parse_yaml",
    "resolve_named_config",
    "spec_hash",
    "validate",
]

S = TypeVar("S", bound=BaseModel)


#: Largest integer a spec may hold (the results store keeps specs as JSON in SQLite, whose integers are 64-bit).
MAX_SPEC_INT = 2**63 - 1
#: Longest text a spec may hold (names, paths and labels; a report shows them).
MAX_SPEC_TEXT = 4096


#: how a validator's message names a key below the field it checks ("name: unknown defence …", "params.k: …")
_SUBKEY = r"([A-Za-z0-9_][\w.-]*): "


def _check_plain(value: Any, depth: int = 0) -> Any:
    """Refuse integers outside 64 bits, non-finite floats, and text that is huge or holds control characters, also
    inside lists and mappings (``dict[str, Any]`` parameters are not checked by their annotation)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if abs(value) > MAX_SPEC_INT:
            raise ValueError("integer outside the 64-bit range (|x| ≤ 2^63 − 1); a spec value this large is a typo")
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("Input should be a finite number")
    elif isinstance(value, str):
        if len(value) > MAX_SPEC_TEXT:
            raise ValueError(f"text of {len(value)} characters; at most {MAX_SPEC_TEXT}")
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("text holds a control character (newline, tab, …); use plain one-line text")
    elif isinstance(value, (list, tuple, dict)) and depth < 32:
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for k, v in items:
            try:
                _check_plain(k, depth + 1)
                _check_plain(v, depth + 1)
            except ValueError as e:  # name the key inside: "iterations: Input should be a finite number"
                raise ValueError(f"{k}{'.' if re.match(_SUBKEY, str(e)) else ': '}{e}") from None
    return value


class Spec(BaseModel):
    """Base of every config: unknown keys are refused; only names and finite numbers, so every spec is JSON.

    Every field also passes :func:`_check_plain`: integers fit 64 bits, floats are finite (also inside free
    ``dict``/``list`` fields), text is at most :data:`MAX_SPEC_TEXT` characters without control characters.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _plain_values(cls, value: Any) -> Any:
        return _check_plain(value)


class Reference(Spec):
    """One published value of one metric (compared with the run's value by :mod:`privlab.reference`)."""

    value: float = Field(description="the published value, in the unit privlab logs the metric in")
    source: str = Field(min_length=1, max_length=300, description="where it is published: paper, table or figure")
    tolerance: float | None = Field(default=None, ge=0, description="absolute tolerance, in the metric's unit")
    rel_tolerance: float | None = Field(default=None, ge=0, description="tolerance as a fraction of |value|")
    note: str | None = Field(default=None, max_length=500, description="setting differences and why")

    @model_validator(mode="after")
    def _one_tolerance(self) -> Reference:
        if self.tolerance is None and self.rel_tolerance is None:
            raise ConfigError(
                f"reference of value {self.value} ({self.source}) needs a tolerance or rel_tolerance: "
                "how far a reproduction may be from the published value"
            )
        return self

    def allowed(self) -> float:
        """The largest |measured − published| counted as within tolerance (metric units)."""
        return max(self.tolerance or 0.0, (self.rel_tolerance or 0.0) * abs(self.value))


class ExperimentSpec(Spec):
    """Keys common to every experiment spec; each pipeline subclasses it with its own settings."""

    experiment: str = Field(description="registered pipeline name (privlab experiments lists them)")
    name: str | None = Field(default=None, description="free label shown in reports; not part of the spec hash")
    seed: int = Field(default=0, ge=0, description="seed of every random draw of the run")
    preset: str | None = Field(default=None, description="preset the spec starts from (smoke, cpu, paper)")
    sweep: dict[str, Any] | None = Field(
        default=None,
        description="dotted key → list of values; the spec expands to the grid of all combinations. "
        "A 'zip' entry (a mapping of keys → equally long lists, or a list of such mappings) varies its keys together",
    )
    reference: dict[str, Reference] = Field(
        default_factory=dict,
        description="metric name → published value, source and tolerance (shown beside the measured value in "
        "`privlab runs show` and the report's Reproduction section); not part of the spec hash",
    )

    #: top-level keys added to an experiment after runs were recorded: left out of :func:`spec_hash` while they hold
    #: their default (the behaviour before they existed), so those runs keep their hash
    hash_omit_defaults: ClassVar[tuple[str, ...]] = ()


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every mapping key (for error messages) and reads ``1e-3`` as a number
    (as YAML 1.2 does; YAML 1.1 wants ``1.0e-3`` and PyYAML alone would read ``1e-3`` as text)."""


_LineLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9]+[eE][-+]?[0-9]+$"), list("-+0123456789")
)


#: Limits on a spec file's YAML: values once aliases are expanded (an "exponential entity" file is refused instead
#: of expanding) and nesting depth. Real specs hold a few hundred values, nested a few levels.
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 64


def _check_yaml_size(text: str, source: str) -> None:
    """Refuse YAML whose expanded size or depth no spec has, from the parser's events (iterative, no expansion).

    Raises:
        FileFormatError: more than :data:`MAX_YAML_NODES` values with aliases expanded, or nesting deeper than
            :data:`MAX_YAML_DEPTH`. yaml.YAMLError: not valid YAML (the caller words it).
    """
    sizes: dict[str, int] = {}
    stack: list[list[Any]] = [[None, 0]]  # [anchor, values inside] per open collection
    for event in yaml.parse(text, Loader=_LineLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            stack.append([event.anchor, 1])
            if len(stack) > MAX_YAML_DEPTH + 1:
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise FileFormatError(f"{source}:{line}: values nested more than {MAX_YAML_DEPTH} levels; flatten it")
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            anchor, n = stack.pop()
            if anchor is not None:
                sizes[anchor] = n
        elif isinstance(event, yaml.ScalarEvent):
            n = 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            n = sizes.get(event.anchor, 1)
        else:
            continue
        stack[-1][1] += n
        if stack[-1][1] > MAX_YAML_NODES or sum(c[1] for c in stack) > MAX_YAML_NODES:
            raise FileFormatError(
                f"{source}: more than {MAX_YAML_NODES} YAML values once aliases are expanded; a spec holds names "
                "and numbers only (remove the repeated &anchor/*alias references)"
            )


#: plain (unquoted) scalars that a YAML 1.1 reader (PyYAML, privlab) and a YAML 1.2 reader (ruamel, most other
#: languages) read differently: (pattern, what 1.1 makes of it, the fix)
_AMBIGUOUS = [
    (re.compile(r"(y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)"), "a yes/no switch in YAML 1.1 but text in "
     "YAML 1.2", "write true or false for a switch, or quote it ('{v}') for the text"),
    (re.compile(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?"), "a base-60 number in YAML 1.1 (1:30 is 90) but "
     "text in YAML 1.2", "quote it ('{v}') for the text, or write the number"),
    (re.compile(r"[-+]?0[0-9_]+"), "an octal number in YAML 1.1 (010 is 8) but decimal in YAML 1.2",
     "write the number without leading zeros, or quote it ('{v}') for the text"),
    (re.compile(r"[-+]?0b[01_]+"), "a binary number in YAML 1.1 but text in YAML 1.2",
     "write the number in decimal, or quote it ('{v}') for the text"),
    (re.compile(r"[-+]?[0-9][0-9]*(_[0-9_]*)+(\.[0-9_]*)?([eE][-+]?[0-9]+)?"), "a number in YAML 1.1 (the _ is "
     "dropped) but text in YAML 1.2", "write the number without '_', or quote it ('{v}') for the text"),
]  # fmt: skip
_MERGE_TAG = "tag:yaml.org,2002:merge"


def ambiguous_scalar(value: str) -> str | None:
    """Why an unquoted YAML scalar reads two ways, and how to write it; None when it reads one way only."""
    for pattern, what, fix in _AMBIGUOUS:
        if pattern.fullmatch(value):
            return f"{value!r} is {what}; {fix.format(v=value)}"
    return None


def _check_node(node: yaml.Node, source: str) -> None:
    """Refuse what a YAML reader could read two ways, with its line (iterative): a key given twice, a merge key
    (``<<``), an unquoted yes/no/on/off/y/n (y and n as keys are allowed: PyYAML and YAML 1.2 read them as text),
    base-60 (``1:30``), octal-looking (``010``), binary or ``_``-grouped number."""
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        cur, is_key = stack.pop()
        if isinstance(cur, yaml.ScalarNode):
            why = ambiguous_scalar(cur.value) if cur.style is None and isinstance(cur.value, str) else None
            if is_key and cur.value in ("y", "Y", "n", "N"):
                why = None  # a key named n (mi's sample count): text to PyYAML and YAML 1.2 alike
            if why:
                raise FileFormatError(f"{source}:{cur.start_mark.line + 1}: {why}")
        elif isinstance(cur, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in cur.value:
                line = key_node.start_mark.line + 1
                if key_node.tag == _MERGE_TAG:
                    raise FileFormatError(
                        f"{source}:{line}: merge keys ('<<: *anchor') are not allowed: readers disagree on which "
                        "value wins; write the keys out"
                    )
                if isinstance(key_node, yaml.ScalarNode):
                    if key_node.value in seen:
                        raise FileFormatError(
                            f"{source}:{line}: key {key_node.value!r} is given twice (first on line "
                            f"{seen[key_node.value]}); YAML readers keep one or the other: keep one"
                        )
                    seen[key_node.value] = line
                stack += [(key_node, True), (value_node, False)]
        elif isinstance(cur, yaml.SequenceNode):
            stack += [(item, False) for item in cur.value]


def _key_lines(node: yaml.Node, prefix: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    """Record the 1-based line of every mapping key and sequence item below ``node`` (iterative)."""
    stack: list[tuple[yaml.Node, tuple[Any, ...]]] = [(node, prefix)]
    while stack:
        cur, path = stack.pop()
        if isinstance(cur, yaml.MappingNode):
            for key_node, value_node in cur.value:
                if not isinstance(key_node.value, str):  # a complex key; safe_load reports it
                    continue
                sub = (*path, key_node.value)
                out[sub] = key_node.start_mark.line + 1
                stack.append((value_node, sub))
        elif isinstance(cur, yaml.SequenceNode):
            for i, item in enumerate(cur.value):
                sub = (*path, i)
                out[sub] = item.start_mark.line + 1
                stack.append((item, sub))


def load_yaml(path: str | Path) -> tuple[dict[str, Any], dict[tuple[Any, ...], int]]:
    """Read a YAML mapping safely (``yaml.SafeLoader``; no Python objects) and the line of each key.

    Returns:
        ``(data, lines)`` where ``lines[("train", "epochs")]`` is the 1-based line of that key.

    Raises:
        DataMissingError: the file does not exist. FileFormatError: not valid YAML or not a mapping.
    """
    p = Path(path)
    if not p.is_file():
        raise DataMissingError(f"spec file not found: {p} (check the path; `privlab experiments` lists presets)")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise FileFormatError(f"cannot read spec file {p}: {e}") from None
    return parse_yaml(text, p)


def parse_yaml(text: str, source: str | Path) -> tuple[dict[str, Any], dict[tuple[Any, ...], int]]:
    """:func:`load_yaml` of text read from ``source`` (named in the messages); also used for the presets.

    Raises:
        FileFormatError: not valid YAML, not a mapping, or something two YAML readers read differently.
    """
    p = source
    lines: dict[tuple[Any, ...], int] = {}
    try:
        _check_yaml_size(text, str(p))  # before anything expands aliases or recurses
        loader = _LineLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _check_node(node, str(p))
                _key_lines(node, (), lines)
            data = loader.construct_document(node) if node is not None else None  # one parse, SafeLoader's types
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        raise FileFormatError(_yaml_problem(p, e)) from None
    except RecursionError:
        raise FileFormatError(f"{p}: values nested too deeply to be a spec; flatten it") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FileFormatError(f"{p}: a spec must be a YAML mapping (key: value), got {type(data).__name__}")
    return data, lines


def _yaml_problem(path: str | Path, err: yaml.YAMLError) -> str:
    """One line for a YAML error: file, line, what the parser expected."""
    mark = getattr(err, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
    context, problem = getattr(err, "context", None), getattr(err, "problem", None)
    text = "; ".join(x for x in (context, problem) if x) or " ".join(str(err).split())
    if "constructor for the tag" in text:
        text += " (a spec holds names and numbers only; Python tags are refused, never run)"
    return f"{where}: not valid YAML: {text[:300]}"


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base`` (mappings merge, everything else replaces)."""
    out = dict(base)
    for k, v in override.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Turn ``["train.epochs=3", "model=lenet5"]`` into a nested mapping; values are parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE (e.g. train.epochs=3), got {item!r}")
        key, raw = item.split("=", 1)
        why = ambiguous_scalar(raw.strip())
        if why:
            raise ConfigError(f"--set {item!r}: {why}")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except (yaml.YAMLError, RecursionError):
            value = raw
        cur = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            cur = cur.setdefault(part, {})
            if not isinstance(cur, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is set twice, once as a value")
        cur[parts[-1]] = value
    return out


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names allowed at ``loc`` (the mapping that holds the bad key) in ``model``."""
    cur: Any = model
    for part in loc:
        fields = getattr(cur, "model_fields", None)
        if fields is None or part not in fields:
            return []
        ann = fields[part].annotation
        cur = next(
            (a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)), ann
        )
    fields = getattr(cur, "model_fields", None)
    return list(fields) if fields else []


def format_validation_error(
    err: ValidationError, model: type[BaseModel], source: str, lines: Mapping[tuple[Any, ...], int] | None = None
) -> str:
    """One readable message for every problem of a pydantic ``ValidationError``: key path, line, allowed, got."""
    lines = lines or {}
    problems = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        line = next((lines[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in lines), None)
        where = f"{source}:{line}" if line else source
        if e["type"] == "extra_forbidden":
            allowed = _fields_at(model, loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            problems.append(f"{where}: unknown key {dotted!r}.{hint} Allowed here: {', '.join(allowed)}")
        elif e["type"] == "missing":
            problems.append(f"{where}: missing required key {dotted!r}")
        else:
            got = e.get("input")
            got_s = json.dumps(got, default=str) if not isinstance(got, dict) else "a mapping"
            if len(got_s) > 60:
                got_s = got_s[:57] + "..."
            msg = e["msg"].removeprefix("Value error, ")
            sub = re.match(_SUBKEY, msg)  # a validator naming a key below this one ('name: unknown …')
            if sub and e["type"] == "value_error":
                dotted, msg = f"{dotted}.{sub.group(1)}", msg[sub.end() :]
                got_s = ""  # the input is the mapping above the key; the message says what is wrong
            problems.append(f"{where}: {dotted}: {msg}" + (f" (got {got_s})" if got_s else ""))
    return "; ".join(problems)


def validate(
    model: type[S], data: Mapping[str, Any], source: str = "spec", lines: Mapping[tuple[Any, ...], int] | None = None
) -> S:
    """Validate ``data`` into ``model``; every problem at once in one :class:`ConfigError`."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, model, source, lines)) from None


def spec_hash(spec: BaseModel) -> str:
    """SHA-256 (hex) of the spec's canonical JSON, without the free ``name`` label, ``sweep``, ``reference`` and the
    keys of the class's ``hash_omit_defaults`` that hold their default.

    Two specs that would run the same computation have the same hash; a finished hash is skipped on re-run.
    """
    fields = type(spec).model_fields
    late = {k for k in getattr(spec, "hash_omit_defaults", ()) if k in fields and getattr(spec, k) == fields[k].default}
    data = spec.model_dump(mode="json", exclude={"name", "sweep", "reference", *late})
    canon = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canon.encode()).hexdigest()


def resolve_named_config(
    value: Any,
    *,
    base: type[S],
    lookup: Callable[[str], type[S]],
    field: str,
    default: str,
    example: str,
    as_field: bool = False,
) -> S:
    """The config of a component chosen by ``name`` from a registry (a gradient defence, a noise protection …).

    Args:
        value: a mapping ``{"name": …, <settings>}``, None (the ``default`` component) or a ``base`` instance.
        lookup: name → the component's config class (raises UnknownNameError on a miss).
        field: the spec field (``defense``, ``protection``) for messages; example: a valid mapping, for messages.
        as_field: validating inside a spec: pydantic's own errors, so their location reads from the spec's root
            (``defense.sigma …``) and an unknown name reads ``defense.name: unknown …``.

    Raises:
        UnknownNameError: unknown name (outside a spec). ConfigError: a setting the component does not have, a bad
            value, or not a mapping.
    """
    if isinstance(value, base):
        return value
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(f"{field}: expected a mapping like {example}, got {value!r}")
    name = value.get("name", default)
    if not isinstance(name, str):
        raise ConfigError(f"{'' if as_field else field + ': '}name: must be a string, got {name!r}")
    try:
        cls = lookup(name)
    except UnknownNameError as e:
        if not as_field:
            raise
        raise ConfigError(f"name: {e}") from None
    if not as_field:
        return validate(cls, {**value, "name": name}, field)
    return cls.model_validate({**value, "name": name})
