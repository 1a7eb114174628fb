"""Every option of every command at its boundaries, generated from the Typer app itself (docs/reliability.md).

The test walks the CLI (every command, every option, every argument) and feeds each parameter values generated from
its type: integers at 0, −1, 2⁶³, 10¹²; floats at nan, ±inf, 10⁻³²⁰, 10³⁰⁸; strings empty, 1 MB long, with a
newline, with ``..``; paths missing, a directory, a fifo, empty. The rest of the command line is a small valid call
(:data:`BASE`), so the value under test is what decides the outcome. Every call must end within :data:`TIME_LIMIT_S`
seconds in exit 0 (with no non-finite number in its ``--json`` output and nothing written outside ``tmp_path``) or
exit 2 with one ``error:`` line (or the argument parser's usage box); never a traceback, exit 1 or a hang.

A new option or command is covered without editing this file. CI runs one value per parameter, drawn with the seed
``PRIVLAB_BOUNDARY_SEED`` (default 0); ``pytest -m boundaries_full`` runs every value of every parameter. With
``PRIVLAB_CATALOGUE=FILE`` set, each case appends ``{"id", "outcome", "message"}`` to FILE (the docs' counts).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import re
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from privlab.cli import app

TIME_LIMIT_S = int(os.environ.get("PRIVLAB_BOUNDARY_TIMEOUT", "60"))
SEED = int(os.environ.get("PRIVLAB_BOUNDARY_SEED", "0"))

INTS = ["0", "-1", str(2**63), str(10**12)]
FLOATS = ["nan", "inf", "-inf", "1e-320", "1e308"]
STRINGS = ["", "x" * (1 << 20), "a\nb", "../.."]
PATHS = ["<missing>", "<dir>", "<fifo>", "<empty>", "", "a\nb"]

# A small valid call of each command, its arguments first (placeholders in <> are made per test); a command not
# listed gets its required parameters from the generated values, so a new command is still walked. Heavy commands
# are sized down here.
BASE: dict[str, list[str]] = {
    "bench": ["--dir", "<tmp>/bench", "--repeats", "1"],
    "run": ["<train.yaml>", "--out", "<tmp>/o", "--quiet"],
    "train": ["--epochs", "1", "--limit", "64", "--out", "<tmp>/o", "--quiet"],
    "invert": ["--iterations", "1", "--resize", "8", "--metrics", "mse", "--out", "<tmp>/o", "--quiet"],
    "report": ["<store>"],
    "similarity": ["<pairs>"],
    "sweep": ["<train.yaml>", "--out", "<tmp>/o", "--quiet", "--workers", "1"],
    "ldp budget": ["-e", "1"],
    "audit dp": ["--preset", "smoke", "--out", "<tmp>/o", "--quiet"],
    "ldp privatize": ["<images.npy>", "<tmp>/out.npy", "-m", "laplace", "-e", "1"],
    "mi estimate": ["<x.npy>", "<z.npy>"],
    "mi calibrate": ["--n", "200", "--estimators", "gaussian", "--max-dim", "2", "--quiet"],
    "runs list": ["--out", "<store>"],
    "runs show": ["r1", "--out", "<store>"],
    "runs export": ["--out", "<store>", "--to", "<tmp>/export.json"],
    "semsim train": [
        "--manifest",
        "<manifest>",
        "--out",
        "<tmp>/sem.safetensors",
        "--epochs",
        "1",
        "--width",
        "1",
        "--input-size",
        "8",
        "--quiet",
    ],
    "semsim score": ["<pairs>", "--model", "<semsim>"],
    "semsim agreement": ["--manifest", "<manifest>", "--scores", "<scores.csv>", "--n-boot", "10"],
    "semsim annotate": ["<pairs>", "--port", "0"],
    "semsim import": ["<pairs>"],
    "semsim proxy": ["--out", "<tmp>/proxy", "--preset", "smoke", "--quiet"],
}
# Commands whose every valid call runs for long (whole pipelines) are walked only under the full marker.
HEAVY = {"semsim proxy", "bench"}


@dataclass(frozen=True)
class Case:
    command: str
    param: str  # the parameter's name
    flag: str | None  # its option string, None for an argument
    index: int  # the argument's position among the command's arguments
    value: str

    @property
    def id(self) -> str:
        shown = self.value if len(self.value) < 20 else f"{self.value[:8]}…({len(self.value)} chars)"
        return f"{self.command} {self.flag or self.param}={shown!r}"


def commands() -> Iterator[tuple[str, Any]]:
    """``(path, click command)`` of every leaf command of the app."""
    root = typer.main.get_command(app)

    def walk(cmd: Any, path: list[str]) -> Iterator[tuple[str, Any]]:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in sorted(subs.items()):
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path), cmd

    yield from walk(root, [])


def values_for(param: Any) -> list[str]:
    """Boundary values of one parameter, from its type."""
    if getattr(param, "is_flag", False):
        return ["<flag>"]
    t = str(param.bare_type()).lower()
    if "int" in t:
        return INTS
    if "float" in t:
        return FLOATS
    if "path" in t:
        return PATHS
    return STRINGS


def all_cases() -> list[Case]:
    out = []
    for path, cmd in commands():
        args = [p for p in cmd.params if p.param_type_name == "argument"]
        for p in cmd.params:
            if p.name in ("help", "json_out"):
                continue
            flag = None if p.param_type_name == "argument" else max(p.opts, key=len)
            idx = args.index(p) if flag is None else -1
            out += [Case(path, p.name, flag, idx, v) for v in values_for(p)]
    return out


def sampled_cases() -> list[Any]:
    """One value per parameter (seeded) in CI; every value under ``-m boundaries_full``."""
    rng = random.Random(SEED)
    by_param: dict[tuple[str, str], list[Case]] = {}
    for c in all_cases():
        by_param.setdefault((c.command, c.param), []).append(c)
    params = []
    for (command, _), cases in by_param.items():
        chosen = rng.choice(cases)
        for c in cases:
            marks = []
            if c is not chosen or command in HEAVY:
                marks.append(pytest.mark.boundaries_full)
            params.append(pytest.param(c, id=c.id, marks=marks))
    return params


def _fill(token: str, tmp: Path, good: dict[str, Path]) -> str:
    if token == "<tmp>" or token.startswith("<tmp>/"):
        return str(tmp) + token[5:]
    if token == "<train.yaml>":
        spec = tmp / "train.yaml"
        spec.write_text("experiment: train\npreset: smoke\ntrain: {epochs: 1}\n")
        return str(spec)
    if token == "<missing>":
        return str(tmp / "missing" / "file.npy")
    if token == "<dir>":
        (tmp / "adir").mkdir(exist_ok=True)
        return str(tmp / "adir")
    if token == "<fifo>":
        if not (tmp / "fifo.npy").exists():
            os.mkfifo(tmp / "fifo.npy")
        return str(tmp / "fifo.npy")
    if token == "<empty>":
        (tmp / "empty.npy").write_bytes(b"")
        return str(tmp / "empty.npy")
    if token.startswith("<") and token.endswith(">") and token[1:-1] in good:
        src = good[token[1:-1]]
        dst = tmp / "inputs" / src.name
        if not dst.exists():  # a private copy: a case must not change the shared inputs
            dst.parent.mkdir(exist_ok=True)
            (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
        return str(dst)
    return token


def command_line(case: Case, tmp: Path, good: dict[str, Path], cmd: Any) -> list[str]:
    """``BASE[command]`` with the parameter under test set to ``case.value``."""
    base = list(BASE.get(case.command, []))
    if case.command not in BASE:  # a new command: its required parameters get a generated first value
        for p in cmd.params:
            if p.required and p.param_type_name == "argument":
                base.append(values_for(p)[0])
            elif p.required:
                base += [max(p.opts, key=len), values_for(p)[0]]
    value = _fill(case.value, tmp, good)
    if case.flag is None:  # BASE lists a command's arguments first: replace the one at this position, or add it
        n_args = next((i for i, t in enumerate(base) if t.startswith("-")), len(base))
        if case.index < n_args:
            base[case.index] = value
        else:
            base.insert(n_args, value)
        line = base
    elif case.value == "<flag>":
        line = [*base, case.flag]
    else:
        opts = next(p.opts for p in cmd.params if p.name == case.param)
        i = next((i for i, t in enumerate(base) if t in opts), None)
        if i is not None:
            line = [*base[:i], *base[i + 2 :], case.flag, value]
        else:
            line = [*base, case.flag, value]
    return [*case.command.split(), *[_fill(t, tmp, good) for t in line]]


_BOX = re.compile(r"[│╭╮╰╯─]")


class _Timeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def on_alarm(signum: int, frame: Any) -> None:
        raise _Timeout(f"did not end within {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _finite_json(text: str) -> None:
    """Raise if ``text`` is JSON holding a non-finite number (NaN/Infinity literals or overflowed floats)."""
    try:
        obj = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(AssertionError(f"JSON holds {c}")))
    except json.JSONDecodeError:
        return
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, float):
            assert math.isfinite(o), f"JSON holds {o}"
        elif isinstance(o, dict):
            stack += list(o.values())
        elif isinstance(o, list):
            stack += o


def record(case: Case, outcome: str, message: str) -> None:
    out = os.environ.get("PRIVLAB_CATALOGUE")
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write(
                json.dumps({"kind": "boundary", "id": case.id, "outcome": outcome, "message": message[:300]}) + "\n"
            )


@pytest.fixture
def no_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    """Side effects no boundary case should have, stubbed: ``semsim annotate`` builds its server and returns
    instead of serving forever; ``mi calibrate --write-table`` does not rewrite privlab's shipped table; a sweep's
    tasks run one after another in this process (the same ``run_task`` a worker runs, without its start-up seconds;
    test_store_concurrency and the sweep tests run real workers)."""
    import socketserver

    import privlab.cli.mi
    from privlab.run.parallel import LocalBackend

    monkeypatch.setattr(socketserver.BaseServer, "serve_forever", lambda self, *a, **k: None)
    monkeypatch.setattr(privlab.cli.mi, "_write_table", lambda lines: None)
    monkeypatch.setattr(LocalBackend, "run", _in_process)


def _in_process(self: Any, tasks: list[dict[str, Any]], on_start: Any = None) -> Iterator[tuple[int, Any, Any]]:
    from privlab.run.worker import run_task

    for i, task in enumerate(tasks):
        if on_start is not None:
            on_start(i)
        try:
            yield i, run_task({**task, "threads": 1}), None
        except Exception as e:
            yield i, None, f"worker error: {e!r}"


@pytest.mark.parametrize("case", sampled_cases())
def test_boundary(case: Case, tmp_path: Path, good: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                  no_serving: None) -> None:  # fmt: skip
    cmd = dict(commands())[case.command]
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # default output folders (--out runs) land here, never in the repository
    monkeypatch.setenv("PRIVLAB_NO_DOWNLOAD", "1")
    args = command_line(case, tmp_path, good, cmd)
    before = set(good["store"].parent.rglob("*"))
    with time_limit(TIME_LIMIT_S):
        r = CliRunner().invoke(app, args)
    assert r.exception is None or isinstance(r.exception, SystemExit), f"{args[:6]}: {r.exception!r}"
    assert "Traceback" not in r.output
    assert set(good["store"].parent.rglob("*")) == before, "a shared input was changed"
    if r.exit_code == 0:
        if "--json" in args:
            _finite_json(r.stdout)
        assert not re.search(r"(?:^|[\s│|=:])[-+]?(nan|inf)(?=[\s│|,;]|$)", r.stdout, re.I | re.M), r.stdout[:300]
        record(case, "ok", "")
        return
    assert r.exit_code == 2, (r.exit_code, r.output[-2000:])
    lines = r.stderr.strip().splitlines()
    if lines and lines[0].startswith("error: "):
        assert len(lines) == 1, r.stderr[:2000]
        assert len(lines[0]) < 2000, "an error line should not echo a megabyte of input"
        record(case, "error", lines[0].removeprefix("error: "))
    else:
        text = " ".join(_BOX.sub(" ", r.output).split())
        assert "Error" in text or "Usage" in text, r.output[-2000:]
        record(case, "usage", text[-300:])


def test_walker_covers_every_option() -> None:
    """The walk sees every parameter (a sanity check that typer's internals did not move under us)."""
    seen = {(c.command, c.param) for c in all_cases()}
    assert ("ldp privatize", "classes") in seen and ("mi estimate", "repeats") in seen
    assert len({c for c, _ in seen}) >= 20 and len(seen) >= 150


# Open intervals the parser cannot state (δ ∈ (0, 1), a port ∈ [0, 65535] checked by the server): their commands
# check them with their own one-line messages, which the boundary walk exercises.
RANGE_IN_CODE = {"--delta", "--threshold", "--label-fraction", "--port"}


def test_every_number_option_declares_its_range() -> None:
    """Size limits are declared beside each option (``max=``), so the parser refuses them before any work and
    ``--help`` shows them; a new numeric option without one fails here. (Lower bounds, 0 and negatives, are checked
    by each command with a message naming the fix; the boundary walk covers them.)"""
    missing = [
        f"{path} {max(p.opts, key=len)}"
        for path, cmd in commands()
        for p in cmd.params
        if any(t in str(p.bare_type()).lower() for t in ("int", "float"))
        and p.min is None
        and p.max is None
        and max(p.opts, key=len) not in RANGE_IN_CODE
    ]
    assert not missing, f"numeric options without min=/max=: {missing}"


def test_every_command_checks_its_inputs() -> None:
    """Every command goes through ``handle_errors`` (the structural input checks and the one-line errors)."""
    unchecked = []
    for path, cmd in commands():
        fn = cmd.callback
        while fn is not None and not getattr(fn, "privlab_handles_errors", False):
            fn = getattr(fn, "__wrapped__", None)
        if fn is None:
            unchecked.append(path)
    assert not unchecked, f"commands without @handle_errors: {unchecked}"
