"""Cost of training the Shredder noise bank: restarts trained as a batch dimension vs one at a time.

Both sides train the same 16 restarts of v2 noise (combined ``a ⊙ w + n``, Laplace(0, 20), Xavier ``w``, CE +
0.01 · contrastive, Adam lr 1e-3, batch 256) for 3 epochs each on cached activations of realistic shape: 10 000 ×
120×1×1 (8 000 training rows, 2 000 for the per-epoch acceptance check), through the cloud of a LeNet-5 cut at
``relu5`` (120 → 84 → 2, random weights, seed 0). The acceptance threshold is 1.0, so every restart runs all its
epochs and both sides do exactly the same work. The candidate is :func:`train_noise_bank` with
``parallel_restarts = 16``; the baseline is the same function with ``parallel_restarts = 1`` (the one-at-a-time loop;
the results are the same to float rounding). Restarts per minute = 16 · 60 / seconds.
"""

from __future__ import annotations

import torch

from privlab.bench import Benchmark
from privlab.models import build_model
from privlab.models.split import freeze, split_model
from privlab.protect.shredder import BankConfig, LossConfig, NoiseConfig, train_noise_bank

RESTARTS = 16
EPOCHS = 3
ROWS = 10_000
_STATE: dict[str, object] = {}


def _setup() -> None:
    torch.manual_seed(0)
    model = build_model("lenet5", 2, (1, 32, 32)).eval()
    _, cloud = split_model(model, "relu5")
    freeze(cloud)
    g = torch.Generator().manual_seed(0)
    acts = torch.relu(torch.randn(ROWS, 120, 1, 1, generator=g))  # ReLU activations, RMS ≈ 0.7 like LeNet's relu5
    labels = torch.randint(0, 2, (ROWS,), generator=g)
    _STATE.update(cloud=cloud, acts=acts, labels=labels)


def _train(parallel: int) -> int:
    cfg = BankConfig(
        size=RESTARTS, max_restarts=RESTARTS, max_epochs=EPOCHS, min_epochs=1, accuracy_threshold=1.0,
        val_fraction=0.2, batch_size=256, lr=1e-3, parallel_restarts=parallel,
    )  # fmt: skip
    bank = train_noise_bank(
        _STATE["cloud"], _STATE["acts"], _STATE["labels"],  # type: ignore[arg-type]
        NoiseConfig(mode="combined", laplace_scale=20.0), LossConfig(contrastive_weight=0.01), cfg, seed=0,
    )  # fmt: skip
    return len(bank.records)


def candidate() -> int:
    """16 restarts × 3 epochs trained as one batch of 16."""
    return _train(RESTARTS)


def baseline() -> int:
    """The same 16 restarts × 3 epochs, one at a time."""
    return _train(1)


BENCHMARK = Benchmark(
    name="shredder_bank_restarts",
    description="Shredder noise bank: 16 restarts × 3 epochs on 10 000 × 120 cached activations (LeNet-5 cloud), "
    "trained 16 at once vs one at a time",
    candidate=candidate,
    baseline=baseline,
    setup=_setup,
    repeats=3,
    warmup=1,
    goal="batched restarts ≥ 2× the restarts per minute of the one-at-a-time loop (ratio ≤ 0.5)",
    max_ratio=0.5,
)
