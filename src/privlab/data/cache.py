"""A cache of decoded image arrays, so that a folder of 60 000 JPEGs is decoded once, not at every load.

Where it lives (:func:`cache_dir`):

1. ``$PRIVLAB_CACHE_DIR`` when set (``off``, ``none``, ``0`` or an empty value turn the cache off);
2. otherwise ``$XDG_CACHE_HOME/privlab`` (``~/.cache/privlab`` when ``XDG_CACHE_HOME`` is unset).

The cache never lives beside the data by default: data roots are often shared or read-only (the project's own
``shared/data`` is), and a user cache folder is writable by every process of the user, including ``privlab sweep``'s
worker processes, which therefore reuse one another's entries. A cache folder that cannot be created or written is
skipped with one warning: loading then decodes the files, as without a cache, and never fails because of the cache.

What an entry holds: ``<name>.npy`` (the decoded array, uint8, ``allow_pickle=False``), ``<name>.labels.npy``
(int64) and ``<name>.json`` (the key, shapes and any small metadata such as per-channel statistics). The JSON file
is written last, each file atomically (temporary file + ``os.replace``), so a reader sees a whole entry or none.
``<name>`` is ``<tag>-<hash of the folder path>``; the entry's **key** is the SHA-256 of the sorted list of
``(relative path, size, mtime in ns, label)`` of every file it was decoded from, plus a format version. A load
recomputes the key from the folder (one ``stat`` per file) and uses the entry only when the keys are equal, so an
added, removed, renamed, rewritten or touched file makes the entry stale, and a stale entry is never used (it is
overwritten by the next save).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CACHE_ENV", "CacheEntry", "cache_dir", "file_key", "load_entry", "load_meta", "save_entry"]

CACHE_ENV = "PRIVLAB_CACHE_DIR"
_FORMAT = 1
_OFF = {"", "0", "off", "none", "false", "no"}


def cache_dir() -> Path | None:
    """The folder of privlab's decoded-data cache, or ``None`` when the cache is turned off (see module docstring)."""
    env = os.environ.get(CACHE_ENV)
    if env is not None:
        return None if env.strip().lower() in _OFF else Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "privlab"


def file_key(root: Path, files: Sequence[tuple[str, int]]) -> str:
    """SHA-256 (hex) of ``(path relative to root, size, mtime_ns, label)`` of every ``(path, label)`` in ``files``.

    Raises:
        OSError: a file vanished between listing and ``stat`` (the caller then decodes, and reports the file).
    """
    h = hashlib.sha256(f"privlab-image-cache-v{_FORMAT}\n".encode())
    prefix = os.path.join(str(root), "")
    for path, label in files:
        st = os.stat(path)
        rel = path[len(prefix) :] if path.startswith(prefix) else os.path.relpath(path, root)
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{label}\n".encode())
    return h.hexdigest()


class CacheEntry:
    """One loaded entry: ``images`` (uint8 array), ``labels`` (int64 ``(N,)``) and the JSON ``meta``."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, meta: dict[str, Any]) -> None:
        self.images, self.labels, self.meta = images, labels, meta


def _entry_name(tag: str, folder: Path) -> str:
    where = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return f"{tag}-{where}"


def load_meta(tag: str, folder: Path, key: str) -> dict[str, Any] | None:
    """The JSON metadata of the entry of ``folder`` when it exists with exactly ``key`` (arrays not read), else None."""
    base = cache_dir()
    if base is None:
        return None
    try:
        meta = json.loads((base / _entry_name(tag, folder)).with_suffix(".json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("key") == key and meta.get("format") == _FORMAT else None


def load_entry(tag: str, folder: Path, key: str) -> CacheEntry | None:
    """The cached entry of ``folder`` when one exists with exactly ``key``; ``None`` otherwise (miss or stale).

    Anything unreadable (truncated file, wrong shape, pickled dtype, bad JSON) counts as a miss, never an error.
    """
    base = cache_dir()
    if base is None:
        return None
    stem = base / _entry_name(tag, folder)
    try:
        meta = json.loads(stem.with_suffix(".json").read_text("utf-8"))
        if meta.get("key") != key or meta.get("format") != _FORMAT:
            return None
        images = np.load(stem.with_suffix(".npy"), allow_pickle=False)
        labels = np.load(stem.with_suffix(".labels.npy"), allow_pickle=False)
        # a writer removes the JSON before replacing the arrays: the same key after reading them means they match it
        if json.loads(stem.with_suffix(".json").read_text("utf-8")).get("key") != key:
            return None
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    if (
        list(images.shape) != meta.get("shape")
        or images.dtype != np.uint8
        or labels.shape != (images.shape[0],)
        or labels.dtype != np.int64
    ):
        return None
    return CacheEntry(images, labels, meta)


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def save_entry(
    tag: str, folder: Path, key: str, images: np.ndarray, labels: np.ndarray, meta: Mapping[str, Any] | None = None
) -> bool:
    """Store ``images`` (uint8) and ``labels`` under ``key``; returns False (with a warning) when it cannot write.

    Args:
        tag: what the entry is (e.g. ``"image_folder-train"``), part of its file name.
        folder: the folder the arrays were decoded from (its absolute path names the entry).
        key: :func:`file_key` of the files.
        images: uint8 array, any shape with the sample axis first.
        labels: ``(N,)`` integer labels.
        meta: extra JSON-serialisable metadata stored with the entry (e.g. statistics, class names).
    """
    base = cache_dir()
    if base is None:
        return False
    from privlab.errors import PrivlabError
    from privlab.store.artifacts import atomic_write_bytes, atomic_write_text

    stem = base / _entry_name(tag, folder)
    record = {
        **dict(meta or {}),
        "format": _FORMAT,
        "key": key,
        "folder": str(folder.resolve()),
        "shape": list(images.shape),
    }
    try:
        stem.with_suffix(".json").unlink(missing_ok=True)  # a half-replaced entry is never read as whole
        atomic_write_bytes(stem.with_suffix(".npy"), _npy_bytes(images.astype(np.uint8, copy=False)))
        atomic_write_bytes(stem.with_suffix(".labels.npy"), _npy_bytes(labels.astype(np.int64, copy=False)))
        atomic_write_text(stem.with_suffix(".json"), json.dumps(record))
    except (OSError, PrivlabError) as exc:
        warnings.warn(
            f"privlab: cannot write the decoded-image cache in '{base}' ({exc}); images will be decoded at every "
            f"load: set {CACHE_ENV} to a writable folder (or to 'off')",
            stacklevel=2,
        )
        return False
    return True
