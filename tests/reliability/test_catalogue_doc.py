"""docs/reliability.md's message tables are generated from the catalogue rows (scripts/reliability_catalogue.py): the
doc lists exactly the rows the tests check, so a row added or removed without `make catalogue` fails here."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _doc_ids(kind: str) -> list[str]:
    doc = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    body = doc.split(f"<!-- catalogue:{kind} -->", 1)[1].split(f"<!-- /catalogue:{kind} -->", 1)[0]
    ids, group = [], None
    for line in body.splitlines():
        head = re.fullmatch(r"\*\*`?(?:privlab )?(.+?)`?\*\*", line.strip())
        if head:
            group = head.group(1)
        elif line.startswith("| ") and not line.startswith(("| bad input", "|---")):
            ids.append(f"{group} | {line.split(' | ')[0][2:]}")
    return ids


def test_the_doc_lists_exactly_the_rows_the_tests_check() -> None:
    cli = _load("catalogue_cli_rows", ROOT / "tests" / "reliability" / "test_catalogue_cli.py")
    loaders = _load("catalogue_loader_rows", ROOT / "tests" / "reliability" / "test_catalogue_loaders.py")
    for kind, rows in (("cli", cli.ROWS), ("loaders", loaders.ROWS)):
        expected = [f"{g} | {b.replace('|', '/')}" for g, _, b in (r.id.partition(" | ") for r in rows)]
        assert _doc_ids(kind) == expected, f"run `make catalogue` to regenerate the {kind} tables"


def test_messages_are_normalised() -> None:
    mod = _load("reliability_catalogue", ROOT / "scripts" / "reliability_catalogue.py")
    msg = "no store at /tmp/pytest-of-root/pytest-9/popen-gw1/test_x0/runs.sqlite: use --out /tmp/tmpab12 first"
    assert mod.normalise(msg) == "no store at TMP/runs.sqlite: use --out TMP first"
    assert mod.normalise("x" * 500).endswith("…") and len(mod.normalise("x" * 500)) == mod.MAX_MESSAGE
