"""Tests of the decoded-image cache (privlab.data.cache) and image_folder's statistics, class names and cache use."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from privlab.data import cache, load_dataset
from privlab.data import image_folder as image_folder_module
from privlab.data.image_folder import channel_stats


def _write_tree(root: Path, n: int = 3, size: int = 8, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        for cls in ("cat", "dog", "emu"):
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels, mode="RGB").save(folder / f"{i}.png")


def _expected(root: Path, split: str) -> np.ndarray:
    """(N, 3, H, W) uint8 decoded with PIL in ImageFolder order (classes sorted, files sorted)."""
    files = sorted((root / split).glob("*/*.png"))
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files]).transpose(0, 3, 1, 2)


def _entries(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def test_cache_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PRIVLAB_CACHE_DIR", str(tmp_path / "c"))
    assert cache.cache_dir() == tmp_path / "c"
    for off in ("off", "", "none", "0"):
        monkeypatch.setenv("PRIVLAB_CACHE_DIR", off)
        assert cache.cache_dir() is None
    monkeypatch.delenv("PRIVLAB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "privlab"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache.cache_dir() == Path.home() / ".cache" / "privlab"


def test_miss_then_hit_gives_identical_arrays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, cdir = tmp_path / "data", tmp_path / "cache"
    monkeypatch.setenv("PRIVLAB_CACHE_DIR", str(cdir))
    _write_tree(data)
    first = load_dataset("image_folder", "train", root=data)
    names = _entries(cdir)
    assert len(names) == 3 and sum(n.endswith(".json") for n in names) == 1  # images, labels, metadata
    meta = json.loads(next(cdir.glob("*.json")).read_text())
    assert meta["shape"] == [9, 3, 8, 8] and meta["folder"] == str((data / "train").resolve())
    np.testing.assert_array_equal(first._images.numpy(), _expected(data, "train"))

    def boom(paths: object) -> None:
        raise AssertionError("decoded on a cache hit")

    monkeypatch.setattr(image_folder_module, "_decode_files", boom)
    second = load_dataset("image_folder", "train", root=data)
    assert second._images.dtype == torch.uint8
    assert torch.equal(second._images, first._images) and torch.equal(second.labels, first.labels)
    assert second.mean == first.mean and second.std == first.std
    assert second.class_names == ("cat", "dog", "emu")


@pytest.mark.parametrize("change", ["touch", "rewrite", "add", "remove", "rename"])
def test_stale_cache_is_never_used(change: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("PRIVLAB_CACHE_DIR", str(tmp_path / "cache"))
    _write_tree(data)
    load_dataset("image_folder", "train", root=data)
    target = data / "train" / "dog" / "1.png"
    if change == "touch":  # same bytes, new modification time
        st = target.stat()
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    elif change == "rewrite":  # other pixels, same size on disk (PNG of the same noise size may differ: fix mtime)
        st = target.stat()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(target)
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    elif change == "add":
        shutil.copy(target, data / "train" / "emu" / "9.png")
    elif change == "remove":
        target.unlink()
    else:
        target.rename(data / "train" / "emu" / "1b.png")
    calls = []
    real = image_folder_module._decode_files
    monkeypatch.setattr(image_folder_module, "_decode_files", lambda p: calls.append(len(p)) or real(p))
    ds = load_dataset("image_folder", "train", root=data)
    assert calls == [len(ds)]  # decoded again
    np.testing.assert_array_equal(ds._images.numpy(), _expected(data, "train"))
    # the new entry replaced the stale one, and is now a hit
    assert sum(n.endswith(".json") for n in _entries(tmp_path / "cache")) == 1
    load_dataset("image_folder", "train", root=data)
    assert calls == [len(ds)]


def test_broken_cache_files_are_a_miss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, cdir = tmp_path / "data", tmp_path / "cache"
    monkeypatch.setenv("PRIVLAB_CACHE_DIR", str(cdir))
    _write_tree(data)
    ref = load_dataset("image_folder", "train", root=data)
    npy = next(p for p in cdir.iterdir() if p.name.endswith(".npy") and not p.name.endswith(".labels.npy"))
    npy.write_bytes(npy.read_bytes()[:100])  # truncated
    assert torch.equal(load_dataset("image_folder", "train", root=data)._images, ref._images)
    meta = next(cdir.glob("*.json"))
    meta.write_text("{not json")
    assert torch.equal(load_dataset("image_folder", "train", root=data)._images, ref._images)
    # a pickled (object) array in place of the images is never unpickled: a miss, then rewritten
    np.save(npy, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert torch.equal(load_dataset("image_folder", "train", root=data)._images, ref._images)


def test_unwritable_cache_never_fails_the_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    _write_tree(data)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("PRIVLAB_CACHE_DIR", str(blocker / "cache"))  # cannot be created, not even by root
    with pytest.warns(UserWarning, match="PRIVLAB_CACHE_DIR"):
        ds = load_dataset("image_folder", "train", root=data)
    np.testing.assert_array_equal(ds._images.numpy(), _expected(data, "train"))
    monkeypatch.setenv("PRIVLAB_CACHE_DIR", "off")
    assert torch.equal(load_dataset("image_folder", "train", root=data)._images, ds._images)
    assert not list(tmp_path.rglob("*.npy"))


def test_channel_stats_match_numpy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("PRIVLAB_CACHE_DIR", str(tmp_path / "cache"))
    _write_tree(data, n=4)
    ref = _expected(data, "train").astype(np.float64) / 255.0
    mean, std = ref.mean(axis=(0, 2, 3)), ref.std(axis=(0, 2, 3))
    for split in ("train", "test", "test", "train"):  # test uses the training statistics; second time from cache
        ds = load_dataset("image_folder", split, root=data)
        np.testing.assert_allclose(ds.mean, mean, rtol=0, atol=1e-12)
        np.testing.assert_allclose(ds.std, std, rtol=0, atol=1e-12)
    assert abs(mean[0] - 0.5) > 1e-3  # not the old neutral default
    # float path (resized images) against numpy too
    x = torch.rand(5, 3, 7, 6, dtype=torch.float64)
    m, s = channel_stats(x.float())
    np.testing.assert_allclose(m, x.float().double().numpy().mean(axis=(0, 2, 3)), atol=1e-6)
    np.testing.assert_allclose(s, x.float().double().numpy().std(axis=(0, 2, 3)), atol=1e-6)
    # the statistics reach the model's normalize layer through build_model(mean=, std=)
    from privlab.models import build_model

    train = load_dataset("image_folder", "train", root=data)
    model = build_model("fast_cnn", train.num_classes, train.shape, mean=train.mean, std=train.std)
    np.testing.assert_allclose(model.normalize.mean.flatten().numpy(), mean, atol=1e-6)


def _load_in_child(data: str, cdir: str) -> None:
    os.environ["PRIVLAB_CACHE_DIR"] = cdir
    load_dataset("image_folder", "train", root=data)


def test_other_process_reuses_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a `privlab sweep` worker (a separate process with the same environment) sees: the entry one process
    wrote is a hit in another. (A forked child, so the test pays no interpreter start-up.)"""
    data, cdir = tmp_path / "data", tmp_path / "cache"
    _write_tree(data)
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_load_in_child, args=(str(data), str(cdir)))
    child.start()
    child.join(60)
    assert child.exitcode == 0 and len(_entries(cdir)) == 3
    monkeypatch.setattr(image_folder_module, "_decode_files", lambda p: pytest.fail("decoded although cached"))
    monkeypatch.setenv("PRIVLAB_CACHE_DIR", str(cdir))
    ds = load_dataset("image_folder", "train", root=data)
    np.testing.assert_array_equal(ds._images.numpy(), _expected(data, "train"))


