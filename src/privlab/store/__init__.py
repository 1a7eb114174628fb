"""Stage 6 — the results store: one SQLite file per output folder plus artifacts beside it.

:class:`~privlab.store.sqlite.Store` keeps runs, metrics and artifact records; :mod:`privlab.store.artifacts`
writes tensors as safetensors (or ``.npy`` + JSON) atomically with a SHA-256, never pickle.
"""

from privlab.store.artifacts import (
    atomic_write_bytes,
    atomic_write_text,
    load_array,
    load_tensors,
    replace_section,
    save_tensors,
    sha256_file,
)
from privlab.store.sqlite import STORE_FILENAME, MetricRecord, RunRecord, Store

__all__ = [
    "STORE_FILENAME",
    "MetricRecord",
    "RunRecord",
    "Store",
    "atomic_write_bytes",
    "atomic_write_text",
    "load_array",
    "load_tensors",
    "replace_section",
    "save_tensors",
    "sha256_file",
]
