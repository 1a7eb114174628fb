"""Stage 1 — data sets.

Every data set is a function registered in :data:`DATASETS` with a :class:`~privlab.data.base.DatasetInfo`
(``info=``) that loads one split as :class:`~privlab.data.base.LabelledImages`. ``digits`` (scikit-learn's
``load_digits``) is embedded and the default everywhere; the others read torchvision files from ``root`` and
download only when ``download=True`` is given explicitly.

Example:
    >>> from privlab.data import load_dataset
    >>> ds = load_dataset("digits", "train", resize=32, limit=100)
    >>> ds.shape, len(ds), ds.num_classes
    ((1, 32, 32), 100, 10)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Protocol

import torch
import torch.nn.functional as F

from privlab.data.base import DatasetInfo, LabelledImages
from privlab.errors import ConfigError
from privlab.registry import Registry, import_submodules

__all__ = ["DATASETS", "DatasetInfo", "LabelledImages", "dataset_info", "load_dataset", "resize_images"]

Split = Literal["train", "test"]


class DatasetLoader(Protocol):
    """Signature of a registered loader: one split, from ``root`` (None where the set is embedded)."""

    def __call__(self, split: Split, root: Path | None, download: bool) -> LabelledImages: ...


DATASETS: Registry[Callable[..., LabelledImages]] = Registry("dataset")


def dataset_info(name: str) -> DatasetInfo:
    """The registered :class:`DatasetInfo` of ``name`` (shape, classes, whether a data root is needed)."""
    return DATASETS.entry(name).meta["info"]


def resize_images(images: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Bilinear (antialiased) resize of ``(N, C, H, W)`` images in ``[0, 1]`` to ``size``; result clamped to [0, 1]."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(images.shape[-2:]) == hw:
        return images
    out = F.interpolate(images.float(), size=hw, mode="bilinear", align_corners=False, antialias=True)
    return out.clamp_(0.0, 1.0)


def load_dataset(
    name: str = "digits",
    split: Split = "train",
    *,
    root: str | Path | None = None,
    download: bool = False,
    resize: int | tuple[int, int] | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> LabelledImages:
    """Load one split of a registered data set as float images in ``[0, 1]``.

    Args:
        name: registered name (``privlab datasets`` lists them).
        split: ``"train"`` or ``"test"``.
        root: folder holding the data (torchvision layout); unused for embedded sets.
        download: allow torchvision to download missing files into ``root`` (never done implicitly).
        resize: optional output size (``28``, ``32`` or ``(H, W)``), bilinear with antialiasing.
        limit: keep a seeded random subset of at most ``limit`` images (for small runs and tests).
        seed: seed of that subset.

    Raises:
        UnknownNameError: ``name`` is not registered.
        DataMissingError: the files are absent under ``root``; the message says how to get them.
        ConfigError: bad ``split``/``limit``/``resize``.
    """
    loader = DATASETS.get(name)
    if split not in ("train", "test"):
        raise ConfigError(f"dataset split must be 'train' or 'test', got {split!r}")
    if limit is not None and limit < 1:
        raise ConfigError(f"dataset limit must be ≥ 1 (or null for all images), got {limit}")
    if resize is not None:
        sizes = (resize,) if isinstance(resize, int) else tuple(resize)
        if len(sizes) not in (1, 2) or any(not isinstance(s, int) or s < 1 for s in sizes):
            raise ConfigError(f"dataset resize must be a positive size or (H, W), got {resize!r}")
    root_path = Path(root).expanduser() if root is not None else None
    if resize is not None and "resize" in inspect.signature(loader).parameters:
        ds = loader(split, root_path, download, resize=resize)  # loaders of mixed-size files resize while reading
    else:
        ds = loader(split, root_path, download)
    if limit is not None and limit < len(ds):
        g = torch.Generator().manual_seed(seed)
        ds = ds.subset(torch.randperm(len(ds), generator=g)[:limit].sort().values)
    if resize is not None:
        ds = ds.with_images(resize_images(ds.images, resize))
    return ds


import_submodules(__name__, __path__)
