"""Artifacts on disk: atomic writes, tensors as safetensors with JSON metadata, SHA-256 of every file.

Nothing here unpickles: safetensors holds raw tensor bytes, metadata is JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from privlab.errors import DataMissingError, FileFormatError, PrivlabError

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "load_array",
    "load_tensors",
    "replace_section",
    "save_tensors",
    "sha256_file",
]

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


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN/inf replaced by None (not valid JSON), recursively through dicts, lists and tuples."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


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
    atomic_write_bytes(p, save(clean, metadata=header))
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


def load_array(path: str | Path) -> np.ndarray:
    """Load one numeric array from ``.npy``, ``.npz`` or ``.safetensors`` without unpickling anything.

    ``FILE.npz:NAME`` / ``FILE.safetensors:NAME`` pick one array from a file that holds several; a file with exactly
    one array needs no name.

    Raises:
        DataMissingError: no such file. FileFormatError: another extension, a pickled/object array, a truncated or
        corrupt file, several arrays and no name, or an unknown name.
    """
    text = str(path)
    name = None
    for ext in (".npz", ".safetensors"):
        if ext + ":" in text:
            text, name = text.split(ext + ":", 1)
            text += ext
    p = Path(text)
    if not p.is_file():
        raise DataMissingError(f"file not found: {p}")
    suffix = p.suffix.lower()
    with open(p, "rb") as f:
        head = f.read(8)
    if suffix in (".npy", ".npz") and head[:1] == b"\x80":
        raise FileFormatError(f"{p}: is a Python pickle, which privlab refuses to load; save arrays with np.save")
    if suffix == ".npy" and not head.startswith(b"\x93NUMPY"):
        raise FileFormatError(f"{p}: not a valid .npy file (no NumPy header); was it written by np.save?")
    if suffix == ".npz" and not zipfile.is_zipfile(p):
        raise FileFormatError(f"{p}: not a valid .npz file (not a zip archive); was it written by np.savez?")
    if suffix == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except ValueError as e:
            if "allow_pickle" in str(e):
                raise FileFormatError(
                    f"{p}: holds pickled Python objects, which privlab refuses to load; "
                    "save a numeric array (np.save of a float/int array)"
                ) from None
            raise FileFormatError(f"{p}: not a valid .npy file ({e})") from None
        except (OSError, EOFError) as e:
            raise FileFormatError(f"{p}: not a valid .npy file ({e or 'truncated'})") from None
    elif suffix == ".npz":
        try:
            with np.load(p, allow_pickle=False) as archive:
                keys = list(archive.keys())
                key = _pick(p, keys, name)
                arr = archive[key]
        except ValueError as e:
            if "allow_pickle" in str(e):
                raise FileFormatError(f"{p}: holds pickled Python objects, which privlab refuses to load") from None
            raise FileFormatError(f"{p}: not a valid .npz file ({e})") from None
        except (OSError, EOFError, zipfile.BadZipFile) as e:
            raise FileFormatError(f"{p}: not a valid .npz file ({e or 'truncated'})") from None
    elif suffix == ".safetensors":
        tensors, _ = load_tensors(p)
        arr = tensors[_pick(p, list(tensors), name)].numpy()
    else:
        raise FileFormatError(f"{p}: unsupported file type {suffix or '(none)'}; use .npy, .npz or .safetensors")
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise FileFormatError(f"{p}: expected a numeric array, got dtype {arr.dtype}")
    return arr


def _pick(path: Path, keys: list[str], name: str | None) -> str:
    if name is not None:
        if name not in keys:
            raise FileFormatError(f"{path}: no array {name!r}; it holds: {', '.join(keys) or 'nothing'}")
        return name
    if len(keys) != 1:
        shown = ", ".join(keys) or "nothing"
        raise FileFormatError(f"{path}: holds {len(keys)} arrays ({shown}); pick one as {path}:NAME")
    return keys[0]


def replace_section(path: str | Path, name: str, body: str) -> Path:
    """Write ``body`` between ``<!-- begin NAME -->`` and ``<!-- end NAME -->`` in a text file (atomically).

    The markers are appended when absent, so several generators can share one file (e.g. ``BENCHMARKS.md``).
    """
    p = Path(path)
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}\n"
    text = p.read_text(encoding="utf-8") if p.is_file() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + block + (("\n" + tail) if tail else "")
    else:
        text = text.rstrip() + ("\n\n" if text.strip() else "") + block
    return atomic_write_text(p, text)
