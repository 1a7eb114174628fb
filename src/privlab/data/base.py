"""The data contract: :class:`LabelledImages`.

Images are float tensors ``(N, C, H, W)`` in ``[0, 1]``; labels are ``int64`` tensors ``(N,)`` in
``[0, num_classes)``. Normalisation is never applied to the data: models normalise inside (see
:func:`privlab.models.build_model`), and attacks and metrics see ``[0, 1]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from privlab.errors import FileFormatError

__all__ = ["DatasetInfo", "LabelledImages"]


@dataclass(frozen=True)
class DatasetInfo:
    """What the ``datasets`` registry knows of a data set before loading it.

    Attributes:
        shape: ``(C, H, W)`` of one image at its native size.
        num_classes: number of label values.
        needs_root: whether the data lives on disk under ``--data-root`` (False for the embedded ``digits``).
        mean, std: per-channel statistics of the training split in ``[0, 1]`` units.
        description: one line for ``privlab datasets``.
        class_names: readable name of each label (index = label) when known before loading; ``None`` where they
            come from the files (``image_folder``: its folder names) or are not known.
    """

    shape: tuple[int, int, int]
    num_classes: int
    needs_root: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]
    description: str = ""
    class_names: tuple[str, ...] | None = None


class LabelledImages(Dataset):
    """An in-memory labelled image set: ``images (N, C, H, W)`` in ``[0, 1]`` and ``labels (N,)`` int64.

    Images may be stored as ``uint8`` (0–255, to save memory on CIFAR-size sets) or float; indexing and
    :attr:`images` always return float32 in ``[0, 1]``.

    Args:
        images: ``(N, C, H, W)`` uint8 tensor or float tensor in ``[0, 1]``.
        labels: ``(N,)`` integer tensor.
        num_classes: number of classes (labels must lie in ``[0, num_classes)``).
        name: data-set name, for messages and the store.
        mean, std: per-channel statistics (``[0, 1]`` units) used by model normalisation layers.
        class_names: optional readable class names.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        num_classes: int,
        *,
        name: str = "custom",
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:
        if images.ndim != 4:
            raise FileFormatError(f"{name}: images must have shape (N, C, H, W), got {tuple(images.shape)}")
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise FileFormatError(f"{name}: labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
        if images.dtype != torch.uint8:
            images = images.float()
            if images.numel() and not torch.isfinite(images).all():
                raise FileFormatError(f"{name}: images contain NaN or inf")
            if images.numel() and (images.min() < 0 or images.max() > 1):
                raise FileFormatError(
                    f"{name}: float images must lie in [0, 1], got range "
                    f"[{images.min().item():.3g}, {images.max().item():.3g}]; divide uint8 data by 255"
                )
        labels = labels.long()
        if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            raise FileFormatError(
                f"{name}: labels must lie in [0, {num_classes}), got [{labels.min().item()}, {labels.max().item()}]"
            )
        self._images = images
        self.labels = labels
        self.num_classes = int(num_classes)
        self.name = name
        c = images.shape[1]
        self.mean = tuple(float(v) for v in (mean if mean is not None else [0.5] * c))
        self.std = tuple(float(v) for v in (std if std is not None else [0.5] * c))
        self.class_names = tuple(class_names) if class_names is not None else tuple(str(i) for i in range(num_classes))

    @property
    def images(self) -> torch.Tensor:
        """All images as float32 ``(N, C, H, W)`` in ``[0, 1]``."""
        if self._images.dtype == torch.uint8:
            return self._images.float().div_(255.0)
        return self._images

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        c, h, w = self._images.shape[1:]
        return (int(c), int(h), int(w))

    def __len__(self) -> int:
        return int(self._images.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._images[index]
        x = x.float().div(255.0) if x.dtype == torch.uint8 else x
        return x, self.labels[index]

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``index`` as ``(images float32 (B, C, H, W) in [0, 1], labels (B,))`` without a per-item loop."""
        x = self._images[index]
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x
        return x, self.labels[index]

    def subset(self, indices: torch.Tensor | Sequence[int]) -> LabelledImages:
        """A new :class:`LabelledImages` holding the rows ``indices`` (same metadata)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        return LabelledImages(
            self._images[idx],
            self.labels[idx],
            self.num_classes,
            name=self.name,
            mean=self.mean,
            std=self.std,
            class_names=self.class_names,
        )

    def with_images(self, images: torch.Tensor) -> LabelledImages:
        """Same labels and metadata, other images (e.g. privatised or perturbed ones), float in ``[0, 1]``."""
        return LabelledImages(
            images,
            self.labels,
            self.num_classes,
            name=self.name,
            mean=self.mean,
            std=self.std,
            class_names=self.class_names,
        )

    def __repr__(self) -> str:
        return f"LabelledImages(name={self.name!r}, n={len(self)}, shape={self.shape}, classes={self.num_classes})"
