"""Human (or proxy) recognisability labels of reconstructions: the manifest format and its importer.

A **manifest** is a CSV (or JSON) file lying in the folder that holds its images; every path in it is relative to
that folder. Columns (CSV header, or keys of each JSON object):

================== =========================================================================================
``original``       the original image (PNG), relative path; empty for a negative without an original
                   (the ``others/`` pool of the original layout)
``reconstruction`` the reconstruction (PNG), relative path
``setting``        the attack setting that produced it (model × defence × attack …); free text
``recognised``     ``yes`` / ``no`` (also accepted: ``1``/``0``, ``true``/``false``, ``y``/``n``)
``annotator``      who judged it (free text; ``proxy-classifier`` for the proxy labels)
================== =========================================================================================

JSON manifests are either a list of such objects or ``{"annotations": [...]}``. Paths are resolved **inside the
manifest's folder only**: absolute paths, ``..`` components and symbolic links leading out of the folder are
refused with a :class:`~privlab.errors.FileFormatError` naming the row.

:func:`import_folder_layout` converts the original SemSim data layout: one folder ``<id>`` per original image
holding the original ``*_ori.png`` and the reconstructions judged recognisable, a sibling ``-<id>`` with those judged
unrecognisable, and ``others/`` with extra unrecognisable negatives.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "m.csv").write_text("original,reconstruction,setting,recognised,annotator\\n"
    ...                               "a_ori.png,a_rec.png,dlg,yes,ann1\\n")
    >>> m = load_manifest(d / "m.csv")
    >>> m.records[0].recognised, m.records[0].setting
    (True, 'dlg')
"""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from privlab.errors import DataMissingError, FileFormatError
from privlab.store.artifacts import atomic_write_text
from privlab.store.export import csv_row, uncsv_cell

__all__ = [
    "COLUMNS",
    "Annotation",
    "Manifest",
    "append_annotation",
    "import_folder_layout",
    "load_manifest",
    "parse_recognised",
    "resolve_inside",
    "save_manifest",
]

COLUMNS = ("original", "reconstruction", "setting", "recognised", "annotator")
_YES = {"yes", "y", "1", "true", "recognised", "recognized"}
_NO = {"no", "n", "0", "false", "unrecognised", "unrecognized"}
_IMAGE = re.compile(r".*\.(png|jpg|jpeg|bmp)$", re.IGNORECASE)
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Annotation:
    """One judgement: is ``reconstruction`` (of ``original``, made in ``setting``) recognisable to ``annotator``."""

    original: str
    reconstruction: str
    setting: str
    recognised: bool
    annotator: str

    def as_row(self) -> dict[str, str]:
        """The CSV row (``recognised`` as ``yes``/``no``)."""
        d = asdict(self)
        d["recognised"] = "yes" if self.recognised else "no"
        return d


@dataclass
class Manifest:
    """A loaded manifest: its folder (``root``), file and records."""

    root: Path
    path: Path
    records: list[Annotation]

    def resolve(self, rel: str) -> Path:
        """Absolute path of a manifest path (checked to stay inside :attr:`root`)."""
        return resolve_inside(self.root, rel)

    def settings(self) -> list[str]:
        """The settings, in order of first appearance."""
        return list(dict.fromkeys(r.setting for r in self.records))


