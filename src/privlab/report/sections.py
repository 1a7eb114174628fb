"""Report sections: one HTML fragment per experiment, registered by experiment name.

A renderer is ``render(runs, store) -> str``: it gets every run of its experiment (oldest first, final metrics
loaded) and the open :class:`~privlab.store.Store`, and returns an HTML fragment. Everything that comes from a run
(names, errors, metric names) must go through :func:`esc`. An experiment without a renderer gets
:func:`generic_section`.

Example:
    >>> from privlab.report.sections import SECTIONS
    >>> @SECTIONS.register("demo_exp", title="Demo")
    ... def demo(runs, store):
    ...     return f"<p>{len(runs)} run(s)</p>"
    >>> SECTIONS.entry("demo_exp").meta["title"]
    'Demo'
    >>> SECTIONS.remove("demo_exp")
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from privlab.registry import Registry
from privlab.report.budget import take_figure
from privlab.report.plots import training_curves
from privlab.store import RunRecord, Store

__all__ = [
    "SECTIONS",
    "SectionRenderer",
    "artifact_path",
    "esc",
    "format_value",
    "generic_section",
    "is_accuracy_like",
    "metric_header",
    "metrics_table",
    "run_anchor",
    "run_curves",
    "run_label",
    "runs_metrics_table",
    "train_section",
]

SectionRenderer = Callable[[list[RunRecord], Store], str]
SECTIONS: Registry[SectionRenderer] = Registry("report section")


# -- formatting helpers (shared with build.py) --------------------------------------------------------------------
def esc(value: Any) -> str:
    """HTML-escape ``str(value)`` (quotes included, so it is safe in attributes too); None → empty."""
    return "" if value is None else html.escape(str(value), quote=True)


def is_accuracy_like(name: str, unit: str | None = None) -> bool:
    """Whether a metric is a fraction such as an accuracy (shown with 4 significant digits, zeros kept)."""
    low = name.lower()
    return "acc" in low or (unit or "").lower() in ("fraction", "ratio", "prob", "probability")


def format_value(value: float | None, name: str = "", unit: str | None = None) -> str:
    """A metric value for display: accuracies with 4 significant digits (``0.9000``), others ``.4g``.

    Args:
        value: the number (None / NaN → ``—``).
        name: metric name, to recognise accuracy-like values.
        unit: metric unit (``fraction`` also counts as accuracy-like).
    """
    if value is None:
        return "—"
    v = float(value)
    if math.isnan(v):
        return "—"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if is_accuracy_like(name, unit):
        return f"{v:#.4g}"
    if 1e4 <= abs(v) < 1e9:
        return f"{v:.6g}"
    return f"{v:.4g}"


def run_label(run: RunRecord) -> str:
    """Plain-text label of a run: ``id`` or ``id (name)``."""
    return f"{run.id} ({run.name})" if run.name else run.id


def artifact_path(store: Store, run: RunRecord, kind: str) -> Path | None:
    """The file of ``run``'s first artifact of ``kind`` (under the store's output folder), or None."""
    for art in store.artifacts(run.id):
        if art["kind"] == kind:
            return store.out_dir / art["path"]
    return None


def run_anchor(run_id: str) -> str:
    """The HTML ``id`` of a run's details block (escaped, for ``href="#…"``)."""
    return esc(f"run-{run_id}")


def metric_header(name: str, info: Mapping[str, Mapping[str, Any]]) -> str:
    """A ``<th>`` for a metric column: its name, with its unit (and ↑/↓ direction) below."""
    meta = info.get(name, {})
    unit, hib = meta.get("unit"), meta.get("higher_is_better")
    arrow = "" if hib is None else (" ↑" if hib else " ↓")
    sub = f"<br><small>{esc(unit)}{arrow}</small>" if unit or arrow else ""
    return f'<th class="num">{esc(name)}{sub}</th>'


def metrics_table(metrics: Mapping[str, float], info: Mapping[str, Mapping[str, Any]]) -> str:
    """Table of one run's final metrics: metric | value | unit | kind | better."""
    if not metrics:
        return '<p class="muted">No final metrics.</p>'
    rows = []
    for name, value in metrics.items():
        meta = info.get(name, {})
        hib = meta.get("higher_is_better")
        better = "" if hib is None else ("higher" if hib else "lower")
        rows.append(
            f'<tr><td>{esc(name)}</td><td class="num">{esc(format_value(value, name, meta.get("unit")))}</td>'
            f"<td>{esc(meta.get('unit'))}</td><td>{esc(meta.get('kind'))}</td><td>{better}</td></tr>"
        )
    return (
        '<table class="metrics"><thead><tr><th>metric</th><th class="num">value</th><th>unit</th><th>kind</th>'
        f"<th>better</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _metric_names(runs: Iterable[RunRecord]) -> list[str]:
    names: dict[str, None] = {}
    for r in runs:
        names.update(dict.fromkeys(r.metrics))
    return list(names)


def runs_metrics_table(runs: list[RunRecord], info: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per run (linked to its details), one column per final metric: for comparing runs side by side."""
    names = _metric_names(runs)
    head = '<th>run</th><th>name</th><th>status</th><th class="num">seed</th>' + "".join(
        metric_header(n, info) for n in names
    )
    rows = []
    for r in runs:
        cells = "".join(
            f'<td class="num">{esc(format_value(r.metrics[n], n, info.get(n, {}).get("unit")))}</td>'
            if n in r.metrics
            else "<td></td>"
            for n in names
        )
        rows.append(
            f'<tr><td><a href="#{run_anchor(r.id)}">{esc(r.id)}</a></td><td>{esc(r.name)}</td>'
            f'<td class="status-{esc(r.status)}">{esc(r.status)}</td><td class="num">{esc(r.seed)}</td>{cells}</tr>'
        )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def run_curves(run: RunRecord, store: Store) -> str:
    """A ``<figure>`` with the training curves of one run, or an empty string when it logged no stepped metric
    or the report's per-run figure budget is spent (:mod:`privlab.report.budget`)."""
    if not take_figure():
        return ""
    uri = training_curves(store.metrics(run.id), run_label(run))
    if uri is None:
        return ""
    return (
        f'<figure><img src="{uri}" alt="training curves of {esc(run.id)}">'
        f"<figcaption>{esc(run_label(run))}: stepped metrics per epoch</figcaption></figure>"
    )


# -- sections -----------------------------------------------------------------------------------------------------
def generic_section(runs: list[RunRecord], store: Store) -> str:
    """Fallback for experiments without a renderer: the runs' final metrics side by side and any stepped curves."""
    info = store.metric_info()
    parts = [runs_metrics_table(runs, info)]
    curves = [c for c in (run_curves(r, store) for r in runs) if c]
    if curves:
        parts.append(f'<div class="figures">{"".join(curves)}</div>')
    return "\n".join(parts)


@SECTIONS.register("train", title="Training")
def train_section(runs: list[RunRecord], store: Store) -> str:
    """Runs of the ``train`` experiment: per run, its loss/accuracy curves per epoch and its final metrics."""
    info = store.metric_info()
    parts = [runs_metrics_table(runs, info)]
    for r in runs:
        curves = run_curves(r, store) or '<p class="muted">No per-epoch curves drawn.</p>'
        error = f'<pre class="error">{esc(r.error)}</pre>' if r.error else ""
        parts.append(
            f'<div class="run-block"><h3>{esc(run_label(r))}</h3>{error}'
            f'<div class="figures">{curves}</div>{metrics_table(r.metrics, info)}</div>'
        )
    return "\n".join(parts)
