"""SVHN (street-view house numbers, 3×32×32, 10 classes) from torchvision's files under ``--data-root``.

The expected layout is torchvision's: ``ROOT/train_32x32.mat`` and ``ROOT/test_32x32.mat`` (MATLAB files, read with
SciPy after torchvision checks their published MD5). Label 10 of the original files is digit 0; torchvision maps it to
0. Nothing is downloaded unless ``download=True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from privlab.data import DATASETS, DatasetInfo, LabelledImages
from privlab.data._torchvision import check_images, open_torchvision

__all__ = ["svhn"]

_SVHN = DatasetInfo(
    shape=(3, 32, 32),
    num_classes=10,
    needs_root=True,
    mean=(0.4377, 0.4438, 0.4728),
    std=(0.1980, 0.2010, 0.1970),
    description="SVHN house-number digits, 73 257 / 26 032 colour 32×32 images (torchvision files under --data-root)",
    class_names=tuple(str(i) for i in range(10)),
)


@DATASETS.register("svhn", info=_SVHN)
def svhn(split: str, root: Path | None, download: bool) -> LabelledImages:
    """One split of SVHN as uint8-backed :class:`LabelledImages` ``(N, 3, 32, 32)``, labels 0–9.

    Args:
        split: ``"train"`` (73 257 images) or ``"test"`` (26 032); the ``extra`` split is not exposed.
        root: folder holding ``train_32x32.mat`` / ``test_32x32.mat``.
        download: let torchvision fetch missing files into ``root`` (needs internet).

    Raises:
        DataMissingError: no root, or the file is absent.
        FileFormatError: the file is corrupt, truncated or modified (MD5 mismatch).
    """
    filename = f"{split}_32x32.mat"

    def build(root_str: str, dl: bool) -> Any:  # a torchvision data set
        import torchvision.datasets as tvd

        return tvd.SVHN(root_str, split=split, download=dl)

    ds = open_torchvision("svhn", build, root, download, layout=filename, files=[filename])
    images = torch.from_numpy(ds.data).contiguous()  # already (N, 3, 32, 32) uint8
    labels = torch.as_tensor(ds.labels, dtype=torch.long)
    check_images("svhn", root, images, labels, _SVHN.shape)
    return LabelledImages(
        images, labels, 10, name="svhn", mean=_SVHN.mean, std=_SVHN.std, class_names=[str(i) for i in range(10)]
    )
