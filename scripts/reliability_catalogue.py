"""Regenerate the message tables of docs/reliability.md (§1.1 commands, §1.2 file loaders) from the test rows.

Runs the catalogue tests (tests/reliability/test_catalogue_cli.py and test_catalogue_loaders.py) with
``PRIVLAB_CATALOGUE`` set, so each row records the message privlab really printed, then rewrites the tables between
the ``<!-- catalogue:cli -->`` / ``<!-- catalogue:loaders -->`` markers of the doc. A row that no longer exists
disappears from the doc and a new row appears, so the catalogue cannot drift from the tests.

Usage (from the project root; ``make catalogue`` runs it):  .venv/bin/python scripts/reliability_catalogue.py
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"
TESTS = {"cli": "tests/reliability/test_catalogue_cli.py", "loaders": "tests/reliability/test_catalogue_loaders.py"}
MAX_MESSAGE = 200


def normalise(message: str) -> str:
    """Temporary folders as ``TMP``, one line, long messages cut with ``…``, backticks made safe for a code span."""
    text = re.sub(r"(?:/private)?/tmp/pytest-of-[^/\s]+/pytest-\d+/(?:popen-gw\d+/)?[^/\s'\":,)]+", "TMP", message)
    text = re.sub(r"(?:/private)?/tmp/tmp[^/\s'\":,)]+", "TMP", text)
    text = " ".join(text.split()).replace("`", "'")
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def render(rows: list[dict[str, str]], kind: str) -> str:
    """The markdown tables of one kind: a bold header per command/loader, then bad input | message rows."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        group, _, bad = row["id"].partition(" | ")
        groups.setdefault(group, []).append((bad, normalise(row["message"])))
    parts = []
    for group, items in groups.items():
        title = f"**`privlab {group}`**" if kind == "cli" else f"**{group}**"
        lines = [title, "", "| bad input | message |", "|---|---|"]
        lines += [f"| {bad.replace('|', '/')} | `{msg.replace('|', '/')}` |" for bad, msg in items]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def replace_between(doc: str, kind: str, body: str) -> str:
    """``doc`` with the text between the ``kind`` markers replaced by ``body``."""
    start, end = f"<!-- catalogue:{kind} -->", f"<!-- /catalogue:{kind} -->"
    if start not in doc or end not in doc:
        raise SystemExit(f"{DOC}: markers {start} … {end} not found")
    head, rest = doc.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def main() -> int:
    doc = DOC.read_text(encoding="utf-8")
    for kind, test in TESTS.items():
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / f"{kind}.jsonl"
            env = {**os.environ, "PRIVLAB_CATALOGUE": str(out), "OMP_NUM_THREADS": "1"}
            cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", test]
            res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
            if res.returncode != 0:
                print(res.stdout[-3000:], file=sys.stderr)
                raise SystemExit(f"{test} failed: fix the rows first")
            rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        doc = replace_between(doc, kind, render(rows, kind))
        print(f"{kind}: {len(rows)} rows")
    tmp_doc = DOC.with_suffix(".md.tmp")
    tmp_doc.write_text(doc, encoding="utf-8")
    os.replace(tmp_doc, DOC)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
