"""CIFAR-10 and CIFAR-100 (3×32×32) from torchvision's files under ``--data-root``.

The expected layout is torchvision's: ``ROOT/cifar-10-batches-py/`` (``data_batch_1`` … ``data_batch_5``,
``test_batch``, ``batches.meta``) and ``ROOT/cifar-100-python/`` (``train``, ``test``, ``meta``). Those batch files
are Python pickles; privlab never unpickles anything itself, and torchvision checks each file's published MD5
before reading it, so only the genuine files are ever unpickled (a modified file is reported as corrupt).
Nothing is downloaded unless ``download=True``.

**JPEG copy.** Where ``ROOT`` has no ``cifar-10-batches-py/`` but a ``cifar10-jpeg/`` folder in image-folder layout
(``train/<class>/*.jpg``, ``test/<class>/*.jpg`` with the ten CIFAR-10 class names, as in the project's shared data
folder), ``cifar10`` reads that copy through :func:`privlab.data.image_folder.image_folder` (decoded once and
cached): the same images up to JPEG compression, so numbers measured on it are close to, but not bit-identical
with, the original files'. Its ``mean``/``std`` are computed from the copy's training split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from privlab.data import DATASETS, DatasetInfo, LabelledImages
from privlab.data._torchvision import check_images, open_torchvision
from privlab.errors import FileFormatError

__all__ = ["cifar10", "cifar100"]

_FILES = {
    ("CIFAR10", "train"): [
        *(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)),
        "cifar-10-batches-py/batches.meta",
    ],
    ("CIFAR10", "test"): ["cifar-10-batches-py/test_batch", "cifar-10-batches-py/batches.meta"],
    ("CIFAR100", "train"): ["cifar-100-python/train", "cifar-100-python/meta"],
    ("CIFAR100", "test"): ["cifar-100-python/test", "cifar-100-python/meta"],
}
_LAYOUT = {"CIFAR10": "cifar-10-batches-py/...", "CIFAR100": "cifar-100-python/..."}


def _load(name: str, cls: str, split: str, root: Path | None, download: bool, info: DatasetInfo) -> LabelledImages:
    """Load one split through ``torchvision.datasets.<cls>`` as uint8 ``(N, 3, 32, 32)``."""

    def build(root_str: str, dl: bool) -> Any:  # a torchvision data set
        import torchvision.datasets as tvd

        return getattr(tvd, cls)(root_str, train=split == "train", download=dl)

    ds = open_torchvision(name, build, root, download, layout=_LAYOUT[cls], files=_FILES[(cls, split)])
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # (N, 32, 32, 3) → (N, 3, 32, 32) uint8
    labels = torch.as_tensor(ds.targets, dtype=torch.long)
    check_images(name, root, images, labels, info.shape)
    return LabelledImages(
        images, labels, info.num_classes, name=name, mean=info.mean, std=info.std, class_names=list(ds.classes)
    )


_CIFAR10 = DatasetInfo(
    shape=(3, 32, 32),
    num_classes=10,
    needs_root=True,
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2470, 0.2435, 0.2616),
    description="CIFAR-10, 50 000 / 10 000 colour 32×32 images in 10 classes (torchvision files under --data-root)",
    class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
)
_CIFAR100 = DatasetInfo(
    shape=(3, 32, 32),
    num_classes=100,
    needs_root=True,
    mean=(0.5071, 0.4865, 0.4409),
    std=(0.2673, 0.2564, 0.2762),
    description="CIFAR-100, 50 000 / 10 000 colour 32×32 images in 100 classes (torchvision files under --data-root)",
)


@DATASETS.register("cifar10", info=_CIFAR10)
def cifar10(split: str, root: Path | None, download: bool) -> LabelledImages:
    """One split of CIFAR-10 as uint8-backed :class:`LabelledImages` ``(N, 3, 32, 32)``, labels 0–9.

    Args:
        split: ``"train"`` (50 000 images) or ``"test"`` (10 000).
        root: folder holding ``cifar-10-batches-py/``.
        download: let torchvision fetch missing files into ``root`` (needs internet).

    Raises:
        DataMissingError: no root, or the files are absent.
        FileFormatError: the files are corrupt, truncated or modified (MD5 mismatch).
    """
    if root is not None and not download and not (Path(root) / "cifar-10-batches-py").is_dir():
        jpeg = Path(root) / JPEG_FOLDER
        if (jpeg / "train").is_dir():
            return _cifar10_from_jpeg(split, jpeg)
    return _load("cifar10", "CIFAR10", split, root, download, _CIFAR10)


#: the folder under ``--data-root`` holding a JPEG copy of CIFAR-10 in image-folder layout (see the module docstring)
JPEG_FOLDER = "cifar10-jpeg"


def _cifar10_from_jpeg(split: str, folder: Path) -> LabelledImages:
    """CIFAR-10 from its JPEG copy ``folder`` (``train/<class>/*``, ``test/<class>/*``); checks classes and shape."""
    from privlab.data.image_folder import image_folder

    ds = image_folder(split, folder)
    names = tuple(ds.class_names or ())
    if names != _CIFAR10.class_names:
        raise FileFormatError(
            f"{folder} is not a CIFAR-10 copy: its class folders are {', '.join(names)[:200]}, expected "
            f"{', '.join(_CIFAR10.class_names)}; use --dataset image_folder --data-root {folder} for other images"
        )
    check_images("cifar10", folder, ds._images, ds.labels, _CIFAR10.shape)
    return LabelledImages(
        ds._images, ds.labels, 10, name="cifar10", mean=ds.mean, std=ds.std, class_names=list(_CIFAR10.class_names)
    )


@DATASETS.register("cifar100", info=_CIFAR100)
def cifar100(split: str, root: Path | None, download: bool) -> LabelledImages:
    """One split of CIFAR-100 (fine labels) as uint8-backed :class:`LabelledImages` ``(N, 3, 32, 32)``, labels 0–99.

    Args:
        split: ``"train"`` (50 000 images) or ``"test"`` (10 000).
        root: folder holding ``cifar-100-python/``.
        download: let torchvision fetch missing files into ``root`` (needs internet).

    Raises:
        DataMissingError: no root, or the files are absent.
        FileFormatError: the files are corrupt, truncated or modified (MD5 mismatch).
    """
    return _load("cifar100", "CIFAR100", split, root, download, _CIFAR100)
