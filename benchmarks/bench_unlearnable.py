"""Unlearnable-example generation cost on the ``cpu`` preset's setting (digits at 32×32, LeNet-5, ε = 8/255).

Three timed comparisons, each candidate beside a baseline in the same process:

- ``unlearnable_minmin_step``: one min-min iteration (one training step on ``x + δ`` plus ``num_steps = 10`` PGD
  steps on δ for the same batch of 64) against one plain training step on the same model and batch. The ratio is the
  price of min-min over ordinary training (≈ 1 + num_steps · cost(forward + input-gradient) / cost(training step)).
- ``unlearnable_em_sweep``: privlab's sample-wise EM noise sweep (``_sweep``: 10 PGD steps for each of 512 images)
  against the same PGD written as a bare PyTorch loop — the library's overhead. Throughput = 512 / candidate_s
  images/s.
- ``unlearnable_tue_sweep``: the TUE noise sweep with the SimCLR loss and CSD (ssl_weight 1, csd_weight 0.1,
  10 steps, batch 256, 512 images) against the EM sweep — the price of the SSL objective per image (two augmented
  views through encoder + projector instead of one classifier pass). Throughput = 512 / candidate_s images/s.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from privlab.bench import BENCHMARKS, Benchmark
from privlab.data import load_dataset
from privlab.data.transforms import SimCLRAugment
from privlab.models import build_model
from privlab.models.ssl import build_ssl_model
from privlab.protect.unlearnable_csd import TransferableUnlearnable, TUEConfig
from privlab.protect.unlearnable_em import EMConfig, _sweep, sample_pgd

EPS, ALPHA, STEPS, N = 8 / 255, 0.8 / 255, 10, 512
_S: dict[str, Any] = {}


def _setup() -> None:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    data = load_dataset("digits", "train", resize=32, limit=N, seed=0)
    torch.manual_seed(0)
    _S["data"] = data
    _S["model"] = build_model("lenet5", 10, data.shape, mean=data.mean, std=data.std)
    _S["opt"] = torch.optim.Adam(_S["model"].parameters(), lr=1e-3)
    _S["x"], _S["y"] = data.batch(torch.arange(64))
    _S["noise"] = (torch.rand(len(data), *data.shape, generator=torch.Generator().manual_seed(1)) * 2 - 1) * EPS
    _S["em_cfg"] = EMConfig(kind="sample", backbone="lenet5", num_steps=STEPS, step_size=ALPHA, batch_size=64)
    ssl = build_ssl_model("simclr", "lenet5", data.shape, mean=data.mean, std=data.std)
    tue_cfg = TUEConfig(
        backbone="lenet5",
        num_steps=STEPS,
        step_size=ALPHA,
        batch_size=256,
        ssl_weight=1.0,
        csd_weight=0.1,
        augment={"crop_scale": (0.5, 1.0), "flip": False},
    )
    _S["ssl"], _S["tue"] = ssl, TransferableUnlearnable(tue_cfg)


def _train_step(x: torch.Tensor) -> None:
    model, opt = _S["model"], _S["opt"]
    model.train()
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), _S["y"]).backward()
    opt.step()


def minmin_step() -> None:
    """One min-min iteration: a training step on x + δ, then 10 PGD steps on δ (batch 64)."""
    x, d = _S["x"], _S["noise"][:64]
    _train_step((x + d).clamp(0, 1))
    _S["model"].eval()
    sample_pgd(_S["model"], x, _S["y"], d, epsilon=EPS, step_size=ALPHA, num_steps=STEPS)


def plain_step() -> None:
    """One ordinary training step on the clean batch (same model, batch 64)."""
    _train_step(_S["x"])


def em_sweep() -> None:
    """privlab's sample-wise EM sweep over 512 images (10 PGD steps each)."""
    _sweep(_S["model"], _S["data"], _S["noise"].clone(), _S["em_cfg"], "min", "cpu")


def bare_em_sweep() -> None:
    """The same sweep as a bare PyTorch PGD loop."""
    model, data, noise = _S["model"], _S["data"], _S["noise"].clone()
    model.eval()
    images, labels = data.images, data.labels
    for i in range(0, len(labels), 64):
        x, y = images[i : i + 64], labels[i : i + 64]
        xa = (x + noise[i : i + 64]).clamp(0, 1)
        for _ in range(STEPS):
            xa.requires_grad_(True)
            (g,) = torch.autograd.grad(F.cross_entropy(model(xa), y), xa)
            xa = (x + (xa.detach() - ALPHA * g.sign() - x).clamp(-EPS, EPS)).clamp(0, 1)
        noise[i : i + 64] = xa - x


def tue_sweep() -> None:
    """The TUE sweep (SimCLR loss + CSD, 10 steps, batch 256) over 512 images."""
    tue, data = _S["tue"], _S["data"]
    tue._sweep(
        _S["ssl"], data, _S["noise"].clone(), SimCLRAugment(tue.cfg.augment), torch.Generator().manual_seed(0), "cpu"
    )


BENCHMARK = Benchmark(
    name="unlearnable_em_sweep",
    description="sample-wise EM noise sweep (LeNet-5, 512 digits at 32×32, 10 PGD steps) vs a bare PyTorch PGD loop",
    candidate=em_sweep,
    baseline=bare_em_sweep,
    setup=_setup,
    repeats=3,
    warmup=1,
    goal="privlab's EM sweep ≤ 1.15× a bare PGD loop (images/s = 512 / candidate_s)",
    max_ratio=1.15,
)

BENCHMARKS.add(
    "unlearnable_minmin_step",
    Benchmark(
        name="unlearnable_minmin_step",
        description="one min-min iteration (train step + 10 PGD steps, batch 64, LeNet-5) vs one plain train step",
        candidate=minmin_step,
        baseline=plain_step,
        setup=_setup,
        repeats=20,
        warmup=3,
        goal="min-min iteration ≤ 20× a plain step (10 PGD steps; measured 14.4× on an idle 2-core CPU)",
        max_ratio=20.0,
    ),
    description="one min-min iteration vs one plain training step",
)

BENCHMARKS.add(
    "unlearnable_tue_sweep",
    Benchmark(
        name="unlearnable_tue_sweep",
        description="TUE noise sweep (SimCLR + CSD, 10 steps, 512 digits) vs the EM sweep on the same images",
        candidate=tue_sweep,
        baseline=em_sweep,
        setup=_setup,
        repeats=3,
        warmup=1,
        goal="report: TUE's per-image cost relative to EM (images/s = 512 / candidate_s)",
        max_ratio=None,
    ),
    description="TUE sweep vs EM sweep",
)
