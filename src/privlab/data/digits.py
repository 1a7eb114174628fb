"""scikit-learn's embedded 8×8 handwritten digits (1 797 images, 10 classes): the default, offline data set.

Pixel values 0–16 are divided by 16 into ``[0, 1]``. The train/test split is a fixed stratified 80/20 split
(``train_test_split(test_size=0.2, random_state=0, stratify=y)``): 1 437 train and 360 test images, identical on
every machine. No file is read from ``root`` and nothing is downloaded (the data ship inside scikit-learn).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from privlab.data import DATASETS, DatasetInfo, LabelledImages

__all__ = ["digits", "digits_split_indices"]

TEST_SIZE = 0.2
SPLIT_SEED = 0

_INFO = DatasetInfo(
    shape=(1, 8, 8),
    num_classes=10,
    needs_root=False,
    # Train-split pixel mean / population std in [0, 1] units (tests/data recompute and compare them).
    mean=(0.3054,),
    std=(0.3761,),
    description="scikit-learn's embedded 8×8 handwritten digits, 1 437 / 360 grey images (no download, default)",
)


@functools.lru_cache(maxsize=1)
def _arrays() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Images ``(1797, 1, 8, 8)`` float32 in [0, 1], labels ``(1797,)`` int64 and the split's row indices.

    The arrays are made read-only, since they are shared by every call through the cache.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = (bunch.images.astype(np.float32) / 16.0)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=labels
    )
    split = {"train": np.sort(train_idx), "test": np.sort(test_idx)}
    for a in (images, labels, *split.values()):
        a.flags.writeable = False
    return images, labels, split


def digits_split_indices(split: str) -> np.ndarray:
    """Row indices (into scikit-learn's ``load_digits`` order, sorted) of ``split`` (``"train"``/``"test"``)."""
    return _arrays()[2][split].copy()


@DATASETS.register("digits", info=_INFO)
def digits(split: str, root: Path | None = None, download: bool = False) -> LabelledImages:
    """One split of the embedded digits as float32 :class:`LabelledImages` ``(N, 1, 8, 8)`` in ``[0, 1]``.

    Args:
        split: ``"train"`` (1 437 images) or ``"test"`` (360).
        root: ignored (the data are embedded).
        download: ignored.

    Returns:
        A fresh copy each call (callers may modify it without affecting the cache).
    """
    images, labels, idx = _arrays()
    rows = idx[split]
    return LabelledImages(
        torch.tensor(images[rows]),
        torch.tensor(labels[rows]),
        _INFO.num_classes,
        name="digits",
        mean=_INFO.mean,
        std=_INFO.std,
        class_names=[str(i) for i in range(10)],
    )
