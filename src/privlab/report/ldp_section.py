"""Report section of the ``ldp`` experiment: accuracy vs ε, privatised examples per ε, the budget table.

* One panel per learner (CNN, k-means, IIC): test accuracy against the total ε per example (log axis), one line
  per image mechanism; the raw-data baseline of the learner (``mechanism: none``) is a dotted black horizontal line,
  raw data under a mechanism's public preprocessing only (``noise: false``: L2 normalisation for ``gaussian``,
  binarisation for ``rr``) a dotted line in that mechanism's colour, and
  DP-SGD (central DP, same ε) is drawn on every CNN panel so local and central DP read off one plot.
* Grids of clean and privatised training images: one per mechanism, a row per ε (first row: clean).
* The budget table: per pixel, per image, per label and composed ε (and δ) with the noise parameter.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from privlab.report.sections import SECTIONS, esc, format_value, generic_section
from privlab.store import RunRecord, Store

__all__ = ["accuracy_vs_epsilon_figure", "ldp_section"]

_COLORS = {"laplace": "tab:blue", "gaussian": "tab:orange", "rr": "tab:green", "dpsgd": "tab:red"}


def _mechanism_label(spec: dict) -> str:
    """``rr`` runs that dither before the flips are a separate curve: ``rr (dither)``."""
    mech = str(spec.get("mechanism", "?"))
    return f"{mech} (dither)" if mech == "rr" and spec.get("binarize") == "dither" else mech


def _color(label: str) -> str | None:
    return _COLORS.get(label.split(" ")[0])


def _points(runs: list[RunRecord]) -> list[dict[str, Any]]:
    pts = []
    for r in runs:
        if r.status != "finished" or "test_accuracy" not in r.metrics:
            continue
        eps = r.spec.get("epsilon")
        pts.append(
            {
                "id": r.id,
                "mechanism": _mechanism_label(r.spec),
                "learner": r.spec.get("learner", "?"),
                "epsilon": None if eps is None else float(eps),
                "accuracy": float(r.metrics["test_accuracy"]),
                "metrics": r.metrics,
                "spec": r.spec,
            }
        )
    return pts


def accuracy_vs_epsilon_figure(points: list[dict[str, Any]]) -> str | None:
    """Data URI of the accuracy-vs-ε panels (None when no privatised run has an ε)."""
    from matplotlib.figure import Figure

    from privlab.report.plots import figure_to_data_uri

    learners = sorted({p["learner"] for p in points if p["learner"] != "dpsgd"})
    if not learners or not any(p["epsilon"] for p in points):
        return None
    fig = Figure(figsize=(4.2 * len(learners), 3.4))
    axes = fig.subplots(1, len(learners), squeeze=False)[0]
    dpsgd = sorted((p["epsilon"], p["accuracy"]) for p in points if p["learner"] == "dpsgd" and p["epsilon"])
    for ax, learner in zip(axes, learners, strict=True):
        mine = [p for p in points if p["learner"] == learner]
        by_mech: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for p in mine:
            if p["mechanism"] != "none" and p["epsilon"]:
                by_mech[p["mechanism"]].append((p["epsilon"], p["accuracy"]))
        for mech, xy in sorted(by_mech.items()):
            xy.sort()
            ax.plot([a for a, _ in xy], [b for _, b in xy], "o-", label=mech, color=_color(mech))
        if learner.startswith("cnn") and dpsgd:
            ax.plot(
                [a for a, _ in dpsgd], [b for _, b in dpsgd], "s--", label="DP-SGD (central)", color=_COLORS["dpsgd"]
            )
        for p in mine:
            if p["mechanism"] == "none":
                ax.axhline(p["accuracy"], color="black", linestyle=":", label=f"raw data ({p['accuracy']:.3f})")
                break
        for p in mine:  # raw data under a mechanism's public preprocessing (noise: false), in the mechanism's colour
            if p["mechanism"] not in ("none", "dpsgd") and p["epsilon"] is None:
                ax.axhline(
                    p["accuracy"],
                    color=_color(p["mechanism"]),
                    linestyle=":",
                    label=f"raw, {p['mechanism']}-preprocessed ({p['accuracy']:.3f})",
                )
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("total ε per example (nats)")
        ax.set_ylabel("test accuracy (raw test split)")
        ax.set_title(learner)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return figure_to_data_uri(fig)


def _grids(runs: list[RunRecord], store: Store) -> str:
    from privlab.report.grids import grid_data_uri
    from privlab.store import load_tensors

    rows: dict[str, dict[float, Any]] = defaultdict(dict)
    clean: dict[str, Any] = {}
    for r in runs:
        for art in store.artifacts(r.id):
            if art["kind"] != "examples":
                continue
            mech, eps = r.spec.get("mechanism"), r.spec.get("epsilon")
            if mech is None or eps is None or float(eps) in rows[mech]:
                continue
            try:
                tensors, _ = load_tensors(store.out_dir / art["path"])
            except Exception:  # an unreadable artifact must not break the report
                continue
            scale = tensors["clean"].flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)
            clean.setdefault(mech, tensors["clean"] / scale)
            rows[mech][float(eps)] = (tensors["private"] / scale).clamp(0, 1)
    parts = []
    for mech in sorted(rows):
        eps_sorted = sorted(rows[mech])
        uri = grid_data_uri([clean[mech], *(rows[mech][e] for e in eps_sorted)], scale=3)
        labels = ", ".join(f"ε = {e:g}" for e in eps_sorted)
        parts.append(
            f"<figure><img src='{uri}' alt='{esc(mech)} examples'><figcaption>{esc(mech)}: first row clean "
            f"(after the public preprocessing), then {esc(labels)}</figcaption></figure>"
        )
    return "<h3>Privatised training images</h3>" + "".join(parts) if parts else ""


def _budget_table(points: list[dict[str, Any]]) -> str:
    seen = set()
    rows = []
    for p in sorted(points, key=lambda q: (q["mechanism"], q["epsilon"] or math.inf)):
        key = (p["mechanism"], p["epsilon"], p["spec"].get("label_mechanism"), p["spec"].get("fresh_noise"))
        if p["mechanism"] == "none" or p["epsilon"] is None or key in seen:
            continue
        seen.add(key)
        m = p["metrics"]
        noise = ""
        for name, label in (
            ("laplace_scale", "b"),
            ("gaussian_sigma", "σ"),
            ("rr_flip_probability", "q"),
            ("noise_multiplier", "σ/C"),
        ):
            if name in m:
                noise = f"{label} = {format_value(m[name])}"
        cells = [
            esc(p["mechanism"]),
            format_value(p["epsilon"]),
            format_value(m.get("epsilon_pixel")),
            format_value(m.get("epsilon_image")),
            format_value(m.get("epsilon_label"))
            if p["spec"].get("label_mechanism") not in (None, "none")
            else "public",
            format_value(m.get("epsilon_composed", m.get("epsilon_spent"))),
            format_value(m.get("delta_composed", m.get("delta"))),
            format_value(m.get("releases")),
            esc(noise),
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    if not rows:
        return ""
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "mechanism",
            "total ε",
            "ε / pixel",
            "ε / image release",
            "ε / label",
            "composed ε",
            "δ",
            "releases",
            "noise",
        )
    )
    return (
        "<h3>Budget</h3><p class='muted'>ε in nats per training example; composed = releases × ε/image + ε/label "
        "(basic composition); DP-SGD: ε spent by the opacus accountant, central DP.</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _infinite(mechanism: str) -> str:
    return "∞ (raw)" if mechanism == "none" else "∞ (raw, preprocessed, no noise)"


def _results_table(points: list[dict[str, Any]]) -> str:
    rows = []
    for p in sorted(points, key=lambda q: (q["learner"], q["mechanism"], q["epsilon"] or math.inf)):
        rows.append(
            f"<tr><td>{esc(p['learner'])}</td><td>{esc(p['mechanism'])}</td>"
            f"<td class='num'>{format_value(p['epsilon']) if p['epsilon'] else _infinite(p['mechanism'])}</td>"
            f"<td class='num'>{format_value(p['accuracy'], 'test_accuracy')}</td><td>{esc(p['id'])}</td></tr>"
        )
    if not rows:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("learner", "mechanism", "ε", "test accuracy", "run"))
    return f"<h3>Test accuracy</h3><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


@SECTIONS.register("ldp", title="Local differential privacy")
def ldp_section(runs: list[RunRecord], store: Store) -> str:
    """Accuracy-vs-ε curves with raw baselines and DP-SGD, example grids per ε, budget and result tables."""
    points = _points(runs)
    parts = []
    uri = accuracy_vs_epsilon_figure(points)
    if uri:
        parts.append(
            f"<h3>Accuracy vs ε</h3><img src='{uri}' alt='test accuracy against epsilon per mechanism and learner'>"
        )
    parts += [_results_table(points), _budget_table(points), _grids(runs, store)]
    body = "\n".join(p for p in parts if p)
    return body + "\n" + generic_section(runs, store) if body else generic_section(runs, store)
