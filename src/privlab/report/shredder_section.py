"""Report section of the ``shredder`` experiment.

Per output folder: MI bars (clean vs noisy, with the reduction's interval), the accuracy table (public and both
adversaries, clean vs noisy) with the SNR, histograms of the learned noise of each run's bank, and — when several
runs differ in the magnitude reward (a sweep of ``loss.magnitude_weight``) — a privacy–utility plot: public
accuracy under noise against MI reduction and against the retrained adversary's accuracy. Then the MI records
(estimator, diagnostics, calibration) and every final metric.
"""

from __future__ import annotations

import json
from typing import Any

from matplotlib.figure import Figure

from privlab.report.mi_section import mi_records_html
from privlab.report.plots import figure_to_data_uri
from privlab.report.sections import SECTIONS, esc, format_value, run_label, runs_metrics_table
from privlab.store import RunRecord, Store, load_tensors

__all__ = ["shredder_section"]

_ACC_COLUMNS = (
    ("public", "public_accuracy_clean", "public_accuracy_noisy"),
    ("original adversary", "adversary_accuracy_clean", "adversary_accuracy_noisy"),
    ("retrained adversary", "adversary_retrained_accuracy_clean", "adversary_retrained_accuracy_noisy"),
)


def _fmt(run: RunRecord, name: str) -> str:
    return esc(format_value(run.metrics.get(name), name, "fraction" if "accuracy" in name else None))


def _accuracy_table(runs: list[RunRecord]) -> str:
    head = "<th>run</th>" + "".join(
        f'<th class="num">{t}<br><small>clean → noisy</small></th>' for t, _, _ in _ACC_COLUMNS
    )
    head += '<th class="num">SNR<br><small>ratio (dB)</small></th><th class="num">MI reduction<br><small>%</small></th>'
    rows = []
    for r in runs:
        cells = "".join(f'<td class="num">{_fmt(r, c)} → {_fmt(r, n)}</td>' for _, c, n in _ACC_COLUMNS)
        snr = f"{format_value(r.metrics.get('snr'))} ({format_value(r.metrics.get('snr_db'))} dB)"
        red = format_value(r.metrics.get("mi_reduction"))
        lo, hi = r.metrics.get("mi_reduction_ci_low"), r.metrics.get("mi_reduction_ci_high")
        if lo is not None and hi is not None:
            red += f" [{format_value(lo)}, {format_value(hi)}]"
        above = r.metrics.get("mi_reduction_above_null")
        if above is not None:
            red += f"; above the shuffled-rows floor {format_value(above)}"
        rows.append(
            f"<tr><td>{esc(run_label(r))}</td>{cells}<td class='num'>{esc(snr)}</td>"
            f"<td class='num'>{esc(red)}</td></tr>"
        )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _mi_bars(runs: list[RunRecord]) -> str | None:
    done = [r for r in runs if "mi_clean_nats" in r.metrics and "mi_noisy_nats" in r.metrics]
    if not done:
        return None
    fig = Figure(figsize=(max(4.0, 1.2 * len(done) + 2), 3.2))
    ax = fig.add_subplot(1, 1, 1)
    xs = range(len(done))
    for off, key, label in ((-0.2, "mi_clean_nats", "clean Z"), (0.2, "mi_noisy_nats", "noisy Z")):
        vals = [r.metrics[key] for r in done]
        lo = [r.metrics.get(f"{key}_ci_low", v) for r, v in zip(done, vals, strict=True)]
        hi = [r.metrics.get(f"{key}_ci_high", v) for r, v in zip(done, vals, strict=True)]
        err = [
            [max(v - a, 0) for v, a in zip(vals, lo, strict=True)],
            [max(b - v, 0) for v, b in zip(vals, hi, strict=True)],
        ]
        ax.bar([x + off for x in xs], vals, width=0.4, yerr=err, capsize=3, label=label)
    ax.set_xticks(list(xs), [r.id for r in done], rotation=20, fontsize=7)
    ax.set_ylabel("MI(X; Z), nats (ite-dkl)")
    ax.legend(fontsize=7)
    ax.set_title("MI between input and communicated activation", fontsize=9)
    return figure_to_data_uri(fig)


def _bank(run: RunRecord, store: Store) -> dict[str, Any] | None:
    for art in store.artifacts(run.id):
        if art["kind"] == "noise_bank":
            try:
                tensors, _ = load_tensors(store.out_dir / art["path"])
            except Exception:  # a missing or corrupt file must not break the report
                return None
            return tensors
    return None


