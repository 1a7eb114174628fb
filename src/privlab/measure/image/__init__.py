"""Image similarity between originals and reconstructions, one value per image.

- :mod:`~privlab.measure.image.base` — the metric registry :data:`SIMILARITY_METRICS` and each metric's metadata
  (unit, direction, kind), declared once at registration (:func:`register_metric`).
- :mod:`~privlab.measure.image.score` — :func:`score` → :class:`SimilarityTable`.
- one file per metric: :mod:`~privlab.measure.image.pixel` (``mse``, ``psnr``, ``ssim``, ``ms-ssim``),
  :mod:`~privlab.measure.image.lpips` (``lpips``, local weights only), :mod:`~privlab.measure.image.classifier`;
  ``semsim`` registers itself from :mod:`privlab.measure.semsim.score`.
- :mod:`~privlab.measure.image.matching` — pairing reconstructions with originals (Hungarian) and recovered labels
  with true ones.

Every module of this package is imported here, so a new metric is one new file (or a plugin, see
:mod:`privlab.plugins`).
"""

from privlab.measure.image.base import (
    SIMILARITY_METRICS,
    ColumnInfo,
    MetricOutput,
    SimilarityOptions,
    metric_columns,
    register_metric,
)
from privlab.measure.image.score import SimilarityTable, parse_metrics, score

__all__ = [
    "SIMILARITY_METRICS",
    "ColumnInfo",
    "MetricOutput",
    "SimilarityOptions",
    "SimilarityTable",
    "metric_columns",
    "parse_metrics",
    "register_metric",
    "score",
]

from privlab.registry import import_submodules

import_submodules(__name__, __path__)
