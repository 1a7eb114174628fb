"""The spec loader refuses YAML that two readers could read two ways, naming file:line and how to write it.

PyYAML (privlab) reads YAML 1.1: unquoted ``on``/``yes``/``no``/``off`` are booleans, ``1:30`` is 90 (base 60),
``010`` is 8 (octal), ``1_000`` is 1000; a YAML 1.2 reader (and a person) reads text or 10. A key given twice keeps
the last value in PyYAML and is an error elsewhere; ``<<:`` merge keys are a YAML 1.1 extension. Each is refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from privlab.config import load_yaml, parse_overrides
from privlab.errors import ConfigError, FileFormatError
from privlab.examples import example_names, example_path
from privlab.pipelines import PIPELINES, load_preset, preset_names
from privlab.run import load_specs

HEAD = "experiment: train\npreset: smoke\ntrain:\n"

# (lines after HEAD, line of the problem, words of the message)
REFUSED = [
    ("  nesterov: on\n", 4, "'on' is a yes/no switch"),
    ("  nesterov: Off\n", 4, "quote it ('Off')"),
    ("  nesterov: yes\n", 4, "write true or false"),
    ("  nesterov: NO\n", 4, "yes/no switch"),
    ("  optimizer: y\n", 4, "'y' is a yes/no switch"),
    ("  optimizer: n\n", 4, "'n' is a yes/no switch"),
    ("  milestones: [1, on]\n", 4, "'on'"),
    ("  on: 1\n", 4, "'on' is a yes/no switch"),
    ("  epochs: 1:30\n", 4, "base-60 number in YAML 1.1 (1:30 is 90)"),
    ("  lr: 1:30.5\n", 4, "base-60"),
    ("  epochs: 010\n", 4, "octal number in YAML 1.1 (010 is 8)"),
    ("  epochs: -007\n", 4, "octal"),
    ("  epochs: 0b11\n", 4, "binary number"),
    ("  epochs: 1_000\n", 4, "the _ is dropped"),
    ("  epochs: 2\n  lr: 0.1\n  epochs: 3\n", 6, "key 'epochs' is given twice (first on line 4)"),
    ("  base: &b {epochs: 2}\n  <<: *b\n", 5, "merge keys"),
]


def _spec(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "spec.yaml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(("body", "line", "words"), REFUSED, ids=[r[0].strip() for r in REFUSED])
def test_ambiguous_yaml_is_refused_with_its_line(tmp_path: Path, body: str, line: int, words: str, cli) -> None:
    p = _spec(tmp_path, HEAD + body)
    with pytest.raises(FileFormatError) as e:
        load_yaml(p)
    assert str(e.value).startswith(f"{p}:{line}: "), str(e.value)
    assert words in str(e.value)
    msg = cli.error("run", p, "--dry-run")  # through the CLI: exit 2, one line
    assert msg.startswith(f"{p}:{line}: ")


def test_duplicate_top_level_key_and_in_a_sweep_file(tmp_path: Path) -> None:
    p = _spec(tmp_path, "experiment: train\nseed: 1\nseed: 2\n")
    with pytest.raises(FileFormatError, match=r":3: key 'seed' is given twice \(first on line 2\)"):
        load_yaml(p)
    p = _spec(tmp_path, "specs:\n  - {experiment: train, preset: smoke, seed: 1, seed: 2}\n")
    with pytest.raises(FileFormatError, match=r":2: key 'seed' is given twice"):
        load_specs(p)


@pytest.mark.parametrize(
    ("body", "key", "value"),
    [
        ("  nesterov: true\n", "nesterov", True),
        ("  optimizer: 'on'\n", "optimizer", "on"),
        ('  optimizer: "n"\n', "optimizer", "n"),
        ("  epochs: 10\n", "epochs", 10),
        ("  lr: 1e-3\n", "lr", 0.001),  # a number, as in YAML 1.2 (PyYAML alone reads text)
        ("  lr: 0.5\n", "lr", 0.5),
        ("  optimizer: '1:30'\n", "optimizer", "1:30"),
        ("  optimizer: '010'\n", "optimizer", "010"),
        ("  0: 1\n", 0, 1),
    ],
)
def test_the_unambiguous_forms_load(tmp_path: Path, body: str, key: object, value: object) -> None:
    data, _ = load_yaml(_spec(tmp_path, HEAD + body))
    got = data["train"][key]
    assert got == value and type(got) is type(value)


def test_a_key_named_n_is_text(tmp_path: Path) -> None:
    """mi's sample count is the key ``n``: PyYAML and YAML 1.2 read it as text, so it stays allowed."""
    data, _ = load_yaml(_spec(tmp_path, "experiment: mi\nn: 200\nsweep:\n  n: [100, 200]\n"))
    assert data["n"] == 200 and data["sweep"] == {"n": [100, 200]}


def test_set_refuses_ambiguous_values() -> None:
    with pytest.raises(ConfigError, match=r"--set 'train.nesterov=yes': 'yes' is a yes/no switch"):
        parse_overrides(["train.nesterov=yes"])
    with pytest.raises(ConfigError, match="octal"):
        parse_overrides(["train.epochs=010"])
    assert parse_overrides(["train.nesterov=true", "name='on'"]) == {"train": {"nesterov": True}, "name": "on"}


def test_every_example_and_preset_still_loads() -> None:
    n = 0
    for name in example_names():
        assert load_specs(example_path(name))
        n += 1
    for e in PIPELINES.names():
        for preset in preset_names(e):
            assert isinstance(load_preset(e, preset), dict)
            n += 1
    assert n >= 30, n
