"""A ``runs.sqlite`` that is not privlab's, that a newer privlab wrote, or that lost a table is refused before
anything is written to it: same bytes, same mtime, no ``-wal`` file, no table added."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from privlab.errors import FileFormatError
from privlab.store import Store
from privlab.store.schema import SCHEMA_VERSION


def _make(path: Path, *sql: str) -> None:
    c = sqlite3.connect(path)
    for stmt in sql:
        c.execute(stmt)
    c.commit()
    c.close()


CASES = {
    "foreign": (("CREATE TABLE invoices (id INTEGER, total REAL)", "INSERT INTO invoices VALUES (1, 9.5)"),
                "is an SQLite database but not a privlab store (tables: invoices); nothing was written"),
    "foreign meta table": (("CREATE TABLE meta (key TEXT, value TEXT)",), "no schema version in its meta table"),
    "newer privlab": (("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
                       f"INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION + 1}')"),
                      f"schema v{SCHEMA_VERSION + 1}, newer than this privlab"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("create", [True, False])
def test_a_store_privlab_did_not_write_is_left_untouched(tmp_path: Path, case: str, create: bool, cli) -> None:
    sql, words = CASES[case]
    db = tmp_path / "runs.sqlite"
    _make(db, *sql)
    before, mtime = db.read_bytes(), db.stat().st_mtime_ns
    with pytest.raises(FileFormatError) as e:
        Store(tmp_path, create=create)
    assert words in str(e.value)
    assert cli.error("runs", "list", "--out", tmp_path).endswith(str(e.value)[-40:])
    assert db.read_bytes() == before and db.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.sqlite"]  # no -wal, -shm, no lock file
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] != "wal"


def test_a_store_missing_a_table_is_damaged_not_recreated(tmp_path: Path) -> None:
    with Store(tmp_path) as s:
        s.start_run("r1", experiment="train", spec={}, spec_hash="h", seed=0, versions={}, hardware={})
    with sqlite3.connect(tmp_path / "runs.sqlite") as c:
        c.execute("DROP TABLE artifacts")
    with pytest.raises(FileFormatError, match=r"is damaged \(DatabaseError: table\(s\) artifacts missing\)"):
        Store(tmp_path)
    with sqlite3.connect(tmp_path / "runs.sqlite") as c:
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "artifacts" not in tables and {"meta", "runs", "metrics"} <= tables


def test_an_empty_file_and_a_new_folder_become_stores(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "runs.sqlite").write_bytes(b"")
    for d in (tmp_path / "a", tmp_path / "b"):
        with Store(d) as s:
            s.start_run("r1", experiment="train", spec={}, spec_hash="h", seed=0, versions={}, hardware={})
        with Store(d) as s:
            assert s.get_run("r1").status == "running"
