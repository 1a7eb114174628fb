"""Cost of one gradient-inversion iteration against the bare work it cannot avoid.

Candidate: :class:`privlab.attack.inversion.GradientInversion` with the Inverting-Gradients settings (cosine
objective over all layers, TV 1e-4, signed Adam, box constraint, LR schedule, progress and objective recording) for
``ITERS`` iterations on one 3×32×32 image (CIFAR size) with a known label, 10 classes, model at initialisation.

Baseline: the same number of bare steps written by hand — forward, gradient w.r.t. the parameters with
``create_graph=True``, the cosine objective, and the gradient of that objective w.r.t. the image (forward +
double backward) — with nothing else (no TV, no optimiser step, no bookkeeping).

Goal (issue 5): overhead ≤ 1.3× for LeNet (DLG's sigmoid net), ConvNet-64 and ResNet20-4.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from privlab.attack import Observation, build_attack
from privlab.attack.inversion import ThreatModel, client_update
from privlab.bench import BENCHMARKS, Benchmark
from privlab.models import build_model

SHAPE = (3, 32, 32)
MODELS = {"lenet_dlg": 40, "convnet64": 6, "resnet20_4": 3}  # model → iterations per timed call


def _case(name: str) -> dict[str, Any]:
    torch.manual_seed(0)
    model = build_model(name, 10, SHAPE, mean=[0.5] * 3, std=[0.25] * 3).eval()
    x = torch.rand(1, *SHAPE, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([3])
    target = client_update(model, x, y, ThreatModel())
    return {"model": model, "x": x, "y": y, "target": target}


def _make(name: str) -> Benchmark:
    iters = MODELS[name]
    case: dict[str, Any] = {}

    def setup() -> None:
        case.update(_case(name))

    def candidate() -> None:
        meta = {"batch_size": 1, "image_shape": SHAPE}
        obs = Observation(model=case["model"], gradients=case["target"], labels=case["y"], meta=meta)
        attack = build_attack("inverting-gradients", {"iterations": iters})
        attack.run(obs, generator=torch.Generator().manual_seed(0))

    def baseline() -> None:
        model, target, y = case["model"], case["target"], case["y"]
        params = [p for p in model.parameters() if p.requires_grad]
        z = torch.randn(1, *SHAPE, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
        tn = torch.sqrt(sum(t.pow(2).sum() for t in target))
        for _ in range(iters):
            loss = F.cross_entropy(model(z), y)
            g = torch.autograd.grad(loss, params, create_graph=True)
            dot = sum((a * b).sum() for a, b in zip(g, target, strict=True))
            gn = torch.sqrt(sum(a.pow(2).sum() for a in g))
            obj = 1 - dot / (gn * tn)
            (gz,) = torch.autograd.grad(obj, [z])
            with torch.no_grad():
                z -= 0.1 * gz.sign()

    return Benchmark(
        name=f"inversion_iteration_{name}",
        description=(
            f"Inverting-Gradients engine vs bare forward + double backward: {name}, one 3×32×32 image, "
            f"{iters} iterations per call"
        ),
        candidate=candidate,
        baseline=baseline,
        setup=setup,
        repeats=5,
        warmup=1,
        goal="engine overhead ≤ 1.3× the bare forward + double-backward",
        max_ratio=1.3,
    )


for _name in MODELS:
    BENCHMARKS.add(f"inversion_iteration_{_name}", _make(_name))
