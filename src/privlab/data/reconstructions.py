"""Originals and reconstructions as PNG pairs named ``{idx}_{label}_ori.png`` / ``{idx}_{label}_rec.png``.

This is the naming of the SemSim benchmark (and of ``privlab invert``): ``idx`` is the image's index in the
attacked batch or data set, ``label`` its class. The originals and reconstructions may share one folder or lie in
two (SemSim keeps the originals in a sibling folder with the suffix ``_ori``). PNGs are 8-bit: grey for one
channel, RGB for three.

Example:
    >>> import tempfile, torch
    >>> x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    >>> folder = tempfile.mkdtemp()
    >>> [p.name for p in save_pairs(folder, x, x.flip(0), labels=[3, 7])]
    ['0_3_ori.png', '0_3_rec.png', '1_7_ori.png', '1_7_rec.png']
    >>> pairs = load_pairs(folder)
    >>> pairs.indices, pairs.labels.tolist(), tuple(pairs.originals.shape)
    ([0, 1], [3, 7], (2, 1, 8, 8))
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from privlab.errors import ConfigError, DataMissingError, FileFormatError

__all__ = ["NAMING", "PairFile", "Pairs", "load_pairs", "pair_files", "read_png", "save_pairs"]

NAMING = "{idx}_{label}_ori.png and {idx}_{label}_rec.png (idx and label non-negative integers, e.g. 0_7_ori.png)"
_PATTERN = re.compile(r"^(\d+)_(\d+)_(ori|rec)\.png$")
_SHOW = 5


@dataclass(frozen=True)
class PairFile:
    """One matched pair of files: index, label and the two paths."""

    idx: int
    label: int
    ori: Path
    rec: Path


@dataclass
class Pairs:
    """Loaded pairs, sorted by index: ``originals``/``reconstructions`` float ``N×C×H×W`` in ``[0, 1]``."""

    indices: list[int]
    labels: torch.Tensor
    originals: torch.Tensor
    reconstructions: torch.Tensor
    files: list[PairFile] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.indices)


def _as_images(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] not in (1, 3):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ConfigError(f"{name} must be a tensor N×C×H×W with C = 1 or 3 (float in [0, 1]), got {shape}")
    return x.detach().float().cpu().clamp(0, 1)


def save_pairs(
    folder: str | Path,
    originals: torch.Tensor,
    reconstructions: torch.Tensor,
    labels: torch.Tensor | Sequence[int],
    indices: Sequence[int] | None = None,
) -> list[Path]:
    """Write each pair as ``{idx}_{label}_ori.png`` and ``{idx}_{label}_rec.png`` into ``folder`` (atomically).

    Args:
        folder: output folder (created).
        originals, reconstructions: float ``N×C×H×W`` in ``[0, 1]`` (clamped), C = 1 (grey PNG) or 3 (RGB PNG);
            values are rounded to 8 bits.
        labels: ``N`` integer labels.
        indices: ``N`` integer indices (default ``0 … N−1``).

    Returns:
        The written paths, ori then rec for each image, in input order.

    Raises:
        ConfigError: shapes, label or index counts that do not fit, negative or repeated indices.
    """
    from privlab.store.artifacts import atomic_write_bytes
    from privlab.store.images import to_png_bytes

    x = _as_images(originals, "originals")
    y = _as_images(reconstructions, "reconstructions")
    if x.shape != y.shape:
        raise ConfigError(
            f"originals and reconstructions must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    n = x.shape[0]
    labs = [int(v) for v in torch.as_tensor(labels).reshape(-1).tolist()]
    idx = list(range(n)) if indices is None else [int(v) for v in indices]
    if len(labs) != n or len(idx) != n:
        raise ConfigError(f"got {n} image pairs but {len(labs)} labels and {len(idx)} indices")
    if any(v < 0 for v in labs + idx):
        raise ConfigError("labels and indices must be non-negative integers (they become file names)")
    if len(set(idx)) != n:
        raise ConfigError("indices must be distinct (each becomes a file name)")
    out = Path(folder)
    paths: list[Path] = []
    for i in range(n):
        for kind, img in (("ori", x[i]), ("rec", y[i])):
            paths.append(atomic_write_bytes(out / f"{idx[i]}_{labs[i]}_{kind}.png", to_png_bytes(img)))
    return paths


def _listing(files: Sequence[Path | str], total: int | None = None) -> str:
    names = [str(f) for f in files[:_SHOW]]
    count = len(files) if total is None else total
    more = f" and {count - len(names)} more" if count > len(names) else ""
    return ", ".join(names) + more


def _scan(folder: Path, kind: str) -> dict[int, list[tuple[int, Path]]]:
    """idx → [(label, path)] of the ``*_{kind}.png`` files in ``folder``."""
    found: dict[int, list[tuple[int, Path]]] = {}
    for p in sorted(folder.iterdir()):
        m = _PATTERN.match(p.name)
        if m and m.group(3) == kind and p.is_file():
            found.setdefault(int(m.group(1)), []).append((int(m.group(2)), p))
    return found


def pair_files(orig_dir: str | Path, rec_dir: str | Path | None = None) -> list[PairFile]:
    """Match ``*_ori.png`` in ``orig_dir`` with ``*_rec.png`` in ``rec_dir`` (default: the same folder) by index.

    Files not following :data:`NAMING` are ignored.

    Raises:
        DataMissingError: a folder does not exist.
        FileFormatError: no file follows the naming; or an original without reconstruction (or the reverse); or an
            index whose files disagree on the label, or that appears twice — naming a few files and the count.
    """
    o = Path(orig_dir).expanduser()
    r = Path(rec_dir).expanduser() if rec_dir is not None else o
    for d, what in ((o, "originals"), (r, "reconstructions")):
        if not d.is_dir():
            raise DataMissingError(f"{what} folder {d} does not exist (or is not a folder)")
    oris, recs = _scan(o, "ori"), _scan(r, "rec")
    where = f"{o}" if r == o else f"{o} (originals) and {r} (reconstructions)"
    if not oris and not recs:
        raise FileFormatError(f"no image pairs found in {where}: expected files named {NAMING}")
    dup = [p.name for group in (oris, recs) for items in group.values() if len(items) > 1 for _, p in items]
    if dup:
        raise FileFormatError(
            f"{len(dup)} files share an index with another file of the same kind: {_listing(dup)}; "
            f"each index must appear once per kind ({NAMING})"
        )
    lone_o = [oris[i][0][1].name for i in sorted(set(oris) - set(recs))]
    lone_r = [recs[i][0][1].name for i in sorted(set(recs) - set(oris))]
    if lone_o or lone_r:
        parts = []
        if lone_o:
            parts.append(f"{len(lone_o)} originals without a reconstruction ({_listing(lone_o)})")
        if lone_r:
            parts.append(f"{len(lone_r)} reconstructions without an original ({_listing(lone_r)})")
        raise FileFormatError(f"unmatched files in {where}: {'; '.join(parts)}; expected pairs named {NAMING}")
    clash = [f"{oris[i][0][1].name} vs {recs[i][0][1].name}" for i in sorted(oris) if oris[i][0][0] != recs[i][0][0]]
    if clash:
        raise FileFormatError(
            f"{len(clash)} pairs disagree on the label of the same index: {_listing(clash)}; "
            f"an index's ori and rec files must carry the same label ({NAMING})"
        )
    return [PairFile(i, oris[i][0][0], oris[i][0][1], recs[i][0][1]) for i in sorted(oris)]


def read_png(path: str | Path) -> torch.Tensor:
    """Read one image file as float ``C×H×W`` in ``[0, 1]``: grey (and grey+alpha) → C = 1, anything else → RGB.

    16-bit grey PNGs are scaled by 1/65535, 8-bit images by 1/255; alpha is dropped.

    Raises:
        FileFormatError: the file cannot be decoded (corrupt, truncated, not an image).
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode.startswith("I;16") or mode == "I":
                arr = np.asarray(im, dtype=np.float64) / 65535.0
                arr = arr[None]
            elif mode in ("1", "L", "LA", "La"):
                arr = np.asarray(im.convert("L"), dtype=np.float64)[None] / 255.0
            else:
                arr = np.asarray(im.convert("RGB"), dtype=np.float64).transpose(2, 0, 1) / 255.0
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise FileFormatError(
            f"cannot read image {path} ({type(exc).__name__}: {' '.join(str(exc).split())[:120]}); the file is "
            "corrupt, truncated or not a PNG: replace or remove it"
        ) from None
    return torch.from_numpy(np.ascontiguousarray(arr)).float().clamp(0, 1)


