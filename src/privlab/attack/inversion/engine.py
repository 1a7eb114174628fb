"""The gradient-inversion engine: optimise dummy images (and labels) until their gradient matches the observed one.

One loop serves DLG, iDLG and Inverting Gradients; the presets differ only in :class:`InversionConfig` values:

- **objective** (:mod:`.objectives`): ``l2`` / ``l1`` / ``max`` / ``cosine`` / ``cosine-local``, over a layer
  subset (``layers``) with per-layer weights (``layer_weights``), plus ``tv ×`` total variation
  (:mod:`.regularizers`);
- **optimiser**: Adam, SGD (Nesterov) or L-BFGS, ``iterations`` steps, with the learning rate multiplied by 0.1 at
  3/8, 5/8 and 7/8 of the iterations (``lr_decay``); **signed** gradients (the sign of ``∂R/∂x`` is the step
  direction); **box** constraint (images kept in [0, 1]);
- **space**: with ``normalized`` (default) the engine optimises ``z = (x − mean)/std`` using the model's own
  ``normalize`` layer statistics, as the original implementations do, so learning rates, TV weights and the box
  ``[(0 − mean)/std, (1 − mean)/std]`` mean what they meant there; ``pixel`` optimises ``x`` in [0, 1] directly;
- **init**: ``randn`` (in the optimisation space), ``rand`` (uniform pixels) or ``zeros``;
- **restarts**, the best kept by the final gradient-matching loss (``scoring: loss``) or the lowest TV; with
  ``batch_restarts`` (default) they are optimised as one batch (:mod:`.batched`) unless the model couples a batch;
  ``stats`` report every restart's final loss (``restart_losses``), the winner (``restart_best``) and the mode;
  ``stop_loss`` ends the work early once a restart's matching loss is that low (an attacker-side criterion);
- **labels**: ``known`` (from the observation), ``joint`` (DLG: soft labels optimised with the images),
  ``idlg`` (analytic, one image) or ``batch`` (from the last layer's gradient, repeats allowed), see :mod:`.labels`.

The attacker knows the model and the threat model (``fedsgd`` gradient or ``fedavg`` update, loss scale), never the
client's data; the observation's ``meta`` must give ``batch_size`` and ``image_shape`` ``(C, H, W)``.

Example (a 2×2 image through a linear model: DLG recovers it):
    >>> import torch
    >>> from torch import nn
    >>> from privlab.attack.base import Observation
    >>> from privlab.protect.gradient.client import ThreatModel, client_update
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.Sigmoid(), nn.Linear(3, 3))
    >>> x, y = torch.rand(1, 1, 2, 2), torch.tensor([2])
    >>> obs = Observation(gradients=client_update(model, x, y, ThreatModel()), model=model, labels=y,
    ...                   meta={"batch_size": 1, "image_shape": (1, 2, 2)})
    >>> cfg = InversionConfig(objective="l2", optimizer="lbfgs", lr=0.1, iterations=30, signed=False,
    ...                       boxed=False, lr_decay=False, tv=0)
    >>> out = GradientInversion(cfg).run(obs, generator=torch.Generator().manual_seed(0))
    >>> bool((out.data - x).abs().max() < 1e-2)
    True
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Literal

import torch
from pydantic import Field, model_validator
from torch import nn
from torch.func import vmap

from privlab.attack.base import Attack, AttackOutput, Observation
from privlab.attack.inversion.batched import BatchedLBFGS, batching_blocker
from privlab.attack.inversion.labels import batch_labels, idlg_label
from privlab.attack.inversion.objectives import OBJECTIVES, layer_weights, select_layers
from privlab.attack.inversion.regularizers import total_variation
from privlab.config import Spec
from privlab.context import Progress
from privlab.errors import ConfigError
from privlab.protect.gradient.client import ThreatModel, client_update, functional_update, trainable

__all__ = ["GradientInversion", "InversionConfig", "last_linear_indices", "model_normalization"]

Callback = Callable[[int, int, float], None]  # (restart, iteration, objective)


class InversionConfig(Spec):
    """Settings of the gradient-inversion engine (defaults: Inverting Gradients as in its paper)."""

    objective: str = Field(default="cosine", description="l2 | l1 | max | cosine | cosine-local")
    layers: str | list[int] = Field(default="all", description="'all', 'first:N', 'last:N', 'top:N' or indices")
    layer_weights: Literal["equal", "linear", "exp"] = Field(default="equal", description="per-layer weights")
    tv: float = Field(default=1e-4, ge=0, description="weight of the total-variation prior")
    optimizer: Literal["adam", "sgd", "lbfgs"] = Field(default="adam", description="optimiser of the dummy data")
    lr: float = Field(default=0.1, gt=0, description="learning rate")
    iterations: int = Field(default=4800, ge=1, le=1_000_000, description="optimisation steps per restart")
    lbfgs_max_iter: int = Field(default=20, ge=1, description="L-BFGS: function evaluations per step")
    line_search: bool = Field(default=False, description="L-BFGS: strong-Wolfe line search (steadier than DLG's)")
    signed: bool = Field(default=True, description="step along the sign of the gradient (Adam / SGD)")
    boxed: bool = Field(default=True, description="keep the images in [0, 1] after every step")
    lr_decay: bool = Field(default=True, description="LR × 0.1 at 3/8, 5/8, 7/8 of the iterations")
    restarts: int = Field(default=1, ge=1, le=1000, description="independent trials; the best one is kept")
    batch_restarts: bool = Field(
        default=True, description="optimise the restarts as one batch (torch.func) where the model allows it"
    )
    scoring: Literal["loss", "tv"] = Field(default="loss", description="how the best restart is chosen")
    stop_loss: float | None = Field(
        default=None,
        gt=0,
        description="stop early once a restart's matching loss (objective units, checked every record_every "
        "iterations) is ≤ this: the batch of restarts stops, a loop skips the restarts left (None: never)",
    )
    init: Literal["randn", "rand", "zeros"] = Field(default="randn", description="initial dummy images")
    labels: Literal["known", "joint", "idlg", "batch"] = Field(default="known", description="label strategy")
    space: Literal["normalized", "pixel"] = Field(default="normalized", description="optimisation coordinates")
    record_every: int = Field(default=10, ge=1, description="keep the objective every N iterations")

    @model_validator(mode="after")
    def _check(self) -> InversionConfig:
        OBJECTIVES.entry(self.objective)  # unknown objective → error listing the registered ones
        if self.optimizer == "lbfgs" and self.signed:
            raise ConfigError("signed gradients do not apply to L-BFGS: set signed: false or use optimizer adam/sgd")
        return self


def _end_of_step(
    sched: torch.optim.lr_scheduler.LRScheduler | None, z: torch.Tensor, lo: Any, hi: Any, *, boxed: bool
) -> None:
    """After an optimiser step: advance the learning-rate schedule, and clamp ``z`` into ``[lo, hi]`` (the box
    constraint, in the space ``z`` lives in) when ``boxed``."""
    if sched is not None:
        sched.step()
    if boxed:
        with torch.no_grad():
            z.copy_(torch.maximum(torch.minimum(z, hi), lo))


def _reached(stop_loss: float | None, losses: list[float]) -> bool:
    """Whether the early-stop rule holds: ``stop_loss`` is set and some finite loss in ``losses`` is ≤ it."""
    return stop_loss is not None and any(math.isfinite(v) and v <= stop_loss for v in losses)


def _lr_schedule(opt: torch.optim.Optimizer, cfg: Any) -> torch.optim.lr_scheduler.MultiStepLR | None:
    """Inverting Gradients' step decay (×0.1 at 3/8, 5/8 and 7/8 of ``cfg.iterations``), or None without
    ``cfg.lr_decay``."""
    if not cfg.lr_decay:
        return None
    milestones = [int(cfg.iterations * f) for f in (3 / 8, 5 / 8, 7 / 8)]
    return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.1)


def model_normalization(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(mean, std)`` (each ``1×C×1×1``) of the model's ``normalize`` layer, or None if it has none."""
    from privlab.models import Normalize

    for module in model.modules():
        if isinstance(module, Normalize):
            return module.mean.detach(), module.std.detach()
    return None


