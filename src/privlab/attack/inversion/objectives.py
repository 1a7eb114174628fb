"""Gradient-matching objectives: how far the dummy data's gradient is from the observed one.

Every objective takes the dummy gradients ``g`` and the observed gradients ``g*`` (lists of tensors, one per
parameter of the selected layers) and per-layer weights ``w``, and returns a scalar tensor (differentiable in ``g``).

- ``l2`` (DLG, Zhu et al. 2019): ``Σ_l w_l ‖g_l − g*_l‖²``.
- ``l1``: ``Σ_l w_l ‖g_l − g*_l‖₁``.
- ``max``: ``max_l w_l ‖g_l − g*_l‖_∞``.
- ``cosine`` (Inverting Gradients, Geiping et al. 2020; inversefed's ``sim``): one global cosine distance over all
  layers, ``1 − Σ_l w_l⟨g_l, g*_l⟩ / (√(Σ_l w_l‖g_l‖²) · √(Σ_l w_l‖g*_l‖²))``, in [0, 2].
- ``cosine-local`` (inversefed's ``simlocal``): ``Σ_l w_l (1 − cos(g_l, g*_l))``.

Example:
    >>> import torch
    >>> g = [torch.tensor([1.0, 0.0]), torch.tensor([2.0])]
    >>> w = torch.ones(2)
    >>> float(OBJECTIVES.get("l2")(g, [torch.tensor([0.0, 0.0]), torch.tensor([2.0])], w))
    1.0
    >>> round(float(OBJECTIVES.get("cosine")(g, g, w)), 6)
    0.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from privlab.registry import Registry

__all__ = ["OBJECTIVES", "Objective", "layer_weights", "select_layers"]

Objective = Callable[[Sequence[torch.Tensor], Sequence[torch.Tensor], torch.Tensor], torch.Tensor]
OBJECTIVES: Registry[Objective] = Registry("inversion objective")


@OBJECTIVES.register("l2", aliases=("euclidean",), description="Σ_l w_l ‖g_l − g*_l‖² (DLG)")
def l2(g: Sequence[torch.Tensor], t: Sequence[torch.Tensor], w: torch.Tensor) -> torch.Tensor:
    """Weighted squared Euclidean distance between gradients."""
    return sum(wi * (gi - ti).pow(2).sum() for gi, ti, wi in zip(g, t, w, strict=True))  # type: ignore[return-value]


@OBJECTIVES.register("l1", description="Σ_l w_l ‖g_l − g*_l‖₁")
def l1(g: Sequence[torch.Tensor], t: Sequence[torch.Tensor], w: torch.Tensor) -> torch.Tensor:
    """Weighted L1 distance between gradients."""
    return sum(wi * (gi - ti).abs().sum() for gi, ti, wi in zip(g, t, w, strict=True))  # type: ignore[return-value]


@OBJECTIVES.register("max", description="max_l w_l ‖g_l − g*_l‖_∞")
def max_(g: Sequence[torch.Tensor], t: Sequence[torch.Tensor], w: torch.Tensor) -> torch.Tensor:
    """Largest weighted absolute difference over all entries."""
    return torch.stack([wi * (gi - ti).abs().max() for gi, ti, wi in zip(g, t, w, strict=True)]).max()


@OBJECTIVES.register(
    "cosine", aliases=("sim",), description="1 − global cosine similarity over all layers (Inverting Gradients)"
)
def cosine(g: Sequence[torch.Tensor], t: Sequence[torch.Tensor], w: torch.Tensor) -> torch.Tensor:
    """One cosine distance over the concatenation of all (weighted) layers; 0 when the gradients are parallel."""
    dot = sum(wi * (gi * ti).sum() for gi, ti, wi in zip(g, t, w, strict=True))
    gn = sum(wi * gi.pow(2).sum() for gi, wi in zip(g, w, strict=True))
    tn = sum(wi * ti.pow(2).sum() for ti, wi in zip(t, w, strict=True))
    return 1 - dot / (gn.clamp_min(1e-30).sqrt() * tn.clamp_min(1e-30).sqrt())  # type: ignore[union-attr]


@OBJECTIVES.register("cosine-local", aliases=("simlocal",), description="Σ_l w_l (1 − cos(g_l, g*_l))")
def cosine_local(g: Sequence[torch.Tensor], t: Sequence[torch.Tensor], w: torch.Tensor) -> torch.Tensor:
    """Sum of per-layer cosine distances."""
    total = g[0].new_zeros(())
    for gi, ti, wi in zip(g, t, w, strict=True):
        cos = (gi * ti).sum() / (gi.norm().clamp_min(1e-30) * ti.norm().clamp_min(1e-30))
        total = total + wi * (1 - cos)
    return total


def select_layers(spec: str | Sequence[int], target: Sequence[torch.Tensor]) -> list[int]:
    """Indices of the parameter tensors the objective compares.

    Args:
        spec: ``"all"``; ``"first:N"`` / ``"last:N"`` (the first / last N parameter tensors); ``"top:N"`` (the N
            tensors with the largest observed gradient norm); or an explicit list of indices (negative allowed).
        target: the observed gradients (for ``top:N`` and range checks).

    Raises:
        ConfigError: malformed spec or an index out of range.
    """
    from privlab.errors import ConfigError

    n = len(target)
    if not isinstance(spec, str):
        idx = [int(i) for i in spec]
        bad = [i for i in idx if not -n <= i < n]
        if bad or not idx:
            raise ConfigError(f"layers {list(spec)}: indices must lie in [-{n}, {n - 1}] (the model has {n} tensors)")
        return sorted({i % n for i in idx})
    if spec == "all":
        return list(range(n))
    kind, _, count = spec.partition(":")
    if kind not in ("first", "last", "top") or not count.isdigit() or int(count) < 1:
        raise ConfigError(f"layers {spec!r}: use 'all', 'first:N', 'last:N', 'top:N' or a list of indices")
    k = min(int(count), n)
    if kind == "first":
        return list(range(k))
    if kind == "last":
        return list(range(n - k, n))
    norms = torch.stack([t.detach().norm() for t in target])
    return sorted(norms.topk(k).indices.tolist())


def layer_weights(kind: str, n: int, *, device: torch.device | str = "cpu") -> torch.Tensor:
    """Per-layer weights for ``n`` selected tensors, ``l = 0 … n−1``: ``equal`` (all 1), ``linear`` (``(n − l)/n``)
    or ``exp`` (``exp(−l/n)``); the first layers weigh most in the last two."""
    from privlab.errors import ConfigError

    pos = torch.arange(n, dtype=torch.float32, device=device)
    if kind == "equal":
        return torch.ones(n, device=device)
    if kind == "linear":
        return (n - pos) / n
    if kind == "exp":
        return torch.exp(-pos / n)
    raise ConfigError(f"layer_weights {kind!r}: use equal, linear or exp")
