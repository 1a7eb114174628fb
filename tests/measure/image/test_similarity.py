"""Pixel metrics against scikit-image and closed forms; the registry; score()'s table and its checks."""

import csv
import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from privlab.errors import ConfigError, UnknownNameError
from privlab.measure.functional.image_similarity import ms_ssim, ms_ssim_settings, ssim
from privlab.measure.image import SIMILARITY_METRICS, parse_metrics, score


def _images(kind: str, c: int, n: int = 3, hw: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    if kind == "random":
        x = torch.rand(n, c, hw, hw, generator=g, dtype=torch.float64)
    else:  # structured: smooth gradients, a bright square and stripes
        yy, xx = torch.meshgrid(torch.linspace(0, 1, hw), torch.linspace(0, 1, hw), indexing="ij")
        base = torch.stack([0.5 * xx + 0.3 * yy, (torch.sin(12 * xx) + 1) / 2, yy]).double()
        base[:, 8:20, 10:22] = 0.9
        x = torch.stack([base[:c] * (0.6 + 0.2 * i) for i in range(n)])
    y = (x + 0.08 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x, y


def _np(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).numpy()  # C×H×W → H×W×C


@pytest.mark.parametrize("kind", ["random", "structured"])
@pytest.mark.parametrize("c", [1, 3])
def test_psnr_ssim_equal_scikit_image(kind, c):
    x, y = _images(kind, c)
    table = score(x, y, ["mse", "psnr", "ssim"])
    for i in range(x.shape[0]):
        a, b = _np(x[i]), _np(y[i])
        ref_psnr = peak_signal_noise_ratio(a, b, data_range=1)
        ref_ssim = structural_similarity(
            a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=-1
        )
        assert table.rows[i]["psnr"] == pytest.approx(ref_psnr, abs=1e-4)
        assert table.rows[i]["ssim"] == pytest.approx(ref_ssim, abs=1e-4)
        assert table.rows[i]["mse"] == pytest.approx(float(((a - b) ** 2).mean()), rel=1e-9)
    assert table.means["ssim"] == pytest.approx(np.mean([r["ssim"] for r in table.rows]))


def test_ssim_differs_from_torchmetrics_default_reduction_which_averages_the_padded_border():
    # the reason we crop the map ourselves: torchmetrics' own mean includes the reflect-padded border
    from torchmetrics.functional.image import structural_similarity_index_measure

    x, y = _images("random", 1)
    ours = ssim(x, y)
    tm = structural_similarity_index_measure(y, x, data_range=1.0, reduction="none")
    assert (ours - tm).abs().max() > 1e-3


def test_mse_and_psnr_closed_form():
    x = torch.zeros(2, 1, 16, 16)
    y = x.clone()
    y[0] += 0.1  # MSE 0.01 → PSNR 20 dB
    y[1, :, :8] = 0.5  # half the pixels off by 0.5 → MSE 0.125 → PSNR 10·log10(8)
    t = score(x, y, ["mse", "psnr"])
    assert t.rows[0]["mse"] == pytest.approx(0.01, rel=1e-6)
    assert t.rows[0]["psnr"] == pytest.approx(20.0, abs=1e-5)
    assert t.rows[1]["mse"] == pytest.approx(0.125)
    assert t.rows[1]["psnr"] == pytest.approx(10 * math.log10(8))
    same = score(x, x, ["psnr", "ssim"])
    assert same.rows[0]["psnr"] == math.inf and same.rows[0]["ssim"] == pytest.approx(1.0)


def test_ms_ssim_on_32x32_identical_and_noisy():
    x, _ = _images("structured", 3, n=2)
    g = torch.Generator().manual_seed(0)
    t = score(x, x, ["ms-ssim"])
    assert [r["ms-ssim"] for r in t.rows] == pytest.approx([1.0, 1.0], abs=1e-6)
    assert "2 scales" in t.notes["ms-ssim"] and "0.1356" in t.notes["ms-ssim"]
    values = []
    for sigma in (0.02, 0.1, 0.3):
        y = (x + sigma * torch.randn(x.shape, generator=g, dtype=x.dtype)).clamp(0, 1)
        values.append(score(x, y, ["ms-ssim"]).means["ms-ssim"])
    assert 1.0 > values[0] > values[1] > values[2]
    assert values[0] > 0.9 and values[2] < 0.7


def test_ms_ssim_settings_by_size_and_overrides():
    assert ms_ssim_settings(256, 256)[0] == (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
    assert len(ms_ssim_settings(64, 64)[0]) == 3 and sum(ms_ssim_settings(64, 64)[0]) == pytest.approx(1, abs=1e-3)
    assert len(ms_ssim_settings(32, 32, kernel=7)[0]) == 3
    with pytest.raises(ConfigError, match="too small"):
        ms_ssim_settings(10, 10)
    with pytest.raises(ConfigError, match="does not fit"):
        ms_ssim_settings(32, 32, betas=[0.2] * 5)
    x, _ = _images("random", 1, n=1)
    v, note = ms_ssim(x, x, betas=(0.5, 0.5), kernel=5)
    assert float(v[0]) == pytest.approx(1.0) and "as given" in note and "window 5" in note


def test_registry_meta_and_aliases():
    builtin = {"mse", "psnr", "ssim", "ms-ssim", "lpips", "classifier"}
    assert builtin <= set(SIMILARITY_METRICS.names())  # other modules (SemSim) may register more
    better = {n: SIMILARITY_METRICS.entry(n).meta["higher_is_better"] for n in builtin}
    assert better == {"mse": False, "psnr": True, "ssim": True, "ms-ssim": True, "lpips": False, "classifier": True}
    assert SIMILARITY_METRICS.entry("psnr").meta["unit"] == "dB"
    assert parse_metrics("PSNR, ms_ssim,psnr") == ["psnr", "ms-ssim"]
    with pytest.raises(UnknownNameError, match="Did you mean 'ssim'"):
        parse_metrics("sim")


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (torch.rand(2, 1, 16, 16) * 2, torch.rand(2, 1, 16, 16), r"in \[0, 1\]"),
        (torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 17), "same shape"),
        (torch.rand(1, 16, 16), torch.rand(1, 16, 16), "N×C×H×W"),
        (torch.rand(2, 2, 16, 16), torch.rand(2, 2, 16, 16), "1 \\(grey\\) or 3"),
        (torch.full((1, 1, 16, 16), float("nan")), torch.rand(1, 1, 16, 16), "NaN"),
        (torch.zeros(1, 1, 16, 16, dtype=torch.uint8), torch.zeros(1, 1, 16, 16, dtype=torch.uint8), "255"),
    ],
)
def test_bad_inputs_raise_config_error(x, y, message):
    with pytest.raises(ConfigError, match=message):
        score(x, y)


