"""Shared pieces of the reliability tests: a live malicious pickle, small valid input files, CLI error checks.

Everything is written under ``tmp_path`` (no shared paths, so ``pytest -n 2`` can run these in any order).
"""

from __future__ import annotations

import io
import pickle
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner, Result

from privlab.cli import app

RUNNER = CliRunner()


class Evil:
    """Unpickling this object runs ``exec``, which writes ``marker``: proof that a loader executed the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def evil_payload(marker: Path) -> bytes:
    """A pickle that writes ``marker`` when loaded (protocol 2: starts with ``\\x80``, as torch and numpy write)."""
    return pickle.dumps({"weights": Evil(marker)}, protocol=2)


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[Path]:
    """Path that appears only if some loader unpickled a malicious file; checked after the test."""
    m = tmp_path / "PWNED"
    yield m
    assert not m.exists(), "a malicious pickle was executed"


@pytest.fixture
def evil_files(tmp_path: Path, marker: Path) -> dict[str, Path]:
    """The same malicious pickle in every form a user could be handed, by name."""
    d = tmp_path / "evil"
    d.mkdir()
    payload = evil_payload(marker)
    out: dict[str, Path] = {}
    for name in ("raw.npy", "raw.npz", "raw.safetensors", "raw.pt", "raw.pth", "raw.pkl", "runs.sqlite", "raw.png"):
        (d / name).write_bytes(payload)
        out[name] = d / name
    np.save(d / "object.npy", np.array([Evil(marker)], dtype=object), allow_pickle=True)
    np.savez(d / "object.npz", x=np.array([Evil(marker)], dtype=object))
    torch.save({"features.0.weight": Evil(marker)}, d / "torch.pth")
    torch.save({"features.0.weight": Evil(marker)}, d / "torch.safetensors")  # a torch pickle named .safetensors
    torch.save({"noise": Evil(marker)}, d / "bank.safetensors")
    torch.save({"conv1.weight": Evil(marker)}, d / "model.safetensors")
    for name in ("object.npy", "object.npz", "torch.pth", "torch.safetensors", "bank.safetensors", "model.safetensors"):
        out[name] = d / name
    code = f"open({str(marker)!r}, 'w')"
    (d / "spec.yaml").write_text(f'experiment: train\nseed: !!python/object/apply:exec ["{code}"]\n')
    out["spec.yaml"] = d / "spec.yaml"
    return out


def write_npy(path: Path, array: np.ndarray) -> Path:
    """``np.save`` into ``path`` (no pickles)."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture(scope="session")
