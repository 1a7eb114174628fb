"""Cost of one gradient-inversion iteration against the bare work it cannot avoid.

Candidate: :class:`privlab.attack.inversion.GradientInversion` with the Inverting-Gradients settings (cosine
objective over all layers, TV 1e-4, signed Adam, box constraint, LR schedule, progress and objective recording) for
``ITERS`` iterations on one 3×32×32 image (CIFAR size) with a known label, 10 classes, model at initialisation.

Baseline: the same number of bare steps written by hand — forward, gradient w.r.t. the parameters with
``create_graph=True``, the cosine objective, and the gradient of that objective w.r.t. the image (forward +
double backward) — with nothing else (no TV, no optimiser step, no bookkeeping).

Goal (issue 5): overhead ≤ 1.3× for LeNet (DLG's sigmoid net), ConvNet-64 and ResNet20-4; issue 21 adds resnet20 (the
CIFAR-10 victim of the inversion `cifar10-cpu` preset).

``inversion_restarts_batched`` (issue 21): ``RESTARTS`` restarts of DLG (L-BFGS, joint soft labels, the default
attack of ``privlab invert``) on ``lenet_dlg`` at 3×32×32 with its DLG initialisation, ``DLG_STEPS`` L-BFGS steps
(20 evaluations each): candidate = the restarts as one batch (``batch_restarts: true``, torch.func), baseline = the
same restarts one after another (``batch_restarts: false``), same seeds, same results. Goal: ≤ 0.5 (each restart at
least twice as cheap batched). ``inversion_restarts_batched_4`` reports the same for 4 restarts (the default count),
``inversion_restart_single`` one restart alone against the batch of 4 (what the default costs over no restarts).
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
MODELS = {"lenet_dlg": 40, "convnet64": 6, "resnet20_4": 3, "resnet20": 10}  # model → iterations per timed call


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


DLG_STEPS = 2
RESTARTS = 8


def _restarts_case() -> dict[str, Any]:
    from privlab.models.lenet import dlg_uniform_init_

    torch.manual_seed(0)
    model = dlg_uniform_init_(build_model("lenet_dlg", 10, SHAPE, mean=[0.5] * 3, std=[0.25] * 3)).eval()
    x = torch.rand(1, *SHAPE, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([3])
    obs = Observation(
        model=model, gradients=client_update(model, x, y, ThreatModel()), meta={"batch_size": 1, "image_shape": SHAPE}
    )
    return {"obs": obs}


def _make_restarts(restarts: int, *, single_baseline: bool = False) -> Benchmark:
    case: dict[str, Any] = {}

    def setup() -> None:
        case.update(_restarts_case())

    def run(count: int, batched: bool) -> None:
        attack = build_attack("dlg", {"iterations": DLG_STEPS, "restarts": count, "batch_restarts": batched})
        out = attack.run(case["obs"], generator=torch.Generator().manual_seed(0))
        assert out.stats["restart_mode"] == (
            "batched" if batched and count > 1 else ("single" if count == 1 else "looped")
        )

    if single_baseline:
        name = "inversion_restart_single"
        description = (
            f"DLG on lenet_dlg, one 3×32×32 image, {DLG_STEPS} L-BFGS steps: {restarts} restarts as one batch "
            "(candidate) vs a single restart (baseline): what batched restarts cost over none"
        )
        goal, max_ratio = "report only: the default restart count's cost in single restarts", None
        baseline = lambda: run(1, False)  # noqa: E731
    else:
        name = "inversion_restarts_batched" if restarts == RESTARTS else f"inversion_restarts_batched_{restarts}"
        description = (
            f"DLG on lenet_dlg, one 3×32×32 image, {DLG_STEPS} L-BFGS steps: {restarts} restarts as one batch "
            "(torch.func vmap) vs the same restarts in a loop"
        )
        goal = "batched ≤ 0.5× the loop (each restart ≥ 2× cheaper)" if restarts == RESTARTS else "report only"
        max_ratio = 0.5 if restarts == RESTARTS else None
        baseline = lambda: run(restarts, False)  # noqa: E731

    return Benchmark(
        name=name,
        description=description,
        candidate=lambda: run(restarts, True),
        baseline=baseline,
        setup=setup,
        repeats=5,
        warmup=1,
        goal=goal,
        max_ratio=max_ratio,
    )


BENCHMARKS.add("inversion_restarts_batched", _make_restarts(RESTARTS))
BENCHMARKS.add("inversion_restarts_batched_4", _make_restarts(4))
BENCHMARKS.add("inversion_restart_single", _make_restarts(4, single_baseline=True))
