"""Report section of the ``inversion`` experiment: a comparison table, leakage by defence, and image grids.

Each run's grid shows every original above its reconstruction, **sorted by SemSim** (lowest distance first) when
the run scored SemSim, else **by PSNR** (highest first) — most leaked first either way — with the image's PSNR /
SSIM / LPIPS / SemSim under it. It reads ``pairs.safetensors`` (artifact kind ``pairs``: uint8 images + per-image
scores); runs stored before that file existed show their ``grid.png`` in attack order. Each grid is one per-run
figure of the report's budget (:func:`privlab.report.budget.take_figure`).
"""

from __future__ import annotations

import base64
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from privlab.report.budget import take_figure
from privlab.report.plots import figure_to_data_uri
from privlab.report.sections import SECTIONS, artifact_path, esc, format_value, run_anchor, run_label
from privlab.store import RunRecord, Store

__all__ = ["MAX_PAIRS", "inversion_section", "similarity_order"]

_RUN_COLUMNS = ("label_accuracy", "gradient_cosine", "epsilon")  # what the pipeline measures besides image metrics
#: at most this many image pairs per run in the sorted grid (the most similar ones, in order)
MAX_PAIRS = 48
#: the per-image numbers printed under each pair, in this order: (column, label, digits)
_SHOWN = (("psnr", "PSNR", 2), ("ssim", "SSIM", 3), ("lpips", "LPIPS", 3), ("lpips-random", "LPIPS (random)", 3),
          ("semsim", "SemSim", 3))  # fmt: skip
#: which score orders the grid: the first one the run has (SemSim: lower = more similar; PSNR: higher)
_ORDER_BY = ("semsim", "psnr")


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
    path = artifact_path(store, run, "attack")
    if path is not None:
        try:
            label = json.loads(path.read_text("utf-8")).get("defense")
        except (OSError, json.JSONDecodeError, AttributeError):
            label = None
        if isinstance(label, str) and label:
            return label
    return str((run.spec.get("defense") or {}).get("name", "none"))


def _grid_img(run: RunRecord, store: Store) -> str:
    path = artifact_path(store, run, "grid")
    if path is None or not take_figure():
        return ""
    try:
        data = path.read_bytes()
    except OSError:
        return '<p class="muted">grid image missing</p>'
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return (
        f'<figure><img src="{uri}" alt="originals and reconstructions of {esc(run.id)}" '
        'style="image-rendering: pixelated; max-width: 100%">'
        f"<figcaption>{esc(run_label(run))}: originals (top), reconstructions (bottom)</figcaption></figure>"
    )


def _as_float(v: Any) -> float:
    """A stored score: a number, ``"inf"``/``"-inf"``, or None (→ NaN)."""
    if v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def similarity_order(
    scores: dict[str, list[Any]], higher_is_better: dict[str, bool | None] | None = None
) -> tuple[str | None, list[int]]:
    """``(metric, positions)``: the images' positions sorted most similar (most leaked) first.

    The metric is the first of ``semsim`` (ascending: a distance) and ``psnr`` (descending) that has at least one
    number; ``higher_is_better`` (metric → True when larger means more similar) overrides those directions. Images
    without a number (NaN / missing) come last; ties keep the attack order. ``(None, attack order)`` when neither
    metric is present.

    Example:
        >>> similarity_order({"psnr": [12.0, 40.0, None, 25.0]})
        ('psnr', [1, 3, 0, 2])
        >>> similarity_order({"psnr": [12.0, 40.0], "semsim": [0.2, 0.9]})
        ('semsim', [0, 1])
    """
    directions = higher_is_better or {}
    for metric in _ORDER_BY:
        vals = [_as_float(v) for v in scores.get(metric) or []]
        if not any(not math.isnan(v) for v in vals):
            continue
        up = directions.get(metric)
        up = (metric != "semsim") if up is None else bool(up)
        keyed = sorted((math.isnan(v), 0.0 if math.isnan(v) else (-v if up else v), i) for i, v in enumerate(vals))
        return metric, [i for _, _, i in keyed]
    n = max((len(v) for v in scores.values()), default=0)
    return None, list(range(n))


def _fmt_score(v: Any, digits: int) -> str:
    f = _as_float(v)
    if math.isnan(f):
        return "—"
    return "∞" if math.isinf(f) and f > 0 else f"{f:.{digits}f}"


