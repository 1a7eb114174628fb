"""Membership-inference benchmarks.

- ``mia_loss_scoring_10k``: the LOSS attack through privlab (observation, query model, registry) on 10 000 records
  of synthetic 10-class logits, vs ``F.cross_entropy`` on the same logits. Goal: ≤ 50 ms per 10 000 records.
- ``mia_lira_scoring_10k``: LiRA online with 8 references (no augmented views) through privlab on 10 000 records,
  vs the same Gaussian likelihood ratio written directly in NumPy/SciPy on precomputed logits. Goal: ≤ 1 s per
  10 000 records.
- ``mia_reference_training_workers``: the ``mia`` pipeline's reference training (4 LeNet-5 references, 200 digits
  each, 3 epochs, fresh cache every call) with ``workers: 2`` (a spawn process pool, one torch thread each) vs
  ``workers: 1`` (in-process, the default torch threads). Report only: on a machine with 2 busy cores the pool pays
  for process start-up and data loading per worker; the ratio is the number to look at.

The synthetic logits are a lookup table: the "images" are record indices and the "model" returns that record's row,
so the timing is the attack's bookkeeping and statistics, not a network's forward pass.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import logsumexp
from scipy.stats import norm

from privlab.attack.mia import MIAObservation, QueryModel, run_mia_attack
from privlab.bench import BENCHMARKS, Benchmark

N, K, R = 10_000, 10, 8
_DATA: dict[str, torch.Tensor] = {}


def _setup() -> None:
    if "x" in _DATA:
        return
    g = torch.Generator().manual_seed(0)
    _DATA["x"] = torch.arange(N, dtype=torch.float32).view(N, 1, 1, 1)
    _DATA["y"] = torch.randint(0, K, (N,), generator=g)
    _DATA["target"] = torch.randn(N, K, generator=g) * 3
    _DATA["refs"] = torch.randn(R, N, K, generator=g) * 3
    _DATA["in"] = torch.rand(R, N, generator=g) < 0.5


def _lookup(table: torch.Tensor) -> QueryModel:
    return QueryModel(lambda x: table[x.view(-1).long()])


def _obs() -> MIAObservation:
    return MIAObservation(
        data=_DATA["x"],
        labels=_DATA["y"],
        target=_lookup(_DATA["target"]),
        references=[_lookup(_DATA["refs"][r]) for r in range(R)],
        reference_in=_DATA["in"],
    )


def privlab_loss() -> torch.Tensor:
    """privlab's LOSS attack on the 10 000 records (fresh query models: no memoised logits)."""
    return run_mia_attack("loss", _obs())


def torch_loss() -> torch.Tensor:
    """Minus the cross-entropy of the target's logits, directly."""
    return -F.cross_entropy(_DATA["target"], _DATA["y"], reduction="none")


def privlab_lira() -> torch.Tensor:
    """privlab's LiRA online with 8 references, no augmented views."""
    return run_mia_attack("lira-online", _obs(), shifts=0)


def _phi(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Logit-scaled confidence log p_y − log(1 − p_y), computed stably."""
    lp = logits - logsumexp(logits, axis=-1, keepdims=True)
    ly = np.take_along_axis(lp, y[..., None], axis=-1)[..., 0]
    others = np.where(np.eye(K, dtype=bool)[y], -np.inf, lp)
    return ly - logsumexp(others, axis=-1)


def numpy_lira() -> np.ndarray:
    """The same likelihood ratio in NumPy/SciPy: per-candidate IN/OUT means, pooled standard deviations."""
    y = _DATA["y"].numpy()
    tgt = _phi(_DATA["target"].numpy(), y)
    ref = _phi(_DATA["refs"].numpy(), np.broadcast_to(y, (R, N)))
    m_in = _DATA["in"].numpy()
    out = []
    for mask in (m_in, ~m_in):
        cnt = mask.sum(0)
        mu = np.where(cnt > 0, (ref * mask).sum(0) / np.maximum(cnt, 1), (ref * mask).sum() / mask.sum())
        sd = max(float(np.sqrt((((ref - mu) ** 2) * mask).sum() / mask.sum())), 1e-4)
        out.append(norm.logpdf(tgt, mu, sd))
    return out[0] - out[1]


if "mia_loss_scoring_10k" not in BENCHMARKS:
    BENCHMARKS.add(
        "mia_loss_scoring_10k",
        Benchmark(
            name="mia_loss_scoring_10k",
            description="LOSS attack on 10 000 records of synthetic 10-class logits: privlab vs F.cross_entropy",
            candidate=privlab_loss,
            baseline=torch_loss,
            setup=_setup,
            repeats=7,
            warmup=1,
            goal="≤ 50 ms per 10 000 records",
            max_candidate_s=0.05,
        ),
        description="LOSS attack scoring cost per 10 000 records",
    )


def _train_refs(workers: int) -> None:
    from privlab.context import Progress, RunContext
    from privlab.pipelines.mia import MIASpec, load_pool, train_references
    from privlab.store import Store

    spec = MIASpec.model_validate(
        {
            "dataset": {"name": "digits", "train_limit": 400},
            "references": 4,
            "workers": workers,
            "train": {"epochs": 3, "batch_size": 32},
        }
    )
    with tempfile.TemporaryDirectory() as d, Store(Path(d)) as store:
        ctx = RunContext(
            run_id="bench", out=Path(d), run_dir=Path(d) / "bench", store=store, progress=Progress(quiet=True)
        )
        pool, _ = load_pool(spec.dataset, None, False, seed=0)
        models, _ = train_references(spec, ctx, pool)
        assert len(models) == 4


if "mia_reference_training_workers" not in BENCHMARKS:
    BENCHMARKS.add(
        "mia_reference_training_workers",
        Benchmark(
            name="mia_reference_training_workers",
            description="4 LeNet-5 references (200 digits, 3 epochs, fresh cache): 2 worker processes vs 1 process",
            candidate=lambda: _train_refs(2),
            baseline=lambda: _train_refs(1),
            repeats=1,
            warmup=0,
            goal="report only: 2 workers vs one process on this machine",
        ),
        description="reference-model training throughput, 2 workers vs one process",
    )

BENCHMARK = Benchmark(
    name="mia_lira_scoring_10k",
    description="LiRA online, 8 references, 10 000 records of synthetic logits: privlab vs NumPy/SciPy",
    candidate=privlab_lira,
    baseline=numpy_lira,
    setup=_setup,
    repeats=5,
    warmup=1,
    goal="≤ 1 s per 10 000 records",
    max_candidate_s=1.0,
)
