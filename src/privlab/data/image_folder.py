"""Your own images: a folder in torchvision's ``ImageFolder`` layout, one sub-folder per class.

Layout::

    ROOT/train/<class name>/<image>.png|jpg|…
    ROOT/test/<class name>/<image>.png|jpg|…

Classes are the (non-hidden) sub-folder names of ``ROOT/train`` in sorted order (label ``i`` is the ``i``-th
name), and the test split uses the same mapping, so a class may be absent from ``test/`` but ``test/`` may not hold
a class that ``train/`` lacks. Every image is read with PIL and converted to RGB, so the images are
``(N, 3, H, W)`` uint8 and must all have the same size (or be resized while reading with the loader's ``resize``
argument).

Its :class:`DatasetInfo` cannot know the folder before it is read: ``shape=(3, 0, 0)`` means "3 channels, size from
the files" and ``num_classes=0`` means "from the folder names" (the loaded set has ``class_names`` = those names).

**Statistics.** The loaded set's ``mean``/``std`` (what a model's ``normalize`` layer uses) are the per-channel
mean and standard deviation (population, ``ddof=0``, ``[0, 1]`` units) of all pixels of the *training* split as
loaded (after ``resize``), for both splits.

**Cache.** Decoding tens of thousands of files takes tens of seconds, so the decoded uint8 array of a split (native
size) is cached with its statistics by :mod:`privlab.data.cache` (``$PRIVLAB_CACHE_DIR``, else
``~/.cache/privlab``), keyed by every file's path, size and modification time: a changed folder is decoded again,
never served stale. Loading the test split also needs the training statistics: it reads them from the cache, or
decodes (and caches) the training split once. Files are decoded by a small thread pool.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from privlab.data import DATASETS, DatasetInfo, LabelledImages, resize_images
from privlab.data import cache as _cache
from privlab.errors import DataMissingError, FileFormatError

__all__ = ["channel_stats", "image_folder"]

_LAYOUT = "train/<class>/<image> and test/<class>/<image> (torchvision ImageFolder layout)"

_INFO = DatasetInfo(
    shape=(3, 0, 0),
    num_classes=0,
    needs_root=True,
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    description="your own images under --data-root: train/<class>/*.png and test/<class>/*.png (RGB, one size); "
    "mean/std from the training split, decoded arrays cached",
)


# the file types torchvision's ImageFolder reads (privlab lists the files itself: importing torchvision takes seconds)
_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def _class_dirs(folder: Path) -> list[str]:
    """Sorted names of the sub-folders of ``folder``, hidden ones (``.name``) excluded."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_rgb(path: str) -> np.ndarray:
    """Read one image file as ``(H, W, 3)`` uint8 RGB.

    Raises:
        FileFormatError: PIL cannot decode the file (corrupt, truncated or not an image).
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"), dtype=np.uint8)  # a writable copy
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise FileFormatError(
            f"image_folder: cannot read image '{path}' ({type(exc).__name__}: {exc}); the file is corrupt, truncated "
            f"or not an image: replace or remove it"
        ) from exc


@DATASETS.register("image_folder", info=_INFO)
def image_folder(
    split: str, root: Path | None, download: bool = False, *, resize: int | tuple[int, int] | None = None
) -> LabelledImages:
    """Load ``ROOT/<split>`` as uint8-backed :class:`LabelledImages` ``(N, 3, H, W)``, labels from folder names.

    Args:
        split: ``"train"`` or ``"test"``.
        root: the folder holding ``train/`` and ``test/``.
        download: ignored: there is nothing to download.
        resize: if given (``H`` or ``(H, W)`` in pixels), each image is resized (bilinear, antialiased) as it is read,
            so folders of mixed sizes can be loaded; otherwise all images must share one size.

    Returns:
        Images ``(N, 3, H, W)`` stored as uint8 (float ``[0, 1]`` when ``resize`` is given), ``num_classes`` = number
        of class folders in ``train/``, ``class_names`` = those folder names, ``mean``/``std`` = per-channel
        statistics of the training split (see the module docstring).

    Raises:
        DataMissingError: no root, no ``train/``/``<split>/`` folder, no class folder or no image.
        FileFormatError: an unreadable image (named), images of different sizes (the odd one named), or a class folder
            in ``test/`` that ``train/`` lacks.
    """
    if root is None:
        raise DataMissingError(
            f"dataset 'image_folder' needs a data root: pass --data-root DIR (the folder that holds {_LAYOUT})"
        )
    train_dir, split_dir = root / "train", root / split
    for folder in dict.fromkeys((train_dir, split_dir)):
        if not folder.is_dir():
            raise DataMissingError(
                f"dataset 'image_folder': folder '{folder}' not found; the data root '{root}' must hold {_LAYOUT}"
            )
    classes = _class_dirs(train_dir)
    if not classes:
        raise DataMissingError(
            f"dataset 'image_folder': no class folder in '{train_dir}'; expected {_LAYOUT}, one folder per class"
        )
    extra = sorted(set(_class_dirs(split_dir)) - set(classes))
    if extra:
        raise FileFormatError(
            f"dataset 'image_folder': '{split_dir}' has class folders that '{train_dir}' lacks: {', '.join(extra)}; "
            f"both splits must use the class folders of train/"
        )
    samples = _samples(split_dir, classes, allow_empty=split != "train")
    images, labels, stats = _decode(split_dir, f"image_folder-{split}", samples, resize, stats=split == "train")
    if split == "train":
        mean, std = stats if stats is not None else _stats_of(images)
    else:
        mean, std = _train_stats(train_dir, classes, resize)
    return LabelledImages(images, labels, len(classes), name="image_folder", mean=mean, std=std, class_names=classes)


def _samples(split_dir: Path, classes: list[str], *, allow_empty: bool) -> list[tuple[str, int]]:
    """``(path, label)`` of every image file under ``split_dir/<class>/`` in ImageFolder's order.

    Raises:
        DataMissingError: no image at all, or (``allow_empty=False``) a class folder without images.
    """
    samples: list[tuple[str, int]] = []
    empty = []
    for label, name in enumerate(classes):  # the classes of train/, so labels agree across splits
        folder, before = split_dir / name, len(samples)
        if folder.is_dir():  # ImageFolder's order: sorted walk (links followed), sorted file names
            for dirpath, _, fnames in sorted(os.walk(folder, followlinks=True)):
                names = [f for f in sorted(fnames) if f.lower().endswith(_EXTENSIONS)]
                samples += [(os.path.join(dirpath, f), label) for f in names]
        if len(samples) == before:
            empty.append(name)
    if empty and not allow_empty:
        raise DataMissingError(
            f"dataset 'image_folder': no image files ({', '.join(_EXTENSIONS)}) for the classes {', '.join(empty)} in "
            f"'{split_dir}'; expected {_LAYOUT}: add images or remove the empty class folders"
        )
    if not samples:
        raise DataMissingError(f"dataset 'image_folder': no image files in '{split_dir}'; expected {_LAYOUT}")
    return samples


def _decode_files(paths: Sequence[str]) -> list[np.ndarray]:
    """Decode ``paths`` as ``(H, W, 3)`` uint8 with a small thread pool (PIL releases the GIL while decoding)."""
    workers = max(1, min(8, os.cpu_count() or 1))
    if workers == 1 or len(paths) < 256:
        return [_read_rgb(p) for p in paths]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_read_rgb, paths, chunksize=256))


def _decode(
    split_dir: Path,
    tag: str,
    samples: list[tuple[str, int]],
    resize: int | tuple[int, int] | None,
    *,
    stats: bool,
) -> tuple[torch.Tensor, torch.Tensor, tuple[tuple[float, ...], tuple[float, ...]] | None]:
    """Images ``(N, 3, H, W)`` (uint8 native size, or float in [0, 1] when ``resize`` is given), labels ``(N,)`` and
    the images' channel statistics when known without computing them (cached, no resize), else None.

    Native-size uint8 arrays of one-size folders come from / go to the cache (with their channel statistics when
    ``stats``); mixed-size folders are resized image by image and not cached.
    """
    known = None
    try:
        key: str | None = _cache.file_key(split_dir, samples)
    except OSError:
        key = None  # a file vanished while listing: decode, which names it
    entry = _cache.load_entry(tag, split_dir, key) if key is not None else None
    if entry is not None:
        images = torch.from_numpy(entry.images)
        labels = torch.from_numpy(entry.labels)
        if "mean" in entry.meta and "std" in entry.meta:
            known = (tuple(entry.meta["mean"]), tuple(entry.meta["std"]))
    else:
        arrays = _decode_files([p for p, _ in samples])
        labels = torch.tensor([y for _, y in samples], dtype=torch.long)
        first = arrays[0].shape
        odd = next((i for i, a in enumerate(arrays) if a.shape != first), None)
        if odd is not None:
            if resize is None:
                a = arrays[odd]
                raise FileFormatError(
                    f"dataset 'image_folder': all images must have the same size, but '{samples[odd][0]}' is "
                    f"{a.shape[0]}×{a.shape[1]} (H×W) while '{samples[0][0]}' is {first[0]}×{first[1]}; "
                    f"resize the files to one size first, or pass --resize N (resize=(H, W)) to resize while reading"
                )
            floats = (torch.from_numpy(a).permute(2, 0, 1)[None].float().div_(255.0) for a in arrays)
            return torch.stack([resize_images(x, resize)[0] for x in floats]), labels, None
        images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()  # (N, H, W, 3) → (N, 3, H, W)
        if key is not None:
            meta = {}
            if stats:
                known = _stats_of(images)
                meta = {"mean": list(known[0]), "std": list(known[1])}
            _cache.save_entry(tag, split_dir, key, images.numpy(), labels.numpy(), meta)
    if resize is not None:
        return resize_images(images.float().div_(255.0), resize), labels, None
    return images, labels, known


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and population standard deviation (``ddof=0``) of ``(N, C, H, W)`` images, in [0, 1] units.

    uint8 images are counted exactly (a 256-bin histogram per channel, float64 sums); float images (in [0, 1]) are
    summed in float64 chunks.
    """
    c = images.shape[1]
    means, stds = [], []
    if images.dtype == torch.uint8:
        arr = images.numpy()
        levels = np.arange(256, dtype=np.float64) / 255.0
        for ch in range(c):
            counts = np.bincount(arr[:, ch].ravel(), minlength=256).astype(np.float64)
            n = counts.sum()
            m = float(counts @ levels / n)
            var = float(counts @ (levels - m) ** 2 / n)
            means.append(m)
            stds.append(var**0.5)
        return tuple(means), tuple(stds)
    s = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, dtype=torch.float64)
    for i in range(0, images.shape[0], 1024):
        x = images[i : i + 1024].double()
        s += x.sum(dim=(0, 2, 3))
        s2 += x.square().sum(dim=(0, 2, 3))
    n = images.shape[0] * images.shape[2] * images.shape[3]
    mean = s / n
    var = (s2 / n - mean.square()).clamp_min(0)
    return tuple(float(v) for v in mean), tuple(float(v) for v in var.sqrt())


def _stats_of(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """:func:`channel_stats`, with a floor on std (a constant channel must not divide by zero in ``normalize``)."""
    mean, std = channel_stats(images)
    return mean, tuple(max(s, 1e-3) for s in std)


def _train_stats(
    train_dir: Path, classes: list[str], resize: int | tuple[int, int] | None
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Channel statistics of the training split as loaded: from the cache's metadata when current, else by loading."""
    samples = _samples(train_dir, classes, allow_empty=False)
    if resize is None:
        try:
            meta = _cache.load_meta("image_folder-train", train_dir, _cache.file_key(train_dir, samples))
        except OSError:
            meta = None
        if meta is not None and "mean" in meta and "std" in meta:
            return tuple(meta["mean"]), tuple(meta["std"])
    images, _, known = _decode(train_dir, "image_folder-train", samples, resize, stats=True)
    return known if known is not None else _stats_of(images)
