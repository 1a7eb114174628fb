"""LPIPS: input scaling against torchmetrics, local weights only, a clear error without them, random only when asked."""

import time

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from privlab.errors import DataMissingError, FileFormatError
from privlab.measure.image import lpips as lp
from privlab.measure.image import score

WEIGHTS = "weights/alexnet-features-imagenet.safetensors"


@pytest.fixture(autouse=True)
def _empty_hub(tmp_path, monkeypatch):
    """No hub cache and no environment variable unless a test sets them: nothing to find, nothing to download."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(lp.ENV_VAR, raising=False)


@pytest.fixture
def alex_weights(shared_dir):
    path = shared_dir / WEIGHTS
    if not path.is_file():
        pytest.skip(f"real AlexNet features not found at {path}")
    return path


def _smooth(n: int = 2, c: int = 3, hw: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(n, c, 8, 8, generator=g), size=(hw, hw), mode="bilinear", align_corners=False)


def _noisy(x: torch.Tensor, sigma: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)


def test_scaling_matches_torchmetrics_normalize_true_and_manual_minus1_1():
    x = _smooth()
    y = _noisy(x, 0.1)
    metric = lp.LPIPSMetric("alex", "random", "cpu")
    ours = metric(x, y)
    tm_model = metric.model  # the torchmetrics module itself (same random backbone)
    with torch.no_grad():
        as_01 = tm_model(x, y, normalize=True).reshape(-1)
        as_pm1 = tm_model(2 * x - 1, 2 * y - 1, normalize=False).reshape(-1)
        unscaled = tm_model(x, y, normalize=False).reshape(-1)  # the common mistake: [0, 1] fed as [−1, 1]
    assert ours.float() == pytest.approx(as_01, abs=1e-6)
    assert ours.float() == pytest.approx(as_pm1, abs=1e-6)
    assert (ours.float() - unscaled).abs().min() > 1e-4
    assert lp.lpips_distance(x, x, weights="random").abs().max() < 1e-6


def test_real_alexnet_weights_vs_random_backbone(alex_weights):
    x = _smooth(n=3)
    y = _noisy(x, 0.2)
    real = lp.lpips_distance(x, y, weights=alex_weights)
    rand = lp.lpips_distance(x, y, weights="random")
    # measured: real ≈ 0.47–0.53, random ≈ 0.05 on these 64×64 images
    assert real.min() > 0.3 and rand.max() < 0.15 and (real > 3 * rand).all()
    assert lp.lpips_distance(x, x, weights=alex_weights).abs().max() < 1e-6
    # more noise, larger distance
    assert lp.lpips_distance(x, _noisy(x, 0.05), weights=alex_weights).mean() < real.mean()


def test_features_only_and_full_torchvision_state_dicts_agree(alex_weights, tmp_path):
    feats = load_file(str(alex_weights))
    full = {f"features.{k}": v for k, v in feats.items()}
    full["classifier.1.weight"] = torch.zeros(4, 4)  # ignored
    torch.save(full, tmp_path / "alexnet-owt-7be5be79.pth")
    x = _smooth(n=1)
    y = _noisy(x, 0.2)
    a = lp.lpips_distance(x, y, weights=alex_weights)
    b = lp.lpips_distance(x, y, weights=tmp_path / "alexnet-owt-7be5be79.pth")
    c = lp.lpips_distance(x, y, weights=tmp_path)  # a folder holding the torchvision file name
    assert a == pytest.approx(b, abs=1e-7) and a == pytest.approx(c, abs=1e-7)


def test_env_var_then_hub_cache(alex_weights, tmp_path, monkeypatch):
    monkeypatch.setenv(lp.ENV_VAR, str(alex_weights))
    assert lp.resolve_weights("alex").origin == f"${lp.ENV_VAR}"
    monkeypatch.delenv(lp.ENV_VAR)
    hub = lp.hub_checkpoint("alex")
    assert hub.name == "alexnet-owt-7be5be79.pth" and str(hub).startswith(str(tmp_path))
    hub.parent.mkdir(parents=True)
    torch.save({f"features.{k}": v for k, v in load_file(str(alex_weights)).items()}, hub)
    assert lp.resolve_weights("alex").path == hub
    assert lp.lpips_available("alex") is None


def test_missing_weights_fail_at_once_with_instructions(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("LPIPS tried to download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    start = time.perf_counter()
    with pytest.raises(DataMissingError) as err:
        lp.lpips_distance(_smooth(n=1), _smooth(n=1, seed=2))
    assert time.perf_counter() - start < 5  # no network wait (generous: only a file-existence check happens)
    msg = str(err.value)
    for hint in ("--lpips-weights", lp.ENV_VAR, "alexnet-owt-7be5be79.pth", "random"):
        assert hint in msg
    assert "\n" not in msg
    reason = lp.lpips_available("vgg")
    assert reason is not None and "vgg16-397923af.pth" in reason
    with pytest.raises(DataMissingError, match="does not exist"):
        lp.resolve_weights("alex", "/nonexistent/alexnet.pth")


def test_wrong_or_corrupt_weight_files(alex_weights, tmp_path):
    with pytest.raises(FileFormatError, match="not squeezenet1_1 weights for LPIPS-squeeze"):
        lp.LPIPSMetric("squeeze", alex_weights, "cpu")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(FileFormatError, match="cannot read LPIPS backbone weights"):
        lp.LPIPSMetric("alex", bad, "cpu")
    partial = tmp_path / "partial.safetensors"
    save_file({k: v for k, v in load_file(str(alex_weights)).items() if not k.startswith("10.")}, str(partial))
    with pytest.raises(FileFormatError, match="2 of 10 backbone tensors missing"):
        lp.LPIPSMetric("alex", partial, "cpu")


def test_score_labels_random_backbone_and_grey_images():
    x = _smooth(n=2, c=1, hw=16)  # grey and smaller than AlexNet's 31 px: replicated and upsampled
    y = _noisy(x, 0.2)
    t = score(x, y, ["psnr", "lpips"], lpips_weights="random")
    assert t.metrics == ["psnr", "lpips-random"] and "lpips" not in t.rows[0]
    assert "RANDOM backbone" in t.notes["lpips-random"] and "grey images replicated" in t.notes["lpips-random"]
    assert t.higher_is_better["lpips-random"] is False
    assert all(r["lpips-random"] > 0 for r in t.rows)
    with pytest.raises(DataMissingError):
        score(x, y, ["psnr", "lpips"])  # no silent random weights
