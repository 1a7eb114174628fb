"""Defences a federated client applies to what it shares — the conditions gradient-inversion experiments compare.

- ``none``: shares the exact gradient.
- ``gaussian`` (``sigma``): adds ``σ·N(0, 1)`` to every entry of the shared gradient.
- ``laplace`` (``sigma``): adds ``Laplace(0, b = σ)`` to every entry.
- ``prune`` (``percent``): zeroes the ``percent`` % smallest-magnitude entries of each parameter's gradient.
- ``dpsgd`` (``clip``, ``noise_multiplier``, ``sample_rate``, ``delta``): DP-SGD as opacus does it — per-example
  gradients clipped to L2 norm ``clip``, summed, plus ``N(0, (noise_multiplier·clip)²)``, divided by the batch size;
  ε of the step(s) from opacus' RDP accountant.
- ``augment`` (``transform``): transforms the images before the gradient is taken (a hook: ``flip``, ``shift``,
  ``flip+shift`` or any callable registered in ``INPUT_TRANSFORMS``).

Short forms for the command line: ``noise:0.01`` (= ``gaussian`` σ 0.01), ``laplace:0.1``, ``prune:70``,
``dpsgd:1.0`` (noise multiplier; ``dpsgd:noise_multiplier=1,clip=0.5`` for more), ``augment:flip``.

Example:
    >>> parse_defense("prune:70")
    {'name': 'prune', 'percent': 70.0}
    >>> d = GradientDefense(parse_defense("prune:50"))
    >>> import torch
    >>> d.shared([torch.tensor([1.0, -4.0, 2.0, 0.5])], torch.Generator())[0]
    tensor([ 0., -4.,  2.,  0.])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from pydantic import Field, model_validator
from torch import nn
from torch.func import functional_call, grad, vmap

from privlab.attack.inversion.threat import GradientFn, loss_on
from privlab.config import Spec
from privlab.errors import ConfigError
from privlab.protect.base import PROTECTIONS, Budget, laplace_sample
from privlab.registry import Registry

__all__ = ["INPUT_TRANSFORMS", "GradientDefense", "GradientDefenseSpec", "parse_defense", "per_example_gradients"]

InputTransform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
INPUT_TRANSFORMS: Registry[InputTransform] = Registry("augmentation defence")


@INPUT_TRANSFORMS.register("flip", description="horizontal flip of every image")
def _flip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return x.flip(-1)


@INPUT_TRANSFORMS.register("shift", description="random shift by up to 1/8 of the size (reflect padding)")
def _shift(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    h, w = x.shape[-2:]
    p = max(1, h // 8)
    padded = torch.nn.functional.pad(x, (p, p, p, p), mode="reflect")
    dy, dx = (int(v) for v in torch.randint(0, 2 * p + 1, (2,), generator=g))
    return padded[..., dy : dy + h, dx : dx + w]


@INPUT_TRANSFORMS.register("flip+shift", description="flip, then shift")
def _flip_shift(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return _shift(_flip(x, g), g)


class GradientDefenseSpec(Spec):
    """One defence on the shared gradient (see the module table)."""

    name: Literal["none", "gaussian", "laplace", "prune", "dpsgd", "augment"] = Field(default="none")
    sigma: float = Field(default=0.0, ge=0, description="gaussian: noise std; laplace: scale b")
    percent: float = Field(default=0.0, ge=0, lt=100, description="prune: % of entries zeroed per parameter")
    clip: float = Field(default=1.0, gt=0, description="dpsgd: per-example L2 clipping norm")
    noise_multiplier: float = Field(default=1.0, ge=0, description="dpsgd: noise std / clip")
    sample_rate: float = Field(default=1.0, gt=0, le=1, description="dpsgd: batch size / client data set size")
    delta: float = Field(default=1e-5, gt=0, lt=1, description="dpsgd: δ of the reported ε")
    transform: str = Field(default="flip", description="augment: flip | shift | flip+shift")

    @model_validator(mode="after")
    def _check(self) -> GradientDefenseSpec:
        if self.name in ("gaussian", "laplace") and self.sigma <= 0:
            raise ConfigError(f"defence {self.name}: sigma must be > 0 (e.g. {self.name}:0.01)")
        if self.name == "augment":
            INPUT_TRANSFORMS.entry(self.transform)
        return self

    def label(self) -> str:
        """Short name for tables and plots: ``none``, ``gaussian σ=0.01``, ``prune 70%`` …"""
        return {
            "none": "none",
            "gaussian": f"gaussian σ={self.sigma:g}",
            "laplace": f"laplace b={self.sigma:g}",
            "prune": f"prune {self.percent:g}%",
            "dpsgd": f"dpsgd C={self.clip:g} z={self.noise_multiplier:g}",
            "augment": f"augment {self.transform}",
        }[self.name]


_PRIMARY = {"noise": ("gaussian", "sigma"), "gaussian": ("gaussian", "sigma"), "laplace": ("laplace", "sigma"),
            "prune": ("prune", "percent"), "dpsgd": ("dpsgd", "noise_multiplier"), "augment": ("augment", "transform"),
            "none": ("none", None)}  # fmt: skip


def parse_defense(text: str) -> dict[str, Any]:
    """Parse a command-line defence: ``NAME[:VALUE][,KEY=VALUE…]`` or ``NAME:KEY=VALUE,…`` (see module doc).

    Raises:
        ConfigError: unknown name or malformed value.
    """
    name, _, rest = text.strip().partition(":")
    if name not in _PRIMARY:
        raise ConfigError(f"unknown defence {name!r} in {text!r}; use one of: {', '.join(_PRIMARY)}")
    canonical, primary = _PRIMARY[name]
    out: dict[str, Any] = {"name": canonical}
    for i, part in enumerate(p for p in rest.split(",") if p):
        key, eq, value = part.partition("=")
        if not eq:
            if i or primary is None:
                raise ConfigError(f"defence {text!r}: write extra settings as key=value")
            key, value = primary, part
        try:
            out[key.strip()] = value.strip() if key.strip() == "transform" else float(value)
        except ValueError:
            raise ConfigError(f"defence {text!r}: {key}={value!r} is not a number") from None
    return out


def per_example_gradients(
    model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, scale: float = 1.0
) -> list[torch.Tensor]:
    """Gradients of the loss of each example separately: one tensor ``N×…`` per parameter (``torch.func.vmap``)."""

    def one(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        return loss_on(functional_call(model, p, (xi[None],)), yi[None], scale)

    detached = {n: p.detach() for n, p in params.items()}
    g = vmap(grad(one), in_dims=(None, 0, 0))(detached, x, y)
    return [g[n] for n in params]


class GradientDefense:
    """A :class:`GradientDefenseSpec` made executable: input hook, per-step gradient and shared-tensor transform."""

    def __init__(self, spec: GradientDefenseSpec | dict[str, Any] | None = None) -> None:
        from privlab.config import validate

        if isinstance(spec, GradientDefenseSpec):
            self.spec = spec
        else:
            self.spec = validate(GradientDefenseSpec, dict(spec or {}), "defence")

    def inputs(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The images the client actually differentiates (``augment`` only; otherwise ``x``)."""
        if self.spec.name != "augment":
            return x
        return INPUT_TRANSFORMS.get(self.spec.transform)(x, generator)

    def gradient_fn(self, generator: torch.Generator) -> GradientFn | None:
        """DP-SGD's per-step gradient (clipped per-example sum + noise, / batch size), or None for the plain one."""
        if self.spec.name != "dpsgd":
            return None
        spec = self.spec

        def dp_gradient(
            model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, scale: float, _: bool
        ) -> list[torch.Tensor]:
            per = per_example_gradients(model, params, x, y, scale)
            norms = torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in per))  # type: ignore[arg-type]
            factor = (spec.clip / (norms + 1e-6)).clamp(max=1.0)
            out = []
            for g in per:
                summed = torch.einsum("n,n...->...", factor, g)
                noise = torch.randn(summed.shape, generator=generator).to(summed.device)
                out.append((summed + spec.noise_multiplier * spec.clip * noise) / len(x))
            return out

        return dp_gradient

    def shared(self, grads: list[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
        """Transform the tensors the client sends (``gaussian``, ``laplace``, ``prune``; others unchanged)."""
        s = self.spec
        if s.name == "gaussian":
            return [g + s.sigma * torch.randn(g.shape, generator=generator).to(g.device) for g in grads]
        if s.name == "laplace":
            return [g + laplace_sample(0.0, s.sigma, g.shape, generator).to(g.device) for g in grads]
        if s.name == "prune":
            out = []
            for g in grads:
                k = int(g.numel() * s.percent / 100)
                if k == 0:
                    out.append(g)
                    continue
                threshold = g.abs().flatten().kthvalue(k).values
                out.append(torch.where(g.abs() <= threshold, torch.zeros_like(g), g))
            return out
        return grads

    def budget(self, steps: int = 1) -> Budget:
        """The privacy this defence buys: ε at δ for ``dpsgd`` (opacus RDP accountant, ``steps`` local steps);
        no formal guarantee (kind ``none``) for the others."""
        s = self.spec
        if s.name != "dpsgd":
            return Budget(kind="none", scope="gradient", details={"defense": s.label()})
        if s.noise_multiplier == 0:
            return Budget(kind="dp", scope="example", epsilon=float("inf"), delta=s.delta)
        from opacus.accountants import RDPAccountant

        acc = RDPAccountant()
        for _ in range(steps):
            acc.step(noise_multiplier=s.noise_multiplier, sample_rate=s.sample_rate)
        eps = float(acc.get_epsilon(delta=s.delta))
        return Budget(
            kind="dp",
            scope="example",
            epsilon=eps,
            delta=s.delta,
            details={"accountant": "rdp (opacus)", "steps": steps, "sample_rate": s.sample_rate},
        )


for _n in ("gaussian", "laplace", "prune", "dpsgd", "augment"):
    PROTECTIONS.register(f"gradient-{_n}", kind="gradient", description=f"shared-gradient defence {_n!r}")(
        GradientDefense
    )
