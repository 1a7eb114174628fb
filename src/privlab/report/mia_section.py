"""Report sections of the ``mia`` and ``audit-dp`` experiments.

``mia``: ROC curves on log-log axes (one panel per target, one line per attack, from each run's ``roc.json``), the
attack × target table (AUC, balanced accuracy, TPR at 0.1 % and 1 % FPR, from the run's metrics) and the most exposed
records of each target as an image grid (``exposed.safetensors``, member or not written under each image).

``audit-dp``: the empirical lower bound on ε (a line per mode and canary kind) against the accountant's ε
across the runs (an ε sweep), with the line ε_lb = ε and the largest bound the number of guesses allows (one-run),
then a table of the runs.
"""

from __future__ import annotations

import json
import math
from typing import Any

from privlab.measure.mia import epsilon_lower_bound_one_run
from privlab.report.budget import take_figure
from privlab.report.sections import SECTIONS, artifact_path, esc, format_value, generic_section, run_label
from privlab.store import RunRecord, Store

__all__ = ["attack_table_html", "audit_bound_figure", "audit_dp_section", "mia_section", "roc_figure", "target_label"]

_KEYS = (
    ("auc", "AUC"),
    ("balanced_accuracy", "bal. acc."),
    ("tpr_at_fpr_0.001", "TPR @ 0.1 % FPR"),
    ("tpr_at_fpr_0.01", "TPR @ 1 % FPR"),
)


def target_label(run: RunRecord) -> str:
    """``plain``, ``dpsgd ε=1`` or ``ldp ε=8`` (+ the run id) from the run's spec."""
    t = run.spec.get("target") or {}
    kind = str(t.get("kind", "plain"))
    eps = t.get("epsilon")
    return f"{kind}" + ("" if eps is None or kind == "plain" else f" ε={eps:g}") + f" ({run.id})"


def _attacks(run: RunRecord) -> list[str]:
    return [name[: -len("/auc")] for name in run.metrics if name.endswith("/auc") and not name.startswith("mia_")]


