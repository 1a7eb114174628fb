"""The report's Reproduction section: published values beside measured ones, one row per ``reference:`` entry.

Runs whose spec carries a ``reference:`` block (see :class:`privlab.config.Reference`) contribute one row per
referenced metric: published, measured, difference, the tolerance applied and whether the run is within it.
"""

from __future__ import annotations

from privlab.reference import compare
from privlab.report.sections import esc, format_value, run_anchor, run_label
from privlab.store import RunRecord

__all__ = ["reproduction_rows", "reproduction_section"]


def reproduction_rows(runs: list[RunRecord]) -> list[tuple[RunRecord, list]]:
    """``(run, rows)`` for every run with references (rows from :func:`privlab.reference.compare`)."""
    out = []
    for run in runs:
        refs = (run.spec or {}).get("reference") or {}
        if refs:
            out.append((run, compare(refs, run.metrics)))
    return out


def reproduction_section(runs: list[RunRecord]) -> str | None:
    """The section's HTML fragment, or None when no run carries a reference."""
    per_run = reproduction_rows(runs)
    if not per_run:
        return None
    body, n_in, n_all = [], 0, 0
    for run, rows in per_run:
        for row in rows:
            n_all += 1
            n_in += row.within is True
            cls = {"within": "status-finished", "outside": "status-failed"}.get(row.status, "muted")
            diff = "—" if row.difference is None else f"{row.difference:+.4g}"
            body.append(
                f'<tr><td>{esc(run.experiment)}</td><td><a href="#{run_anchor(run.id)}">{esc(run_label(run))}</a></td>'
                f'<td>{esc(row.metric)}</td><td class="num">{esc(format_value(row.published, row.metric))}</td>'
                f'<td class="num">{esc(format_value(row.measured, row.metric))}</td><td class="num">{esc(diff)}</td>'
                f'<td class="num">±{esc(f"{row.allowed:.4g}")}</td><td class="{cls}">{esc(row.status)}</td>'
                f"<td>{esc(row.source)}</td><td>{esc(row.note or '')}</td></tr>"
            )
    cols = ("experiment", "run", "metric", "published", "measured", "difference", "tolerance", "verdict", "source")
    head = "".join(f"<th>{h}</th>" for h in (*cols, "setting differences"))
    return (
        f"<p>{n_in} of {n_all} published values reproduced within tolerance. Values are in the metric's own unit "
        "(accuracies as fractions); the difference is measured − published.</p>"
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    )
