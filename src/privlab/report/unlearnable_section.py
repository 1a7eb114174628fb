"""Report section of the ``unlearnable`` experiment.

Per run (one protection): clean-vs-poisoned accuracy table over every attacker setting, the test-accuracy curves of
clean and poisoned supervised training, and a grid of clean images, perturbations (amplified to the full range) and
poisoned images. Across runs: the transfer matrix — one row per protection (with the backbone its noise was made on),
one column per attacker setting (supervised architectures, SSL linear probe / kNN), cells = clean test accuracy after
training on the poisoned set, the clean-data reference in the first row — and the defence table: one row per
protection, one column per attacker-side counter-measure (``countermeasures`` of the spec), cells = clean test
accuracy of the first supervised attacker trained on the washed poisoned set.
"""

from __future__ import annotations

import json
from typing import Any

from privlab.report.budget import take_figure
from privlab.report.sections import (
    SECTIONS,
    artifact_path,
    esc,
    format_value,
    run_curves,
    run_label,
    runs_metrics_table,
)
from privlab.store import RunRecord, Store

__all__ = ["defence_table_html", "transfer_matrix_html", "unlearnable_section"]


def _transfer_row(store: Store, run: RunRecord) -> dict[str, Any] | None:
    path = artifact_path(store, run, "unlearnable-transfer")
    if path is None:
        return None
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def transfer_matrix_html(rows: list[tuple[RunRecord, dict[str, Any]]]) -> str:
    """The transfer matrix as an HTML table (empty string without rows)."""
    if not rows:
        return ""
    cols: list[str] = []
    for _, rec in rows:
        cols += [c for c in rec.get("settings", []) if c not in cols]
    head = "<th>protection (noise backbone)</th><th>run</th>" + "".join(f'<th class="num">{esc(c)}</th>' for c in cols)

    def cells(values: dict[str, float]) -> str:
        return "".join(
            f'<td class="num">{esc(format_value(values.get(c), "accuracy"))}</td>' if c in values else "<td></td>"
            for c in cols
        )

    clean = rows[0][1].get("clean", {})
    body = [f"<tr><td><em>clean data (reference)</em></td><td></td>{cells(clean)}</tr>"]
    for run, rec in rows:
        body.append(
            f"<tr><td>{esc(rec.get('protection'))}</td><td>{esc(run.id)}</td>{cells(rec.get('poisoned', {}))}</tr>"
        )
    return (
        "<h3>Transfer matrix</h3><p>Clean test accuracy (fraction) of each attacker setting trained on each "
        "protection's poisoned training set; lower = the protection transfers to that setting.</p>"
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    )


def defence_table_html(rows: list[tuple[RunRecord, dict[str, Any]]]) -> str:
    """Protection × attacker defence: clean test accuracy after training on the washed poisoned set (HTML; empty
    string when no run measured a defence)."""
    rows = [(r, rec) for r, rec in rows if rec.get("countermeasures")]
    if not rows:
        return ""
    cols: list[str] = []
    for _, rec in rows:
        cols += [c for c in rec["countermeasures"] if c not in cols]
    cols.sort(key=lambda c: c != "none")  # no defence first
    head = "<th>protection</th><th>run</th>" + "".join(f'<th class="num">{esc(c)}</th>' for c in cols)
    body = []
    for run, rec in rows:
        sup0 = next((s for s in rec.get("settings", []) if s.startswith("supervised:")), None)
        clean = rec.get("clean", {}).get(sup0) if sup0 else None
        cells = "".join(
            f'<td class="num">{esc(format_value(rec["countermeasures"].get(c), "accuracy"))}</td>'
            if c in rec["countermeasures"]
            else "<td></td>"
            for c in cols
        )
        ref = f" (clean training: {esc(format_value(clean, 'accuracy'))})" if clean is not None else ""
        body.append(f"<tr><td>{esc(rec.get('protection'))}{ref}</td><td>{esc(run.id)}</td>{cells}</tr>")
    return (
        "<h3>Attacker defences</h3><p>Clean test accuracy (fraction) of the first supervised attacker trained on "
        "each protection's poisoned training set after the attacker's counter-measure (<code>none</code>: the "
        "poisoned set as released); higher = the defence washes the protection out.</p>"
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    )


