"""Shared test set-up: one torch thread per test process, fixed seeds, paths to the optional shared data."""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

if os.environ.get("PYTEST_XDIST_WORKER") or os.environ.get("OMP_NUM_THREADS") == "1":
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seeds_fixed() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _private_data_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoded-image caches (privlab.data.cache) go to a temporary folder, never to ~/.cache or a data root."""
    monkeypatch.setenv("PRIVLAB_CACHE_DIR", str(tmp_path_factory.mktemp("privlab-cache")))


def _visible_entries(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if not p.name.startswith(".") and p.name != "__pycache__"}


@pytest.fixture(autouse=True)
def _no_writes_into_the_working_folder() -> Any:
    """Tests write only under tmp_path: a test that leaves a new file or folder (``runs/``, ``scores.csv`` …) in the
    working folder (default ``--out runs`` of a CLI call without ``--out``) fails, naming what it left."""
    cwd = Path.cwd()
    before = _visible_entries(cwd)
    yield
    new = sorted(_visible_entries(cwd) - before)
    if new:
        pytest.fail(f"the test wrote {', '.join(new)} into the working folder {cwd}; pass a tmp_path (e.g. --out)")


@pytest.fixture
def shared_dir() -> Path:
    """The ``shared/`` folder beside the repository (real MNIST, AlexNet weights); skips when absent."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED} (optional: real-data tests only)")
    return SHARED


@pytest.fixture
def mini_cifar10() -> Callable[[Path, Path, int], Path]:
    """A maker of small CIFAR-10 roots: ``make(src, dst, per_class)`` copies the first ``per_class`` JPEG files of
    each class of each split of the JPEG folder ``src`` into ``dst/cifar10-jpeg`` and returns ``dst`` (a real-data
    test then avoids decoding all 60 000 files)."""

    def make(src: Path, dst: Path, per_class: int) -> Path:
        for split in ("train", "test"):
            for cls in sorted(p for p in (src / split).iterdir() if p.is_dir()):
                out = dst / "cifar10-jpeg" / split / cls.name
                out.mkdir(parents=True)
                for f in sorted(cls.iterdir())[:per_class]:
                    shutil.copy(f, out / f.name)
        return dst

    return make