def test_ssim_on_too_small_images_says_resize():
    with pytest.raises(ConfigError, match="at least 11×11"):
        score(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8), ["ssim"])


class _Fixed(torch.nn.Module):
    """Logits from the mean brightness: class 1 if bright, class 0 if dark (confidence from a steep sigmoid)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(20.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.flatten(1).mean(1) - 0.5
        return torch.stack([-m, m], 1) * self.scale


def test_classifier_correct_and_confidence():
    x = torch.cat([torch.full((2, 1, 16, 16), 0.9), torch.full((2, 1, 16, 16), 0.1)])
    labels = torch.tensor([1, 0, 0, 1])  # images 0 and 2 are recognised, 1 and 3 not
    model = _Fixed().train()
    t = score(x, x, ["classifier", "mse"], labels=labels, classifier=model)
    assert t.metrics == ["classifier_correct", "classifier_confidence", "mse"]
    assert t.column("classifier_correct") == [1.0, 0.0, 1.0, 0.0]
    p = 1 / (1 + math.exp(-2 * 20 * 0.4))  # softmax([-a, a]) of the true class = sigmoid(2a), a = 20·0.4
    assert t.column("classifier_confidence") == pytest.approx([p, 1 - p, p, 1 - p], rel=1e-5)
    assert t.means["classifier_correct"] == 0.5 and [r["label"] for r in t.rows] == [1, 0, 0, 1]
    assert model.training  # mode restored
    with pytest.raises(ConfigError, match="needs a reference classifier"):
        score(x, x, ["classifier"], labels=labels)


def test_table_as_dict_and_csv(tmp_path):
    x, y = _images("random", 1, n=2, hw=16)
    t = score(x, y, ["psnr", "ssim"], indices=[5, 9])
    d = t.as_dict()
    assert [r["index"] for r in d["images"]] == [5, 9] and set(d["means"]) == {"psnr", "ssim"}
    assert d["units"]["psnr"] == "dB" and d["higher_is_better"]["ssim"] is True
    with open(t.to_csv(tmp_path / "s.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["index"]) for r in rows] == [5, 9]
    assert float(rows[1]["ssim"]) == pytest.approx(t.rows[1]["ssim"], rel=1e-12)
