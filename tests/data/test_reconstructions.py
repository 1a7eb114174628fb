"""The {idx}_{label}_{ori|rec}.png pairing: round trip, unmatched files, label clashes, bad images."""

import pytest
import torch

from privlab.data.reconstructions import load_pairs, pair_files, read_png, save_pairs
from privlab.errors import ConfigError, DataMissingError, FileFormatError


def _batch(c: int, n: int = 3, hw: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, c, hw, hw, generator=g)
    return x, (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)


@pytest.mark.parametrize("c", [1, 3])
def test_round_trip_is_exact_to_8_bits(tmp_path, c):
    x, y = _batch(c)
    y[0, :, 0, 0] = 1.7  # clamped to 1 on save
    paths = save_pairs(tmp_path, x, y, labels=torch.tensor([4, 0, 9]), indices=[10, 2, 7])
    assert [p.name for p in paths[:2]] == ["10_4_ori.png", "10_4_rec.png"] and len(paths) == 6
    pairs = load_pairs(tmp_path)
    assert pairs.indices == [2, 7, 10] and pairs.labels.tolist() == [0, 9, 4]  # sorted by index
    order = [1, 2, 0]
    assert pairs.originals.shape == (3, c, 12, 12)
    assert (pairs.originals - x[order]).abs().max() <= 0.5 / 255 + 1e-6
    assert (pairs.reconstructions - y[order].clamp(0, 1)).abs().max() <= 0.5 / 255 + 1e-6
    from PIL import Image

    with Image.open(paths[0]) as im:
        assert im.mode == ("L" if c == 1 else "RGB")


def test_two_folders_and_ignored_files(tmp_path):
    x, y = _batch(1, n=2)
    save_pairs(tmp_path / "all", x, y, labels=[1, 2])
    (tmp_path / "ori").mkdir()
    (tmp_path / "rec").mkdir()
    for p in (tmp_path / "all").iterdir():
        p.rename(tmp_path / ("ori" if p.name.endswith("_ori.png") else "rec") / p.name)
    (tmp_path / "rec" / "notes.txt").write_text("ignored")
    (tmp_path / "rec" / "grid.png").write_bytes(b"ignored")
    files = pair_files(tmp_path / "ori", tmp_path / "rec")
    assert [(f.idx, f.label, f.ori.parent.name, f.rec.parent.name) for f in files] == [
        (0, 1, "ori", "rec"),
        (1, 2, "ori", "rec"),
    ]


def test_unmatched_files_are_named_with_a_count(tmp_path):
    x, y = _batch(1, n=8)
    save_pairs(tmp_path, x, y, labels=[0] * 8)
    for i in range(7):
        (tmp_path / f"{i}_0_rec.png").unlink()
    with pytest.raises(FileFormatError) as err:
        pair_files(tmp_path)
    msg = str(err.value)
    assert "7 originals without a reconstruction" in msg
    assert "0_0_ori.png" in msg and "4_0_ori.png" in msg and "5_0_ori.png" not in msg and "and 2 more" in msg
    assert "{idx}_{label}_ori.png" in msg


def test_label_mismatch_and_duplicates(tmp_path):
    x, y = _batch(1, n=2)
    save_pairs(tmp_path, x, y, labels=[3, 5])
    (tmp_path / "1_5_rec.png").rename(tmp_path / "1_6_rec.png")
    with pytest.raises(FileFormatError, match=r"disagree on the label.*1_5_ori.png vs 1_6_rec.png"):
        pair_files(tmp_path)
    (tmp_path / "1_5_rec.png").write_bytes((tmp_path / "1_6_rec.png").read_bytes())
    with pytest.raises(FileFormatError, match="share an index"):
        pair_files(tmp_path)


def test_empty_missing_and_bad_images(tmp_path):
    (tmp_path / "photo.png").write_bytes(b"x")
    with pytest.raises(FileFormatError, match="no image pairs found.*expected files named"):
        pair_files(tmp_path)
    with pytest.raises(DataMissingError, match="does not exist"):
        pair_files(tmp_path / "nope")
    x, y = _batch(1, n=2)
    save_pairs(tmp_path / "a", x, y, labels=[0, 1])
    (tmp_path / "a" / "1_1_rec.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(FileFormatError, match="1_1_rec.png"):
        load_pairs(tmp_path / "a")
    save_pairs(tmp_path / "b", x, y, labels=[0, 1])
    save_pairs(tmp_path / "b", *_batch(3, n=1), labels=[1], indices=[1])  # RGB among grey
    with pytest.raises(FileFormatError, match=r"1_1_ori.png is 12×12 with 3 channel"):
        load_pairs(tmp_path / "b")
    with pytest.raises(ConfigError, match="same shape"):
        save_pairs(tmp_path / "c", x, y[:, :, :5], labels=[0, 1])
    with pytest.raises(ConfigError, match="distinct"):
        save_pairs(tmp_path / "c", x, y, labels=[0, 1], indices=[3, 3])


def test_read_png_16_bit_grey(tmp_path):
    import numpy as np
    from PIL import Image

    arr = np.array([[0, 65535], [32768, 16384]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "g.png")
    img = read_png(tmp_path / "g.png")
    assert img.shape == (1, 2, 2) and img[0, 0, 1] == 1.0 and float(img[0, 1, 0]) == pytest.approx(0.5, abs=1e-4)
