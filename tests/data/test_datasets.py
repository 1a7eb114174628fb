"""Tests of stage 1 (data sets): digits, the registry, missing/corrupt data, real MNIST, image_folder, the contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from privlab.data import DATASETS, LabelledImages, dataset_info, load_dataset
from privlab.data.digits import digits_split_indices
from privlab.errors import DataMissingError, FileFormatError, UnknownNameError

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# --- digits ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("split", "n"), [("train", 1437), ("test", 360)])
def test_digits_shapes_ranges_and_sizes(split: str, n: int) -> None:
    ds = load_dataset("digits", split)
    assert len(ds) == n
    assert ds.shape == (1, 8, 8)
    assert ds.images.dtype == torch.float32
    assert ds.images.min() >= 0 and ds.images.max() <= 1
    assert ds.images.max() == 1.0  # 16/16 occurs
    assert ds.labels.dtype == torch.int64
    assert set(ds.labels.tolist()) == set(range(10))
    assert ds.num_classes == 10 and ds.name == "digits"
    x, y = ds[0]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64


def test_digits_split_is_deterministic_and_disjoint() -> None:
    a, b = load_dataset("digits", "train"), load_dataset("digits", "train")
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    train, test = digits_split_indices("train"), digits_split_indices("test")
    assert len(train) + len(test) == 1797
    assert not set(train.tolist()) & set(test.tolist())
    # stratified: every class keeps roughly its share in the test split
    counts = torch.bincount(load_dataset("digits", "test").labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37


def test_digits_returns_fresh_copies() -> None:
    a = load_dataset("digits", "train")
    a.images.zero_()
    assert load_dataset("digits", "train").images.max() == 1.0


def test_digits_resize_and_limit() -> None:
    ds = load_dataset("digits", "train", resize=32)
    assert ds.shape == (1, 32, 32) and len(ds) == 1437
    assert ds.images.min() >= 0 and ds.images.max() <= 1
    small = load_dataset("digits", "train", limit=50, seed=3)
    assert len(small) == 50
    same = load_dataset("digits", "train", limit=50, seed=3)
    other = load_dataset("digits", "train", limit=50, seed=4)
    assert torch.equal(small.images, same.images) and torch.equal(small.labels, same.labels)
    assert not torch.equal(small.images, other.images)
    assert small.mean == ds.mean and small.class_names == ds.class_names


def test_digits_info_statistics_match_the_train_split() -> None:
    info = dataset_info("digits")
    assert info.shape == (1, 8, 8) and info.num_classes == 10 and not info.needs_root
    x = load_dataset("digits", "train").images.double()
    assert abs(x.mean().item() - info.mean[0]) < 1e-3
    assert abs(x.std(unbiased=False).item() - info.std[0]) < 1e-3


# --- registry ---------------------------------------------------------------------------------------------------------


def test_registered_names_and_infos() -> None:
    for name in ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "svhn", "image_folder"):
        assert name in DATASETS
        info = dataset_info(name)
        assert len(info.mean) == len(info.std) == info.shape[0]
        assert info.description
    assert dataset_info("cifar100").num_classes == 100


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(UnknownNameError) as err:
        load_dataset("digit")
    assert "did you mean 'digits'" in str(err.value).lower()


# --- missing and corrupt torchvision data -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10", "cifar100", "svhn"])
def test_missing_root_folder_says_where_and_how(name: str, tmp_path: Path) -> None:
    with pytest.raises(DataMissingError) as err:
        load_dataset(name, "test", root=tmp_path)
    msg = str(err.value)
    assert str(tmp_path) in msg and "--download" in msg and name in msg


@pytest.mark.parametrize("name", ["mnist", "cifar10", "image_folder"])
def test_no_root_asks_for_data_root(name: str) -> None:
    with pytest.raises(DataMissingError, match="--data-root"):
        load_dataset(name)


def test_truncated_mnist_is_a_format_error(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for kind in ("train", "t10k"):
        (raw / f"{kind}-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03\x00\x00\x27\x10garbage")
        (raw / f"{kind}-labels-idx1-ubyte").write_bytes(b"")
    with pytest.raises(FileFormatError) as err:
        load_dataset("mnist", "test", root=tmp_path)
    assert str(tmp_path) in str(err.value)


def test_modified_cifar_is_a_format_error(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for f in ("test_batch", "batches.meta"):
        (folder / f).write_bytes(b"not the published file")
    with pytest.raises(FileFormatError) as err:
        load_dataset("cifar10", "test", root=tmp_path)
    assert str(tmp_path) in str(err.value)


@pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(), reason=f"real MNIST not found at {SHARED_DATA}")
def test_real_mnist_test_split() -> None:
    ds = load_dataset("mnist", "test", root=SHARED_DATA)
    assert len(ds) == 10000 and ds.shape == (1, 28, 28)
    x = ds.images
    assert x.dtype == torch.float32 and x.min() == 0.0 and x.max() == 1.0
    assert torch.equal(torch.round(x[:100] * 255) / 255, x[:100])  # uint8-derived
    assert torch.bincount(ds.labels, minlength=10).tolist() == MNIST_TEST_COUNTS
    assert ds.mean == (0.1307,) and ds.num_classes == 10 and len(ds.class_names) == 10


# --- image_folder -----------------------------------------------------------------------------------------------------


def _write_tree(root: Path, size: tuple[int, int] = (8, 8)) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(3):
                pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(pixels, mode="RGB").save(folder / f"{i}.png")


@pytest.mark.parametrize("split", ["train", "test"])
def test_image_folder_loads(split: str, tmp_path: Path) -> None:
    _write_tree(tmp_path)
    ds = load_dataset("image_folder", split, root=tmp_path)
    assert len(ds) == 6 and ds.shape == (3, 8, 8)
    assert ds.num_classes == 2 and ds.class_names == ("cat", "dog")
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert ds.images.min() >= 0 and ds.images.max() <= 1
    assert load_dataset("image_folder", split, root=tmp_path, resize=16).shape == (3, 16, 16)


def test_image_folder_test_labels_follow_train_classes(tmp_path: Path) -> None:
    _write_tree(tmp_path)
    for f in (tmp_path / "test" / "cat").iterdir():
        f.unlink()
    (tmp_path / "test" / "cat").rmdir()
    ds = load_dataset("image_folder", "test", root=tmp_path)
    assert ds.labels.tolist() == [1, 1, 1] and ds.num_classes == 2


def test_image_folder_corrupt_file(tmp_path: Path) -> None:
    _write_tree(tmp_path)
    (tmp_path / "train" / "dog" / "broken.png").write_bytes(b"\x89PNG garbage bytes, not an image")
    with pytest.raises(FileFormatError, match=r"broken\.png"):
        load_dataset("image_folder", "train", root=tmp_path)


def test_image_folder_mixed_sizes(tmp_path: Path) -> None:
    from PIL import Image

    _write_tree(tmp_path)
    Image.new("RGB", (10, 12)).save(tmp_path / "train" / "dog" / "odd.png")
    with pytest.raises(FileFormatError) as err:
        load_dataset("image_folder", "train", root=tmp_path)
    assert "odd.png" in str(err.value) and "resize" in str(err.value)
    ds = DATASETS.get("image_folder")("train", tmp_path, False, resize=8)
    assert ds.shape == (3, 8, 8) and len(ds) == 7


def test_image_folder_missing_split_folder(tmp_path: Path) -> None:
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(DataMissingError) as err:
        load_dataset("image_folder", "test", root=tmp_path)
    assert str(tmp_path / "test") in str(err.value)


# --- LabelledImages contract ------------------------------------------------------------------------------------------


def test_contract_rejects_bad_images_and_labels() -> None:
    labels = torch.zeros(2, dtype=torch.long)
    with pytest.raises(FileFormatError, match=r"\[0, 1\]"):
        LabelledImages(torch.full((2, 1, 4, 4), 1.5), labels, 10)
    with pytest.raises(FileFormatError, match="NaN"):
        LabelledImages(torch.full((2, 1, 4, 4), float("nan")), labels, 10)
    with pytest.raises(FileFormatError, match="labels"):
        LabelledImages(torch.zeros(2, 1, 4, 4), torch.tensor([0, 10]), 10)
    with pytest.raises(FileFormatError):
        LabelledImages(torch.zeros(2, 4, 4), labels, 10)


def test_contract_uint8_storage_and_metadata() -> None:
    raw = torch.tensor([0, 128, 255, 64], dtype=torch.uint8).reshape(1, 1, 2, 2).repeat(3, 1, 1, 1)
    ds = LabelledImages(raw, torch.tensor([0, 1, 2]), 3, name="t", mean=(0.2,), std=(0.3,), class_names=("a", "b", "c"))
    assert ds.images.dtype == torch.float32 and ds.images.max() == 1.0 and ds.images.min() == 0.0
    x, y = ds[1]
    assert x.dtype == torch.float32 and torch.allclose(x, raw[1].float() / 255) and y.item() == 1
    for other in (ds.subset([2, 0]), ds.with_images(ds.images * 0.5)):
        assert (other.name, other.mean, other.std, other.class_names, other.num_classes) == (
            "t",
            (0.2,),
            (0.3,),
            ("a", "b", "c"),
            3,
        )
    assert ds.subset([2, 0]).labels.tolist() == [2, 0]


def test_known_class_names_match_the_loaders() -> None:
    assert dataset_info("cifar10").class_names[0] == "airplane" and len(dataset_info("cifar10").class_names) == 10
    assert dataset_info("fashion_mnist").class_names[-1] == "Ankle boot"
    assert dataset_info("image_folder").class_names is None  # the folder names, known after loading
    assert load_dataset("digits", "test", limit=5).class_names == tuple(str(i) for i in range(10))
