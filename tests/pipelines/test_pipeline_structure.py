"""Pipelines wire stages; they do not hold them: every ``run_*`` reads as the experiment's flow."""

from __future__ import annotations

import ast
from pathlib import Path

import privlab.pipelines

PIPELINES_DIR = Path(privlab.pipelines.__file__).parent
MAX_LINES = 60


def _run_functions() -> list[tuple[str, str, int]]:
    found = []
    for path in sorted(PIPELINES_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("run_"):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                found.append((path.name, node.name, node.end_lineno - start + 1))
    return found


def test_every_run_function_is_at_most_60_lines() -> None:
    found = _run_functions()
    names = {name for _, name, _ in found}
    # the check sees the experiments (a glob that found nothing would pass vacuously)
    assert {"run_train", "run_shredder", "run_inversion", "run_ldp", "run_semsim", "run_unlearnable"} <= names
    too_long = [f"{file}:{name} has {n} lines" for file, name, n in found if n > MAX_LINES]
    assert not too_long, "; ".join(too_long) + f" (at most {MAX_LINES}, decorator included: extract stage steps)"


def test_pipelines_do_not_hold_library_code() -> None:
    """Data-set specs, checkpoints and mechanism builders live in their stage, not in a pipeline."""
    import privlab.pipelines.ldp as ldp
    import privlab.pipelines.train as train

    assert not hasattr(train, "load_checkpoint") and train.load_datasets.__module__ == "privlab.data.spec"
    assert ldp.build_ldp_mechanisms.__module__ == "privlab.protect.ldp"
    assert train.DatasetSpec.__module__ == "privlab.data.spec"