def _png_uri(image: Any, scale: int) -> str:
    """A uint8 ``C×H×W`` tensor as a PNG data URI, enlarged ``scale`` times."""
    from privlab.store.images import to_png_bytes

    data = to_png_bytes(image.float() / 255.0, scale=scale)
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _sorted_grid(run: RunRecord, path: Path, condition: str) -> str:
    """The run's originals above their reconstructions, most similar first, with their scores under each pair."""
    from privlab.errors import PrivlabError
    from privlab.store import load_tensors

    try:
        tensors, meta = load_tensors(path)
        ori, rec = tensors["originals"], tensors["reconstructions"]
        scores = meta.get("scores") or {}
        if ori.shape != rec.shape or ori.ndim != 4 or not isinstance(scores, dict):
            raise ValueError("unexpected layout")
    except (PrivlabError, KeyError, ValueError, AttributeError) as e:
        return f'<p class="muted">sorted grid unavailable ({esc(str(e).splitlines()[0][:120])})</p>'
    n = len(ori)
    metric, order = similarity_order(scores, meta.get("higher_is_better"))
    indices, labels = meta.get("indices") or list(range(n)), meta.get("labels") or [None] * n
    units = meta.get("units") or {}
    scale = max(1, 64 // max(1, max(ori.shape[-2:])))
    cells = []
    for rank, i in enumerate(order[:MAX_PAIRS], start=1):
        if i >= n:
            continue
        lines = []
        for col, label, digits in _SHOWN:
            vals = scores.get(col)
            if vals is not None and i < len(vals):
                unit = f" {units[col]}" if units.get(col) == "dB" else ""
                lines.append(f'<span class="inv-{esc(col)}">{label} {_fmt_score(vals[i], digits)}{unit}</span>')
        idx = indices[i] if i < len(indices) else i
        lab = labels[i] if i < len(labels) else None
        head = f"#{rank} · image {esc(idx)}" + (f" · class {esc(lab)}" if lab is not None else "")
        cells.append(
            f'<div class="inv-pair" data-rank="{rank}" data-index="{esc(idx)}" '
            'style="display:inline-block;text-align:center;margin:0 6px 8px 0;font-size:small;vertical-align:top">'
            f'<img src="{_png_uri(ori[i], scale)}" alt="original {esc(idx)}" style="image-rendering: pixelated"><br>'
            f'<img src="{_png_uri(rec[i], scale)}" alt="reconstruction {esc(idx)}" '
            f'style="image-rendering: pixelated"><br><small>{head}</small><br>{"<br>".join(lines)}</div>'
        )
    if metric == "semsim":
        how = "sorted by SemSim (lowest distance first: most similar, most leaked)"
    elif metric == "psnr":
        how = "sorted by PSNR (highest first: most leaked); this run has no SemSim score"
    else:
        how = "in attack order (no SemSim or PSNR score)"
    shown = f"; the first {MAX_PAIRS} of {n} shown" if n > MAX_PAIRS else ""
    return (
        f'<figure class="inv-grid"><div>{"".join(cells)}</div><figcaption>{esc(run_label(run))} '
        f"({esc(condition)}): originals (top) and reconstructions (bottom), {how}{shown}.</figcaption></figure>"
    )


def _grid(run: RunRecord, store: Store, defense: str) -> str:
    """The sorted grid from ``pairs.safetensors``; ``grid.png`` (attack order) for runs without that file. One
    figure of the report's budget either way."""
    pairs = artifact_path(store, run, "pairs")
    if pairs is None:
        return _grid_img(run, store)
    if not take_figure():
        return ""
    condition = f"{run.spec.get('attack', '?')}, defence {defense}, seed {run.spec.get('seed', 0)}"
    return _sorted_grid(run, pairs, condition)


def _notes(run: RunRecord, store: Store) -> str:
    path = artifact_path(store, run, "per_image")
    if path is None:
        return ""
    try:
        notes = json.loads(path.read_text("utf-8")).get("notes", {})
    except (OSError, json.JSONDecodeError):
        return ""
    items = "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in notes.items())
    return f"<details><summary>metric definitions</summary><ul>{items}</ul></details>" if items else ""


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
    run's grid of originals above reconstructions, sorted by SemSim (else PSNR) with each image's scores."""
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
        grid = _grid(r, store, labels[r.id])
        if grid or r.error:
            error = f'<pre class="error">{esc(r.error)}</pre>' if r.error else ""
            parts.append(f'<div class="run-block"><h3>{esc(run_label(r))}</h3>{error}{grid}{_notes(r, store)}</div>')
    return "\n".join(p for p in parts if p)
