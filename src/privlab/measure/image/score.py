"""Image similarity between originals and reconstructions, per image: MSE, PSNR, SSIM, MS-SSIM, LPIPS, classifier.

:func:`score` takes two batches ``N×C×H×W`` in ``[0, 1]`` (grey or RGB) and returns a :class:`SimilarityTable` with
one row per image (not batch means), the means over images, and a note per metric saying exactly which variant
was computed. The metrics are registered in :data:`~privlab.measure.image.base.SIMILARITY_METRICS` (one file each
under :mod:`privlab.measure.image`, or a plugin) with their unit and direction (``higher_is_better`` read as a
similarity: PSNR/SSIM/MS-SSIM/classifier up, MSE/LPIPS/SemSim down); the table's ``units`` and
``higher_is_better`` come from those registrations. The built-in metrics:

=============== ================================ ======== =====================================================
name            row columns                      unit     variant
=============== ================================ ======== =====================================================
``mse``         ``mse``                          –        mean squared error over C, H, W, [0, 1] scale
``psnr``        ``psnr``                         dB       10·log10(1 / MSE), data range 1 (inf when equal)
``ssim``        ``ssim``                         –        Wang et al. 2004 = skimage (Gaussian 11, σ 1.5, …)
``ms-ssim``     ``ms-ssim``                      –        torchmetrics; fewer scales on small images (noted)
``lpips``       ``lpips`` / ``lpips-random``     –        torchmetrics LPIPS v0.1, local backbone weights only
``classifier``  ``classifier_correct``,          fraction does a reference classifier still predict the label
                ``classifier_confidence``                 (and its softmax probability of the true label)
=============== ================================ ======== =====================================================

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(3, 1, 16, 16, generator=g)
    >>> y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    >>> table = score(x, y, ["mse", "psnr", "ssim"])
    >>> table.metrics, len(table.rows), sorted(table.rows[0])
    (['mse', 'psnr', 'ssim'], 3, ['index', 'mse', 'psnr', 'ssim'])
    >>> 18 < table.means["psnr"] < 22
    True
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from privlab.errors import ConfigError
from privlab.measure.functional import image_similarity as pix
from privlab.measure.image.base import SIMILARITY_METRICS, SimilarityOptions, column_info

__all__ = ["SimilarityTable", "parse_metrics", "score"]


@dataclass
class SimilarityTable:
    """Per-image similarity values.

    Attributes:
        metrics: the value columns, in order (``mse``, ``psnr``, …, ``lpips`` or ``lpips-random``,
            ``classifier_correct``, ``classifier_confidence``).
        rows: one dict per image: ``index`` (and ``label`` when labels were given) plus one float per column.
        means: column → arithmetic mean over images (PSNR: mean of per-image dB values; inf if any pair is equal).
        notes: metric → the exact variant computed (window, σ, scales, weights file, input scaling, …).
        units: column → unit (``"dB"``, ``"fraction"``, ``"probability"`` or None for unitless).
        higher_is_better: column → True when a larger value means more similar (a better reconstruction).
    """

    metrics: list[str]
    rows: list[dict[str, float]]
    means: dict[str, float]
    notes: dict[str, str]
    units: dict[str, str | None] = field(default_factory=dict)
    higher_is_better: dict[str, bool] = field(default_factory=dict)

    def column(self, name: str) -> list[float]:
        """The per-image values of one column."""
        if name not in self.metrics:
            raise ConfigError(f"no column {name!r} in this similarity table; it has {', '.join(self.metrics)}")
        return [r[name] for r in self.rows]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"metrics", "images" (the rows), "means", "notes", "units", "higher_is_better"}``."""
        return {
            "metrics": list(self.metrics),
            "images": [dict(r) for r in self.rows],
            "means": dict(self.means),
            "notes": dict(self.notes),
            "units": dict(self.units),
            "higher_is_better": dict(self.higher_is_better),
        }

    def to_csv(self, path: str | Path) -> Path:
        """Write the per-image rows (no mean row) as CSV with a header, atomically; returns the path."""
        from privlab.store.artifacts import atomic_write_text
        from privlab.store.export import csv_cell

        keys = [k for k in ("index", "label") if self.rows and k in self.rows[0]] + list(self.metrics)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([csv_cell(k) for k in keys])
        for r in self.rows:
            writer.writerow([csv_cell(_csv_value(r.get(k))) for k in keys])
        return atomic_write_text(path, buf.getvalue())


def _csv_value(v: Any) -> Any:
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf" if v < 0 else "nan")
    return v


