"""Attacker-side counter-measures: transformations an attacker applies to (possibly poisoned) training images
before training on them, to wash out unlearnable-example perturbations.

Every counter-measure is one file here, registered in :data:`COUNTERMEASURES` with its pydantic config class
(``config=``), on a function ``f(x, cfg, generator) -> x`` taking and returning a float batch ``(N, C, H, W)`` in
``[0, 1]`` (same shape, float32). Random ones draw only from ``generator``, so a seed fixes their output.

Registered: ``jpeg`` (re-compression at quality ``q``), ``grayscale`` (luminance, kept as C channels),
``bit_depth`` (``b`` bits per channel), ``strong_augment`` (random resized crop + flip + colour jitter).

:func:`apply_countermeasures` applies a named list of them, in order, to a whole
:class:`~privlab.data.base.LabelledImages` (the training set an attacker would use).

Example:
    >>> import torch
    >>> from privlab.attack.countermeasures import apply_countermeasures
    >>> from privlab.data import LabelledImages
    >>> ds = LabelledImages(torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 0, 1]), 2)
    >>> out = apply_countermeasures(ds, ["grayscale", {"name": "bit_depth", "bits": 1}], seed=0)
    >>> sorted(out.images.unique().tolist()) in ([0.0, 1.0], [0.0], [1.0])
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError

from privlab.config import Spec
from privlab.data.base import LabelledImages
from privlab.errors import ConfigError
from privlab.registry import Registry, import_submodules

__all__ = [
    "COUNTERMEASURES",
    "CountermeasureFn",
    "apply_countermeasures",
    "build_countermeasure",
    "countermeasure_config",
    "countermeasure_label",
]

CountermeasureFn = Callable[[torch.Tensor, Any, torch.Generator | None], torch.Tensor]
COUNTERMEASURES: Registry[CountermeasureFn] = Registry("counter-measure")

Step = str | Mapping[str, Any]


def countermeasure_config(name: str, **params: Any) -> Spec:
    """The validated config of counter-measure ``name`` with ``params`` (defaults for the rest).

    Raises:
        UnknownNameError: ``name`` is not registered.
        ConfigError: a parameter is unknown or out of range (the message names it).
    """
    entry = COUNTERMEASURES.entry(name)
    cls: type[Spec] = entry.meta["config"]
    try:
        return cls(**params)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"counter-measure {entry.name!r}: {problems}") from None


def build_countermeasure(name: str, **params: Any) -> Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]:
    """Counter-measure ``name`` with its config bound: ``f(x, generator) -> x`` on ``(N, C, H, W)`` in ``[0, 1]``."""
    fn = COUNTERMEASURES.get(name)
    cfg = countermeasure_config(name, **params)

    def apply(x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        if x.ndim != 4:
            raise ConfigError(f"counter-measure {name!r}: images must be (N, C, H, W), got shape {tuple(x.shape)}")
        return fn(x.float(), cfg, g).clamp_(0.0, 1.0)

    apply.__name__ = name
    return apply


def _parse(step: Step) -> tuple[str, dict[str, Any]]:
    if isinstance(step, str):
        return step, {}
    if isinstance(step, Mapping) and isinstance(step.get("name"), str):
        params = {k: v for k, v in step.items() if k != "name"}
        return step["name"], params
    raise ConfigError(
        f"counter-measure step must be a name ('jpeg') or a mapping with a 'name' ({{'name': 'jpeg', 'quality': 10}}), "
        f"got {step!r}"
    )


def countermeasure_label(steps: Sequence[Step]) -> str:
    """A short, stable label of a list of steps, checked like :func:`apply_countermeasures` checks them:
    ``[]`` → ``"none"``, ``[{"name": "jpeg", "quality": 10}, "grayscale"]`` → ``"jpeg-quality10+grayscale"``.

    Raises:
        UnknownNameError / ConfigError: an unknown name, a malformed step or a bad parameter.
    """
    parts = []
    for name, params in map(_parse, steps):
        countermeasure_config(name, **params)
        parts.append(name + "".join(f"-{k}{str(v).replace(' ', '')}" for k, v in sorted(params.items())))
    return "+".join(parts) or "none"


DRAW_BLOCK = 256
"""Images a counter-measure transforms at a time in :func:`apply_countermeasures`, each block with its own seeded
generator (fixed, so that a random counter-measure's output does not depend on the caller's batch size)."""


def _block_generator(seed: int, step: int, block: int) -> torch.Generator:
    """Generator of block ``block`` of step ``step``: seeded from the three through numpy's ``SeedSequence`` (distinct
    triples give independent streams)."""
    state = np.random.SeedSequence([seed % 2**64, step, block]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & (2**63 - 1))


def apply_countermeasures(
    data: LabelledImages, steps: Sequence[Step], *, seed: int = 0, batch_size: int = 1024
) -> LabelledImages:
    """Apply counter-measures ``steps`` in order to every image of ``data``; labels and metadata are kept.

    Args:
        data: the training set (a :class:`~privlab.data.wrappers.PoisonedImages` is read through its ``batch``, i.e.
            with its perturbations).
        steps: names (``"grayscale"``) or mappings ``{"name": "jpeg", "quality": 10}``, applied first to last.
        seed: seed of the random ones. Step ``s`` transforms the images in fixed blocks of :data:`DRAW_BLOCK`,
            block ``b`` drawing from a generator seeded by ``(seed, s, b)``, so the output is a function of the seed
            alone (not of ``batch_size``, nor of the other steps' draws).
        batch_size: images read from ``data`` at a time (memory only; the output does not depend on it).

    Returns:
        A plain :class:`LabelledImages` holding the transformed float images (``data`` itself when ``steps`` is empty).

    Raises:
        UnknownNameError / ConfigError: an unknown name or a bad parameter (checked before any work).
    """
    fns = [build_countermeasure(name, **params) for name, params in map(_parse, steps)]
    if not fns:
        return data
    out = []
    for i in range(0, len(data), batch_size):
        x, _ = data.batch(torch.arange(i, min(i + batch_size, len(data))))
        out.append(x)
    x = torch.cat(out) if out else torch.empty(0, *data.shape)
    for s, fn in enumerate(fns):
        blocks = range(0, len(x), DRAW_BLOCK)
        x = (
            torch.cat([fn(x[i : i + DRAW_BLOCK], _block_generator(seed, s, i // DRAW_BLOCK)) for i in blocks])
            if len(x)
            else x
        )
    return LabelledImages(
        x,
        data.labels,
        data.num_classes,
        name=data.name,
        mean=data.mean,
        std=data.std,
        class_names=data.class_names,
    )


import_submodules(__name__, __path__)