def last_linear_indices(model: nn.Module) -> tuple[int | None, int | None]:
    """Positions of the last ``nn.Linear``'s weight and bias among the model's trainable parameters."""
    names = list(trainable(model))
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = name
    if last is None:
        return None, None

    def pos(suffix: str) -> int | None:
        key = f"{last}.{suffix}" if last else suffix
        return names.index(key) if key in names else None

    return pos("weight"), pos("bias")


def _set_grads(variables: list[torch.Tensor], loss: torch.Tensor) -> None:
    """Gradients of ``loss`` w.r.t. the dummy variables only (not the model's parameters: half the work)."""
    for v, g in zip(variables, torch.autograd.grad(loss, variables), strict=True):
        v.grad = g


class GradientInversion(Attack):
    """Reconstruct a client's images from its shared gradient (or FedAvg update).

    Args:
        config: engine settings (an :class:`InversionConfig` or a mapping of its fields).
        callback: called as ``callback(restart, iteration, objective)`` every ``record_every`` iterations.
    """

    config_class = InversionConfig

    def __init__(self, config: InversionConfig | dict[str, Any] | None = None, *, callback: Callback | None = None):
        super().__init__(config)
        self.callback = callback

    @property
    def requires(self) -> tuple[str, ...]:  # type: ignore[override]
        """The server knows the model and the shared gradient; labels only where the config says they are known."""
        return ("model", "gradients", "labels") if self.config.labels == "known" else ("model", "gradients")

    # -- setup -------------------------------------------------------------------------------------------------
    def _labels(
        self, model: nn.Module, obs: Observation, batch: int, threat: ThreatModel
    ) -> tuple[torch.Tensor | None, str]:
        cfg = self.config
        if cfg.labels == "known":
            if obs.labels is None:
                raise ConfigError("labels: known, but the observation reveals no labels; use joint, idlg or batch")
            return obs.labels, "known"
        if cfg.labels == "joint":
            return None, "joint"
        w_i, b_i = last_linear_indices(model)
        if w_i is None:
            raise ConfigError(f"labels: {cfg.labels} needs a model that ends with a linear layer")
        grads = obs.gradients or []
        wg = grads[w_i]
        bg = grads[b_i] if b_i is not None else None
        if cfg.labels == "idlg":
            if batch != 1:
                raise ConfigError(f"labels: idlg recovers the label of ONE image; the batch has {batch}: use batch")
            return torch.tensor([idlg_label(bg, wg)]), "idlg"
        # the model's mean prediction on dummy images estimates the batch's mean softmax output
        shape = (64, *(int(v) for v in obs.meta["image_shape"]))
        with torch.no_grad():
            probs = model(torch.rand(shape, generator=torch.Generator().manual_seed(0)).to(wg.device)).softmax(1)
        return batch_labels(bg, wg, batch, loss_scale=threat.loss_scale, mean_probs=probs.mean(0)), "batch"

    def _init(self, shape: tuple[int, ...], mean: torch.Tensor, std: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if self.config.init == "randn":
            z = torch.randn(shape, generator=g)
        elif self.config.init == "rand":
            z = (torch.rand(shape, generator=g) - mean.cpu()) / std.cpu()
        else:
            z = torch.zeros(shape)
        return z

    # -- main loop ---------------------------------------------------------------------------------------------
    def run(
        self,
        observation: Observation,
        *,
        seed: int = 0,
        generator: torch.Generator | None = None,
        device: Any = None,
        progress: Progress | None = None,
    ) -> AttackOutput:
        """Reconstruct the batch behind ``observation.gradients``.

        Args:
            observation: ``model`` (the global model the client differentiated; eval mode, not modified),
                ``gradients`` (one tensor per trainable parameter) and ``meta`` with ``batch_size``, ``image_shape``
                and optionally ``threat`` (a :class:`ThreatModel` dict); ``labels`` if known.
            seed: seeds the initialisations when no ``generator`` is given.
            generator: seeds the initialisations (CPU generator).
            device: unused (the attack runs where the model's parameters are).
            progress: progress reporter (one bar per restart).

        Returns:
            :class:`AttackOutput` with ``data`` (``N×C×H×W`` in [0, 1]), ``labels`` and ``stats`` (final objective,
            per-restart scores, label strategy, seconds, objective history of the best restart).
        """
        model = observation.model
        if model is None:
            raise ConfigError("gradient inversion needs the model the client differentiated (observation.model)")
        callback = self.callback
        cfg = self.config
        if observation.gradients is None:
            raise ConfigError("gradient inversion needs the shared gradients in the observation")
        meta = observation.meta
        try:
            batch = int(meta["batch_size"])
            shape = (batch, *(int(s) for s in meta["image_shape"]))
        except KeyError as e:
            missing = e.args[0]
            raise ConfigError(f"the observation's meta lacks {missing!r} (needs batch_size, image_shape)") from None
        threat = ThreatModel(**meta.get("threat", {}))
        params = list(trainable(model).values())
        if len(observation.gradients) != len(params):
            raise ConfigError(
                f"the observation has {len(observation.gradients)} gradient tensors but the model has {len(params)} "
                "trainable parameters"
            )
        device = params[0].device
        # a FedAvg update is lr × (sum of gradients): divide by lr so objectives and tolerances see gradient scale
        unit = threat.local_lr if threat.kind == "fedavg" else 1.0
        target_all = [t.detach().to(device) / unit for t in observation.gradients]
        idx = select_layers(cfg.layers, target_all)
        target = [target_all[i] for i in idx]
        weights = layer_weights(cfg.layer_weights, len(idx), device=device)
        objective = OBJECTIVES.get(cfg.objective)
        labels, label_strategy = self._labels(model, observation, batch, threat)
        num_classes = None
        if label_strategy == "joint":
            w_i, _ = last_linear_indices(model)
            if w_i is None:
                raise ConfigError("labels: joint needs a model that ends with a linear layer (its size = classes)")
            num_classes = params[w_i].shape[0]
        norm = model_normalization(model) if cfg.space == "normalized" else None
        mean, std = norm if norm is not None else (torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1))
        mean, std = mean.to(device), std.to(device)
        lo, hi = (0 - mean) / std, (1 - mean) / std
        gen = generator or torch.Generator().manual_seed(seed)
        model.eval()

        def matching_loss(z: torch.Tensor, soft: torch.Tensor | None) -> torch.Tensor:
            y = labels.to(device) if soft is None else soft.softmax(1)
            g = client_update(model, z * std + mean, y, threat, create_graph=True)
            return objective([g[i] / unit for i in idx], target, weights)

        t0 = time.perf_counter()
        progress = progress or Progress(quiet=True)
        dtype = params[0].dtype
        inits: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        for _ in range(cfg.restarts):  # drawn in the same order whether the restarts run batched or looped
            z0 = self._init(shape, mean, std, gen).to(device=device, dtype=dtype)
            s0 = torch.randn(batch, num_classes, generator=gen).to(device=device, dtype=dtype) if num_classes else None
            inits.append((z0, s0))

        reason = self._batching_reason(model)
        run_batched: Callable[[], tuple[list[float], list[float], list[Any], list[list[Any]]]] | None = None
        if reason is None:
            fparams = {n: p.detach() for n, p in trainable(model).items()}
            y_known = None if labels is None else labels.to(device)

            def batched_matching(zs: torch.Tensor, softs: torch.Tensor | None) -> torch.Tensor:
                """Each restart's own matching loss (``R``) for stacked dummy images ``R×B×C×H×W``."""

                def one(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
                    g = functional_update(model, fparams, z * std + mean, y, threat)
                    return objective([g[i] / unit for i in idx], target, weights)

                if softs is None:
                    return vmap(one, in_dims=(0, None))(zs, y_known)
                return vmap(one)(zs, softs.softmax(-1))

            try:  # some layers have no batching rule: find out before optimising
                with torch.enable_grad():
                    zs0 = torch.stack([z for z, _ in inits]).requires_grad_(True)
                    probe = batched_matching(zs0, None if num_classes is None else torch.stack([s for _, s in inits]))
                    torch.autograd.grad(probe.sum(), [zs0])
            except (RuntimeError, NotImplementedError) as e:
                reason = f"torch.func cannot batch this model ({str(e).splitlines()[0][:200]}): restarts run in a loop"
            else:

                def run_batched() -> tuple[list[float], list[float], list[Any], list[list[Any]]]:
                    return self._run_batched(inits, batched_matching, lo, hi, progress, callback)

        if run_batched is not None:
            finals, keys, results, histories = run_batched()
        else:
            finals, keys, results, histories = [], [], [], []
            for r, (z0, s0) in enumerate(inits):
                if _reached(cfg.stop_loss, finals):  # an earlier restart is good enough: skip the rest
                    break
                z = z0.clone().requires_grad_(True)
                soft = None if s0 is None else s0.clone().requires_grad_(True)
                variables = [z] if soft is None else [z, soft]
                history, _ = self._optimise(z, soft, variables, matching_loss, lo, hi, r, progress, callback)
                with torch.enable_grad():
                    score = float(matching_loss(z.detach(), None if soft is None else soft.detach()).detach())
                finals.append(score)
                keys.append(float(total_variation(z.detach())) if cfg.scoring == "tv" else score)
                results.append((z.detach(), None if soft is None else soft.detach()))
                histories.append(history)
        keys = [k if math.isfinite(k) else math.inf for k in keys]
        best_r = min(range(len(keys)), key=keys.__getitem__)  # the first of equal scores, as the loop kept it
        best_z, best_soft = results[best_r]
        x = (best_z * std + mean).clamp(0, 1).cpu()
        if best_soft is not None:
            out_labels = best_soft.argmax(1).cpu()
        else:
            out_labels = labels.cpu() if labels is not None else None
        best_loss = finals[best_r]
        stats = {
            "objective": best_loss,
            "restart": best_r,
            "restart_best": best_r,
            "restarts": cfg.restarts,
            "restarts_run": len(finals),  # fewer than restarts when stop_loss ended a loop early
            "restart_scores": keys,
            "restart_losses": finals,
            "restart_mode": "batched" if run_batched is not None else ("single" if cfg.restarts == 1 else "looped"),
            "restart_mode_reason": reason,
            "label_strategy": label_strategy,
            "layers": idx,
            "seconds": time.perf_counter() - t0,
            "iterations": cfg.iterations,
            "history": histories[best_r],
            "diverged": not math.isfinite(best_loss),
        }
        return AttackOutput(data=x, labels=out_labels, stats=stats)

    def _batching_reason(self, model: nn.Module) -> str | None:
        """None when the restarts can run as one batch, else why not (recorded in the stats)."""
        cfg = self.config
        if cfg.restarts == 1:
            return "one restart"
        if not cfg.batch_restarts:
            return "batch_restarts: false"
        return batching_blocker(model, optimizer=cfg.optimizer, line_search=cfg.line_search)

    def _run_batched(
        self,
        inits: list[tuple[torch.Tensor, torch.Tensor | None]],
        batched_matching: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
        lo: torch.Tensor,
        hi: torch.Tensor,
        progress: Progress,
        callback: Callback | None,
    ) -> tuple[list[float], list[float], list[Any], list[list[Any]]]:
        """All restarts as one optimisation of the stacked dummy data (see :mod:`.batched`).

        Returns per restart: final matching loss, selection key, ``(z, soft)`` and objective history.
        """
        cfg = self.config
        zs = torch.stack([z for z, _ in inits]).requires_grad_(True)
        softs = None if inits[0][1] is None else torch.stack([s for _, s in inits]).requires_grad_(True)  # type: ignore[misc]
        variables = [zs] if softs is None else [zs, softs]
        n_restarts = len(inits)
        if cfg.optimizer == "adam":
            opt: torch.optim.Optimizer = torch.optim.Adam(variables, lr=cfg.lr)
        elif cfg.optimizer == "sgd":
            opt = torch.optim.SGD(variables, lr=cfg.lr, momentum=0.9, nesterov=True)
        else:
            opt = BatchedLBFGS(variables, lr=cfg.lr, max_iter=cfg.lbfgs_max_iter)
        n, sched = cfg.iterations, _lr_schedule(opt, cfg)

        def objective_values() -> torch.Tensor:
            loss = batched_matching(zs, softs)
            if cfg.tv > 0:
                loss = loss + cfg.tv * vmap(total_variation)(zs)
            return loss

        frozen = torch.zeros(n_restarts, dtype=torch.bool, device=zs.device)  # diverged restarts stop, as in the loop
        histories: list[list[tuple[int, float]]] = [[] for _ in range(n_restarts)]
        with progress.task(f"inversion ({n_restarts} restarts, batched)", total=n) as advance:
            for it in range(n):
                if isinstance(opt, BatchedLBFGS):

                    def closure() -> torch.Tensor:
                        values = objective_values()
                        _set_grads(variables, values.sum())
                        return values.detach()

                    opt.frozen = frozen
                    loss = opt.step(closure)
                else:
                    keep = [v.detach().clone() for v in variables] if bool(frozen.any()) else None
                    loss = objective_values()
                    _set_grads(variables, loss.sum())
                    if cfg.signed:
                        zs.grad.sign_()  # type: ignore[union-attr]
                    opt.step()
                    if keep is not None:
                        with torch.no_grad():
                            for v, k in zip(variables, keep, strict=True):
                                v[frozen] = k[frozen]
                _end_of_step(sched, zs, lo, hi, boxed=cfg.boxed)
                if it % cfg.record_every == 0 or it == n - 1:
                    values = loss.detach().cpu().tolist()
                    for r, v in enumerate(values):
                        if not bool(frozen[r]):
                            histories[r].append((it, v))
                            if callback is not None:
                                callback(r, it, v)
                    live = [v for r, v in enumerate(values) if not bool(frozen[r])]
                    advance(cfg.record_every if it else 1, objective=min(live) if live else math.nan)
                    frozen = frozen | ~torch.isfinite(loss.detach())
                    if bool(frozen.all()) or _reached(cfg.stop_loss, live):
                        break
        with torch.enable_grad():
            finals = batched_matching(zs.detach(), None if softs is None else softs.detach()).detach().cpu().tolist()
        if cfg.scoring == "tv":
            keys = vmap(total_variation)(zs.detach()).cpu().tolist()
        else:
            keys = list(finals)
        results = [(zs[r].detach(), None if softs is None else softs[r].detach()) for r in range(n_restarts)]
        return finals, keys, results, histories

    def _optimise(
        self,
        z: torch.Tensor,
        soft: torch.Tensor | None,
        variables: list[torch.Tensor],
        matching_loss: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
        lo: torch.Tensor,
        hi: torch.Tensor,
        restart: int,
        progress: Progress,
        callback: Callback | None,
    ) -> tuple[list[tuple[int, float]], float]:
        cfg = self.config
        if cfg.optimizer == "adam":
            opt: torch.optim.Optimizer = torch.optim.Adam(variables, lr=cfg.lr)
        elif cfg.optimizer == "sgd":
            opt = torch.optim.SGD(variables, lr=cfg.lr, momentum=0.9, nesterov=True)
        else:
            opt = torch.optim.LBFGS(
                variables,
                lr=cfg.lr,
                max_iter=cfg.lbfgs_max_iter,
                line_search_fn="strong_wolfe" if cfg.line_search else None,
            )
        n, sched = cfg.iterations, _lr_schedule(opt, cfg)

        def objective_value() -> torch.Tensor:
            loss = matching_loss(z, soft)
            if cfg.tv > 0:
                loss = loss + cfg.tv * total_variation(z)
            return loss

        history: list[tuple[int, float]] = []
        last = math.nan
        with progress.task(f"inversion (restart {restart + 1}/{cfg.restarts})", total=n) as advance:
            for it in range(n):
                if cfg.optimizer == "lbfgs":

                    def closure() -> torch.Tensor:
                        loss = objective_value()
                        _set_grads(variables, loss)
                        return loss

                    loss = opt.step(closure)
                else:
                    loss = objective_value()
                    _set_grads(variables, loss)
                    if cfg.signed:
                        z.grad.sign_()  # type: ignore[union-attr]
                    opt.step()
                _end_of_step(sched, z, lo, hi, boxed=cfg.boxed)
                if it % cfg.record_every == 0 or it == n - 1:
                    last = float(loss.detach())
                    history.append((it, last))
                    if callback is not None:
                        callback(restart, it, last)
                    advance(cfg.record_every if it else 1, objective=last)
                    if not math.isfinite(last) or _reached(cfg.stop_loss, [last]):  # diverged, or good enough
                        break
        return history, last
