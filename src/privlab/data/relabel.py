"""Task relabelling: derive another classification task from a data set's labels (Shredder's public task).

Task names:

- ``identity`` — the labels as they are;
- ``greater_than_K`` — binary ``label > K`` (Shredder v2's public task is ``greater_than_5``: "digit > 5");
- ``parity`` — binary ``label mod 2``.

Example:
    >>> import torch
    >>> from privlab.data import LabelledImages
    >>> from privlab.data.relabel import relabel
    >>> d = LabelledImages(torch.zeros(4, 1, 2, 2), torch.tensor([0, 5, 6, 9]), 10)
    >>> r = relabel(d, "greater_than_5")
    >>> r.labels.tolist(), r.num_classes, r.class_names
    ([0, 0, 1, 1], 2, ('label <= 5', 'label > 5'))
"""

from __future__ import annotations

import re

import torch

from privlab.data.base import LabelledImages
from privlab.errors import ConfigError

__all__ = ["relabel", "task_labels", "task_num_classes"]

_GT = re.compile(r"greater_than_(\d+)$")


def task_num_classes(task: str, num_classes: int) -> int:
    """Number of classes of ``task`` derived from a set with ``num_classes`` labels.

    Raises:
        ConfigError: unknown task, or a threshold that leaves one class empty.
    """
    if task == "identity":
        return num_classes
    if task == "parity":
        return 2
    m = _GT.match(task)
    if m:
        k = int(m.group(1))
        if not 0 <= k < num_classes - 1:
            raise ConfigError(f"task {task!r}: K must lie in [0, {num_classes - 2}] for {num_classes} labels")
        return 2
    raise ConfigError(f"unknown task {task!r}; use identity, parity or greater_than_K (e.g. greater_than_5)")


def task_labels(task: str, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The labels of ``task`` (int64, same length as ``labels``)."""
    task_num_classes(task, num_classes)
    if task == "identity":
        return labels.long().clone()
    if task == "parity":
        return (labels % 2).long()
    k = int(_GT.match(task).group(1))  # type: ignore[union-attr]
    return (labels > k).long()


def relabel(data: LabelledImages, task: str) -> LabelledImages:
    """``data`` with the labels of ``task`` (images shared, not copied)."""
    n_cls = task_num_classes(task, data.num_classes)
    labels = task_labels(task, data.labels, data.num_classes)
    names: tuple[str, ...] | None = None
    if task == "parity":
        names = ("even", "odd")
    elif task != "identity":
        k = int(_GT.match(task).group(1))  # type: ignore[union-attr]
        names = (f"label <= {k}", f"label > {k}")
    return LabelledImages(
        data._images,
        labels,
        n_cls,
        name=f"{data.name}:{task}",
        mean=data.mean,
        std=data.std,
        class_names=names or data.class_names,
    )