def parse_recognised(value: Any, where: str = "") -> bool:
    """``yes``/``no`` (and 1/0, true/false, y/n) → bool.

    Raises:
        FileFormatError: anything else (the message names ``where``).
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise FileFormatError(f"{where}: recognised must be yes or no (or 1/0, true/false), got {value!r}")


def resolve_inside(root: str | Path, rel: str, *, must_exist: bool = False) -> Path:
    """Resolve the relative path ``rel`` inside ``root``; refuse anything that would leave it.

    Refused: an empty path, an absolute path (POSIX or Windows drive), a ``..`` component, a backslash (ambiguous
    across systems), and a path that leaves ``root`` once symbolic links are followed.

    Raises:
        FileFormatError: the path escapes (or is malformed). DataMissingError: ``must_exist`` and it does not.
    """
    root_p = Path(root).resolve()
    text = str(rel)
    if not text or "\x00" in text:
        raise FileFormatError(f"empty or malformed path {rel!r}: manifest paths are relative to {root_p}")
    pure = PurePosixPath(text)
    if pure.is_absolute() or re.match(r"^[A-Za-z]:", text) or "\\" in text:
        raise FileFormatError(
            f"path {rel!r} is absolute (or uses backslashes); manifest paths must be relative to the manifest's "
            f"folder {root_p} (e.g. images/0_3_rec.png)"
        )
    if ".." in pure.parts:
        raise FileFormatError(f"path {rel!r} contains '..'; manifest paths must stay inside {root_p}")
    full = (root_p / Path(*pure.parts)).resolve()
    if full != root_p and root_p not in full.parents:
        raise FileFormatError(
            f"path {rel!r} leads outside the manifest's folder {root_p} (through a symbolic link); copy the image "
            "into the folder instead"
        )
    if must_exist and not full.is_file():
        raise DataMissingError(f"image {rel!r} of the manifest does not exist in {root_p}")
    return full


def _records_from_rows(rows: list[dict[str, Any]], root: Path, where: str) -> list[Annotation]:
    out = []
    for i, row in enumerate(rows, start=1):
        at = f"{where} row {i}"
        if not isinstance(row, dict):
            raise FileFormatError(f"{at}: expected an object with keys {', '.join(COLUMNS)}")
        missing = [c for c in ("reconstruction", "recognised") if row.get(c) in (None, "")]
        if missing:
            raise FileFormatError(f"{at}: missing {', '.join(missing)} (columns: {', '.join(COLUMNS)})")
        orig = str(row.get("original") or "").strip()
        rec = str(row["reconstruction"]).strip()
        for p in (orig, rec) if orig else (rec,):
            try:
                resolve_inside(root, p)
            except FileFormatError as e:
                raise FileFormatError(f"{at}: {e}") from None
        out.append(
            Annotation(
                original=orig,
                reconstruction=rec,
                setting=str(row.get("setting") or "").strip() or "default",
                recognised=parse_recognised(row["recognised"], at),
                annotator=str(row.get("annotator") or "").strip() or "unknown",
            )
        )
    return out


def load_manifest(path: str | Path) -> Manifest:
    """Read a CSV or JSON manifest (format in the module docstring); paths are checked, not opened.

    Raises:
        DataMissingError: no such file. FileFormatError: bad header/JSON, a bad ``recognised`` value, or a path that
        leaves the manifest's folder (the row is named).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataMissingError(f"manifest {p} not found (create one with `privlab semsim annotate` or the importer)")
    root = p.parent.resolve()
    try:
        text = p.read_text("utf-8")
    except UnicodeDecodeError:
        raise FileFormatError(f"{p}: not a text file (not UTF-8); a manifest is a CSV or JSON file") from None
    except OSError as e:
        raise DataMissingError(f"cannot read manifest {p}: {e.strerror or e} (check its permissions)") from None
    if "\x00" in text:
        raise FileFormatError(f"{p}: holds NUL bytes; a manifest is a CSV or JSON text file")
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise FileFormatError(f"{p}: not valid JSON ({e.msg} at line {e.lineno})") from None
        except RecursionError:
            raise FileFormatError(f"{p}: not a manifest (JSON nested too deeply)") from None
        rows = data.get("annotations") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise FileFormatError(f"{p}: expected a JSON list of annotations or {{'annotations': [...]}}")
    else:
        reader = csv.DictReader(io.StringIO(text))
        try:
            header = [h.strip() for h in (reader.fieldnames or [])]
            if not {"reconstruction", "recognised"} <= set(header):
                shown = ", ".join(header)[:200] or "nothing"
                raise FileFormatError(f"{p}: CSV header must contain {', '.join(COLUMNS)} (got {shown})")
            rows = [
                {(k or "").strip(): uncsv_cell(v) if isinstance(v, str) else v for k, v in r.items() if k is not None}
                for r in reader
            ]
        except csv.Error as e:
            raise FileFormatError(f"{p}: not a valid CSV file (line {reader.line_num}: {e})") from None
    return Manifest(root, p, _records_from_rows(rows, root, str(p)))


