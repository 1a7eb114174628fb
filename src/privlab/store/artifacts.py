"""Artifacts on disk: atomic writes, tensors as safetensors with JSON metadata, SHA-256 of every file.

Nothing here unpickles: safetensors holds raw tensor bytes, metadata is JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from privlab.errors import DataMissingError, FileFormatError, PrivlabError

__all__ = ["atomic_write_bytes", "atomic_write_text", "load_tensors", "save_tensors", "sha256_file"]

_META_KEY = "privlab"


def _write_error(path: Path, err: OSError) -> PrivlabError:
    return PrivlabError(f"cannot write {path}: {err.strerror or err} (check free space and write permission)")


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    A reader sees the old file or the whole new one, never half of it; on error the temporary file is removed.
    """
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    except OSError as e:
        raise _write_error(p, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise _write_error(p, e) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def atomic_write_text(path: str | Path, text: str) -> Path:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_tensors(path: str | Path, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any] | None = None) -> str:
    """Save named tensors as safetensors with JSON metadata, atomically; returns the file's SHA-256.

    Args:
        path: destination ``.safetensors`` file.
        tensors: name → tensor (moved to CPU and made contiguous; shared storage is copied).
        meta: JSON-serialisable metadata stored in the file header.
    """
    p = Path(path)
    clean = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    header = {_META_KEY: json.dumps(dict(meta or {}), sort_keys=True, default=str)}
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
        os.close(fd)
    except OSError as e:
        raise _write_error(p, e) from None
    try:
        save_file(clean, tmp, metadata=header)
        os.replace(tmp, p)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise _write_error(p, e) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return sha256_file(p)


def load_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load a safetensors file written by :func:`save_tensors`: ``(tensors, metadata)``.

    Raises:
        DataMissingError: no such file. FileFormatError: not a valid safetensors file (truncated, corrupt,
        a pickle, …) or its metadata is not JSON.
    """
    p = Path(path)
    if not p.is_file():
        raise DataMissingError(f"file not found: {p}")
    try:
        tensors = load_file(str(p))
        from safetensors import safe_open

        with safe_open(str(p), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise FileFormatError(
            f"{p}: not a valid safetensors file ({' '.join(str(e).split())[:120]}); "
            "privlab reads tensors only from .safetensors files it wrote (never pickles)"
        ) from None
    try:
        meta = json.loads(header.get(_META_KEY, "{}"))
    except json.JSONDecodeError:
        raise FileFormatError(f"{p}: its privlab metadata is not valid JSON") from None
    return tensors, meta