def good(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small valid inputs of every kind: arrays, PNG pairs, a manifest, a SemSim and a train checkpoint, a store.

    Built once per test process and shared: tests read these files and copy them before changing anything.
    """
    from privlab.data.reconstructions import save_pairs
    from privlab.measure.semsim.annotations import Annotation, save_manifest
    from privlab.measure.semsim.model import SemSimNet, save_semsim
    from privlab.models import build_model
    from privlab.store import MetricRecord, Store, save_tensors

    d = tmp_path_factory.mktemp("good")
    g = np.random.default_rng(0)
    out = {
        "x.npy": write_npy(d / "x.npy", g.random((40, 3))),
        "z.npy": write_npy(d / "z.npy", g.random((40, 2))),
        "images.npy": write_npy(d / "images.npy", g.random((4, 1, 8, 8)).astype(np.float32)),
        "labels.npy": write_npy(d / "labels.npy", np.array([0, 1, 2, 1])),
    }
    tg = torch.Generator().manual_seed(0)
    save_pairs(d / "pairs", torch.rand(2, 1, 12, 12, generator=tg), torch.rand(2, 1, 12, 12, generator=tg), [3, 5])
    out["pairs"] = d / "pairs"
    save_manifest(
        d / "pairs" / "annotations.csv",
        [Annotation("0_3_ori.png", "0_3_rec.png", "dlg", True, "a"), Annotation("1_5_ori.png", "1_5_rec.png", "dlg",
                                                                                 False, "a")],
    )  # fmt: skip
    out["manifest"] = d / "pairs" / "annotations.csv"
    (d / "scores.csv").write_text("reconstruction,psnr\n0_3_rec.png,20\n1_5_rec.png,10\n")
    out["scores.csv"] = d / "scores.csv"
    with torch.device("cpu"):
        torch.manual_seed(0)
        save_semsim(d / "semsim.safetensors", SemSimNet(in_channels=1, width=1, input_size=8))
        net = build_model("mnist_cnn_shallow", 10, (1, 28, 28))
    out["semsim"] = d / "semsim.safetensors"
    meta = {"model": "mnist_cnn_shallow", "num_classes": 10, "in_shape": [1, 28, 28], "mean": None, "std": None}
    save_tensors(d / "model.safetensors", net.state_dict(), meta)
    out["checkpoint"] = d / "model.safetensors"
    with Store(d / "runs") as s:
        s.start_run("r1", experiment="train", spec={"experiment": "train"}, spec_hash="h1", seed=0, versions={},
                    hardware={})  # fmt: skip
        s.log_metrics("r1", [MetricRecord("acc", 0.5)])
        s.finish_run("r1")
    out["store"] = d / "runs"
    return out


class Cli:
    """The CLI, in-process, with the checks every bad-input row makes."""

    @staticmethod
    def invoke(*args: Any, env: dict[str, str] | None = None) -> Result:
        """Run ``privlab ARGS`` in-process."""
        return RUNNER.invoke(app, [str(a) for a in args], env=env)

    @classmethod
    def error(cls, *args: Any, env: dict[str, str] | None = None, code: int = 2) -> str:
        """Run ``privlab ARGS`` and check it failed cleanly: exit ``code``, one ``error:`` line, no traceback.

        Returns:
            The message (without ``error: ``).
        """
        r = cls.invoke(*args, env=env)
        assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
        assert r.exit_code == code, (r.exit_code, r.output)
        assert "Traceback" not in r.output
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
        return lines[0].removeprefix("error: ")

    @classmethod
    def usage_error(cls, *args: Any) -> str:
        """Run ``privlab ARGS`` that the argument parser refuses: exit 2, Click's error box, no traceback.

        Returns:
            The box's words on one line.
        """
        r = cls.invoke(*args)
        assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
        assert r.exit_code == 2
        assert "Traceback" not in r.output
        text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", r.output).split())  # the words of Click's error box
        assert "Error" in text
        return text


@pytest.fixture
def cli() -> type[Cli]:
    """:class:`Cli`: ``cli.error(*args)`` → the one-line message of a clean exit-2 failure."""
    return Cli


def can_mount_tmpfs(where: Path, size: str = "256k") -> bool:
    """Mount a small tmpfs at ``where`` (root with CAP_SYS_ADMIN only); False where that is not possible."""
    if sys.platform != "linux":
        return False
    where.mkdir(parents=True, exist_ok=True)
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True,
                           timeout=20)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """``tiny_fs(size)`` → a freshly mounted tmpfs of that size (skips where mounting is not allowed)."""
    mounts: list[Path] = []

    def make(size: str = "256k") -> Path:
        where = tmp_path / f"fs{len(mounts)}"
        if not can_mount_tmpfs(where, size):
            pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN); the mocked-error tests cover this")
        mounts.append(where)
        return where

    yield make
    for m in mounts:
        subprocess.run(["umount", "-l", str(m)], capture_output=True, timeout=20)


def remount_readonly(where: Path) -> None:
    """Make a tiny_fs mount read-only (real EROFS, also for root, unlike chmod)."""
    r = subprocess.run(["mount", "-o", "remount,ro", str(where)], capture_output=True, timeout=20)
    if r.returncode != 0:
        pytest.skip(f"cannot remount {where} read-only: {r.stderr.decode()[:100]}")


@pytest.fixture
def payload() -> Callable[[Path], bytes]:
    """``payload(marker)`` → bytes of a pickle that writes ``marker`` when loaded."""
    return evil_payload


def _leftovers(folder: Path) -> list[str]:
    """Temporary files an interrupted atomic write would leave (``.NAME.*.tmp``)."""
    return sorted(p.name for p in folder.rglob(".*.tmp")) if folder.exists() else []


@pytest.fixture
def leftovers() -> Callable[[Path], list[str]]:
    """``leftovers(folder)`` → names of temporary files left by an interrupted atomic write."""
    return _leftovers


@pytest.fixture
def readonly() -> Callable[[Path], None]:
    """``readonly(mount)``: remount a ``tiny_fs`` mount read-only."""
    return remount_readonly