def _render(records: list[Annotation], fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"annotations": [r.as_row() for r in records]}, indent=1) + "\n"
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    for r in records:
        w.writerow(csv_row(r.as_row()))  # '=…' / '+…' / '-…' / '@…' cells quoted with ' (read back unquoted)
    return buf.getvalue()


def save_manifest(path: str | Path, records: list[Annotation]) -> Path:
    """Write ``records`` as a CSV (or ``.json``) manifest, atomically (paths must be relative to its folder)."""
    p = Path(path).expanduser()
    root = p.parent.resolve() if p.parent.exists() else p.parent.absolute()
    for r in records:
        for rel in (r.original, r.reconstruction) if r.original else (r.reconstruction,):
            resolve_inside(root, rel)
    return atomic_write_text(p, _render(records, "json" if p.suffix.lower() == ".json" else "csv"))


def append_annotation(path: str | Path, record: Annotation, *, replace: bool = True) -> int:
    """Add ``record`` to the manifest at ``path`` (created if missing), atomically; returns the number of records.

    The whole file is rewritten through a temporary file and a rename, under a lock, so a crash or a concurrent
    request never leaves a half-written manifest and no earlier answer is lost. With ``replace``, an earlier answer of
    the same annotator for the same reconstruction is replaced (a page refresh that re-sends an answer does not
    duplicate it).
    """
    p = Path(path).expanduser()
    with _LOCK:
        records = load_manifest(p).records if p.exists() else []
        if replace:
            records = [
                r
                for r in records
                if not (r.annotator == record.annotator and r.reconstruction == record.reconstruction)
            ]
        records.append(record)
        save_manifest(p, records)
        return len(records)


def _images(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and _IMAGE.match(f.name))


def import_folder_layout(
    root: str | Path,
    manifest: str | Path | None = None,
    *,
    setting: str = "default",
    annotator: str = "imported",
) -> Manifest:
    """Convert SemSim's folder layout under ``root`` into a manifest (written to ``manifest``, default
    ``root/manifest.csv``; it must lie in ``root`` so that paths stay relative to it).

    Layout: ``<id>/`` holds the original (a file whose name contains ``_ori``, or the only ``ori`` match) and the
    recognised reconstructions; ``-<id>/`` holds unrecognised reconstructions of the same original; ``others/`` holds
    unrecognised negatives without an original (written with an empty ``original``).

    Raises:
        DataMissingError: ``root`` is not a folder. FileFormatError: a ``<id>`` folder without exactly one original,
        or nothing to import.
    """
    base = Path(root).expanduser().resolve()
    if not base.is_dir():
        raise DataMissingError(f"{base} is not a folder (expected <id>/, -<id>/ and others/ inside)")
    out = Path(manifest).expanduser() if manifest is not None else base / "manifest.csv"
    if out.parent.resolve() != base:
        raise FileFormatError(f"the manifest must be written into {base} itself (got {out}) so its paths stay inside")
    records: list[Annotation] = []
    ids = sorted(d.name for d in base.iterdir() if d.is_dir() and not d.is_symlink() and not d.name.startswith("-"))
    for ident in ids:
        if ident == "others":
            continue
        folder = base / ident
        files = _images(folder)
        oris = [f for f in files if "_ori" in f.stem]
        if len(oris) != 1:
            raise FileFormatError(
                f"folder {folder} holds {len(oris)} originals (files named *_ori*); the layout needs exactly one"
            )
        ori = oris[0].relative_to(base).as_posix()
        for f in files:
            if f != oris[0]:
                records.append(Annotation(ori, f.relative_to(base).as_posix(), setting, True, annotator))
        neg = base / f"-{ident}"
        if neg.is_dir():
            for f in _images(neg):
                records.append(Annotation(ori, f.relative_to(base).as_posix(), setting, False, annotator))
    others = base / "others"
    if others.is_dir():
        for f in _images(others):
            records.append(Annotation("", f.relative_to(base).as_posix(), setting, False, annotator))
    if not records:
        raise FileFormatError(f"nothing to import from {base}: expected folders <id>/ (original + recognised), -<id>/")
    for r in records:  # symbolic links inside the layout that point elsewhere are refused here
        for rel in (r.original, r.reconstruction) if r.original else (r.reconstruction,):
            resolve_inside(base, rel)
    save_manifest(out, records)
    return Manifest(base, out, records)
