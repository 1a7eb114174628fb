"""``privlab similarity``: JSON equals score(), table text, CSV, errors exit 2."""

import json

import pytest
import torch
from typer.testing import CliRunner

from privlab.cli import app
from privlab.data.reconstructions import save_pairs
from privlab.measure.image import score

runner = CliRunner()


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no LPIPS weights to be found
    monkeypatch.delenv("PRIVLAB_LPIPS_WEIGHTS", raising=False)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 32, 32, generator=g)
    y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    save_pairs(tmp_path / "pairs", x, y, labels=[2, 0, 1], indices=[4, 5, 6])
    return tmp_path / "pairs"


def test_json_matches_score(folder):
    from privlab.data.reconstructions import load_pairs

    r = runner.invoke(app, ["similarity", str(folder), "--metrics", "psnr,ssim,ms-ssim", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    pairs = load_pairs(folder)  # the 8-bit images as read back
    ref = score(pairs.originals, pairs.reconstructions, ["psnr", "ssim", "ms-ssim"])
    assert [row["index"] for row in d["images"]] == [4, 5, 6] and [row["label"] for row in d["images"]] == [2, 0, 1]
    for got, want in zip(d["images"], ref.rows, strict=True):
        for m in ("psnr", "ssim", "ms-ssim"):
            assert got[m] == pytest.approx(want[m], rel=1e-9)
    assert d["means"]["psnr"] == pytest.approx(ref.means["psnr"]) and 19 < d["means"]["psnr"] < 21.5
    assert "2 scales" in d["notes"]["ms-ssim"] and "skimage" in d["notes"]["ssim"]


def test_auto_metrics_skip_lpips_without_weights_and_table_text(folder, tmp_path):
    r = runner.invoke(app, ["similarity", str(folder), "--csv", str(tmp_path / "out.csv")])
    assert r.exit_code == 0, r.output
    assert "mean" in r.stdout and "psnr (dB)" in r.stdout and "ms-ssim" in r.stdout
    assert "lpips: skipped" in r.stderr and "--lpips-weights" in r.stderr
    assert (tmp_path / "out.csv").read_text().splitlines()[0] == "index,label,mse,psnr,ssim,ms-ssim"


def test_lpips_random_is_labelled(folder):
    r = runner.invoke(app, ["similarity", str(folder), "--metrics", "lpips", "--lpips-weights", "random", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["metrics"] == ["lpips-random"] and "RANDOM" in d["notes"]["lpips-random"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{tmp}/nope"], "does not exist"),
        (["{folder}", "--metrics", "lpips"], "privlab never downloads"),
        (["{folder}", "--metrics", "psnr,sssim"], "unknown similarity metric 'sssim'. Did you mean"),
        (["{tmp}"], "no image pairs found"),
    ],
)
def test_errors_exit_2_with_one_line(folder, tmp_path, args, message):
    args = [a.format(tmp=tmp_path, folder=folder) for a in args]
    r = runner.invoke(app, ["similarity", *args])
    assert r.exit_code == 2, r.output
    assert message in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.output
