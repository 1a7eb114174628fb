"""Stage 2 — models.

Every model is a factory registered in :data:`MODELS` that returns an :class:`torch.nn.Sequential` with named
children, so that :func:`~privlab.models.split.split_model` can cut any of them at a named layer. Factories take
``(num_classes, in_shape)`` and are registered with ``input_hw`` (the spatial size the architecture needs, or
``None`` when any size works), optionally ``min_hw`` (the smallest size it accepts; smaller inputs are resized up)
and a one-line ``description``.

:func:`build_model` adapts a model to the data: when a fixed-size architecture (``lenet5``: 32×32) gets other
images, a ``resize`` layer (bilinear) is put in front; with ``mean``/``std`` a ``normalize`` layer follows, so the
model takes images in ``[0, 1]``.

Example:
    >>> import torch
    >>> from privlab.models import build_model
    >>> m = build_model("lenet5", num_classes=10, in_shape=(1, 8, 8))
    >>> m(torch.rand(2, 1, 8, 8)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import AfterValidator
from torch import nn

from privlab.errors import ConfigError
from privlab.registry import Registry, import_submodules

__all__ = ["MODELS", "ModelName", "Normalize", "Resize", "build_model", "model_input_hw"]

ModelFactory = Callable[[int, tuple[int, int, int]], nn.Sequential]
MODELS: Registry[ModelFactory] = Registry("model")
#: A spec field holding a registered model name: an unknown name is refused when the spec is validated.
ModelName = Annotated[str, AfterValidator(lambda name: MODELS.check_name(name))]


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; ``x`` is ``(N, C, H, W)`` in ``[0, 1]``."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Resize(nn.Module):
    """Bilinear resize of ``(N, C, H, W)`` inputs to ``size`` (differentiable, for fixed-size architectures)."""

    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = tuple(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)

    def extra_repr(self) -> str:
        return f"size={self.size}"


def model_input_hw(name: str) -> tuple[int, int] | None:
    """The spatial size the architecture ``name`` needs, or ``None`` if any size works."""
    hw = MODELS.entry(name).meta.get("input_hw")
    return tuple(hw) if hw is not None else None


def build_model(
    name: str,
    num_classes: int,
    in_shape: Sequence[int],
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> nn.Sequential:
    """Build a registered model for images of ``in_shape = (C, H, W)`` in ``[0, 1]``.

    Args:
        name: registered model name (``privlab models`` lists them).
        num_classes: size of the output layer (logits).
        in_shape: ``(C, H, W)`` of the inputs the model will see.
        mean, std: per-channel statistics; when given, a ``normalize`` layer is put first.

    Returns:
        An ``nn.Sequential`` with named children mapping ``(N, C, H, W)`` to logits ``(N, num_classes)``.

    Raises:
        UnknownNameError: no such model. ConfigError: bad ``num_classes`` or ``in_shape``.
    """
    factory = MODELS.get(name)
    if num_classes < 1:
        raise ConfigError(f"model {name!r}: num_classes must be ≥ 1, got {num_classes}")
    if len(in_shape) != 3 or any(int(s) < 1 for s in in_shape):
        raise ConfigError(f"model {name!r}: in_shape must be (C, H, W) with positive sizes, got {tuple(in_shape)}")
    c, h, w = (int(s) for s in in_shape)
    need = model_input_hw(name)
    min_hw = MODELS.entry(name).meta.get("min_hw")
    if need is None and min_hw is not None and (h < min_hw[0] or w < min_hw[1]):
        need = (max(h, min_hw[0]), max(w, min_hw[1]))
    layers: list[tuple[str, nn.Module]] = []
    if need is not None and (h, w) != need:
        layers.append(("resize", Resize(need)))
        h, w = need
    for label, stats in (("mean", mean), ("std", std)):
        if stats is not None and len(stats) != c:
            raise ConfigError(f"model {name!r}: {label} has {len(stats)} values but the images have {c} channels")
    if std is not None and any(s <= 0 for s in std):
        raise ConfigError(f"model {name!r}: std values must be > 0, got {list(std)}")
    if mean is not None and std is not None:
        layers.append(("normalize", Normalize(mean, std)))
    body = factory(num_classes, (c, h, w))
    if not layers:
        return body
    return nn.Sequential(OrderedDict([*layers, *body.named_children()]))


import_submodules(__name__, __path__)

from privlab.models.split import insert_at, split_model  # noqa: E402

__all__ += ["insert_at", "split_model"]
