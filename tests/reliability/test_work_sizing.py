"""Work sized before it starts: a sweep with too many points and an array too large for memory are refused before
anything is built or decompressed, with the estimate in the message."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from privlab.cli import app
from privlab.errors import ConfigError, FileFormatError
from privlab.run.sweep import MAX_SWEEP_POINTS, count_points, expand, expand_all, load_specs
from privlab.store import load_array

runner = CliRunner()


def _sweep_file(tmp_path: Path, a: int, b: int) -> Path:
    spec = tmp_path / "big.yaml"
    lrs = ", ".join(str(1e-4 * (i + 1)) for i in range(a))
    seeds = ", ".join(str(i) for i in range(b))
    spec.write_text(f"experiment: train\npreset: smoke\nsweep:\n  train.lr: [{lrs}]\n  seed: [{seeds}]\n")
    return spec


def test_a_sweep_past_the_limit_is_refused_before_expanding(tmp_path: Path) -> None:
    (spec,) = load_specs(_sweep_file(tmp_path, 101, 100))
    assert count_points(spec) == 10_100 > MAX_SWEEP_POINTS
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"expands to 10,100 runs, more than the 10,000"):
        expand(spec)
    assert time.perf_counter() - t0 < 1.0  # counted, not built (building 10 100 validated specs takes far longer)


def test_the_limit_counts_a_sweep_file_as_a_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (spec,) = load_specs(_sweep_file(tmp_path, 3, 4))
    monkeypatch.setenv("PRIVLAB_MAX_SWEEP_POINTS", "20")
    assert len(expand(spec)) == 12
    with pytest.raises(ConfigError, match=r"the sweep file expands to 24 runs, more than the 20"):
        expand_all([spec, spec])


def test_the_cli_says_so_with_exit_2(tmp_path: Path) -> None:
    res = runner.invoke(app, ["run", str(_sweep_file(tmp_path, 101, 100)), "--dry-run", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert "10,100 runs" in res.output and "PRIVLAB_MAX_SWEEP_POINTS" in res.output
    assert "Traceback" not in res.output


def test_an_npz_member_that_inflates_past_memory_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, x=np.zeros((4096, 4096), dtype=np.float32))  # 64 MiB of zeros, ~70 KiB on disk
    assert path.stat().st_size < 2**20
    monkeypatch.setenv("PRIVLAB_MAX_ARRAY_MIB", "16")
    with pytest.raises(FileFormatError, match=r"bomb\.npz.*0\.0625 GiB in memory, more than privlab loads at once"):
        load_array(path)
    monkeypatch.setenv("PRIVLAB_MAX_ARRAY_MIB", "128")
    assert load_array(path).shape == (4096, 4096)
