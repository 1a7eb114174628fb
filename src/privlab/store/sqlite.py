"""The results store: ``runs.sqlite`` in an output folder (WAL mode, one transaction per write)."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from privlab.errors import DataMissingError, FileFormatError, PrivlabError
from privlab.store.schema import SCHEMA, SCHEMA_VERSION

__all__ = ["STORE_FILENAME", "MetricRecord", "RunRecord", "Store"]

STORE_FILENAME = "runs.sqlite"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class MetricRecord:
    """One metric value. ``step`` is None for a final value, else the epoch/iteration it was logged at.

    A value that is not a finite number (NaN, ±inf) is stored as undefined (NULL) with ``note``, the reason it is
    undefined (e.g. "one class only: AUC needs members and non-members"); without a note the store records that
    the computation gave no reason.
    """

    name: str
    value: float
    step: int | None = None
    unit: str | None = None
    kind: str | None = None
    higher_is_better: bool | None = None
    note: str | None = None


@dataclass
class RunRecord:
    """One row of ``runs`` plus, when loaded with metrics, its final metric values."""

    id: str
    experiment: str
    name: str | None
    spec: dict[str, Any]
    spec_hash: str
    seed: int | None
    status: str
    started: float | None
    finished: float | None
    error: str | None
    versions: dict[str, Any]
    hardware: dict[str, Any]
    dir: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    #: final metrics whose value is undefined (NaN/±inf), with the reason: name → note
    undefined: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (used by ``--json`` output and exports)."""
        return {
            "id": self.id,
            "experiment": self.experiment,
            "name": self.name,
            "status": self.status,
            "seed": self.seed,
            "spec_hash": self.spec_hash,
            "started": self.started,
            "finished": self.finished,
            "error": self.error,
            "dir": self.dir,
            "metrics": self.metrics,
            "undefined": self.undefined,
            "spec": self.spec,
            "versions": self.versions,
            "hardware": self.hardware,
        }


def _is_write_problem(e: sqlite3.OperationalError) -> bool:
    text = str(e).lower()
    return any(w in text for w in ("unable to open", "readonly", "read-only", "disk", "full", "locked", "i/o"))


def _cannot_write(e: PrivlabError) -> bool:
    return str(e).startswith("cannot write the results store")


