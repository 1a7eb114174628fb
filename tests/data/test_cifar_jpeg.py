"""``cifar10`` reads a JPEG copy in image-folder layout (``ROOT/cifar10-jpeg/``) when torchvision's files are absent."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from privlab.data import load_dataset
from privlab.errors import FileFormatError

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _jpeg_copy(root: Path, classes: list[str], size: int = 32) -> None:
    g = np.random.default_rng(0)
    for split, per in (("train", 2), ("test", 1)):
        for c in classes:
            folder = root / "cifar10-jpeg" / split / c
            folder.mkdir(parents=True)
            for i in range(per):
                Image.fromarray(g.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")


def test_cifar10_reads_the_jpeg_copy(tmp_path: Path) -> None:
    _jpeg_copy(tmp_path, CLASSES)
    train = load_dataset("cifar10", "train", root=tmp_path)
    test = load_dataset("cifar10", "test", root=tmp_path)
    assert (len(train), len(test)) == (20, 10)
    assert train.num_classes == 10 and train.name == "cifar10" and list(train.class_names) == CLASSES
    assert tuple(train.images.shape[1:]) == (3, 32, 32)
    assert sorted(test.labels.tolist()) == list(range(10))
    assert test.mean == train.mean  # statistics of the copy's training split, for both splits


def test_a_jpeg_folder_of_other_classes_is_not_taken_for_cifar10(tmp_path: Path) -> None:
    _jpeg_copy(tmp_path, [f"class{i}" for i in range(10)])
    with pytest.raises(FileFormatError, match="not a CIFAR-10 copy.*--dataset image_folder"):
        load_dataset("cifar10", "train", root=tmp_path)


def test_a_jpeg_copy_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    _jpeg_copy(tmp_path, CLASSES, size=16)
    with pytest.raises(FileFormatError, match="expected uint8 images of shape"):
        load_dataset("cifar10", "train", root=tmp_path)