def _histograms(run: RunRecord, store: Store) -> str | None:
    tensors = _bank(run, store)
    if not tensors:
        return None
    fig = Figure(figsize=(3.2 * len(tensors), 2.6))
    for i, (name, t) in enumerate(sorted(tensors.items()), start=1):
        ax = fig.add_subplot(1, len(tensors), i)
        ax.hist(t.flatten().float().numpy(), bins=60, color="tab:blue" if name == "n" else "tab:orange")
        ax.set_title(f"{'additive n' if name == 'n' else 'multiplicative w'} ({t.shape[0]} samples)", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(run_label(run), fontsize=8)
    fig.tight_layout()
    return figure_to_data_uri(fig)


def _magnitude_weight(run: RunRecord) -> float | None:
    loss = run.spec.get("loss") or {}
    return loss.get("magnitude_weight")


def _group_key(run: RunRecord) -> str:
    """The run's spec without the magnitude weight, seed and labels: runs of one sweep share it."""
    spec = {k: v for k, v in run.spec.items() if k not in ("name", "sweep", "preset")}
    loss = dict(spec.get("loss") or {})
    loss.pop("magnitude_weight", None)
    spec["loss"] = loss
    return json.dumps(spec, sort_keys=True, default=str)


def _tradeoff(runs: list[RunRecord]) -> str | None:
    pts = [r for r in runs if "public_accuracy_noisy" in r.metrics and "mi_reduction" in r.metrics]
    groups: dict[str, list[RunRecord]] = {}
    for r in pts:
        groups.setdefault(_group_key(r), []).append(r)
    curves = [sorted(g, key=lambda r: _magnitude_weight(r) or 0.0) for g in groups.values()]
    curves = [g for g in curves if len({_magnitude_weight(r) for r in g}) >= 2]
    if not curves:
        return None
    fig = Figure(figsize=(7.0, 3.0))
    panels = [("mi_reduction", "MI reduction (%)")]
    if any("adversary_retrained_accuracy_noisy" in r.metrics for g in curves for r in g):
        panels.append(("adversary_retrained_accuracy_noisy", "retrained adversary accuracy"))
    for i, (key, label) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, len(panels), i)
        for n, group in enumerate(curves, start=1):
            sel = [r for r in group if key in r.metrics]
            xs = [r.metrics[key] for r in sel]
            ys = [r.metrics["public_accuracy_noisy"] for r in sel]
            ax.plot(xs, ys, "o-", label=f"sweep {n}" if len(curves) > 1 else None)
            for r, x, y in zip(sel, xs, ys, strict=True):
                ax.annotate(
                    f"λ={_magnitude_weight(r):g}", (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points"
                )
        if len(curves) > 1:
            ax.legend(fontsize=6)
        ax.set_xlabel(label, fontsize=8)
        ax.set_ylabel("public accuracy (noisy)", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle("privacy–utility over the magnitude reward λ (runs that differ only in λ)", fontsize=9)
    fig.tight_layout()
    return figure_to_data_uri(fig)


def _figure(uri: str | None, alt: str, caption: str) -> str:
    if uri is None:
        return ""
    return f'<figure><img src="{uri}" alt="{esc(alt)}"><figcaption>{esc(caption)}</figcaption></figure>'


@SECTIONS.register("shredder", title="Shredder (learned activation noise)")
def shredder_section(runs: list[RunRecord], store: Store) -> str:
    """MI bars, accuracy/SNR table, noise histograms, the privacy–utility plot, MI records and all metrics."""
    done = [r for r in runs if r.metrics]
    parts = []
    failed = [r for r in runs if r.error]
    for r in failed:
        parts.append(f'<p>{esc(run_label(r))} failed:</p><pre class="error">{esc(r.error)}</pre>')
    if done:
        parts.append("<h3>Accuracy, SNR and MI reduction</h3>" + _accuracy_table(done))
        parts.append(
            "<p class='muted'>Accuracies are fractions of the test split; SNR is the mean over test batches of "
            "mean(a²)/mean((a′−a)²); MI is in nats from the ite-dkl kNN estimator (k = 3) and only meaningful as a "
            "clean-vs-noisy comparison at the same n and dimensions.</p>"
        )
        figs = [
            _figure(_mi_bars(done), "MI bars", "MI(X; Z) clean vs noisy (95 % interval over permutation draws)"),
            _figure(_tradeoff(done), "privacy-utility", "each point one run; λ = loss.magnitude_weight"),
        ]
        figs += [_figure(_histograms(r, store), "noise histogram", f"learned noise of {run_label(r)}") for r in done]
        figs = [f for f in figs if f]
        if figs:
            parts.append(f'<div class="figures">{"".join(figs)}</div>')
    parts.append(mi_records_html(runs, store))
    parts.append("<h3>All final metrics</h3>" + runs_metrics_table(runs, store.metric_info()))
    return "\n".join(p for p in parts if p)
