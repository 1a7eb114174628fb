"""Report section of the ``inversion`` experiment: a comparison table, leakage by defence, and image grids."""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from typing import Any

from matplotlib.figure import Figure

from privlab.report.budget import take_figure
from privlab.report.plots import figure_to_data_uri
from privlab.report.sections import SECTIONS, esc, format_value, run_anchor, run_label
from privlab.store import RunRecord, Store

__all__ = ["inversion_section"]

_RUN_COLUMNS = ("label_accuracy", "gradient_cosine", "epsilon")  # what the pipeline measures besides image metrics


def _columns(runs: list[RunRecord]) -> list[str]:
    """The image-metric columns the runs have (every registered metric, in the order the runs logged them), then the
    pipeline's own columns."""
    from privlab.measure.image import metric_columns

    image = metric_columns()
    cols = list(dict.fromkeys(name for r in runs for name in r.metrics if name in image))
    return cols + [c for c in _RUN_COLUMNS if any(c in r.metrics for r in runs)]


def _unit(info: dict[str, dict[str, Any]], column: str) -> str | None:
    """The unit logged with ``column``, else the one its image metric registered."""
    from privlab.measure.image import metric_columns

    unit = info.get(column, {}).get("unit")
    if unit is None and column in metric_columns():
        unit = metric_columns()[column].unit
    return unit


def _defense_label(run: RunRecord, store: Store) -> str:
    """The defence's short label (``prune 70%`` …) that the run stored in ``attack.json``; the bare defence name from
    the spec when that file is missing or older."""
    for art in store.artifacts(run.id):
        if art["kind"] == "attack":
            try:
                label = json.loads((store.out_dir / art["path"]).read_text("utf-8")).get("defense")
            except (OSError, json.JSONDecodeError, AttributeError):
                break
            if isinstance(label, str) and label:
                return label
            break
    return str((run.spec.get("defense") or {}).get("name", "none"))


def _grid_img(run: RunRecord, store: Store) -> str:
    for art in store.artifacts(run.id):
        if art["kind"] == "grid":
            if not take_figure():
                return ""
            try:
                data = (store.out_dir / art["path"]).read_bytes()
            except OSError:
                return '<p class="muted">grid image missing</p>'
            uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
            return (
                f'<figure><img src="{uri}" alt="originals and reconstructions of {esc(run.id)}" '
                'style="image-rendering: pixelated; max-width: 100%">'
                f"<figcaption>{esc(run_label(run))}: originals (top), reconstructions (bottom)</figcaption></figure>"
            )
    return ""


def _notes(run: RunRecord, store: Store) -> str:
    for art in store.artifacts(run.id):
        if art["kind"] == "per_image":
            try:
                notes = json.loads((store.out_dir / art["path"]).read_text("utf-8")).get("notes", {})
            except (OSError, json.JSONDecodeError):
                return ""
            items = "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in notes.items())
            return f"<details><summary>metric definitions</summary><ul>{items}</ul></details>" if items else ""
    return ""


def _psnr_plot(runs: list[RunRecord], labels: dict[str, str]) -> str:
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    for r in runs:
        if "psnr" in r.metrics:
            groups[r.spec.get("attack", "?")][labels[r.id]] = r.metrics["psnr"]
    defenses = sorted({d for g in groups.values() for d in g})
    if len(runs) < 2 or not defenses:
        return ""
    fig = Figure(figsize=(max(4.0, 1.2 * len(defenses) + 2), 3.2))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(groups))
    for i, (attack, vals) in enumerate(sorted(groups.items())):
        xs = [j + i * width for j, d in enumerate(defenses) if d in vals]
        ax.bar(xs, [vals[d] for d in defenses if d in vals], width, label=attack)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(defenses))], defenses, rotation=20, ha="right")
    ax.set_ylabel("mean PSNR of reconstructions (dB)")
    ax.set_title("leakage by defence (higher = more leakage)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return f'<figure><img src="{figure_to_data_uri(fig)}" alt="PSNR by defence"></figure>'


@SECTIONS.register("inversion", title="Gradient inversion")
def inversion_section(runs: list[RunRecord], store: Store) -> str:
    """One row per run (attack, defence, model, similarity means, label accuracy), a PSNR-by-defence chart, and each
    run's grid of originals above reconstructions."""
    info = store.metric_info()
    cols = _columns(runs)
    labels = {r.id: _defense_label(r, store) for r in runs}
    head = "<th>run</th><th>attack</th><th>defence</th><th>model</th><th>images</th>" + "".join(
        f'<th class="num">{esc(c)}<br><small>{esc(_unit(info, c) or "")}</small></th>' for c in cols
    )
    rows = []
    for r in runs:
        s = r.spec
        cells = "".join(f'<td class="num">{esc(format_value(r.metrics.get(c), c, _unit(info, c)))}</td>' for c in cols)
        status = "" if r.status == "finished" else f' <span class="status-{esc(r.status)}">{esc(r.status)}</span>'
        rows.append(
            f'<tr><td><a href="#{run_anchor(r.id)}">{esc(r.id)}</a>{status}</td><td>{esc(s.get("attack"))}</td>'
            f"<td>{esc(labels[r.id])}</td><td>{esc((s.get('victim') or {}).get('model'))}</td>"
            f'<td class="num">{esc(s.get("num_images"))}</td>{cells}</tr>'
        )
    parts = [
        "<p>PSNR, SSIM and LPIPS compare each reconstruction with its original (images in [0, 1]); higher PSNR/SSIM "
        "and lower LPIPS mean more leakage. <code>gradient_cosine</code> is the cosine between the defended and the "
        "exact gradient (utility of the shared update).</p>",
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>',
        _psnr_plot(runs, labels),
    ]
    for r in runs:
        grid = _grid_img(r, store)
        if grid or r.error:
            error = f'<pre class="error">{esc(r.error)}</pre>' if r.error else ""
            parts.append(f'<div class="run-block"><h3>{esc(run_label(r))}</h3>{error}{grid}{_notes(r, store)}</div>')
    return "\n".join(p for p in parts if p)
