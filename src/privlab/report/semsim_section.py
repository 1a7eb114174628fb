"""Report section of the ``semsim`` experiment: metric-vs-human scatter plots with regression bands, correlations.

Reads each run's ``agreement.json`` (artifact kind ``semsim_agreement``). Every metric gets one panel: its
per-setting mean (x) against the recognition rate of that setting (y), the least-squares line and its 95 %
confidence band for the mean (Student t, n − 2 degrees of freedom). The table lists Spearman, Pearson and Kendall
with bootstrap 95 % intervals (per setting and per image) and the ordering accuracy, each computed with the metric
oriented as a similarity. Proxy runs say so in the heading.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from privlab.report.sections import SECTIONS, esc, generic_section, run_label
from privlab.store import RunRecord, Store

__all__ = ["regression_band", "scatter_panels", "semsim_section"]


def regression_band(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Least-squares line of ``y`` on ``x`` at ``grid`` with the 95 % confidence band of the mean:
    ``(fit, low, high)``; None with fewer than 3 points or constant ``x``."""
    from scipy.stats import t as student_t

    n = len(x)
    if n < 3 or np.ptp(x) == 0:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    s = math.sqrt(float(resid @ resid) / (n - 2))
    sxx = float(((x - x.mean()) ** 2).sum())
    half = float(student_t.ppf(0.975, n - 2)) * s * np.sqrt(1 / n + (grid - x.mean()) ** 2 / sxx)
    fit = slope * grid + intercept
    return fit, fit - half, fit + half


def scatter_panels(per_setting: list[dict[str, Any]], metrics: list[str], title: str) -> str | None:
    """One scatter panel per metric (setting mean vs human rate, regression band) as a PNG data URI."""
    from matplotlib.figure import Figure

    from privlab.report.plots import figure_to_data_uri

    if not per_setting or not metrics:
        return None
    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig = Figure(figsize=(4 * cols, 3.3 * rows))
    y = np.array([p["human_rate"] for p in per_setting], dtype=float)
    for k, m in enumerate(metrics):
        ax = fig.add_subplot(rows, cols, k + 1)
        x = np.array([p.get(m, float("nan")) for p in per_setting], dtype=float)
        ok = np.isfinite(x)
        ax.scatter(x[ok], y[ok], s=22, color="C0", zorder=3)
        for p, xi, yi in zip(per_setting, x, y, strict=True):
            if math.isfinite(xi):
                ax.annotate(str(p["setting"])[:14], (xi, yi), fontsize=6, alpha=0.7, xytext=(3, 3),
                            textcoords="offset points")  # fmt: skip
        if ok.sum() >= 3:
            grid = np.linspace(x[ok].min(), x[ok].max(), 50)
            band = regression_band(x[ok], y[ok], grid)
            if band is not None:
                fit, lo, hi = band
                ax.plot(grid, fit, color="C1", lw=1.2)
                ax.fill_between(grid, lo, hi, color="C1", alpha=0.2, lw=0)
        ax.set_xlabel(f"{m} (setting mean)")
        ax.set_ylabel("recognition rate")
        ax.set_ylim(-0.05, 1.05)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return figure_to_data_uri(fig)


def _fmt(c: Any) -> str:
    if not isinstance(c, dict) or c.get("value") is None or not math.isfinite(float(c["value"])):
        return "–"
    ci = c.get("ci95")
    return f"{c['value']:.3f}" + (f"<br><small>[{ci[0]:.2f}, {ci[1]:.2f}]</small>" if ci else "")


def _acc(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) and math.isfinite(v) else "–"


def _run_html(run: RunRecord, rec: dict[str, Any]) -> str:
    proxy = bool(rec.get("info", {}).get("proxy"))
    kind = "PROXY labels (a classifier's recognition, not humans)" if proxy else "human labels"
    metrics = list(rec.get("metrics", {}))
    head = "".join(
        f"<th>{h}</th>"
        for h in ("metric", "Spearman (settings)", "Pearson (settings)", "Kendall (settings)",
                  "ordering acc. (settings)", "Spearman (images)", "ordering acc. (images)")
    )  # fmt: skip
    body = []
    for m, d in rec.get("metrics", {}).items():
        s, i = d.get("setting", {}), d.get("image", {})
        body.append(
            f"<tr><td>{esc(m)}</td><td>{_fmt(s.get('spearman'))}</td><td>{_fmt(s.get('pearson'))}</td>"
            f"<td>{_fmt(s.get('kendall'))}</td><td>{_acc(s.get('ordering_accuracy'))}</td>"
            f"<td>{_fmt(i.get('spearman'))}</td><td>{_acc(i.get('ordering_accuracy'))}</td></tr>"
        )
    verdict = rec.get("semsim_beats_baselines") or {}
    line = ""
    if verdict:
        base = ", ".join(verdict.get("baselines", []))
        line = (
            f"<p>On the held-out pairs SemSim {'beats' if verdict.get('ordering_accuracy') else 'does NOT beat'} "
            f"{esc(base)} in ordering accuracy and {'beats' if verdict.get('spearman') else 'does NOT beat'} them in "
            "Spearman correlation (per image).</p>"
        )
    img = scatter_panels(rec.get("per_setting", []), metrics, f"{run_label(run)}: {kind}")
    fig = f"<img alt='metric vs recognition rate' src='{img}'>" if img else ""
    notes = "".join(f"<li>{esc(k)}: {esc(v)}</li>" for k, v in (rec.get("notes") or {}).items())
    return (
        f"<h3>{esc(run_label(run))} — {esc(kind)}</h3>"
        f"<p>{rec.get('n_images')} held-out reconstructions in {rec.get('n_settings')} settings "
        f"({rec.get('train_pairs')} pairs used for training). Correlations use each metric oriented as a similarity "
        "(negated when lower = more similar): positive = agrees with the labels.</p>"
        f"{line}<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{fig}"
        + (f"<ul>{notes}</ul>" if notes else "")
    )


@SECTIONS.register("semsim", title="SemSim: metric agreement with recognisability labels")
def semsim_section(runs: list[RunRecord], store: Store) -> str:
    """Per run: correlation table and metric-vs-recognition scatter plots; then the generic metrics table."""
    parts = []
    for run in runs:
        for art in store.artifacts(run.id):
            if art["kind"] != "semsim_agreement":
                continue
            try:
                rec = json.loads((store.out_dir / art["path"]).read_text("utf-8"))
            except (OSError, json.JSONDecodeError):
                parts.append(f"<p>{esc(run_label(run))}: unreadable {esc(art['path'])}</p>")
                continue
            parts.append(_run_html(run, rec))
    return "\n".join(parts) + "\n" + generic_section(runs, store)
