"""Build ``report.html``: one self-contained page from an output folder's results store.

The page has inline CSS, inline PNG plots and one small inline script (the overview's filters; the page works
without it) — no external scripts, fonts or addresses — so it opens from disk offline and can be mailed as one
file. Everything that comes from a run (names, errors, specs) is escaped.

Layout: header (title, generation time, privlab version) → overview of all runs (parameters that vary, status,
seed, privacy and utility, headline metrics, duration; failed runs show their error; filters by experiment, status
and text) → the privacy–utility plane (:mod:`privlab.report.plane`) → the metrics' units and directions → one
section per experiment (its registered renderer from :data:`~privlab.report.sections.SECTIONS`, else a generic
one) → per-run details (spec, environment, artifacts).

Example:
    >>> import tempfile
    >>> from privlab.store import MetricRecord, Store
    >>> out = tempfile.mkdtemp()
    >>> with Store(out) as s:
    ...     s.start_run("r1", experiment="train", spec={}, spec_hash="h", seed=0, versions={}, hardware={})
    ...     s.log_metrics("r1", [MetricRecord("test_accuracy", 0.9)])
    ...     s.finish_run("r1")
    >>> build_report(out).name
    'report.html'
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote

from privlab.report.budget import DEFAULT_MAX_FIGURES, FigureBudget, figure_budget
from privlab.report.plane import MIA_AXIS_LABEL, PlanePoint, mia_axis_points, plane_figure, plane_points
from privlab.report.reproduction import reproduction_section
from privlab.report.sections import (
    SECTIONS,
    esc,
    format_value,
    generic_section,
    run_anchor,
)
from privlab.store import RunRecord, Store, atomic_write_text
from privlab.store.export import flatten

__all__ = ["REPORT_FILENAME", "build_report", "render_report"]

REPORT_FILENAME = "report.html"

_CSS = """
:root { --fg: #1d2330; --muted: #667085; --line: #d9dde5; --bg-alt: #f5f7fa; --bad: #b42318; --ok: #067647;
        --warn: #b54708; --accent: #2e5aac; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 1400px; padding: 1.5rem 2rem 4rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.25rem; margin: 2.2rem 0 .6rem; padding-bottom: .2rem; border-bottom: 2px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
h2 small, h3 small { color: var(--muted); font-weight: normal; }
a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
.muted { color: var(--muted); }
nav { margin: .8rem 0; } nav a { margin-right: 1rem; }
table { border-collapse: collapse; margin: .4rem 0 .8rem; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: .28rem .6rem; text-align: left; vertical-align: top; }
th { background: var(--bg-alt); font-weight: 600; } th small { font-weight: normal; color: var(--muted); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:hover { background: #fafbfc; }
.scroll { overflow-x: auto; }
.status-finished { color: var(--ok); } .status-failed { color: var(--bad); font-weight: 600; }
.status-running { color: var(--warn); }
tr.error-row td { border-bottom: 1px solid var(--line); padding-top: 0; }
pre { background: var(--bg-alt); padding: .6rem .8rem; border-radius: 4px; overflow-x: auto; font-size: 12px;
      margin: .3rem 0; white-space: pre-wrap; word-break: break-word; }
pre.error { background: #fef3f2; color: var(--bad); border-left: 3px solid var(--bad); }
details { margin: .3rem 0; } summary { cursor: pointer; color: var(--accent); }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: .4rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 12px; }
.run-block, .run { border-left: 3px solid var(--line); padding-left: 1rem; margin: 1rem 0 1.6rem; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: .1rem 1rem; margin: .3rem 0; }
dl.meta dt { color: var(--muted); } dl.meta dd { margin: 0; }
code { font-size: 12px; }
.filters { margin: .4rem 0; } .filters select, .filters input { font: inherit; padding: .1rem .3rem; }
"""


def _privlab_version() -> str:
    mod = sys.modules.get("privlab")
    version = getattr(mod, "__version__", None)
    if version:
        return str(version)
    try:
        return metadata.version("privlab")
    except metadata.PackageNotFoundError:
        return "unknown"


def _fmt_time(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _fmt_duration(run: RunRecord) -> str:
    if run.started is None or run.finished is None:
        return "—" if run.status != "running" else "running"
    s = max(0.0, run.finished - run.started)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"


def _error_summary(text: str, limit: int = 240) -> str:
    """One line of an error for the overview: a traceback's last line (the exception), else the first line."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    line = lines[-1] if lines[0].startswith("Traceback") else lines[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _kv_table(values: Mapping[str, Any]) -> str:
    if not values:
        return '<p class="muted">not recorded</p>'

    def show(v: Any) -> str:
        return "—" if v is None else v if isinstance(v, str) else json.dumps(v)

    rows = "".join(f"<tr><th>{esc(k)}</th><td><code>{esc(show(v))}</code></td></tr>" for k, v in values.items())
    return f"<table>{rows}</table>"


def _artifact_href(path: str) -> str:
    p = Path(path)
    return p.as_uri() if p.is_absolute() else quote(p.as_posix())


def varying_params(runs: list[RunRecord]) -> dict[str, dict[str, Any]]:
    """Per run id: the spec values (dotted keys) that differ between runs of the same experiment — what a sweep
    varied. Keys that never vary, and ``name``/``sweep``/``preset``, are left out."""
    by_exp: dict[str, list[RunRecord]] = {}
    for r in runs:
        by_exp.setdefault(r.experiment, []).append(r)
    out: dict[str, dict[str, Any]] = {}
    for exp_runs in by_exp.values():
        flat = {
            r.id: flatten({k: v for k, v in r.spec.items() if k not in ("name", "sweep", "preset")}) for r in exp_runs
        }
        keys = dict.fromkeys(k for f in flat.values() for k in f)
        varying = [
            k for k in keys if len({json.dumps(f.get(k), sort_keys=True, default=str) for f in flat.values()}) > 1
        ]
        for r in exp_runs:  # a key the run leaves unset (None) says nothing about it
            out[r.id] = {k: flat[r.id][k] for k in varying if flat[r.id].get(k) is not None}
    return out


def _param_text(params: Mapping[str, Any]) -> str:
    return " · ".join(f"{k}={v if isinstance(v, str) else json.dumps(v, default=str)}" for k, v in params.items())


def _headline_metrics(run: RunRecord, info: Mapping[str, Mapping[str, Any]], limit: int = 6) -> list[str]:
    """A run's most telling final metrics: privacy and utility kinds first, then the rest, at most ``limit``."""
    names = list(run.metrics)
    rank = {"privacy": 0, "utility": 1}
    names.sort(key=lambda n: rank.get((info.get(n) or {}).get("kind") or "", 2))
    return [n for n in names if "/" not in n][:limit]


_FILTER_SCRIPT = """
(function () {
  var exp = document.getElementById("f-exp"), status = document.getElementById("f-status"),
      text = document.getElementById("f-text"), count = document.getElementById("f-count");
  function apply() {
    var rows = document.querySelectorAll("#overview tbody tr[data-exp]"), shown = 0;
    var needle = text.value.trim().toLowerCase();
    rows.forEach(function (row) {
      var ok = (!exp.value || row.getAttribute("data-exp") === exp.value) &&
               (!status.value || row.getAttribute("data-status") === status.value) &&
               (!needle || row.getAttribute("data-search").indexOf(needle) >= 0);
      row.hidden = !ok;
      var next = row.nextElementSibling;
      if (next && next.classList.contains("error-row")) { next.hidden = !ok; }
      if (ok) { shown += 1; }
    });
    count.textContent = shown + " of " + rows.length + " runs shown";
  }
  [exp, status, text].forEach(function (el) { el.addEventListener("input", apply); });
  apply();
})();
"""


def _overview(runs: list[RunRecord], info: Mapping[str, Mapping[str, Any]], plane: list[PlanePoint]) -> str:
    params = varying_params(runs)
    points = {p.run_id: p for p in plane}
    head = (
        "<th>id</th><th>experiment</th><th>name</th><th>parameters</th><th>status</th>"
        '<th class="num">seed</th><th class="num">privacy</th><th class="num">utility</th><th>headline metrics</th>'
        '<th>started</th><th class="num">duration</th>'
    )
    ncols = 11
    rows = []
    for r in runs:
        ptext = _param_text(params.get(r.id, {}))
        point = points.get(r.id)
        priv = util = "<td></td>"
        if point is not None:
            priv = f'<td class="num" title="{esc(point.x_label)}">{esc(format_value(point.x))}</td>'
            util = f'<td class="num" title="{esc(point.y_label)}">{esc(format_value(point.y, point.y_label))}</td>'
        metrics = " · ".join(
            f"{n} {format_value(r.metrics[n], n, (info.get(n) or {}).get('unit'))}" for n in _headline_metrics(r, info)
        )
        search = f"{r.id} {r.experiment} {r.name or ''} {ptext} {r.status}".lower()
        rows.append(
            f'<tr data-exp="{esc(r.experiment)}" data-status="{esc(r.status)}" data-search="{esc(search)}">'
            f'<td><a href="#{run_anchor(r.id)}">{esc(r.id)}</a></td><td>{esc(r.experiment)}</td>'
            f"<td>{esc(r.name)}</td><td><small>{esc(ptext)}</small></td>"
            f'<td class="status-{esc(r.status)}">{esc(r.status)}</td><td class="num">{esc(r.seed)}</td>'
            f"{priv}{util}<td><small>{esc(metrics)}</small></td>"
            f'<td>{esc(_fmt_time(r.started))}</td><td class="num">{esc(_fmt_duration(r))}</td></tr>'
        )
        if r.error:
            rows.append(
                f'<tr class="error-row"><td colspan="{ncols}"><pre class="error">{esc(_error_summary(r.error))}</pre>'
                "</td></tr>"
            )
    experiments = sorted({r.experiment for r in runs})
    statuses = sorted({r.status for r in runs})
    filters = (
        '<div class="filters">experiment <select id="f-exp"><option value="">all</option>'
        + "".join(f'<option value="{esc(e)}">{esc(e)}</option>' for e in experiments)
        + '</select> status <select id="f-status"><option value="">all</option>'
        + "".join(f'<option value="{esc(s_)}">{esc(s_)}</option>' for s_ in statuses)
        + '</select> <input id="f-text" type="search" placeholder="filter: parameter, id or name (e.g. epsilon=10)"'
        ' size="40"> <span id="f-count" class="muted"></span></div>'
    )
    return (
        f'{filters}<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
        '</div><p class="muted">privacy / utility: each run\'s point on the privacy–utility plane below (hover for'
        " the measure); parameters: the spec values that differ between runs of the same experiment.</p>"
    )


def _plane_section(points: list[PlanePoint]) -> str:
    if not points:
        return (
            '<p class="muted">No run has both a privacy measure and a utility yet (plain training and MI estimation '
            "have only one of them).</p>"
        )
    uri = plane_figure(points)
    rows = "".join(
        f"<tr><td>{esc(p.experiment)}</td><td>{esc(p.method)}</td>"
        f'<td><a href="#{run_anchor(p.run_id)}">{esc(p.run_id)}</a></td>'
        f'<td>{esc(p.x_label)}</td><td class="num">{esc(format_value(p.x))}</td>'
        f'<td>{esc(p.y_label)}</td><td class="num">{esc(format_value(p.y, p.y_label))}</td></tr>'
        for p in sorted(points, key=lambda p: (p.experiment, p.method, p.x))
    )
    common = ""
    if any(p.x_label == MIA_AXIS_LABEL for p in points):
        common = (
            f" The panel “{esc(MIA_AXIS_LABEL)}” puts the training-time protections (LDP, DP-SGD, unlearnable "
            "examples, mia targets) on one axis: the LOSS membership attack's true-positive rate at 1 % false "
            "positives on the model each run trained (lower = more private)."
        )
    return (
        f'<figure><img alt="privacy–utility plane" src="{uri}"><figcaption>Every finished run with a privacy measure '
        "(x) and a utility (y), one panel per pair of measures, grouped by method. The arrow on each x axis points "
        f"to more privacy.{common}</figcaption></figure>"
        "<details><summary>points</summary><table><thead><tr><th>experiment</th><th>method</th><th>run</th>"
        '<th>privacy measure</th><th class="num">x</th><th>utility</th><th class="num">y</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></details>"
    )


def _metric_legend(info: Mapping[str, Mapping[str, Any]]) -> str:
    if not info:
        return '<p class="muted">No metrics logged.</p>'
    rows = []
    for name in sorted(info):
        meta = info[name]
        hib = meta.get("higher_is_better")
        better = "" if hib is None else ("higher" if hib else "lower")
        rows.append(
            f"<tr><td>{esc(name)}</td><td>{esc(meta.get('unit'))}</td><td>{esc(meta.get('kind'))}</td>"
            f"<td>{better}</td></tr>"
        )
    return (
        "<table><thead><tr><th>metric</th><th>unit</th><th>kind</th><th>better</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _run_details(run: RunRecord, store: Store) -> str:
    meta = (
        f"<dt>experiment</dt><dd>{esc(run.experiment)}</dd><dt>status</dt>"
        f'<dd class="status-{esc(run.status)}">{esc(run.status)}</dd><dt>seed</dt><dd>{esc(run.seed)}</dd>'
        f"<dt>spec hash</dt><dd><code>{esc(run.spec_hash)}</code></dd>"
        f"<dt>started</dt><dd>{esc(_fmt_time(run.started))}</dd><dt>finished</dt><dd>{esc(_fmt_time(run.finished))}"
        f"</dd><dt>duration</dt><dd>{esc(_fmt_duration(run))}</dd>"
        + (f"<dt>folder</dt><dd><code>{esc(run.dir)}</code></dd>" if run.dir else "")
    )
    error = f'<pre class="error">{esc(run.error)}</pre>' if run.error else ""
    spec = json.dumps(run.spec, indent=2, sort_keys=True, default=str)
    arts = store.artifacts(run.id)
    if arts:
        rows = "".join(
            f'<tr><td>{esc(a["kind"])}</td><td><a href="{esc(_artifact_href(a["path"]))}">{esc(a["path"])}</a></td>'
            f'<td title="{esc(a["sha256"])}"><code>{esc((a["sha256"] or "")[:12])}</code></td></tr>'
            for a in arts
        )
        artifacts = (
            f"<table><thead><tr><th>kind</th><th>path</th><th>sha256</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    else:
        artifacts = '<p class="muted">No artifacts.</p>'
    title = f"{esc(run.id)}" + (f" <small>{esc(run.name)}</small>" if run.name else "")
    if run.undefined:
        items = "".join(f"<li><code>{esc(n)}</code>: {esc(note)}</li>" for n, note in run.undefined.items())
        error += f'<p>Undefined metrics (shown as —):</p><ul class="undefined">{items}</ul>'
    return (
        f'<div class="run" id="{run_anchor(run.id)}"><h3>{title}</h3><dl class="meta">{meta}</dl>{error}'
        f"<details><summary>config</summary><pre>{esc(spec)}</pre></details>"
        f"<details><summary>environment</summary><h4>versions</h4>{_kv_table(run.versions)}"
        f"<h4>hardware</h4>{_kv_table(run.hardware)}</details>"
        f"<h4>artifacts</h4>{artifacts}</div>"
    )


def render_report(store: Store, *, title: str | None = None, max_figures: int = DEFAULT_MAX_FIGURES) -> str:
    """The report page of ``store`` as one HTML string (see the module docstring for its layout).

    Args:
        store: an open results store.
        title: page title (default: ``privlab report — <folder name>``).
        max_figures: per-run figures (training curves, image grids) drawn at most, in page order; tables keep
            every run, and the header says how many figures were left out (:mod:`privlab.report.budget`).
    """
    with figure_budget(max_figures) as budget:
        return _render(store, title, budget)


def _render(store: Store, title: str | None, budget: FigureBudget) -> str:
    title = title or f"privlab report — {store.out_dir.resolve().name}"
    runs = store.runs()
    info = store.metric_info()
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"
    generated = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")

    experiments: dict[str, list[RunRecord]] = {}
    for r in runs:
        experiments.setdefault(r.experiment, []).append(r)
    sections, nav = (
        [],
        ['<a href="#overview">Runs</a>', '<a href="#plane">Privacy–utility</a>', '<a href="#metrics">Metrics</a>'],
    )
    for exp, exp_runs in experiments.items():
        if exp in SECTIONS:
            entry = SECTIONS.entry(exp)
            heading, body = entry.meta.get("title", exp), entry.obj(exp_runs, store)
        else:
            heading, body = exp, generic_section(exp_runs, store)
        anchor = esc(f"exp-{exp}")
        nav.append(f'<a href="#{anchor}">{esc(heading)}</a>')
        sections.append(f'<section id="{anchor}"><h2>{esc(heading)} <small>{esc(exp)}</small></h2>{body}</section>')
    nav.append('<a href="#runs">Run details</a>')
    repro = reproduction_section(runs)
    if repro is not None:
        nav.insert(2, '<a href="#reproduction">Reproduction</a>')
        sections.insert(0, f'<section id="reproduction"><h2>Reproduction</h2>{repro}</section>')

    points = plane_points(runs, info)  # each run's privacy/utility point: the overview's columns and the figure
    plane = _plane_section(points + mia_axis_points(runs))  # + the training-time protections on one MIA axis
    if runs:
        overview = _overview(runs, info, points)
        details = "\n".join(_run_details(r, store) for r in runs)
    else:
        overview = details = '<p class="muted">No runs in this store yet.</p>'
    skipped = (
        f'<p class="muted">{budget.skipped} per-run figure(s) not drawn: this page draws the first '
        f"{budget.limit} (tables list every run); <code>privlab report DIR --max-figures N</code> "
        "draws more.</p>"
        if budget.skipped
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="privlab {esc(_privlab_version())}">
<title>{esc(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>{esc(title)}</h1>
<p class="muted">Generated {esc(generated)} by privlab {esc(_privlab_version())} from
<code>{esc(store.path)}</code> · {len(runs)} run(s): {esc(summary)}</p>
<nav>{"".join(nav)}</nav>
{skipped}
</header>
<section id="overview"><h2>Runs</h2>{overview}</section>
<section id="plane"><h2>Privacy–utility plane</h2>{plane}</section>
<section id="metrics"><h2>Metrics</h2>{_metric_legend(info)}</section>
{"".join(sections)}
<section id="runs"><h2>Run details</h2>{details}</section>
<script>{_FILTER_SCRIPT}</script>
</body>
</html>
"""


def build_report(out_dir: str | Path, *, title: str | None = None, max_figures: int = DEFAULT_MAX_FIGURES) -> Path:
    """Write ``out_dir/report.html`` (atomically) from the store in ``out_dir``; return its path.

    Args:
        out_dir: an output folder holding ``runs.sqlite``.
        title: page title (default: ``privlab report — <folder name>``).
        max_figures: per-run figures drawn at most (see :func:`render_report`).

    Raises:
        DataMissingError: ``out_dir`` holds no results store.
        FileFormatError: the store is corrupt or from a newer privlab.
    """
    with Store(out_dir, create=False) as store:
        page = render_report(store, title=title, max_figures=max_figures)
        path = atomic_write_text(store.out_dir / REPORT_FILENAME, page)
    return path
