"""Restarts of the gradient-inversion engine: selection by final matching loss, batched (torch.func) == looped,
fallback for batch-coupled models, the vectorised L-BFGS, and batch label counts on a known gradient."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from privlab.attack import Observation
from privlab.attack.inversion import GradientInversion, ThreatModel, client_update, make_attack
from privlab.attack.inversion.batched import BatchedLBFGS
from privlab.attack.inversion.labels import batch_labels
from privlab.models import build_model
from privlab.models.lenet import dlg_uniform_init_


def _tiny(seed: int = 0, dtype: torch.dtype = torch.float64) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.Sigmoid(), nn.Flatten(), nn.Linear(3 * 4 * 4, 5)
    ).to(dtype).eval()  # fmt: skip


def _observation(
    model: nn.Module, batch: int = 2, *, known: bool = True, seed: int = 0
) -> tuple[Observation, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    dtype = next(model.parameters()).dtype
    x = torch.rand(batch, 1, 4, 4, generator=g, dtype=dtype)
    y = torch.arange(batch) % 5
    obs = Observation(
        model=model, gradients=client_update(model, x, y, ThreatModel()), labels=y if known else None,
        meta={"batch_size": batch, "image_shape": (1, 4, 4)},
    )  # fmt: skip
    return obs, x


class _TruthAt(GradientInversion):
    """Restart ``win`` starts at the true images (its matching loss is ≈ 0 throughout); the others start random."""

    def __init__(self, truth: torch.Tensor, win: int, **cfg: object) -> None:
        super().__init__(cfg)
        self.truth, self.win, self.calls = truth, win, 0

    def _init(self, shape, mean, std, g):  # type: ignore[no-untyped-def]
        z = super()._init(shape, mean, std, g)
        self.calls += 1
        return self.truth.clone() if self.calls - 1 == self.win else z


@pytest.mark.parametrize("batched", [True, False])
def test_restart_selection_picks_the_lowest_final_matching_loss(batched: bool) -> None:
    model = _tiny()
    obs, x = _observation(model)
    cfg = {"objective": "l2", "optimizer": "adam", "lr": 1e-3, "iterations": 3, "signed": False, "boxed": False,
           "lr_decay": False, "tv": 0.0, "space": "pixel", "restarts": 4, "batch_restarts": batched}  # fmt: skip
    out = _TruthAt(x, 2, **cfg).run(obs, generator=torch.Generator().manual_seed(0))
    losses = out.stats["restart_losses"]
    assert len(losses) == 4 and out.stats["restarts"] == 4
    assert out.stats["restart_mode"] == ("batched" if batched else "looped")
    assert out.stats["restart_best"] == out.stats["restart"] == 2
    assert losses[2] < 1e-6 < min(losses[i] for i in (0, 1, 3))  # the winner is decided by the loss it reports
    torch.testing.assert_close(out.data, x, atol=1e-2, rtol=0)


def test_selection_uses_the_matching_loss_not_the_distance_to_the_truth() -> None:
    model = _tiny()
    obs, x = _observation(model)
    cfg = {"objective": "l2", "optimizer": "sgd", "lr": 1e-4, "iterations": 1, "signed": False, "boxed": False,
           "lr_decay": False, "tv": 0.0, "space": "pixel", "restarts": 3}  # fmt: skip
    out = make_attack("gradient-inversion", **cfg).run(obs, generator=torch.Generator().manual_seed(5))
    losses = out.stats["restart_losses"]
    assert out.stats["restart_best"] == min(range(3), key=losses.__getitem__)


@pytest.mark.parametrize(
    ("preset", "overrides"),
    [
        ("inverting-gradients", {"iterations": 25}),  # signed Adam, TV, box, LR decay, known labels
        ("dlg", {"iterations": 4}),  # L-BFGS (vectorised per restart), joint soft labels
        ("gradient-inversion", {"iterations": 20, "optimizer": "sgd", "signed": False, "lr": 0.01, "labels": "known"}),
    ],
)
def test_batched_restarts_equal_looped_restarts(preset: str, overrides: dict[str, object]) -> None:
    model = _tiny(1)
    obs, _ = _observation(model, known=preset != "dlg", seed=1)
    outs = {}
    for batched in (True, False):
        attack = make_attack(preset, restarts=3, batch_restarts=batched, **overrides)
        outs[batched] = attack.run(obs, generator=torch.Generator().manual_seed(0))
    b, lo = outs[True], outs[False]
    assert (b.stats["restart_mode"], lo.stats["restart_mode"]) == ("batched", "looped")
    assert b.stats["restart_best"] == lo.stats["restart_best"]
    torch.testing.assert_close(
        torch.tensor(b.stats["restart_losses"]), torch.tensor(lo.stats["restart_losses"]), rtol=1e-6, atol=1e-12
    )
    torch.testing.assert_close(b.data, lo.data, rtol=0, atol=1e-8)
    assert b.labels.tolist() == lo.labels.tolist()
    hb, hl = b.stats["history"], lo.stats["history"]
    assert [i for i, _ in hb] == [i for i, _ in hl]


def test_batch_coupled_models_and_line_search_fall_back_to_the_loop() -> None:
    torch.manual_seed(0)
    bn = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2, track_running_stats=False), nn.Flatten(), nn.Linear(32, 5)
    ).double()  # fmt: skip
    obs, _ = _observation(bn)
    out = make_attack("inverting-gradients", iterations=2, restarts=2).run(obs)
    assert out.stats["restart_mode"] == "looped"
    assert "batch-norm" in out.stats["restart_mode_reason"]
    obs, _ = _observation(_tiny())
    out = make_attack("dlg", iterations=1, restarts=2, line_search=True).run(obs)
    assert out.stats["restart_mode"] == "looped" and "line search" in out.stats["restart_mode_reason"]
    out = make_attack("dlg", iterations=1, restarts=1).run(obs)
    assert out.stats["restart_mode"] == "single" and out.stats["restart_losses"] == [out.stats["objective"]]


def test_lenet_dlg_at_32x32_batches() -> None:
    torch.manual_seed(0)
    model = dlg_uniform_init_(build_model("lenet_dlg", 10, (3, 32, 32), mean=[0.5] * 3, std=[0.25] * 3)).eval()
    x, y = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)), torch.tensor([3])
    obs = Observation(model=model, gradients=client_update(model, x, y, ThreatModel()),
                      meta={"batch_size": 1, "image_shape": (3, 32, 32)})  # fmt: skip
    out = make_attack("dlg", iterations=1, restarts=4).run(obs)
    assert out.stats["restart_mode"] == "batched" and out.stats["restart_mode_reason"] is None
    assert len(out.stats["restart_losses"]) == 4


def test_batched_lbfgs_equals_torch_lbfgs_per_restart() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 4, 4, generator=g, dtype=torch.float64)
    spd = a @ a.transpose(1, 2) + 0.5 * torch.eye(4, dtype=torch.float64)  # one quadratic per restart
    b = torch.randn(3, 4, generator=g, dtype=torch.float64)
    x0 = torch.randn(3, 4, generator=g, dtype=torch.float64)

    def f(x: torch.Tensor, r: int | slice) -> torch.Tensor:  # 0.5 xᵀAx − bᵀx + 0.1 Σ x⁴ (not quadratic)
        return 0.5 * torch.einsum("...i,...ij,...j->...", x, spd[r], x) - (b[r] * x).sum(-1) + 0.1 * x.pow(4).sum(-1)

    xb = x0.clone().requires_grad_(True)
    opt = BatchedLBFGS([xb], lr=0.5, max_iter=5)

    def closure() -> torch.Tensor:
        v = f(xb, slice(None))
        xb.grad = torch.autograd.grad(v.sum(), [xb])[0]
        return v.detach()

    for _ in range(4):
        opt.step(closure)
    for r in range(3):
        xr = x0[r].clone().requires_grad_(True)
        ref = torch.optim.LBFGS([xr], lr=0.5, max_iter=5)

        def closure_r(xr: torch.Tensor = xr, r: int = r, ref: torch.optim.Optimizer = ref) -> torch.Tensor:
            ref.zero_grad()
            v = f(xr, r)
            v.backward()
            return v

        for _ in range(4):
            ref.step(closure_r)
        torch.testing.assert_close(xb[r].detach(), xr.detach(), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("labels", [[1, 1, 6, 6], [2, 2, 2, 5, 5, 9, 0, 0], [4, 4, 4, 4]])
def test_batch_label_counts_on_a_known_gradient(labels: list[int]) -> None:
    torch.manual_seed(0)
    model = dlg_uniform_init_(build_model("lenet_dlg", 10, (3, 32, 32), mean=[0.5] * 3, std=[0.25] * 3)).eval()
    y = torch.tensor(labels)
    x = torch.rand(len(y), 3, 32, 32, generator=torch.Generator().manual_seed(1))
    g = client_update(model, x, y, ThreatModel())
    with torch.no_grad():  # the attacker's estimate of the batch's mean prediction: the model on dummy images
        probs = model(torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(0))).softmax(1).mean(0)
    assert batch_labels(g[-1], g[-2], len(y), mean_probs=probs).tolist() == sorted(labels)
    # the sign rule alone finds which classes are present, not how often
    present = set(torch.nonzero(g[-1] < 0).flatten().tolist())
    assert present == set(labels)


@pytest.mark.parametrize("batched", [True, False])
def test_stop_loss_ends_the_work_once_a_restart_is_good_enough(batched: bool) -> None:
    """Restart 0 starts at the truth (loss ≈ 0): with stop_loss the batch stops at the first check (history of one
    point) and a loop skips the other restarts; without it every restart runs all iterations."""
    model = _tiny()
    obs, x = _observation(model)
    cfg = {"objective": "l2", "optimizer": "adam", "lr": 1e-3, "iterations": 30, "signed": False, "boxed": False,
           "lr_decay": False, "tv": 0.0, "space": "pixel", "restarts": 3, "batch_restarts": batched,
           "record_every": 5}  # fmt: skip
    full = _TruthAt(x, 0, **cfg).run(obs, generator=torch.Generator().manual_seed(0))
    assert full.stats["restarts_run"] == 3 and full.stats["history"][-1][0] == 29
    early = _TruthAt(x, 0, stop_loss=1e-6, **cfg).run(obs, generator=torch.Generator().manual_seed(0))
    assert early.stats["restart_best"] == 0 and early.stats["restart_losses"][0] < 1e-6
    assert early.stats["history"] == [(0, pytest.approx(early.stats["history"][0][1]))]  # stopped at iteration 0
    assert early.stats["restarts_run"] == (3 if batched else 1)
    torch.testing.assert_close(early.data, x, atol=1e-2, rtol=0)
