"""MNIST and Fashion-MNIST (1×28×28, 10 classes) from torchvision's files under ``--data-root``.

The expected layout is torchvision's: ``ROOT/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (and
``ROOT/FashionMNIST/raw/...``), uncompressed. Nothing is downloaded unless ``download=True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from privlab.data import DATASETS, DatasetInfo, LabelledImages
from privlab.data._torchvision import check_images, open_torchvision

__all__ = ["fashion_mnist", "mnist"]

# torchvision requires all four files, whichever split is loaded.
_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _load(name: str, folder: str, split: str, root: Path | None, download: bool, info: DatasetInfo) -> LabelledImages:
    """Load one split of an IDX-format set (``folder`` is torchvision's class name, e.g. ``"MNIST"``)."""

    def build(root_str: str, dl: bool) -> Any:  # a torchvision data set
        import torchvision.datasets as tvd

        return getattr(tvd, folder)(root_str, train=split == "train", download=dl)

    ds = open_torchvision(
        name,
        build,
        root,
        download,
        layout=f"{folder}/raw/...",
        files=[f"{folder}/raw/{f}" for f in _FILES],
    )
    images = ds.data.unsqueeze(1).contiguous()  # (N, 28, 28) uint8 → (N, 1, 28, 28), no per-item PIL round trip
    labels = ds.targets.long()
    check_images(name, root, images, labels, info.shape)
    return LabelledImages(
        images, labels, info.num_classes, name=name, mean=info.mean, std=info.std, class_names=list(ds.classes)
    )


_MNIST = DatasetInfo(
    shape=(1, 28, 28),
    num_classes=10,
    needs_root=True,
    mean=(0.1307,),
    std=(0.3081,),
    description="MNIST handwritten digits, 60 000 / 10 000 grey 28×28 images (torchvision files under --data-root)",
    class_names=(
        "0 - zero",
        "1 - one",
        "2 - two",
        "3 - three",
        "4 - four",
        "5 - five",
        "6 - six",
        "7 - seven",
        "8 - eight",
        "9 - nine",
    ),
)
_FASHION = DatasetInfo(
    shape=(1, 28, 28),
    num_classes=10,
    needs_root=True,
    mean=(0.2860,),
    std=(0.3530,),
    description="Fashion-MNIST clothing, 60 000 / 10 000 grey 28×28 images (torchvision files under --data-root)",
    class_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
)


@DATASETS.register("mnist", info=_MNIST)
def mnist(split: str, root: Path | None, download: bool) -> LabelledImages:
    """One split of MNIST as uint8-backed :class:`LabelledImages` ``(N, 1, 28, 28)``, labels 0–9.

    Args:
        split: ``"train"`` (60 000 images) or ``"test"`` (10 000).
        root: folder holding ``MNIST/raw/``.
        download: let torchvision fetch missing files into ``root`` (needs internet).

    Raises:
        DataMissingError: no root, or the files are absent.
        FileFormatError: the files are corrupt or truncated.
    """
    return _load("mnist", "MNIST", split, root, download, _MNIST)


@DATASETS.register("fashion_mnist", info=_FASHION)
def fashion_mnist(split: str, root: Path | None, download: bool) -> LabelledImages:
    """One split of Fashion-MNIST as uint8-backed :class:`LabelledImages` ``(N, 1, 28, 28)``, labels 0–9.

    Args:
        split: ``"train"`` (60 000 images) or ``"test"`` (10 000).
        root: folder holding ``FashionMNIST/raw/``.
        download: let torchvision fetch missing files into ``root`` (needs internet).

    Raises:
        DataMissingError: no root, or the files are absent.
        FileFormatError: the files are corrupt or truncated.
    """
    return _load("fashion_mnist", "FashionMNIST", split, root, download, _FASHION)