def parse_metrics(metrics: str | Sequence[str]) -> list[str]:
    """Metric names from ``"psnr,ssim"`` or a list, lower-cased, aliases resolved, duplicates dropped.

    Raises:
        ConfigError: empty; UnknownNameError: an unknown name (with the registered ones and the closest).
    """
    items = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    names: list[str] = []
    for item in items:
        key = str(item).strip().lower()
        if not key:
            continue
        name = SIMILARITY_METRICS.entry(key).name
        if name not in names:
            names.append(name)
    if not names:
        raise ConfigError(f"no similarity metric given; choose from {', '.join(SIMILARITY_METRICS.names())}")
    return names


def score(
    original: torch.Tensor,
    reconstruction: torch.Tensor,
    metrics: str | Sequence[str] = ("mse", "psnr", "ssim"),
    *,
    labels: torch.Tensor | Sequence[int] | None = None,
    classifier: torch.nn.Module | None = None,
    lpips_net: str = "alex",
    lpips_weights: str | Path | None = None,
    device: str | torch.device | None = None,
    ms_ssim_betas: Sequence[float] | None = None,
    ms_ssim_kernel: int | None = None,
    indices: Sequence[int] | None = None,
    semsim_model: str | Path | None = None,
) -> SimilarityTable:
    """Per-image similarity of ``reconstruction`` to ``original`` (both ``N×C×H×W`` float in ``[0, 1]``, C = 1 or 3).

    Args:
        original, reconstruction: the image batches, paired by position.
        metrics: names from :data:`SIMILARITY_METRICS` (list or ``"psnr,ssim"``).
        labels: true labels ``[N]`` (needed by ``classifier``; also written into the rows as ``label``).
        classifier: reference model taking ``[0, 1]`` images and returning logits (run on its own device).
        lpips_net: ``alex`` (default), ``vgg`` or ``squeeze``.
        lpips_weights: backbone weights file, or ``"random"`` (see :mod:`privlab.measure.image.lpips`).
        device: where LPIPS runs (default: CUDA when present, else CPU).
        ms_ssim_betas, ms_ssim_kernel: override the MS-SSIM scales/window (default: chosen from the image size).
        indices: the ``index`` written in each row (default ``0 … N−1``).
        semsim_model: SemSim checkpoint (``semsim.safetensors``) for the ``semsim`` metric (default: the one set with
            :func:`privlab.measure.semsim.set_default_model` or ``$PRIVLAB_SEMSIM_MODEL``).

    Raises:
        ConfigError: bad shapes or ranges, unknown metric, missing labels/classifier, images too small.
        DataMissingError: LPIPS asked for but no backbone weights are available (the message says how to fix it).
    """
    names = parse_metrics(metrics)
    pix.check_images(original, reconstruction)
    n = original.shape[0]
    label_tensor: torch.Tensor | None = None
    if labels is not None:
        label_tensor = torch.as_tensor(labels).reshape(-1)
        if label_tensor.is_floating_point() or label_tensor.is_complex() or label_tensor.dtype == torch.bool:
            raise ConfigError(f"labels must be integers, got dtype {label_tensor.dtype}")
        if label_tensor.numel() != n:
            raise ConfigError(f"got {label_tensor.numel()} labels for {n} images")
        if n and int(label_tensor.min()) < 0:
            raise ConfigError(f"labels must be ≥ 0, got {int(label_tensor.min())}")
        label_tensor = label_tensor.long()
    if indices is not None and len(indices) != n:
        raise ConfigError(f"got {len(indices)} indices for {n} images")
    opts = SimilarityOptions(
        labels=label_tensor,
        classifier=classifier,
        lpips_net=lpips_net,
        lpips_weights=lpips_weights,
        device=device,
        ms_ssim_betas=ms_ssim_betas,
        ms_ssim_kernel=ms_ssim_kernel,
        semsim_model=semsim_model,
    )
    columns: dict[str, torch.Tensor] = {}
    notes: dict[str, str] = {}
    units: dict[str, str | None] = {}
    better: dict[str, bool] = {}
    for name in names:
        out = SIMILARITY_METRICS.get(name)(original, reconstruction, opts)
        columns.update(out.values)
        key = next(iter(out.values)) if len(out.values) == 1 else name  # lpips writes lpips or lpips-random
        notes[key] = out.note
        for col in out.values:
            info = column_info(name, col)
            units[col] = info.unit
            better[col] = info.higher_is_better
    idx = list(range(n)) if indices is None else [int(i) for i in indices]
    rows: list[dict[str, float]] = []
    for i in range(n):
        row: dict[str, float] = {"index": idx[i]}  # type: ignore[dict-item]
        if label_tensor is not None:
            row["label"] = int(label_tensor[i])  # type: ignore[assignment]
        for col, vals in columns.items():
            row[col] = float(vals[i])
        rows.append(row)
    means = {col: float(vals.double().mean()) for col, vals in columns.items()}
    return SimilarityTable(list(columns), rows, means, notes, units, better)
