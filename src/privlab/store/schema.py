"""SQLite schema of ``runs.sqlite`` (version 1).

- ``runs``: one row per run: id, experiment, name, spec JSON, spec hash, seed, status (running | finished |
  failed), start/finish times (Unix seconds), error message, library versions and hardware (JSON), run folder.
- ``metrics``: one row per value: run, name, value, step (NULL for a final value), unit, kind (privacy |
  utility | cost | info), higher_is_better (1/0/NULL).
- ``artifacts``: one row per file: run, kind, path relative to the output folder, SHA-256, metadata JSON.
- ``metric_notes``: why a final metric is undefined (its value NULL: NaN or ±inf), one row per run and metric.
  Added after version 1 without a version change: a v1 store gains it when opened for writing, and readers treat
  a store without it as having no notes.
"""

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    experiment TEXT NOT NULL,
    name TEXT,
    spec_json TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    seed INTEGER,
    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed')),
    started REAL,
    finished REAL,
    error TEXT,
    versions_json TEXT,
    hardware_json TEXT,
    dir TEXT
);
CREATE INDEX IF NOT EXISTS runs_spec_hash ON runs (spec_hash);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value REAL,
    step INTEGER,
    unit TEXT,
    kind TEXT,
    higher_is_better INTEGER
);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics (run_id, name);
CREATE TABLE IF NOT EXISTS artifacts (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    meta_json TEXT
);
CREATE INDEX IF NOT EXISTS artifacts_run ON artifacts (run_id);
CREATE TABLE IF NOT EXISTS metric_notes (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS metric_notes_run ON metric_notes (run_id);
"""
