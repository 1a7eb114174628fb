"""Data-set wrappers for availability poisoning: the poisoned training set and the two-view set of SSL training.

:class:`PoisonedImages` adds a perturbation bank to a clean :class:`~privlab.data.base.LabelledImages`:

- **sample-wise** noise (``N×C×H×W``) is indexed by the *sample index* and **class-wise** noise (``K×C×H×W``) by the
  *label* — never the other way round (the ImageNet-mini loader of the original Unlearnable-Examples code indexed
  sample-wise noise by class id and so silently made it class-wise);
- a seeded fraction ``poison_rate`` of the samples is poisoned, the others stay clean;
- poisoned images are clamped to ``[0, 1]`` and, with ``quantize=True``, re-quantised to the uint8 grid
  (``k/255``) *inside* the budget: ``‖x_poisoned − x‖∞ ≤ ε`` holds exactly after quantisation (the original TUE
  evaluation clamped to ±9/255 instead of ε = 8/255);
- ``noise_position="before"`` stores ``x + δ`` (augmentations act on the poisoned image, as in Unlearnable-Examples'
  ``main.py``); ``"after"`` adds ``δ`` to each freshly augmented clean batch (their QuickStart notebook's order).

Example:
    >>> import torch
    >>> from privlab.data import LabelledImages
    >>> from privlab.data.wrappers import PoisonedImages
    >>> clean = LabelledImages(torch.full((4, 1, 2, 2), 0.5), torch.tensor([0, 1, 0, 1]), 2)
    >>> noise = torch.stack([torch.full((1, 2, 2), 8 / 255), torch.full((1, 2, 2), -8 / 255)])
    >>> p = PoisonedImages(clean, noise, kind="class", epsilon=8 / 255, quantize=False)
    >>> [round(v * 255, 3) for v in p.images[:, 0, 0, 0].tolist()]
    [135.5, 119.5, 135.5, 119.5]
"""

from __future__ import annotations

from typing import Literal

import torch

from privlab.data.base import LabelledImages
from privlab.data.transforms import BatchTransform
from privlab.errors import BudgetError, ConfigError, FileFormatError

__all__ = ["NoiseKind", "PoisonedImages", "apply_noise", "quantize_within", "two_views"]

NoiseKind = Literal["sample", "class"]


