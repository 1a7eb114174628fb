"""The shipped MI calibration table: the lookup, and a clear error naming the file when it is missing or corrupt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from privlab.errors import PrivlabError
from privlab.measure.mi import calibration_table as ct


def test_shipped_table_lines_are_found() -> None:
    lines = ct.load_table()
    assert lines and ct.table_path().name == "calibration_table.json"
    line = ct.calibration_line("ksg", 5000, 2)
    assert line is not None and line["estimator"] == "ksg" and line["dims"] == "1-4"
    assert "ksg on" in line["text"] and "nats" in line["text"]
    assert ct.calibration_line("no-such-estimator", 5000, 2) is None


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "is missing"),
        ("{not json", "is unreadable"),
        (json.dumps({"rows": []}), "is corrupt"),
        (json.dumps({"lines": [{"estimator": "ksg"}]}), "is corrupt"),
    ],
)
def test_missing_or_corrupt_table_is_a_clear_error(tmp_path: Path, content: str | None, words: str) -> None:
    path = tmp_path / "calibration_table.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ct.CalibrationTableError) as e:
        ct.load_table(path)
    assert isinstance(e.value, PrivlabError)
    assert str(path) in str(e.value) and words in str(e.value) and "privlab mi calibrate --write-table" in str(e.value)


def test_lookup_does_not_silently_return_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ct, "_TABLE", None)
    monkeypatch.setattr(ct, "table_path", lambda: tmp_path / "gone.json")
    with pytest.raises(ct.CalibrationTableError, match="gone.json"):
        ct.calibration_line("ksg", 5000, 2)
