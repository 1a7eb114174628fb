"""Matplotlib figures for the HTML report, embedded as base64 PNG data URIs (no files beside the page).

Figures are built as :class:`matplotlib.figure.Figure` objects rendered by the Agg canvas, without pyplot: no display
is needed and the user's matplotlib backend (e.g. in a notebook) is left alone.

Example:
    >>> from privlab.store import MetricRecord
    >>> recs = [MetricRecord("train_loss", 1.0 / s, step=s) for s in (1, 2, 3)]
    >>> training_curves(recs, "demo").startswith("data:image/png;base64,")
    True
    >>> training_curves([MetricRecord("test_accuracy", 0.9)], "final only") is None
    True
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterable

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from privlab.store import MetricRecord

__all__ = ["figure_to_data_uri", "group_stepped", "training_curves"]

DPI = 100


def figure_to_data_uri(fig: Figure, *, dpi: int = DPI) -> str:
    """Render ``fig`` as PNG and return it as a ``data:image/png;base64,…`` URI; the figure is closed.

    Args:
        fig: a matplotlib figure.
        dpi: resolution in dots per inch.

    Returns:
        The data URI, ready for an ``<img src=…>`` attribute.
    """
    buf = io.BytesIO()
    # Software=None drops matplotlib's PNG text chunk (it holds a URL); the page stays free of any address.
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def group_stepped(records: Iterable[MetricRecord]) -> dict[str, list[tuple[int, float]]]:
    """Stepped metric values per name as ``[(step, value), …]`` sorted by step.

    Final values (``step is None``) are left out; when a step was logged twice (a resumed run) the later value wins;
    non-finite values are dropped.
    """
    by_name: dict[str, dict[int, float]] = {}
    for r in records:
        if r.step is None:
            continue
        by_name.setdefault(r.name, {})[int(r.step)] = float(r.value)
    return {
        name: sorted((s, v) for s, v in steps.items() if math.isfinite(v))
        for name, steps in by_name.items()
        if any(math.isfinite(v) for v in steps.values())
    }


def _panel(name: str, unit: str | None) -> tuple[str, str]:
    """``(panel key, y-axis label)`` of a stepped metric."""
    low = name.lower()
    if "loss" in low:
        return "loss", f"loss ({unit})" if unit else "loss"
    if "acc" in low:
        return "accuracy", f"accuracy ({unit or 'fraction'})"
    if unit:
        return f"unit:{unit}", unit
    return f"name:{name}", name


def training_curves(records: Iterable[MetricRecord], title: str, *, max_columns: int = 3) -> str | None:
    """Plot every stepped metric of one run against its step (epoch), as a data URI.

    Losses share one panel, accuracies a second; any other stepped metric (learning rate, seconds per epoch, …)
    shares a panel with metrics of the same unit, or gets its own when it has none.

    Args:
        records: the run's metric records (``Store.metrics(run_id)``); step-less ones are ignored.
        title: figure title (plain text).
        max_columns: panels per row.

    Returns:
        A ``data:image/png;base64,…`` URI, or None when the run has no stepped metric.
    """
    records = list(records)
    series = group_stepped(records)
    if not series:
        return None
    units = {r.name: r.unit for r in records if r.unit}
    panels: dict[str, tuple[str, list[str]]] = {}
    for name in series:
        key, label = _panel(name, units.get(name))
        panels.setdefault(key, (label, []))[1].append(name)
    order = sorted(panels, key=lambda k: {"loss": 0, "accuracy": 1}.get(k, 2))
    ncols = min(len(order), max_columns)
    nrows = -(-len(order) // ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[len(order) :]:
        ax.set_visible(False)
    for ax, key in zip(axes.flat, order, strict=False):
        label, names = panels[key]
        if key.startswith("unit:") and len(names) == 1:
            label = f"{names[0]} ({label})"
        for name in names:
            steps, values = zip(*series[name], strict=False)
            ax.plot(steps, values, marker="o" if len(steps) <= 30 else None, markersize=3, label=name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("step (epoch)")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(title, fontsize="medium")
    return figure_to_data_uri(fig)
