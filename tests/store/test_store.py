import math
import sqlite3
from pathlib import Path

import pytest
import torch

from privlab.errors import DataMissingError, FileFormatError
from privlab.store import MetricRecord, Store, atomic_write_text, load_tensors, save_tensors, sha256_file


def _start(store, run_id="r1", h="h" * 64, experiment="train"):
    store.start_run(
        run_id,
        experiment=experiment,
        spec={"experiment": experiment, "seed": 0},
        spec_hash=h,
        seed=0,
        versions={"torch": "x"},
        hardware={"cpu_count": 2},
        dir=run_id,
    )


def test_round_trip(tmp_path):
    with Store(tmp_path) as s:
        _start(s)
        s.log_metrics(
            "r1",
            [
                MetricRecord("train_loss", 1.0, 1),
                MetricRecord("train_loss", 0.5, 2),
                MetricRecord("test_accuracy", 0.93, None, "fraction", "utility", True),
                MetricRecord("bad", math.nan),
            ],
        )
        s.finish_run("r1")
    with Store(tmp_path, create=False) as s:
        (run,) = s.runs()
        assert run.status == "finished" and run.versions == {"torch": "x"} and run.hardware == {"cpu_count": 2}
        assert run.metrics["test_accuracy"] == pytest.approx(0.93)
        assert math.isnan(run.metrics["bad"])  # NaN stored as NULL, read back as NaN
        assert [m.value for m in s.metrics("r1") if m.name == "train_loss"] == [1.0, 0.5]
        assert s.metric_info()["test_accuracy"] == {"unit": "fraction", "kind": "utility", "higher_is_better": True}
        assert s.get_run("r").id == "r1"  # unique prefix
        assert s.integrity_ok()
        assert s._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_skip_and_resume_queries(tmp_path):
    with Store(tmp_path) as s:
        _start(s, "a", "1" * 64)
        assert s.finished_run("1" * 64) is None
        assert s.unfinished_run_id("1" * 64) == "a"  # a crashed run is re-used on resume
        s.log_metrics("a", [MetricRecord("x", 1.0)])
        _start(s, "a", "1" * 64)  # restart replaces the unfinished row and its metrics
        assert s.final_metrics("a") == {}
        s.finish_run("a")
        assert s.finished_run("1" * 64).id == "a"
        assert s.new_run_id("train", "1" * 64) == "train-11111111"
        _start(s, "train-11111111", "1" * 64)
        assert s.new_run_id("train", "1" * 64) == "train-11111111-2"


def test_missing_and_corrupt_store(tmp_path):
    with pytest.raises(DataMissingError, match="no results store"):
        Store(tmp_path / "none", create=False)
    (tmp_path / "runs.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(FileFormatError, match="not a valid privlab store"):
        Store(tmp_path)


def test_unknown_run(tmp_path):
    with Store(tmp_path) as s:
        _start(s, "abc")
        with pytest.raises(DataMissingError, match="no run 'zzz'.*abc"):
            s.get_run("zzz")


def test_failed_transaction_rolls_back(tmp_path):
    with Store(tmp_path) as s:
        _start(s)
        with pytest.raises(sqlite3.IntegrityError):
            s.log_metrics("no-such-run", [MetricRecord("x", 1.0)])  # foreign key
        assert s.metrics("r1") == []
        s.add_artifact("r1", "checkpoint", tmp_path / "r1" / "model.safetensors", "ab" * 32)
        assert s.artifacts("r1")[0]["path"] == "r1/model.safetensors"


def test_tensors_round_trip_and_refuse_bad_files(tmp_path):
    t = {"w": torch.arange(6.0).view(2, 3), "b": torch.tensor([1, 2], dtype=torch.int64)}
    digest = save_tensors(tmp_path / "x.safetensors", t, {"model": "lenet5", "in_shape": [1, 8, 8]})
    assert digest == sha256_file(tmp_path / "x.safetensors")
    back, meta = load_tensors(tmp_path / "x.safetensors")
    assert torch.equal(back["w"], t["w"]) and meta == {"model": "lenet5", "in_shape": [1, 8, 8]}
    data = (tmp_path / "x.safetensors").read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError, match="not a valid safetensors file"):
        load_tensors(tmp_path / "trunc.safetensors")
    torch.save(t, tmp_path / "pickle.safetensors")  # a pickle under a safetensors name
    with pytest.raises(FileFormatError, match="never pickles"):
        load_tensors(tmp_path / "pickle.safetensors")
    with pytest.raises(DataMissingError):
        load_tensors(tmp_path / "absent.safetensors")
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary files left behind


def test_atomic_write_keeps_old_file_on_error(tmp_path, monkeypatch):
    p = tmp_path / "report.html"
    atomic_write_text(p, "old")

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(Exception, match="No space left on device"):
        atomic_write_text(p, "new")
    assert p.read_text() == "old"
    assert not list(tmp_path.glob(".*.tmp"))


def test_export_import_moves_a_run_in_one_piece(tmp_path: Path) -> None:
    from privlab.errors import PrivlabError

    staging = Store(tmp_path, filename="r1/.run.sqlite")
    staging.start_run("r1", experiment="x", spec={"a": 1}, spec_hash="h1", seed=3, versions={"v": 1}, hardware={})
    staging.log_metrics("r1", [MetricRecord("acc", 0.5, step=1), MetricRecord("acc", 0.75, unit="fraction")])
    art = tmp_path / "r1" / "f.json"
    art.write_text("{}")
    staging.add_artifact("r1", "result", art, "cd" * 32)
    staging.finish_run("r1")
    payload = staging.export_run("r1")
    staging.close()
    assert payload["artifacts"][0][1] == "r1/f.json"  # relative to the sweep folder, not the staging file
    with Store(tmp_path) as main:
        main.start_run("r1", experiment="x", spec={}, spec_hash="h1", seed=3, versions={}, hardware={})
        main.log_metrics("r1", [MetricRecord("stale", 1.0)])  # a killed attempt's leftovers are replaced
        main.import_run(payload)
        run = main.get_run("r1")
        assert (run.status, run.seed, run.spec, run.metrics) == ("finished", 3, {"a": 1}, {"acc": 0.75})
        assert [m.step for m in main.metrics("r1")] == [1, None]
        assert main.artifacts("r1")[0]["sha256"] == "cd" * 32
        with pytest.raises(PrivlabError, match="already finished"):
            main.import_run(payload)  # never twice
        assert len(main.metrics("r1")) == 2
        assert main.integrity_ok()


def test_atomic_writes_get_the_mode_a_plain_open_would(tmp_path: Path) -> None:
    import os

    umask = os.umask(0o022)
    try:
        p = atomic_write_text(tmp_path / "report.html", "x")
        assert p.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600: colleagues can read results
        p.chmod(0o640)
        atomic_write_text(p, "y")
        assert p.stat().st_mode & 0o777 == 0o640  # replacing keeps the file's mode
    finally:
        os.umask(umask)
