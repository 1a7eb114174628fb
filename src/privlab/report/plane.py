"""The privacy–utility plane: every run of every pipeline as one point (x: its privacy measure, y: its utility).

Each experiment says which of its final metrics are its privacy measure and its utility through :data:`PLANE`
(experiment name → function ``run → PlanePoint | None``); an experiment without an entry falls back to its first
final metric of kind ``privacy`` and of kind ``utility`` (as logged). Runs without both are left out (e.g. plain
training, MI estimation); a run without privacy at all (x = ∞, e.g. LDP's raw-data baseline) is drawn as a
horizontal line in its panel. Measures differ between pipelines (PSNR in dB, MI reduction in %, ε …), so the figure has
one panel per (x, y) pair of measures, and every point is grouped by *method* (attack/defence/mechanism) in its
panel. A table beside the figure lists the same points.

One more panel puts the training-time protections on a common x axis (:func:`mia_axis_points`): the LOSS
membership attack's TPR at 1 % FPR on the trained model (``mia_loss_tpr_at_fpr_0.01``, logged by ``ldp``'s
classifiers and ``unlearnable``'s first poisoned victim; ``loss/tpr_at_fpr_0.01`` of the ``mia`` experiment), y its
test accuracy, so that LDP, DP-SGD and unlearnable examples are compared on one privacy measure.

Example:
    >>> from privlab.store import RunRecord
    >>> run = RunRecord("ldp-1", "ldp", None, {"mechanism": "rr", "learner": "iic"}, "h", 0, "finished", 0.0, 1.0,
    ...                 None, {}, {}, None, {"epsilon": 3.0, "test_accuracy": 0.8})
    >>> p = plane_point(run)
    >>> (p.method, p.x, p.y, p.x_label, p.x_log)
    ('rr → iic', 3.0, 0.8, 'ε (per image, nats)', True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from privlab.registry import Registry
from privlab.store import RunRecord

__all__ = [
    "MIA_AXIS_LABEL",
    "PLANE",
    "PlanePoint",
    "mia_axis_point",
    "mia_axis_points",
    "plane_figure",
    "plane_panels",
    "plane_point",
    "plane_points",
]


@dataclass(frozen=True)
class PlanePoint:
    """One run on the plane. ``more_private`` says which way along x means more privacy (``left``/``right``)."""

    run_id: str
    experiment: str
    method: str
    x: float
    y: float
    x_label: str
    y_label: str
    x_log: bool = False
    more_private: str = "left"


PlaneFn = Callable[[RunRecord], "PlanePoint | None"]
PLANE: Registry[PlaneFn] = Registry("privacy–utility plane entry")


def _finite(metrics: Mapping[str, float], *names: str) -> tuple[str, float] | None:
    for n in names:
        v = metrics.get(n)
        if v is not None and math.isfinite(v):
            return n, float(v)
    return None


def _get(spec: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    cur: Any = spec
    for part in dotted.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return default
        cur = cur[part]
    return cur


@PLANE.register("inversion")
def _inversion(run: RunRecord) -> PlanePoint | None:
    x = _finite(run.metrics, "psnr")
    y = _finite(run.metrics, "victim_test_accuracy", "gradient_cosine")
    if x is None or y is None:
        return None
    defense = _get(run.spec, "defense.name", "none")
    label = {"victim_test_accuracy": "victim test accuracy", "gradient_cosine": "cosine(defended, true gradient)"}
    return PlanePoint(
        run.id,
        run.experiment,
        f"{_get(run.spec, 'attack', 'attack')} vs {defense}",
        x[1],
        y[1],
        "reconstruction PSNR (dB)",
        label[y[0]],
        more_private="left",
    )


@PLANE.register("shredder")
def _shredder(run: RunRecord) -> PlanePoint | None:
    x = _finite(run.metrics, "mi_reduction")
    y = _finite(run.metrics, "public_accuracy_noisy")
    if x is None or y is None:
        return None
    return PlanePoint(
        run.id,
        run.experiment,
        f"shredder {_get(run.spec, 'preset') or ''}".strip(),
        x[1],
        y[1],
        "MI reduction (%)",
        "public accuracy (noisy)",
        more_private="right",
    )


@PLANE.register("ldp")
def _ldp(run: RunRecord) -> PlanePoint | None:
    x = _finite(run.metrics, "epsilon", "epsilon_spent")
    y = _finite(run.metrics, "test_accuracy")
    if y is None:
        return None
    mechanism = _get(run.spec, "mechanism", "?")
    if mechanism == "rr" and _get(run.spec, "binarize") == "dither":
        mechanism = "rr (dither)"
    method = f"{mechanism} → {_get(run.spec, 'learner', '?')}"
    if _get(run.spec, "noise") is False:
        method += " (no noise)"
    x_value = math.inf if x is None else x[1]  # ε = ∞ (raw-data baselines): drawn as a horizontal line
    return PlanePoint(run.id, run.experiment, method, x_value, y[1], "ε (per image, nats)", "test accuracy", x_log=True)


@PLANE.register("unlearnable")
def _unlearnable(run: RunRecord) -> PlanePoint | None:
    x = _finite(run.metrics, "poisoned_train_test_accuracy")
    y = _finite(run.metrics, "protected_psnr", "budget_epsilon")
    if x is None or y is None:
        return None
    kind = _get(run.spec, "protection.kind")
    method = f"{_get(run.spec, 'protection.name', '?')}" + (f" {kind}-wise" if kind else "")
    y_label = "protected image PSNR (dB)" if y[0] == "protected_psnr" else "L∞ budget (1/255)"
    return PlanePoint(
        run.id, run.experiment, method, x[1], y[1], "attacker accuracy on clean test data", y_label, more_private="left"
    )


def plane_point(run: RunRecord) -> PlanePoint | None:
    """The run's point: from its experiment's :data:`PLANE` entry, else its first privacy and utility metrics."""
    if run.status != "finished":
        return None
    if run.experiment in PLANE:
        return PLANE.get(run.experiment)(run)
    return None


def generic_point(run: RunRecord, info: Mapping[str, Mapping[str, Any]]) -> PlanePoint | None:
    """Fallback for experiments without an entry: the first finite privacy-kind and utility-kind final metrics."""
    if run.status != "finished":
        return None
    kinds: dict[str, tuple[str, float]] = {}
    for name, value in run.metrics.items():
        kind = (info.get(name) or {}).get("kind")
        if kind in ("privacy", "utility") and kind not in kinds and math.isfinite(value):
            kinds[kind] = (name, float(value))
    if len(kinds) < 2:
        return None
    (xn, xv), (yn, yv) = kinds["privacy"], kinds["utility"]
    hib = (info.get(xn) or {}).get("higher_is_better")
    return PlanePoint(run.id, run.experiment, run.experiment, xv, yv, xn, yn, more_private="right" if hib else "left")


def plane_points(runs: list[RunRecord], info: Mapping[str, Mapping[str, Any]]) -> list[PlanePoint]:
    """Every run that has a privacy measure and a utility, as a point."""
    out = []
    for r in runs:
        p = plane_point(r) if r.experiment in PLANE else generic_point(r, info)
        if p is not None:
            out.append(p)
    return out


MIA_AXIS_LABEL = "MIA TPR at 1 % FPR (LOSS attack)"
_MIA_AXIS_Y = "test accuracy of the trained model"


def mia_axis_point(run: RunRecord) -> PlanePoint | None:
    """The run on the common membership-inference axis: x = the LOSS attack's TPR at 1 % FPR on the model the run
    trained (``mia_loss_tpr_at_fpr_0.01``; the ``mia`` experiment's ``loss/tpr_at_fpr_0.01``), y = that model's
    clean test accuracy (``unlearnable``: the first supervised victim trained on the poisoned set); None without
    both."""
    if run.status != "finished":
        return None
    x = _finite(run.metrics, "mia_loss_tpr_at_fpr_0.01", "loss/tpr_at_fpr_0.01")
    y = _finite(run.metrics, "poisoned_train_test_accuracy" if run.experiment == "unlearnable" else "test_accuracy")
    if x is None or y is None:
        return None
    if run.experiment == "ldp":
        learner = _get(run.spec, "learner", "?")
        mechanism = _get(run.spec, "mechanism", "?")
        method = "DP-SGD" if learner == "dpsgd" else f"LDP {mechanism} → {learner}"
        if mechanism == "none":
            method = f"raw data → {learner}"
        elif _get(run.spec, "noise") is False:
            method += " (no noise)"
    elif run.experiment == "unlearnable":
        kind = _get(run.spec, "protection.kind")
        method = f"unlearnable {_get(run.spec, 'protection.name', '?')}" + (f" {kind}-wise" if kind else "")
    elif run.experiment == "mia":
        kind = _get(run.spec, "target.kind", "plain")
        method = {"plain": "unprotected", "dpsgd": "DP-SGD", "ldp": "LDP"}.get(kind, kind) + " (mia target)"
    else:
        method = run.experiment
    return PlanePoint(run.id, run.experiment, method, x[1], y[1], MIA_AXIS_LABEL, _MIA_AXIS_Y, more_private="left")


def mia_axis_points(runs: list[RunRecord]) -> list[PlanePoint]:
    """Every finished run with a membership probe on its trained model, on the common axis (see
    :func:`mia_axis_point`): a second point for runs that have one on their own experiment's panel too."""
    return [p for p in (mia_axis_point(r) for r in runs) if p is not None]


def plane_panels(points: list[PlanePoint]) -> dict[tuple[str, str], list[PlanePoint]]:
    """The figure's panels: ``(x label, y label) → points``, in order of first appearance."""
    panels: dict[tuple[str, str], list[PlanePoint]] = {}
    for p in points:
        panels.setdefault((p.x_label, p.y_label), []).append(p)
    return panels


def plane_figure(points: list[PlanePoint]) -> str | None:
    """One panel per (x, y) pair of measures, points coloured and marked by method, points at x = ∞ (no privacy,
    e.g. raw-data baselines) as horizontal lines; a PNG data URI (None: no points). A panel's title names the
    experiments in it (the common MIA axis holds several)."""
    if not points:
        return None
    from matplotlib.figure import Figure

    from privlab.report.plots import figure_to_data_uri

    panels = plane_panels(points)
    n = len(panels)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(4.6 * cols, 3.6 * rows))
    markers = "osD^v<>Pp*Xh"
    for k, ((xl, yl), pts) in enumerate(panels.items()):
        ax = fig.add_subplot(rows, cols, k + 1)
        baselines = [p for p in pts if math.isinf(p.x)]
        pts = [p for p in pts if not math.isinf(p.x)]
        for j, b in enumerate(baselines):  # no privacy at all (ε = ∞): a horizontal line
            ax.axhline(b.y, color="0.4", linestyle=("--", ":", "-.")[j % 3], linewidth=1, label=f"{b.method} (ε = ∞)")
        methods = list(dict.fromkeys(p.method for p in pts))
        for j, m in enumerate(methods):
            mp = sorted((p for p in pts if p.method == m), key=lambda p: p.x)
            ax.plot(
                [p.x for p in mp],
                [p.y for p in mp],
                linestyle="-" if len(mp) > 1 else "none",
                alpha=0.8,
                marker=markers[j % len(markers)],
                label=m,
            )
        if pts and any(p.x_log for p in pts) and all(p.x > 0 for p in pts):
            ax.set_xscale("log")
        first = (pts or baselines)[0]
        arrow = "← more private" if first.more_private == "left" else "more private →"
        ax.set_xlabel(f"{xl}   ({arrow})", fontsize=9)
        ax.set_ylabel(yl, fontsize=9)
        ax.set_title(" · ".join(dict.fromkeys(p.experiment for p in (pts or baselines))), fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return figure_to_data_uri(fig)


@PLANE.register("mia")
def _mia(run: RunRecord) -> PlanePoint | None:
    x = _finite(run.metrics, "mia_tpr_at_fpr_0.01")
    y = _finite(run.metrics, "test_accuracy")
    if x is None or y is None:
        return None
    kind = _get(run.spec, "target.kind", "plain")
    eps = _get(run.spec, "target.epsilon")
    method = f"MIA vs {kind}" + (f" ε={eps:g}" if isinstance(eps, int | float) else "")
    return PlanePoint(
        run.id, run.experiment, method, x[1], y[1], "best MIA TPR at 1 % FPR", "test accuracy", more_private="left"
    )