def test_real_cifar_subset(shared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A few hundred real CIFAR-10 JPEGs (copied into tmp_path): decode, statistics, cache hit."""
    src = shared_dir / "data" / "cifar10-jpeg"
    if not (src / "train").is_dir():
        pytest.skip(f"CIFAR-10 JPEG folder not found at {src} (optional: real-data tests only)")
    data = tmp_path / "cifar"
    classes = sorted(p.name for p in (src / "train").iterdir() if p.is_dir())
    assert len(classes) == 10
    for split, n in (("train", 30), ("test", 5)):
        for c in classes:
            (data / split / c).mkdir(parents=True)
            for f in sorted((src / split / c).iterdir())[:n]:
                shutil.copy2(f, data / split / c / f.name)
    monkeypatch.setenv("PRIVLAB_CACHE_DIR", str(tmp_path / "cache"))
    train = load_dataset("image_folder", "train", root=data)
    assert len(train) == 300 and train.shape == (3, 32, 32) and train.class_names[:2] == ("airplane", "automobile")
    assert train.labels.bincount().tolist() == [30] * 10
    files = sorted((data / "train").glob("*/*.jpg"))
    ref = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files]).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(train._images.numpy(), ref)
    x = ref.astype(np.float64) / 255
    np.testing.assert_allclose(train.std, x.std(axis=(0, 2, 3)), atol=1e-12)
    assert 0.4 < train.mean[0] < 0.6 and 0.15 < train.std[2] < 0.35  # CIFAR-like, not the neutral 0.5
    test = load_dataset("image_folder", "test", root=data)  # a miss for test; train statistics from the cache
    assert len(test) == 50 and test.mean == train.mean and test.std == train.std
    monkeypatch.setattr(image_folder_module, "_decode_files", lambda p: pytest.fail("decoded on a hit"))
    assert torch.equal(load_dataset("image_folder", "train", root=data)._images, train._images)
    assert torch.equal(load_dataset("image_folder", "test", root=data)._images, test._images)
