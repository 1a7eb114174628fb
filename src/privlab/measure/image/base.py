"""The image-similarity metric registry: what a metric is, and its metadata (declared once, at registration).

A metric is a function ``fn(original, reconstruction, options) -> MetricOutput`` registered with
:func:`register_metric` (or ``SIMILARITY_METRICS.register``) with its ``unit``, ``higher_is_better`` (read as a
similarity: larger = more similar = more leakage), ``kind`` (``privacy``: it measures what a reconstruction reveals)
and ``description``. A metric that writes several columns, or a column under another name, declares them in
``columns``: ``{column: (unit, higher_is_better)}``. Everything else — :func:`~privlab.measure.image.score.score`,
the agreement statistics (:mod:`privlab.measure.semsim.agreement`), ``privlab metrics`` and the report — reads this
metadata through :func:`metric_columns`; nothing else lists metric names.

Example:
    >>> cols = metric_columns()
    >>> cols["psnr"].unit, cols["psnr"].higher_is_better, cols["psnr"].kind
    ('dB', True, 'privacy')
    >>> cols["classifier_correct"].metric, cols["lpips-random"].higher_is_better
    ('classifier', False)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from privlab.registry import Registry

__all__ = [
    "SIMILARITY_METRICS",
    "ColumnInfo",
    "MetricOutput",
    "SimilarityOptions",
    "column_info",
    "metric_columns",
    "register_metric",
    "similarity_directions",
]


@dataclass
class SimilarityOptions:
    """What the metrics need besides the two image batches (filled in by :func:`~privlab.measure.image.score.score`)."""

    labels: torch.Tensor | None = None
    classifier: torch.nn.Module | None = None
    lpips_net: str = "alex"
    lpips_weights: str | Path | None = None
    device: str | torch.device | None = None
    ms_ssim_betas: Sequence[float] | None = None
    ms_ssim_kernel: int | None = None
    semsim_model: str | Path | None = None  # a SemSim checkpoint for ``semsim`` (None: its default / env variable)


@dataclass
class MetricOutput:
    """One metric's result: column name → per-image values ``[N]`` and the note (the exact variant computed).

    Units and directions are not part of the output: they come from the metric's registration.
    """

    values: dict[str, torch.Tensor]
    note: str


MetricFn = Callable[[torch.Tensor, torch.Tensor, SimilarityOptions], MetricOutput]

SIMILARITY_METRICS: Registry[MetricFn] = Registry("similarity metric")
"""Name → ``fn(original, reconstruction, options) -> MetricOutput``; meta ``unit``, ``higher_is_better``, ``kind``,
``description`` and ``columns`` (see :func:`register_metric`)."""


def register_metric(
    name: str,
    *,
    unit: str | None,
    higher_is_better: bool,
    description: str,
    kind: str = "privacy",
    columns: Mapping[str, tuple[str | None, bool]] | None = None,
    aliases: tuple[str, ...] = (),
) -> Callable[[MetricFn], MetricFn]:
    """Decorator registering an image-similarity metric with its metadata.

    Args:
        name: metric name (what users pass to ``score(..., metrics=...)``).
        unit: unit of its values (None: unitless).
        higher_is_better: True when a larger value means the two images are more similar.
        description: one line for listings.
        kind: ``privacy`` (default), ``utility``, ``cost`` or ``info``.
        columns: the columns it writes with ``(unit, higher_is_better)`` each, when not just ``{name: (unit,
            higher_is_better)}``.
        aliases: other accepted names.
    """
    cols = dict(columns) if columns is not None else {name: (unit, higher_is_better)}
    return SIMILARITY_METRICS.register(
        name,
        aliases=aliases,
        unit=unit,
        higher_is_better=higher_is_better,
        kind=kind,
        description=description,
        columns=cols,
    )


@dataclass(frozen=True)
class ColumnInfo:
    """Metadata of one value column of an image metric (``higher_is_better`` read as a similarity)."""

    column: str
    metric: str
    unit: str | None
    higher_is_better: bool
    kind: str
    description: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return dict(self.__dict__)


def _entry_columns(entry: Any) -> dict[str, ColumnInfo]:
    meta = entry.meta
    cols = meta.get("columns") or {entry.name: (meta.get("unit"), meta.get("higher_is_better", True))}
    return {
        col: ColumnInfo(col, entry.name, unit, bool(hib), meta.get("kind", "privacy"), str(meta.get("description", "")))
        for col, (unit, hib) in cols.items()
    }


def metric_columns() -> dict[str, ColumnInfo]:
    """Every column of every registered image metric → its :class:`ColumnInfo` (metrics sorted by name)."""
    out: dict[str, ColumnInfo] = {}
    for entry in SIMILARITY_METRICS.entries():
        out.update(_entry_columns(entry))
    return out


def column_info(metric: str, column: str) -> ColumnInfo:
    """Metadata of ``column`` written by ``metric`` (the metric's own unit and direction for an undeclared column)."""
    entry = SIMILARITY_METRICS.entry(metric)
    cols = _entry_columns(entry)
    if column in cols:
        return cols[column]
    meta = entry.meta
    return ColumnInfo(
        column,
        entry.name,
        meta.get("unit"),
        bool(meta.get("higher_is_better", True)),
        meta.get("kind", "privacy"),
        str(meta.get("description", "")),
    )


def similarity_directions() -> dict[str, bool]:
    """Column → True when a higher value means *more similar* (the orientation of the agreement statistics)."""
    return {col: info.higher_is_better for col, info in metric_columns().items()}