def _reading(fn: F) -> F:
    """A read method: a damaged file (SQLite, text or JSON errors) becomes one :class:`FileFormatError`."""

    @functools.wraps(fn)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except sqlite3.OperationalError as e:
            if "locked" in str(e).lower():
                raise PrivlabError(f"{self.path} is locked by another process for too long; try again") from None
            raise self._damaged(e) from None
        except (sqlite3.DatabaseError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise self._damaged(e) from None

    return wrapper  # type: ignore[return-value]


def _finite_or_none(v: float) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def undefined_note(m: MetricRecord) -> str | None:
    """Why ``m`` is stored as undefined (None when its value is a finite number)."""
    v = float(m.value)
    if math.isfinite(v):
        return None
    what = "NaN" if math.isnan(v) else ("+inf" if v > 0 else "-inf")
    return m.note or f"the computation gave {what} and no reason (a privlab bug: please report it)"


#: the tables of a privlab store (a store of this schema version missing one is damaged)
STORE_TABLES = ("meta", "runs", "metrics", "artifacts")


class Store:
    """SQLite results store of one output folder.

    Args:
        out_dir: the output folder; the store is ``out_dir/runs.sqlite``.
        create: create the folder and file if absent (False: a missing store is a :class:`DataMissingError`).
        filename: the store's file relative to ``out_dir`` (default ``runs.sqlite``). A sweep worker writes its run
            into a staging store ``<run id>/.run.sqlite`` of the same folder (artifact paths stay relative to
            ``out_dir``), and the sweep driver merges it with :meth:`import_run`.
    """

    def __init__(self, out_dir: str | Path, *, create: bool = True, filename: str = STORE_FILENAME) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / filename
        if not create and not self.path.is_file():
            raise DataMissingError(
                f"no results store at {self.path}: run an experiment with --out {self.out_dir} first, "
                "or pass the folder that holds runs.sqlite"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise PrivlabError(f"cannot create output folder {self.out_dir}: {e.strerror or e}") from None
        self.read_only = False
        try:
            self._open_for_writing()
        except PrivlabError as e:
            if create or not _cannot_write(e):
                raise
            self._open_read_only()  # e.g. a copy on read-only media: list, show and export still work
        try:
            row = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0])
        except (sqlite3.DatabaseError, TypeError, ValueError) as e:
            raise self._damaged(e) from None
        if version > SCHEMA_VERSION:
            raise FileFormatError(
                f"{self.path} has store schema v{version}, newer than this privlab (v{SCHEMA_VERSION}); upgrade privlab"
            )

    def _open_for_writing(self) -> None:
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA busy_timeout = 60000")
            try:
                self._check_existing()  # before anything is written: no table, no WAL switch on a foreign file
            except PrivlabError:
                self._conn.close()
                raise
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.execute("PRAGMA journal_mode = WAL")
            with self._tx() as c:
                for stmt in SCHEMA.split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                c.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
        except (sqlite3.DatabaseError, UnicodeDecodeError) as e:  # _tx's own PrivlabErrors pass through
            if isinstance(e, sqlite3.OperationalError) and _is_write_problem(e):
                raise self._write_error(e) from None
            raise FileFormatError(
                f"{self.path} is not a valid privlab store ({e}); move it away or choose another --out folder"
            ) from None

    def _check_existing(self) -> None:
        """Refuse, before writing anything, an existing database that is not a privlab store, that a newer privlab
        wrote, or that lacks one of privlab's tables (damaged: never silently re-created)."""
        tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return  # a new (or empty) file: privlab creates its tables
        if "meta" not in tables:
            raise FileFormatError(
                f"{self.path} is an SQLite database but not a privlab store (tables: "
                f"{', '.join(sorted(tables))[:200]}); nothing was written to it: choose another --out folder"
            )
        row = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        try:
            version = int(row[0])
        except (TypeError, ValueError):
            raise FileFormatError(
                f"{self.path} is not a privlab store (no schema version in its meta table); nothing was written to "
                "it: choose another --out folder"
            ) from None
        if version > SCHEMA_VERSION:
            raise FileFormatError(
                f"{self.path} has store schema v{version}, newer than this privlab (v{SCHEMA_VERSION}); upgrade "
                "privlab (nothing was written to it)"
            )
        missing = sorted(set(STORE_TABLES) - tables)
        if missing and version == SCHEMA_VERSION:
            raise self._damaged(sqlite3.DatabaseError(f"table(s) {', '.join(missing)} missing"))

    def _open_read_only(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()
        uri = f"file:{urllib.parse.quote(str(self.path.resolve()))}?mode=ro"
        last: Exception | None = None
        for suffix in ("", "&immutable=1"):  # immutable: a WAL store whose -shm file cannot be created
            try:
                self._conn = sqlite3.connect(uri + suffix, uri=True, timeout=60.0, isolation_level=None)
                self._conn.row_factory = sqlite3.Row
                self._conn.execute("SELECT COUNT(*) FROM runs").fetchone()
                self.read_only = True
                return
            except sqlite3.DatabaseError as e:
                last = e
        raise FileFormatError(f"cannot open {self.path} even read-only ({last})")

    def _write_error(self, e: Exception) -> PrivlabError:
        return PrivlabError(
            f"cannot write the results store {self.path}: {e} (check that the folder is writable and has free space, "
            "or choose another --out folder)"
        )

    def _damaged(self, e: Exception) -> FileFormatError:
        return FileFormatError(
            f"{self.path} is damaged ({type(e).__name__}: {e}); export what `privlab runs export` can still read and "
            "use a new --out folder"
        )

    # -- plumbing -------------------------------------------------------------------------------------------------
    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT, ROLLBACK on error).

        A full disk, a read-only file or a lock held too long is a :class:`PrivlabError` ("cannot write …"), a
        damaged file a :class:`FileFormatError`; either way nothing of the transaction is kept.
        """
        if self.read_only:
            raise PrivlabError(f"{self.path} is opened read-only (the folder or medium is not writable)")
        c = self._conn
        try:
            c.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise self._write_error(e) from None
        try:
            yield c
            c.execute("COMMIT")
        except BaseException as e:
            if c.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    c.execute("ROLLBACK")
            if isinstance(e, sqlite3.OperationalError) and _is_write_problem(e):
                raise self._write_error(e) from None
            if isinstance(e, sqlite3.DatabaseError) and not isinstance(e, sqlite3.IntegrityError):
                raise self._damaged(e) from None
            raise

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- runs ---------------------------------------------------------------------------------------------------
    @_reading
    def new_run_id(self, experiment: str, spec_hash: str) -> str:
        """``<experiment>-<hash[:8]>``, with ``-2``, ``-3``… when that id is already taken (``--force`` re-runs)."""
        base = f"{experiment}-{spec_hash[:8]}"
        taken = {r[0] for r in self._conn.execute("SELECT id FROM runs WHERE id = ? OR id LIKE ?", (base, base + "-%"))}
        if base not in taken:
            return base
        i = 2
        while f"{base}-{i}" in taken:
            i += 1
        return f"{base}-{i}"

    def start_run(
        self,
        run_id: str,
        *,
        experiment: str,
        spec: dict[str, Any],
        spec_hash: str,
        seed: int | None,
        versions: dict[str, Any],
        hardware: dict[str, Any],
        name: str | None = None,
        dir: str | None = None,
    ) -> None:
        """Insert a run with status ``running``; an unfinished row with the same id (a crashed run) is replaced."""
        with self._tx() as c:
            c.execute("DELETE FROM runs WHERE id = ? AND status != 'finished'", (run_id,))
            c.execute(
                "INSERT INTO runs (id, experiment, name, spec_json, spec_hash, seed, status, started, versions_json,"
                " hardware_json, dir) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)",
                (
                    run_id,
                    experiment,
                    name,
                    json.dumps(spec, sort_keys=True),
                    spec_hash,
                    seed,
                    time.time(),
                    json.dumps(versions, sort_keys=True),
                    json.dumps(hardware, sort_keys=True),
                    dir,
                ),
            )

    def finish_run(self, run_id: str, *, status: str = "finished", error: str | None = None) -> None:
        """Mark a run ``finished`` or ``failed`` (with its error message)."""
        if status not in ("finished", "failed"):
            raise ValueError(f"bad status {status!r}")
        with self._tx() as c:
            c.execute(
                "UPDATE runs SET status = ?, finished = ?, error = ? WHERE id = ?", (status, time.time(), error, run_id)
            )

    @_reading
    def finished_run(self, spec_hash: str) -> RunRecord | None:
        """The latest finished run with this spec hash, or None (used to skip work on re-runs)."""
        row = self._conn.execute(
            "SELECT * FROM runs WHERE spec_hash = ? AND status = 'finished' ORDER BY finished DESC LIMIT 1",
            (spec_hash,),
        ).fetchone()
        return self._record(row, with_metrics=True) if row else None

    @_reading
    def unfinished_run_id(self, spec_hash: str) -> str | None:
        """Id of a run with this hash that never finished (crashed or failed), to re-use on resume."""
        row = self._conn.execute(
            "SELECT id FROM runs WHERE spec_hash = ? AND status != 'finished' ORDER BY started DESC LIMIT 1",
            (spec_hash,),
        ).fetchone()
        return row[0] if row else None

    def _record(self, row: sqlite3.Row, *, with_metrics: bool) -> RunRecord:
        try:
            return self._record_unchecked(row, with_metrics=with_metrics)
        except (json.JSONDecodeError, TypeError, KeyError, IndexError) as e:
            raise self._damaged(e) from None

    def _record_unchecked(self, row: sqlite3.Row, *, with_metrics: bool) -> RunRecord:
        rec = RunRecord(
            id=row["id"],
            experiment=row["experiment"],
            name=row["name"],
            spec=json.loads(row["spec_json"]),
            spec_hash=row["spec_hash"],
            seed=row["seed"],
            status=row["status"],
            started=row["started"],
            finished=row["finished"],
            error=row["error"],
            versions=json.loads(row["versions_json"] or "{}"),
            hardware=json.loads(row["hardware_json"] or "{}"),
            dir=row["dir"],
        )
        if with_metrics:
            rec.metrics = self.final_metrics(rec.id)
            rec.undefined = self.undefined_metrics(rec.id)
        return rec

    @_reading
    def get_run(self, run_id: str) -> RunRecord:
        """One run with its final metrics; a prefix of an id works when it is unique.

        Raises:
            UnknownNameError-like :class:`DataMissingError` naming the known ids when there is no such run.
        """
        row = self._conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            rows = self._conn.execute("SELECT * FROM runs WHERE id LIKE ?", (run_id + "%",)).fetchall()
            if len(rows) == 1:
                row = rows[0]
        if row is None:
            ids = [r[0] for r in self._conn.execute("SELECT id FROM runs ORDER BY started")]
            shown = ", ".join(ids[:10]) + (" …" if len(ids) > 10 else "")
            raise DataMissingError(f"no run {run_id!r} in {self.path}; runs here: {shown or 'none'}")
        return self._record(row, with_metrics=True)

    @_reading
    def runs(self, *, experiment: str | None = None, status: str | None = None) -> list[RunRecord]:
        """All runs (oldest first) with their final metrics, optionally filtered."""
        q, args = "SELECT * FROM runs WHERE 1=1", []
        if experiment:
            q += " AND experiment = ?"
            args.append(experiment)
        if status:
            q += " AND status = ?"
            args.append(status)
        rows = self._conn.execute(q + " ORDER BY started, id", args).fetchall()
        finals = self._all_final_metrics()
        notes = self._all_undefined()
        out = []
        for r in rows:
            rec = self._record(r, with_metrics=False)
            rec.metrics = finals.get(rec.id, {})
            rec.undefined = {
                n: t for n, t in notes.get(rec.id, {}).items() if n in rec.metrics and not math.isfinite(rec.metrics[n])
            }
            out.append(rec)
        return out

    # -- metrics --------------------------------------------------------------------------------------------------
    def log_metrics(self, run_id: str, records: Iterable[MetricRecord]) -> None:
        """Append metric values in one transaction (NaN/±inf are stored as NULL, a final one with its reason: see
        :class:`MetricRecord` and :meth:`undefined_metrics`)."""
        records = list(records)
        rows = [
            (
                run_id,
                m.name,
                _finite_or_none(m.value),
                m.step,
                m.unit,
                m.kind,
                None if m.higher_is_better is None else int(m.higher_is_better),
            )
            for m in records
        ]
        if not rows:
            return
        notes = [(run_id, m.name, note) for m in records if m.step is None and (note := undefined_note(m))]
        with self._tx() as c:
            c.executemany(
                "INSERT INTO metrics (run_id, name, value, step, unit, kind, higher_is_better)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            if notes:
                c.executemany("INSERT INTO metric_notes (run_id, name, note) VALUES (?, ?, ?)", notes)

    def _has_notes_table(self) -> bool:
        """A store written before ``metric_notes`` existed and opened read-only lacks the table."""
        if getattr(self, "_notes_table", None) is None:
            row = self._conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='metric_notes'")
            self._notes_table = row.fetchone() is not None
        return bool(self._notes_table)

    @_reading
    def undefined_metrics(self, run_id: str) -> dict[str, str]:
        """Final metrics of a run stored as undefined, with the reason: name → note (the last note wins)."""
        if not self._has_notes_table():
            return {}
        rows = self._conn.execute("SELECT name, note FROM metric_notes WHERE run_id = ? ORDER BY rowid", (run_id,))
        notes = {r["name"]: r["note"] for r in rows}
        finals = self.final_metrics(run_id)  # a later finite value of the same name replaces an undefined one
        return {n: t for n, t in notes.items() if n in finals and not math.isfinite(finals[n])}

    @_reading
    def _all_undefined(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        if not self._has_notes_table():
            return out
        for r in self._conn.execute("SELECT run_id, name, note FROM metric_notes ORDER BY rowid"):
            out.setdefault(r["run_id"], {})[r["name"]] = r["note"]
        return out

    @_reading
    def metrics(self, run_id: str) -> list[MetricRecord]:
        """Every metric row of a run (steps included), in insertion order."""
        rows = self._conn.execute(
            "SELECT name, value, step, unit, kind, higher_is_better FROM metrics WHERE run_id = ? ORDER BY rowid",
            (run_id,),
        ).fetchall()
        return [
            MetricRecord(
                name=r["name"],
                value=float("nan") if r["value"] is None else r["value"],
                step=r["step"],
                unit=r["unit"],
                kind=r["kind"],
                higher_is_better=None if r["higher_is_better"] is None else bool(r["higher_is_better"]),
            )
            for r in rows
        ]

    @_reading
    def final_metrics(self, run_id: str) -> dict[str, float]:
        """Final (step-less) metric values of a run: name → value (the last one logged wins)."""
        rows = self._conn.execute(
            "SELECT name, value FROM metrics WHERE run_id = ? AND step IS NULL ORDER BY rowid", (run_id,)
        ).fetchall()
        return {r["name"]: (float("nan") if r["value"] is None else r["value"]) for r in rows}

    @_reading
    def _all_final_metrics(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for r in self._conn.execute("SELECT run_id, name, value FROM metrics WHERE step IS NULL ORDER BY rowid"):
            out.setdefault(r["run_id"], {})[r["name"]] = float("nan") if r["value"] is None else r["value"]
        return out

    @_reading
    def metric_info(self) -> dict[str, dict[str, Any]]:
        """Per metric name: its unit, kind and direction as logged (for reports)."""
        out: dict[str, dict[str, Any]] = {}
        for r in self._conn.execute("SELECT DISTINCT name, unit, kind, higher_is_better FROM metrics"):
            info = out.setdefault(r["name"], {"unit": None, "kind": None, "higher_is_better": None})
            for k in ("unit", "kind", "higher_is_better"):
                if r[k] is not None:
                    info[k] = bool(r[k]) if k == "higher_is_better" else r[k]
        return out

    # -- artifacts ------------------------------------------------------------------------------------------------
    def add_artifact(
        self, run_id: str, kind: str, path: str | Path, sha256: str, meta: dict[str, Any] | None = None
    ) -> None:
        """Record a file (``path`` relative to the output folder where possible)."""
        p = Path(path)
        try:
            rel = str(p.resolve().relative_to(self.out_dir.resolve()))
        except ValueError:
            rel = str(p)
        with self._tx() as c:
            c.execute(
                "INSERT INTO artifacts (run_id, kind, path, sha256, meta_json) VALUES (?, ?, ?, ?, ?)",
                (run_id, kind, rel, sha256, json.dumps(meta or {}, sort_keys=True)),
            )

    @_reading
    def artifacts(self, run_id: str) -> list[dict[str, Any]]:
        """Artifact records of a run: kind, path (relative to the output folder), sha256, meta."""
        rows = self._conn.execute(
            "SELECT kind, path, sha256, meta_json FROM artifacts WHERE run_id = ? ORDER BY rowid", (run_id,)
        ).fetchall()
        return [{"kind": r[0], "path": r[1], "sha256": r[2], "meta": json.loads(r[3] or "{}")} for r in rows]

    # -- moving runs between stores (sweep workers → the sweep's store) ------------------------------------------
    @_reading
    def export_run(self, run_id: str) -> dict[str, Any]:
        """One run with every metric row and artifact, as plain JSON-ready data (for :meth:`import_run`)."""
        row = self._conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise DataMissingError(f"no run {run_id!r} in {self.path}")
        metrics = [
            list(r)
            for r in self._conn.execute(
                "SELECT name, value, step, unit, kind, higher_is_better FROM metrics WHERE run_id = ? ORDER BY rowid",
                (run_id,),
            )
        ]
        artifacts = [
            list(r)
            for r in self._conn.execute(
                "SELECT kind, path, sha256, meta_json FROM artifacts WHERE run_id = ? ORDER BY rowid", (run_id,)
            )
        ]
        notes = (
            [list(r) for r in self._conn.execute("SELECT name, note FROM metric_notes WHERE run_id = ?", (run_id,))]
            if self._has_notes_table()
            else []
        )
        return {
            "run": {k: row[k] for k in row.keys()},  # noqa: SIM118
            "metrics": metrics,
            "artifacts": artifacts,
            "notes": notes,
        }

    def import_run(self, payload: dict[str, Any]) -> None:
        """Write a run exported by :meth:`export_run` in ONE transaction, replacing an unfinished row with its id.

        A finished run with the same id is never overwritten (:class:`PrivlabError`), so a run lands exactly once
        even when a sweep is killed and resumed around this call.
        """
        run = dict(payload["run"])
        cols = [
            "id",
            "experiment",
            "name",
            "spec_json",
            "spec_hash",
            "seed",
            "status",
            "started",
            "finished",
            "error",
            "versions_json",
            "hardware_json",
            "dir",
        ]
        with self._tx() as c:
            existing = c.execute("SELECT status FROM runs WHERE id = ?", (run["id"],)).fetchone()
            if existing is not None and existing[0] == "finished":
                raise PrivlabError(f"run {run['id']!r} is already finished in {self.path}; not importing it again")
            c.execute("DELETE FROM runs WHERE id = ?", (run["id"],))
            c.execute(
                f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [run.get(k) for k in cols],
            )
            c.executemany(
                "INSERT INTO metrics (run_id, name, value, step, unit, kind, higher_is_better)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(run["id"], *m) for m in payload.get("metrics", [])],
            )
            c.executemany(
                "INSERT INTO artifacts (run_id, kind, path, sha256, meta_json) VALUES (?, ?, ?, ?, ?)",
                [(run["id"], *a) for a in payload.get("artifacts", [])],
            )
            c.execute("DELETE FROM metric_notes WHERE run_id = ?", (run["id"],))
            c.executemany(
                "INSERT INTO metric_notes (run_id, name, note) VALUES (?, ?, ?)",
                [(run["id"], *n) for n in payload.get("notes", [])],
            )

    @_reading
    def integrity_ok(self) -> bool:
        """``PRAGMA integrity_check`` says ``ok``."""
        return self._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