def _roc(store: Store, run: RunRecord) -> dict[str, Any] | None:
    path = artifact_path(store, run, "mia_roc")
    if path is None:
        return None
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def roc_figure(curves: list[tuple[str, dict[str, Any]]]) -> str | None:
    """Data URI of log-log ROC panels, one per ``(title, roc.json content)``; None when there is no curve.

    Points are joined by straight segments (the ROC of breaking score ties at random). Rates of 0 are drawn at
    1/(2·count) (half the smallest non-zero rate the counts allow), so the low-FPR end that
    matters for membership inference stays on the log axes.
    """
    curves = [(t, c) for t, c in curves if c]
    if not curves:
        return None
    from matplotlib.figure import Figure

    from privlab.report.plots import figure_to_data_uri

    ncols = min(len(curves), 2)
    nrows = -(-len(curves) // ncols)
    fig = Figure(figsize=(5.0 * ncols, 4.2 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[len(curves) :]:
        ax.set_visible(False)
    for ax, (title, roc) in zip(axes.flat, curves, strict=False):
        floor = 1.0
        if len(roc) > 10:  # more attacks than the default colour cycle
            from matplotlib import colormaps

            ax.set_prop_cycle(color=[colormaps["tab20"](i % 20) for i in range(len(roc))])
        for label, c in roc.items():
            if not isinstance(c, dict) or "fpr" not in c or "tpr" not in c:
                continue
            lo_f = 0.5 / max(int(c.get("n_nonmembers", 1000)), 1)
            lo_t = 0.5 / max(int(c.get("n_members", 1000)), 1)
            floor = min(floor, lo_f, lo_t)
            fpr = [max(float(v), lo_f) for v in c["fpr"]]
            tpr = [max(float(v), lo_t) for v in c["tpr"]]
            auc = c.get("auc")
            name = f"{label} (AUC {auc:.3f})" if isinstance(auc, int | float) else str(label)
            ax.plot(fpr, tpr, linewidth=1.2, label=name)  # straight segments: ties broken at random
        ax.plot([floor, 1], [floor, 1], "k:", linewidth=0.8, label="chance")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(floor, 1)
        ax.set_ylim(floor, 1)
        ax.set_xlabel("false-positive rate")
        ax.set_ylabel("true-positive rate")
        ax.set_title(title, fontsize="small")
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize="x-small", loc="lower right")
    return figure_to_data_uri(fig)


def attack_table_html(runs: list[RunRecord]) -> str:
    """The attack × target table: a row per attack, for every target its AUC, balanced accuracy, TPR @ 0.1 % and
    TPR @ 1 % FPR (empty when no run has attack metrics)."""
    runs = [r for r in runs if _attacks(r)]
    if not runs:
        return ""
    attacks: list[str] = []
    for r in runs:
        attacks += [a for a in _attacks(r) if a not in attacks]
    top = "".join(f'<th colspan="{len(_KEYS)}">{esc(target_label(r))}</th>' for r in runs)
    sub = "".join(f'<th class="num">{h}</th>' for _ in runs for _, h in _KEYS)
    rows = []
    for a in attacks:
        cells = []
        for r in runs:
            for k, _ in _KEYS:
                v = r.metrics.get(f"{a}/{k}")
                cells.append(f'<td class="num">{esc(format_value(v, "acc" if v is not None else ""))}</td>')
        rows.append(f"<tr><td>{esc(a)}</td>{''.join(cells)}</tr>")
    acc = "".join(
        f'<td class="num" colspan="{len(_KEYS)}">{esc(format_value(r.metrics.get("test_accuracy"), "acc"))}</td>'
        for r in runs
    )
    rows.append(f"<tr><td><em>target test accuracy</em></td>{acc}</tr>")
    return (
        f"<h3>Attack × target</h3><table><thead><tr><th rowspan='2'>attack</th>{top}</tr><tr>{sub}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _exposed_html(store: Store, run: RunRecord) -> str:
    path = artifact_path(store, run, "mia_exposed")
    if path is None or not take_figure():
        return ""
    from privlab.report.grids import grid_data_uri
    from privlab.store import load_tensors

    try:
        t, meta = load_tensors(path)
        uri = grid_data_uri([t["images"]], scale=3)
    except Exception as e:  # a damaged artifact must not break the whole report
        return f"<p class='muted'>{esc(run_label(run))}: exposed records unreadable ({esc(e)})</p>"
    members = meta.get("members") or []
    flags = " ".join("M" if m else "·" for m in members)
    hit = sum(1 for m in members if m)
    return (
        f"<figure><img alt='most exposed records of {esc(run.id)}' src='{uri}'><figcaption>"
        f"{esc(target_label(run))}: the {len(members)} records {esc(meta.get('attack'))} scores most likely "
        f"members, left to right; {hit} of them are members (M = member, · = not): {esc(flags)}"
        f"</figcaption></figure>"
    )


@SECTIONS.register("mia", title="Membership inference")
def mia_section(runs: list[RunRecord], store: Store) -> str:
    """ROC curves (log-log), the attack × target table, the most exposed records; then the generic metrics."""
    done = [r for r in runs if r.status == "finished"]
    parts = []
    uri = roc_figure([(target_label(r), _roc(store, r) or {}) for r in done])
    if uri:
        parts.append(f"<h3>ROC curves (log-log)</h3><img alt='ROC curves of every attack' src='{uri}'>")
    parts.append(attack_table_html(done))
    grids = "".join(_exposed_html(store, r) for r in done)
    if grids:
        parts.append(f"<h3>Most exposed records</h3>{grids}")
    return "\n".join(p for p in parts if p) + "\n" + generic_section(runs, store)


# -- audit-dp ------------------------------------------------------------------------------------------------------
def _audit_points(runs: list[RunRecord], store: Store) -> list[dict[str, Any]]:
    pts = []
    for r in runs:
        if r.status != "finished" or "epsilon_lower_bound" not in r.metrics:
            continue
        guesses = None
        path = artifact_path(store, r, "audit")
        if path is not None:
            try:
                guesses = int(json.loads(path.read_text("utf-8"))["counts"]["guesses"])
            except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError):
                guesses = None
        t = r.spec.get("target") or {}
        pts.append(
            {
                "run": r,
                "bound": float(r.metrics["epsilon_lower_bound"]),
                "epsilon": r.metrics.get("epsilon"),
                "mode": str(r.spec.get("mode", "one-run")),
                "canary": str(r.spec.get("canary", "mislabel")),
                "kind": t.get("kind"),
                "guesses": guesses,
                "confidence": float(r.spec.get("confidence", 0.95)),
                "accuracy": r.metrics.get("test_accuracy"),
                "guess_accuracy": r.metrics.get("guess_accuracy"),
            }
        )
    return pts


def audit_bound_figure(points: list[dict[str, Any]]) -> str | None:
    """Data URI of ε_lb against the accountant's ε (log x) with ε_lb = ε, the all-guesses-right ceiling and the bound
    of any run without DP (a control, dotted); None without a point that has an accountant ε."""
    pts = sorted(
        (p for p in points if p.get("epsilon") is not None and math.isfinite(p["epsilon"])), key=lambda p: p["epsilon"]
    )
    if not pts:
        return None
    from matplotlib.figure import Figure

    from privlab.report.plots import figure_to_data_uri

    xs = [p["epsilon"] for p in pts]
    fig = Figure(figsize=(5.2, 3.8), layout="constrained")
    ax = fig.subplots()

    def line(p: dict[str, Any]) -> tuple[str, str]:
        return p.get("mode", "one-run"), p.get("canary", "mislabel")

    for mode, canary in sorted({line(p) for p in pts}):
        mine = [p for p in pts if line(p) == (mode, canary)]
        ax.plot(
            [p["epsilon"] for p in mine],
            [p["bound"] for p in mine],
            "o-",
            label=f"{mode} ({canary} canaries) lower bound ε_lb",
        )
    lo, hi = min(xs) / 1.5, max(xs) * 1.5
    ax.plot([lo, hi], [lo, hi], "k:", linewidth=0.8, label="ε_lb = ε (tight)")
    top = max(p["bound"] for p in pts)
    ceilings = {(p["guesses"], p["confidence"]) for p in points if p.get("guesses")}
    for r, conf in sorted(ceilings):
        cap = epsilon_lower_bound_one_run(r, r, confidence=conf).epsilon
        top = max(top, cap)
        ax.axhline(
            cap, color="tab:red", linestyle="--", linewidth=0.8, label=f"largest bound with {r} guesses ({cap:.2f})"
        )
    for p in points:
        if p.get("epsilon") is None:
            top = max(top, p["bound"])
            ax.axhline(
                p["bound"],
                color="tab:green",
                linestyle=":",
                linewidth=1.2,
                label=f"{p.get('kind') or 'no DP'} control {p['run'].id if p.get('run') else ''}: {p['bound']:.2f}",
            )
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(-0.05 * max(top, 1.0), 1.3 * max(top, 1.0))
    ax.set_xlabel("accountant ε (opacus)")
    ax.set_ylabel("empirical ε lower bound")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize="x-small", loc="upper left")
    return figure_to_data_uri(fig)


@SECTIONS.register("audit-dp", title="DP auditing")
def audit_dp_section(runs: list[RunRecord], store: Store) -> str:
    """The bound vs the accountant's ε across the runs (one figure), a table of the runs; then the metrics."""
    pts = _audit_points(runs, store)
    parts = []
    uri = audit_bound_figure(pts)
    if uri:
        parts.append(f"<h3>Empirical lower bound vs accountant ε</h3><img alt='bound vs epsilon' src='{uri}'>")
    if pts:
        rows = "".join(
            f"<tr><td>{esc(run_label(p['run']))}</td><td>{esc(p['kind'])}</td>"
            f"<td class='num'>{esc(format_value(p['epsilon']))}</td>"
            f"<td class='num'>{esc(format_value(p['bound']))}</td>"
            f"<td class='num'>{esc(format_value(p['guess_accuracy'], 'acc'))}</td>"
            f"<td class='num'>{esc(p['guesses'])}</td>"
            f"<td class='num'>{esc(format_value(p['accuracy'], 'acc'))}</td><td>{esc(p['mode'])}</td>"
            f"<td>{esc(p['canary'])}</td></tr>"
            for p in sorted(pts, key=lambda p: (p["epsilon"] is None, p["epsilon"] or 0.0))
        )
        head = "".join(
            f"<th>{h}</th>"
            for h in (
                "run",
                "target",
                "accountant ε",
                "ε lower bound",
                "guess accuracy",
                "guesses",
                "test accuracy",
                "mode",
                "canary",
            )
        )
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    return "\n".join(parts) + "\n" + generic_section(runs, store)