def load_pairs(orig_dir: str | Path, rec_dir: str | Path | None = None) -> Pairs:
    """Read the pairs matched by :func:`pair_files` as tensors (sorted by index).

    Raises:
        DataMissingError / FileFormatError: as :func:`pair_files`; also an unreadable PNG, or an image whose size or
            channel count differs from the first original's (the file is named).
    """
    files = pair_files(orig_dir, rec_dir)
    ori, rec = [], []
    ref: tuple[int, ...] | None = None
    ref_file: Path | None = None
    for pf in files:
        for path, bucket in ((pf.ori, ori), (pf.rec, rec)):
            img = read_png(path)
            if ref is None:
                ref, ref_file = tuple(img.shape), path
            elif tuple(img.shape) != ref:
                c, h, w = img.shape
                raise FileFormatError(
                    f"{path} is {h}×{w} with {c} channel(s) but {ref_file} is {ref[1]}×{ref[2]} with {ref[0]}; all "
                    "originals and reconstructions must have one size and channel count (resave them alike)"
                )
            bucket.append(img)
    return Pairs(
        indices=[pf.idx for pf in files],
        labels=torch.tensor([pf.label for pf in files], dtype=torch.long),
        originals=torch.stack(ori),
        reconstructions=torch.stack(rec),
        files=files,
    )
