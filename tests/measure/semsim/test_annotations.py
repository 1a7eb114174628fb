"""Manifest format, path confinement, the importer of the original folder layout and atomic appends."""

from __future__ import annotations

import json
import os

import pytest
import torch

from privlab.data.reconstructions import save_pairs
from privlab.errors import DataMissingError, FileFormatError
from privlab.measure.semsim import Annotation, TripletData, append_annotation, import_folder_layout, load_manifest
from privlab.measure.semsim.annotations import resolve_inside
from privlab.measure.semsim.train import sample_triplets

HEADER = "original,reconstruction,setting,recognised,annotator\n"


def _png(path, seed=0):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    Image.fromarray((torch.rand(8, 8, generator=g) * 255).byte().numpy(), mode="L").save(path)


def test_csv_and_json_manifests(tmp_path):
    (tmp_path / "m.csv").write_text(HEADER + "o.png,r1.png,dlg,yes,ann\no.png,r2.png,dlg,0,ann\n,r3.png,x,n,\n")
    m = load_manifest(tmp_path / "m.csv")
    assert [r.recognised for r in m.records] == [True, False, False]
    assert m.records[2].original == "" and m.records[2].annotator == "unknown"
    assert m.resolve("r1.png") == (tmp_path / "r1.png").resolve()
    (tmp_path / "m.json").write_text(
        json.dumps(
            {"annotations": [{"original": "o.png", "reconstruction": "r.png", "setting": "s", "recognised": True}]}
        )
    )
    assert load_manifest(tmp_path / "m.json").records[0].setting == "s"
    (tmp_path / "bad.csv").write_text(HEADER + "o.png,r.png,s,maybe,a\n")
    with pytest.raises(FileFormatError, match="row 1: recognised must be yes or no"):
        load_manifest(tmp_path / "bad.csv")
    (tmp_path / "nohead.csv").write_text("a,b\n1,2\n")
    with pytest.raises(FileFormatError, match="header"):
        load_manifest(tmp_path / "nohead.csv")
    with pytest.raises(DataMissingError):
        load_manifest(tmp_path / "none.csv")


@pytest.mark.parametrize(
    ("path", "why"),
    [("../x.png", "'..'"), ("a/../../x.png", "'..'"), ("/etc/passwd", "absolute"), ("C:/x.png", "absolute"),
     ("a\\b.png", "backslash"), ("", "empty")],
)  # fmt: skip
def test_paths_that_leave_the_folder_are_refused(tmp_path, path, why):
    (tmp_path / "m.csv").write_text(HEADER + f"o.png,{path},s,yes,a\n")
    with pytest.raises(FileFormatError) as e:
        load_manifest(tmp_path / "m.csv")
    assert "row 1" in str(e.value) or why == "empty"


def test_symlink_escaping_the_folder_is_refused(tmp_path):
    inside, outside = tmp_path / "data", tmp_path / "secret"
    inside.mkdir()
    _png(outside / "s.png")
    os.symlink(outside, inside / "link")
    _png(inside / "ok.png")
    os.symlink(inside / "ok.png", inside / "alias.png")  # a link that stays inside is fine
    assert resolve_inside(inside, "alias.png") == (inside / "ok.png").resolve()
    (inside / "m.csv").write_text(HEADER + "ok.png,link/s.png,s,yes,a\n")
    with pytest.raises(FileFormatError, match="outside the manifest's folder"):
        load_manifest(inside / "m.csv")


def test_importer_of_the_original_layout(tmp_path):
    _png(tmp_path / "1" / "1_ori.png", 1)
    _png(tmp_path / "1" / "a_rec.png", 2)
    _png(tmp_path / "1" / "b_rec.png", 3)
    _png(tmp_path / "-1" / "c_rec.png", 4)
    _png(tmp_path / "2" / "2_ori.png", 5)
    _png(tmp_path / "2" / "d_rec.png", 6)
    _png(tmp_path / "others" / "e.png", 7)
    m = import_folder_layout(tmp_path, setting="cifar")
    got = {(r.original, r.reconstruction, r.recognised) for r in m.records}
    assert got == {
        ("1/1_ori.png", "1/a_rec.png", True),
        ("1/1_ori.png", "1/b_rec.png", True),
        ("1/1_ori.png", "-1/c_rec.png", False),
        ("2/2_ori.png", "2/d_rec.png", True),
        ("", "others/e.png", False),
    }
    assert load_manifest(tmp_path / "manifest.csv").records == m.records
    data = TripletData.from_manifest(m, in_channels=1, input_size=8)
    rows = sample_triplets(data, "paper", 5, torch.Generator().manual_seed(0))
    two = rows[rows[:, 0] == data.rec_original[3]]  # original "2" has no "-2" folder: negatives from others/
    assert bool((data.rec_original[two[:, 2]] == -1).all())
    _png(tmp_path / "1" / "x_ori.png", 8)
    with pytest.raises(FileFormatError, match="2 originals"):
        import_folder_layout(tmp_path)


def test_append_is_atomic_and_replaces_a_repeated_answer(tmp_path):
    save_pairs(tmp_path / "s", torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8), [1, 2])
    path = tmp_path / "annotations.csv"
    a = Annotation("s/0_1_ori.png", "s/0_1_rec.png", "s", True, "ann")
    assert append_annotation(path, a) == 1
    assert append_annotation(path, Annotation("s/1_2_ori.png", "s/1_2_rec.png", "s", False, "ann")) == 2
    assert append_annotation(path, Annotation(a.original, a.reconstruction, "s", False, "ann")) == 2  # replaced
    assert append_annotation(path, Annotation(a.original, a.reconstruction, "s", True, "bob")) == 3
    recs = load_manifest(path).records
    assert [(r.reconstruction, r.recognised, r.annotator) for r in recs] == [
        ("s/1_2_rec.png", False, "ann"), ("s/0_1_rec.png", False, "ann"), ("s/0_1_rec.png", True, "bob"),
    ]  # fmt: skip
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    with pytest.raises(FileFormatError):
        append_annotation(path, Annotation("../o.png", "r.png", "s", True, "x"))
    assert len(load_manifest(path).records) == 3  # a refused answer leaves the file intact