def quantize_within(x_poisoned: torch.Tensor, x_clean: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Round ``x_poisoned`` to the uint8 grid ``k/255`` and keep it within ``[x_clean − ε, x_clean + ε] ∩ [0, 1]``.

    The result lies on the grid (where ``ε ≥ 0.5/255`` leaves a grid point in every interval) and never leaves the
    budget, unlike rounding ``x + δ`` alone, which can overshoot ε by half a level.

    Args:
        x_poisoned: images in [0, 1] (any shape).
        x_clean: the clean images (same shape) the budget is measured from.
        epsilon: L∞ radius in [0, 1] pixel units.
    """
    q = torch.round(x_poisoned * 255.0)
    lo = torch.ceil((x_clean - epsilon).clamp(0, 1) * 255.0 - 1e-4)
    hi = torch.floor((x_clean + epsilon).clamp(0, 1) * 255.0 + 1e-4)
    q = torch.minimum(torch.maximum(q, lo), hi) / 255.0
    # grid points within 1e-4 levels of the interval edge are accepted above; pull any float excess back inside
    return torch.minimum(torch.maximum(q, x_clean - epsilon), x_clean + epsilon).clamp(0, 1)


def apply_noise(
    x: torch.Tensor, delta: torch.Tensor, epsilon: float | None = None, *, quantize: bool = False
) -> torch.Tensor:
    """``clamp(x + clamp(δ, −ε, ε), 0, 1)``, optionally re-quantised to uint8 levels inside the budget.

    Args:
        x: clean images ``(B, C, H, W)`` in [0, 1].
        delta: perturbations of the same shape, [0, 1] pixel units.
        epsilon: the L∞ budget (None: δ is used as given).
        quantize: round to ``k/255`` within the budget (see :func:`quantize_within`).
    """
    if epsilon is not None:
        delta = delta.clamp(-epsilon, epsilon)
    out = (x + delta).clamp(0, 1)
    if quantize:
        out = quantize_within(out, x, epsilon if epsilon is not None else float(delta.abs().max()))
    return out


class PoisonedImages(LabelledImages):
    """A training set with a perturbation bank added (see the module docstring for the rules).

    Args:
        clean: the clean training set.
        noise: ``(N, C, H, W)`` for ``kind="sample"`` or ``(num_classes, C, H, W)`` for ``kind="class"``, [0, 1] units.
        kind: ``"sample"`` (row i belongs to sample i) or ``"class"`` (row c belongs to label c).
        epsilon: L∞ budget; noise beyond it is clipped to it (None: no clip, no quantisation bound).
        poison_rate: fraction of samples that get their noise (seeded choice), in [0, 1].
        quantize: re-quantise poisoned images to uint8 levels inside the budget.
        noise_position: ``"before"`` or ``"after"`` augmentation (``"after"`` needs ``transform``).
        transform: batch augmentation applied by :meth:`batch` in ``"after"`` mode (clean image → augment → + δ).
        seed: seed of the poisoned-subset choice and of the ``"after"`` augmentation stream.

    Raises:
        FileFormatError: the noise's shape does not fit the data set and kind.
        ConfigError / BudgetError: bad rate, position or budget.
    """

    def __init__(
        self,
        clean: LabelledImages,
        noise: torch.Tensor,
        *,
        kind: NoiseKind = "sample",
        epsilon: float | None = 8 / 255,
        poison_rate: float = 1.0,
        quantize: bool = True,
        noise_position: Literal["before", "after"] = "before",
        transform: BatchTransform | None = None,
        seed: int = 0,
    ) -> None:
        if kind not in ("sample", "class"):
            raise ConfigError(f"noise kind must be 'sample' or 'class', got {kind!r}")
        rows = len(clean) if kind == "sample" else clean.num_classes
        expected = (rows, *clean.shape)
        if tuple(noise.shape) != expected:
            what = "samples" if kind == "sample" else "classes"
            raise FileFormatError(
                f"{kind}-wise noise for {clean.name} must have shape {expected} (one row per {what[:-1]}: "
                f"{rows} {what} × image {clean.shape}), got {tuple(noise.shape)}"
            )
        if not 0.0 <= poison_rate <= 1.0:
            raise ConfigError(f"poison_rate must lie in [0, 1], got {poison_rate}")
        if epsilon is not None and not 0 < epsilon <= 1:
            raise BudgetError(f"epsilon (L∞ radius in [0, 1] pixel units) must lie in (0, 1], got {epsilon}")
        if noise_position not in ("before", "after"):
            raise ConfigError(f"noise_position must be 'before' or 'after' (augmentation), got {noise_position!r}")
        if noise_position == "after" and transform is None:
            raise ConfigError("noise_position 'after' needs the training augmentation (transform=...)")
        self.clean = clean
        self.kind: NoiseKind = kind
        self.epsilon = epsilon
        self.noise = noise.detach().float().cpu()
        if epsilon is not None:
            self.noise = self.noise.clamp(-epsilon, epsilon)
        self.poison_rate = float(poison_rate)
        self.quantize = quantize
        self.noise_position = noise_position
        self.transform = transform
        n = len(clean)
        g = torch.Generator().manual_seed(seed)
        k = round(poison_rate * n)
        self.poisoned_mask = torch.zeros(n, dtype=torch.bool)
        self.poisoned_mask[torch.randperm(n, generator=g)[:k]] = True
        self._aug_gen = torch.Generator().manual_seed(seed + 1)
        self._all_idx = torch.arange(n)
        poisoned = self._poison(clean.images, self._all_idx)
        super().__init__(
            poisoned,
            clean.labels,
            clean.num_classes,
            name=f"{clean.name}+poison",
            mean=clean.mean,
            std=clean.std,
            class_names=clean.class_names,
        )

    def noise_for(self, index: torch.Tensor) -> torch.Tensor:
        """The perturbation of samples ``index`` (``(B, C, H, W)``): row ``index`` (sample-wise) or row ``label[index]``
        (class-wise), zero for the unpoisoned ones."""
        rows = index if self.kind == "sample" else self.clean.labels[index]
        d = self.noise[rows]
        return d * self.poisoned_mask[index].view(-1, 1, 1, 1).to(d.dtype)

    def _poison(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        out = apply_noise(x, self.noise_for(index), self.epsilon)
        if self.quantize and self.epsilon is not None:
            q = quantize_within(out, x, self.epsilon)
            mask = self.poisoned_mask[index].view(-1, 1, 1, 1)
            out = torch.where(mask, q, x)
        return out

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``index``: the stored poisoned images (``"before"``) or ``augment(clean) + δ`` (``"after"``)."""
        if self.noise_position == "before" or self.transform is None:
            return super().batch(index)
        x, y = self.clean.batch(index)
        x_aug = self.transform(x, self._aug_gen)
        return (x_aug + self.noise_for(index)).clamp(0, 1), y

    def __repr__(self) -> str:
        return (
            f"PoisonedImages(name={self.clean.name!r}, n={len(self)}, kind={self.kind!r}, "
            f"rate={self.poison_rate}, position={self.noise_position!r}, quantize={self.quantize})"
        )


def two_views(
    x: torch.Tensor, transform: BatchTransform, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independently augmented views of a batch (the "pair" data of SimCLR/MoCo/SimSiam training)."""
    return transform(x, generator), transform(x, generator)
