"""Artifacts on disk: atomic writes, tensors as safetensors with JSON metadata, SHA-256 of every file.

Nothing here unpickles: safetensors holds raw tensor bytes, metadata is JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
import zipfile
import zlib
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


def _file_mode(p: Path) -> int:
    """The mode of the file being replaced, else 0666 minus the process umask (what ``open(p, "w")`` gives)."""
    try:
        return p.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


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
            # mkstemp creates 0600; give the file the mode a plain open() would (colleagues can read results)
            os.chmod(tmp, _file_mode(p))
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
        a pickle, …) or its metadata is not a JSON object.
    """
    p = Path(path)
    if not p.is_file():
        raise DataMissingError(_not_a_file(p))
    try:
        tensors = load_file(str(p))
        from safetensors import safe_open

        with safe_open(str(p), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError, MemoryError) as e:
        raise FileFormatError(
            f"{p}: not a valid safetensors file ({' '.join(str(e).split())[:120]}); "
            "privlab reads tensors only from .safetensors files it wrote (never pickles)"
        ) from None
    try:
        meta = json.loads(header.get(_META_KEY, "{}"))
    except (json.JSONDecodeError, RecursionError):
        raise FileFormatError(f"{p}: its privlab metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise FileFormatError(f"{p}: its privlab metadata must be a JSON object, got {type(meta).__name__}")
    return tensors, meta


def _not_a_file(p: Path) -> str:
    if p.is_dir():
        return f"{p} is a folder, not a file; give the path of the file itself"
    if p.exists():
        return f"{p} is not a regular file (a device, pipe or socket); give the path of a file"
    return f"file not found: {p}"


def _check_npy_header(f: Any, where: str, available: int) -> None:
    """Read a ``.npy`` header from ``f`` and refuse what ``np.load`` should never see.

    Refused: object dtypes (pickles), non-numeric or complex dtypes, and a header announcing more bytes than the
    ``available`` bytes of the file (a truncated file, or a forged shape that would allocate terabytes).
    """
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _fortran, dtype = read(f)
    except Exception as e:  # numpy parses the header with ast/tokenize: garbage raises many kinds (all refused)
        reason = re.sub(r"<ast\.\w+ object at 0x[0-9a-f]+>", "an expression", " ".join(str(e).split()))
        raise FileFormatError(f"{where}: not a valid .npy file (bad header: {reason[:120] or 'truncated'})") from None
    if dtype.hasobject:
        raise FileFormatError(
            f"{where}: holds pickled Python objects, which privlab refuses to load; "
            "save a numeric array (np.save of a float/int array)"
        )
    _check_dtype(where, dtype)
    need = math.prod(shape) * dtype.itemsize
    limit = max_array_bytes()
    if need > limit:
        raise FileFormatError(
            f"{where}: its header announces a {dtype} array of shape {tuple(shape)}, {need / 2**30:.3g} GiB in memory, "
            f"more than privlab loads at once ({limit / 2**30:.3g} GiB); pass a smaller array (or set "
            "PRIVLAB_MAX_ARRAY_MIB)"
        )
    have = available - f.tell()
    if need > have:
        raise FileFormatError(
            f"{where}: not a valid .npy file (truncated: its header announces a {dtype} array of shape "
            f"{tuple(shape)}, {need} bytes, but only {max(have, 0)} bytes follow); write the file again"
        )


def max_array_bytes() -> int:
    """Largest array a user file may announce: ``PRIVLAB_MAX_ARRAY_MIB`` MiB when set, else half the machine's memory
    (at most 16 GiB). Checked from the header before anything is read, so an ``.npz`` member that inflates to
    gigabytes is refused before it is decompressed."""
    raw = os.environ.get("PRIVLAB_MAX_ARRAY_MIB", "")
    if raw:
        try:
            return max(1, int(raw)) * 2**20
        except ValueError:
            raise FileFormatError(f"PRIVLAB_MAX_ARRAY_MIB={raw!r} is not an integer number of MiB") from None
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        total = 8 * 2**30
    return min(total // 2, 16 * 2**30)


def _check_dtype(where: str, dtype: np.dtype) -> None:
    if dtype.kind not in "biuf":
        raise FileFormatError(f"{where}: expected a numeric array (bool, int or float; not complex), got dtype {dtype}")


def load_array(path: str | Path) -> np.ndarray:
    """Load one numeric array from ``.npy``, ``.npz`` or ``.safetensors`` without unpickling anything.

    ``FILE.npz:NAME`` / ``FILE.safetensors:NAME`` pick one array from a file that holds several; a file with exactly
    one array needs no name. The header is checked before any data is read, so a truncated file or a forged shape is
    refused without allocating it; bfloat16/float8 safetensors are widened to float32. A float array holding nan or
    ±inf is refused (no result computed from it would be a number).

    Raises:
        DataMissingError: no such file. FileFormatError: another extension, a pickled/object array, a complex or
        non-numeric dtype, a truncated or corrupt file, several arrays and no name, or an unknown name.
    """
    text = str(path)
    name = None
    for ext in (".npz", ".safetensors"):
        if ext + ":" in text:
            text, name = text.split(ext + ":", 1)
            text += ext
    p = Path(text)
    if not p.is_file():
        raise DataMissingError(_not_a_file(p))
    suffix = p.suffix.lower()
    try:
        with open(p, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise DataMissingError(f"cannot read {p}: {e.strerror or e} (check its permissions)") from None
    if suffix in (".npy", ".npz") and head[:1] == b"\x80":
        raise FileFormatError(f"{p}: is a Python pickle, which privlab refuses to load; save arrays with np.save")
    if suffix == ".npy" and not head.startswith(b"\x93NUMPY"):
        raise FileFormatError(f"{p}: not a valid .npy file (no NumPy header); was it written by np.save?")
    if suffix == ".npz" and not zipfile.is_zipfile(p):
        raise FileFormatError(f"{p}: not a valid .npz file (not a zip archive); was it written by np.savez?")
    try:
        if suffix == ".npy":
            with open(p, "rb") as f:
                _check_npy_header(f, str(p), p.stat().st_size)
                f.seek(0)
                arr = np.lib.format.read_array(f, allow_pickle=False)
        elif suffix == ".npz":
            arr = _load_npz_member(p, name)
        elif suffix == ".safetensors":
            tensors, _ = load_tensors(p)
            t = tensors[_pick(p, list(tensors), name)]
            if t.is_complex():
                raise FileFormatError(f"{p}: expected a numeric array (not complex), got dtype {t.dtype}")
            if t.dtype in (torch.bfloat16,) or (t.is_floating_point() and t.element_size() == 1):
                t = t.float()  # numpy has no bfloat16 / float8
            arr = t.numpy()
        else:
            raise FileFormatError(f"{p}: unsupported file type {suffix or '(none)'}; use .npy, .npz or .safetensors")
    except MemoryError:
        raise FileFormatError(f"{p}: the array is too large to load into memory") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError) as e:
        if isinstance(e, PrivlabError):
            raise
        kind = suffix.lstrip(".")
        raise FileFormatError(
            f"{p}: not a valid .{kind} file ({' '.join(str(e).split())[:120] or 'truncated'})"
        ) from None
    _check_dtype(str(p), arr.dtype)
    if arr.dtype.kind == "f" and arr.size:
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise FileFormatError(
                f"{p}{':' + name if name else ''}: holds {bad} non-finite value(s) (NaN or inf) of {arr.size}; "
                "privlab needs finite numbers: drop or replace them first"
            )
    return arr


def _load_npz_member(p: Path, name: str | None) -> np.ndarray:
    """One array of an ``.npz`` (a zip of ``.npy`` members), header-checked before it is read."""
    with zipfile.ZipFile(p) as zf:
        members = {i.filename.removesuffix(".npy"): i for i in zf.infolist() if not i.is_dir()}
        key = _pick(p, list(members), name)
        info = members[key]
        where = f"{p}:{key}"
        if not info.filename.endswith(".npy"):
            raise FileFormatError(
                f"{where}: member {info.filename!r} is not a .npy array; was the file written by np.savez?"
            )
        with zf.open(info) as f:
            _check_npy_header(f, where, info.file_size)
        with zf.open(info) as f:
            return np.lib.format.read_array(f, allow_pickle=False)


def _pick(path: Path, keys: list[str], name: str | None) -> str:
    if name is not None:
        if name not in keys:
            raise FileFormatError(f"{path}: no array {name!r}; it holds: {', '.join(keys) or 'nothing'}")
        return name
    if not keys:
        raise FileFormatError(f"{path}: holds no arrays")
    if len(keys) != 1:
        shown = ", ".join(keys)
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
