"""Cost of Shredder at inference: noisy split inference vs the same network without noise.

Both sides run a LeNet-5 (2-class head, random weights, seed 0) over the 1 797 digits images resized to 32×32 in
batches of 256, in eval mode without gradients. The candidate inserts Shredder's deployed noise at ``relu5``
(120×1×1): for every image a fresh draw from a 20-sample v2 bank (uniform bank entry, rank-preserving Gaussian
resampling of ``w``, then ``a ⊙ w + n``). The baseline is the plain forward pass. The ratio is the price of fresh
per-image noise on the device.
"""

from __future__ import annotations

import torch

from privlab.bench import Benchmark
from privlab.data import load_dataset
from privlab.models import build_model
from privlab.models.split import insert_at
from privlab.protect.shredder import BankSampler, DeployedNoise, NoiseBank, NoiseConfig, ShredderNoise

BATCH = 256
_STATE: dict[str, object] = {}


def _setup() -> None:
    train = load_dataset("digits", "train", resize=32)
    test = load_dataset("digits", "test", resize=32)
    images = torch.cat([train.images, test.images])
    torch.manual_seed(0)
    model = build_model("lenet5", 2, (1, 32, 32)).eval()
    layers = [ShredderNoise((120, 1, 1), NoiseConfig(laplace_scale=2.0), seed=s) for s in range(20)]
    bank = NoiseBank(torch.stack([la.n.detach() for la in layers]), torch.stack([la.w.detach() for la in layers]))
    noisy = insert_at(model, "relu5", DeployedNoise(BankSampler(bank), "image", seed=0)).eval()
    _STATE.update(images=images, model=model, noisy=noisy)


@torch.no_grad()
def _run(model: torch.nn.Module) -> int:
    images: torch.Tensor = _STATE["images"]  # type: ignore[assignment]
    correct = 0
    for i in range(0, len(images), BATCH):
        correct += int(model(images[i : i + BATCH]).argmax(1).sum())
    return correct


def candidate() -> int:
    """LeNet-5 with fresh per-image Shredder v2 noise at relu5 over 1 797 images."""
    return _run(_STATE["noisy"])  # type: ignore[arg-type]


def baseline() -> int:
    """The same LeNet-5 without noise."""
    return _run(_STATE["model"])  # type: ignore[arg-type]


BENCHMARK = Benchmark(
    name="shredder_noisy_inference",
    description="LeNet-5 inference on 1 797 digits (32×32, batch 256) with fresh per-image Shredder v2 noise at "
    "relu5 vs without noise",
    candidate=candidate,
    baseline=baseline,
    setup=_setup,
    repeats=7,
    warmup=1,
    goal="fresh per-image noise costs ≤ 1.5× the plain forward pass",
    max_ratio=1.5,
)