def _grid(store: Store, run: RunRecord) -> str:
    path = artifact_path(store, run, "unlearnable-examples")
    if path is None or not take_figure():
        return ""
    try:
        from privlab.report.grids import grid_data_uri
        from privlab.store import load_tensors

        t, meta = load_tensors(path)
        eps = float(meta.get("epsilon") or 1.0)
        amplified = (t["noise"] / (2 * eps) + 0.5).clamp(0, 1)
        uri = grid_data_uri([t["clean"], amplified, t["poisoned"]], scale=3)
    except Exception as e:  # a broken artifact must not break the whole report
        return f'<p class="muted">examples unreadable: {esc(e)}</p>'
    return (
        f'<figure><img src="{uri}" alt="perturbation grid of {esc(run.id)}"><figcaption>rows: clean, perturbation '
        f"(amplified: ±ε → black/white), poisoned — {esc(meta.get('label'))}, ε = {eps * 255:.3g}/255</figcaption>"
        "</figure>"
    )


def _accuracy_table(rec: dict[str, Any]) -> str:
    rows = []
    for s in rec.get("settings", []):
        c, p = rec.get("clean", {}).get(s), rec.get("poisoned", {}).get(s)
        drop = None if c is None or p is None else 100 * (c - p)
        rows.append(
            f'<tr><td>{esc(s)}</td><td class="num">{esc(format_value(c, "accuracy"))}</td>'
            f'<td class="num">{esc(format_value(p, "accuracy"))}</td>'
            f'<td class="num">{"—" if drop is None else f"{drop:.1f}"}</td></tr>'
        )
    return (
        '<table class="metrics"><thead><tr><th>attacker setting</th><th class="num">clean training</th>'
        '<th class="num">poisoned training</th><th class="num">drop (points)</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


DIGITS_NOTE = (
    '<p class="muted"><strong>Why the digits runs show no drop at ε = 8/255.</strong> The embedded digits images are '
    "8×8 scans with strokes of full contrast: pairs of class means differ by about 0.21 per pixel (RMS), seven times "
    "the 8/255 ≈ 0.031 of the noise, and a small victim learns the digits as fast as any shortcut, so it keeps the "
    "content (measured: class-wise EM 95.8 → 95.6 % for LeNet-5; drops appear only at 32–64/255). The published "
    "effect needs natural images: run the <code>cifar10-cpu</code> preset (<code>privlab run unlearnable --preset "
    "cifar10-cpu --data-root DIR</code>, CIFAR-10 10 000-image subset), where the same code takes a fast_cnn "
    "victim from 71.9 / 69.0 % clean (seeds 0 / 1) to 22.8 / 15.3 % (class-wise EM) and 24.4 / 23.0 % "
    "(sample-wise EM), random noise to 70.1 / 68.7 % (the SimCLR attacker, TUE and the defences in "
    "docs/unlearnable.md and docs/reproduction.md).</p>"
)


def _is_digits(run: RunRecord) -> bool:
    return (run.spec.get("dataset") or {}).get("name") == "digits"


@SECTIONS.register("unlearnable", title="Unlearnable examples")
def unlearnable_section(runs: list[RunRecord], store: Store) -> str:
    """All runs' headline metrics, the transfer matrix, and per run its table, curves and perturbation grid."""
    info = store.metric_info()
    parts = [runs_metrics_table(runs, info)]
    if any(_is_digits(r) for r in runs):
        parts.append(DIGITS_NOTE)
    rows = [(r, rec) for r in runs if (rec := _transfer_row(store, r)) is not None]
    parts.append(transfer_matrix_html(rows))
    parts.append(defence_table_html(rows))
    for r in runs:
        rec = _transfer_row(store, r)
        error = f'<pre class="error">{esc(r.error)}</pre>' if r.error else ""
        table = _accuracy_table(rec) if rec else '<p class="muted">No results recorded.</p>'
        label = esc(rec.get("protection")) if rec else ""
        parts.append(
            f'<div class="run-block"><h3>{esc(run_label(r))} — {label}</h3>{error}{table}'
            f'<div class="figures">{run_curves(r, store)}{_grid(store, r)}</div></div>'
        )
    return "\n".join(parts)
