"""Report blocks for mutual-information records (artifacts of kind ``mi`` written by ``pipelines.mi.log_mi``).

Every MI figure is shown with its interval, the estimator that produced it (and the ``auto`` rule), the
diagnostics' warnings and the calibration line; an MI reduction is shown with its interval and how it was made.
"""

from __future__ import annotations

import json
from typing import Any

from privlab.report.sections import SECTIONS, esc, generic_section, run_label
from privlab.store import RunRecord, Store

__all__ = ["mi_records_html"]


def _interval(ci: Any, unit: str) -> str:
    return f"[{ci[0]:.4g}, {ci[1]:.4g}] {unit}" if ci else "—"


def _estimate_cells(rec: dict[str, Any]) -> list[str]:
    est = esc(rec.get("estimator"))
    rule = rec.get("details", {}).get("rule")
    if rule:
        est += f"<br><small>{esc(rule)}; chosen: {esc(rec['details'].get('chosen'))}</small>"
    diag = rec.get("diagnostics") or {}
    warns = "".join(f"<li>{esc(w)}</li>" for w in diag.get("warnings", []))
    cal = (diag.get("calibration") or {}).get("text") or "no calibration line for this estimator and dimension"
    return [
        est,
        f"n = {rec.get('n')}, d = {' + '.join(map(str, rec.get('dims', [])))}",
        f"<ul>{warns}</ul>" if warns else "none",
        esc(cal),
    ]


def mi_records_html(runs: list[RunRecord], store: Store) -> str:
    """A table of every MI record of ``runs`` (empty string when there is none)."""
    rows = []
    for run in runs:
        for art in store.artifacts(run.id):
            if art["kind"] != "mi":
                continue
            try:
                rec = json.loads((store.out_dir / art["path"]).read_text("utf-8"))
            except (OSError, json.JSONDecodeError):
                bad = f"unreadable {esc(art['path'])}"
                rows.append(f"<tr><td>{esc(run_label(run))}</td><td colspan='7'>{bad}</td></tr>")
                continue
            if "reduction" in rec:
                red = rec["reduction"]
                value = f"{red['percent']:.3g} % reduction"
                ci = _interval(red.get("ci95"), "%") + f"<br><small>{esc(red.get('method'))}</small>"
                cells = _estimate_cells(rec["noisy"])
            else:
                value = f"{rec['nats']:.4g} nats"
                if rec.get("truth") is not None:
                    value += f"<br><small>truth {rec['truth']:.4g}</small>"
                ci = _interval(rec.get("ci95"), "nats")
                if rec.get("preprocess", "none") != "none":
                    ci += f"<br><small>preprocess: {esc(rec['preprocess'])}</small>"
                cells = _estimate_cells(rec)
            rows.append(
                f"<tr><td>{esc(run_label(run))}</td><td>{esc(rec.get('name'))}</td><td>{value}</td><td>{ci}</td>"
                + "".join(f"<td>{c}</td>" for c in cells)
                + "</tr>"
            )
    if not rows:
        return ""
    head = "".join(
        f"<th>{h}</th>"
        for h in ("run", "quantity", "value", "95 % interval", "estimator", "samples", "warnings", "calibration")
    )
    return f"<h3>Mutual information</h3><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


@SECTIONS.register("mi", title="Mutual information")
def mi_section(runs: list[RunRecord], store: Store) -> str:
    """The ``mi`` experiment: MI records with interval, estimator, diagnostics and calibration; then the metrics."""
    return mi_records_html(runs, store) + "\n" + generic_section(runs, store)
