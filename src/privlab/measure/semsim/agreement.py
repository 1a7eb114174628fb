"""How well does an image-similarity metric agree with human judgements of recognisability?

Input: one row per judged reconstruction — its ``setting`` (attack × model × defence …), whether humans recognised
it (``recognised``: 1/0, or a per-image fraction of annotators), and each metric's value. Output, for every metric:

- **per-setting means** of the metric and the human recognition rate (the unit of the SemSim paper's analysis);
- **Spearman ρ, Pearson r, Kendall τ** (scipy) between the metric's per-setting means and the recognition rates,
  each with a percentile **bootstrap 95 % interval** (settings resampled with replacement) and scipy's p-value;
- the same three correlations **per image** (metric vs 0/1 recognised), with bootstrap intervals over images;
- **ordering accuracy**: over all pairs that humans rank differently (one recognised, one not; or two settings with
  different rates), the fraction the metric orders the same way (ties count ½). Per image with 0/1 labels it equals
  the ROC AUC of the metric as a recognisability detector.

Correlations are reported for the metric **oriented as a similarity** (multiplied by −1 when lower means more
similar: MSE, LPIPS, SemSim), so for every metric a *positive* value means "agrees with humans", and ordering
accuracies above 0.5 mean the same. (The original analysis correlated ``1 − human rate`` with the raw metric; only
the signs differ.)

Example:
    >>> rows = [{"setting": s, "recognised": r, "psnr": p} for s, r, p in
    ...         [("a", 1, 30.0), ("a", 1, 25.0), ("b", 0, 12.0), ("b", 1, 20.0), ("c", 0, 8.0), ("c", 0, 10.0)]]
    >>> res = agreement(rows, {"psnr": True}, n_boot=200, seed=0)
    >>> res.metrics["psnr"]["setting"]["spearman"]["value"], res.metrics["psnr"]["image"]["ordering_accuracy"]
    (1.0, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from privlab.errors import ConfigError
from privlab.measure.image.base import similarity_directions

__all__ = [
    "AgreementResult",
    "agreement",
    "correlations",
    "join_scores",
    "ordering_accuracy",
    "setting_means",
]

_CORR = {"spearman": stats.spearmanr, "pearson": stats.pearsonr, "kendall": stats.kendalltau}


def _corr(name: str, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    res = _CORR[name](x, y)
    return float(res.statistic), float(res.pvalue)


def correlations(
    x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, *, n_boot: int = 2000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Spearman, Pearson and Kendall between ``x`` and ``y`` with scipy's p-value and a percentile bootstrap 95 %
    interval (pairs resampled with replacement, ``n_boot`` times, seeded); NaN when fewer than 3 points or constant.

    Returns:
        ``{name: {"value", "p_value", "ci95": [low, high] or None, "n"}}``.
    """
    xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xa.shape != ya.shape or xa.ndim != 1:
        raise ConfigError(f"correlations need two 1-d sequences of equal length, got {xa.shape} and {ya.shape}")
    keep = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[keep], ya[keep]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(xa), size=(n_boot, len(xa))) if len(xa) and n_boot > 0 else None
    out: dict[str, dict[str, Any]] = {}
    for name in _CORR:
        value, p = _corr(name, xa, ya)
        ci = None
        if idx is not None and math.isfinite(value):
            boots = np.array([_corr(name, xa[i], ya[i])[0] for i in idx])
            boots = boots[np.isfinite(boots)]
            if len(boots) >= max(10, n_boot // 2):
                ci = [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]
        out[name] = {"value": value, "p_value": p, "ci95": ci, "n": len(xa)}
    return out


def ordering_accuracy(scores: Sequence[float] | np.ndarray, human: Sequence[float] | np.ndarray) -> float:
    """Fraction of pairs ``(i, j)`` with ``human[i] > human[j]`` where also ``scores[i] > scores[j]`` (ties ½).

    ``scores`` must be oriented so that higher = more similar. NaN when humans rank no pair differently.
    With 0/1 ``human`` this is the ROC AUC (computed from ranks, O(N log N)); otherwise pairs are enumerated.
    """
    s, h = np.asarray(scores, dtype=np.float64), np.asarray(human, dtype=np.float64)
    keep = np.isfinite(s) & np.isfinite(h)
    s, h = s[keep], h[keep]
    levels = np.unique(h)
    if len(levels) < 2:
        return float("nan")
    if len(levels) == 2:
        pos = h == levels[1]
        ranks = stats.rankdata(s)
        n1, n0 = int(pos.sum()), int((~pos).sum())
        u = ranks[pos].sum() - n1 * (n1 + 1) / 2
        return float(u / (n1 * n0))
    total, count = 0.0, 0
    for start in range(0, len(s), 1024):  # pairs in row blocks: memory O(1024·N)
        dh = h[start : start + 1024, None] - h[None, :]
        ds = np.sign(s[start : start + 1024, None] - s[None, :])
        ranked = dh > 0
        total += float(np.where(ds == 0, 0.5, (ds > 0).astype(np.float64))[ranked].sum())
        count += int(ranked.sum())
    return total / count


def setting_means(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Per setting (in order of appearance): ``n``, ``human_rate`` (mean of ``recognised``) and each metric's mean
    over its finite values (``inf`` PSNRs of identical 8-bit images are capped at 100 dB first)."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault(str(r["setting"]), []).append(r)
    out = []
    for name, items in groups.items():
        d: dict[str, Any] = {"setting": name, "n": len(items)}
        d["human_rate"] = float(np.mean([float(r["recognised"]) for r in items]))
        for m in metrics:
            v = _values(items, m)
            v = v[np.isfinite(v)]
            d[m] = float(v.mean()) if len(v) else float("nan")
        out.append(d)
    return out


def _values(rows: Sequence[Mapping[str, Any]], metric: str) -> np.ndarray:
    v = np.array([float(r.get(metric, float("nan"))) for r in rows], dtype=np.float64)
    if metric == "psnr":
        v = np.where(np.isposinf(v), 100.0, v)
    return v


@dataclass
class AgreementResult:
    """Result of :func:`agreement`.

    Attributes:
        per_setting: rows of :func:`setting_means`.
        metrics: metric → ``{"higher_is_similar", "setting": {spearman, pearson, kendall, ordering_accuracy},
            "image": {…}}``; each correlation ``{"value", "p_value", "ci95", "n"}`` of the oriented metric.
        n_images, n_settings: sizes.
    """

    per_setting: list[dict[str, Any]]
    metrics: dict[str, dict[str, Any]]
    n_images: int
    n_settings: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "per_setting": self.per_setting,
            "metrics": self.metrics,
            "n_images": self.n_images,
            "n_settings": self.n_settings,
        }

    def summary(self) -> list[dict[str, Any]]:
        """One row per metric: the headline numbers (setting-level ρ/r/τ, image-level ρ and ordering accuracies)."""
        out = []
        for m, d in self.metrics.items():
            out.append(
                {
                    "metric": m,
                    "setting_spearman": d["setting"]["spearman"]["value"],
                    "setting_pearson": d["setting"]["pearson"]["value"],
                    "setting_kendall": d["setting"]["kendall"]["value"],
                    "setting_ordering_accuracy": d["setting"]["ordering_accuracy"],
                    "image_spearman": d["image"]["spearman"]["value"],
                    "image_ordering_accuracy": d["image"]["ordering_accuracy"],
                }
            )
        return out


def agreement(
    rows: Sequence[Mapping[str, Any]],
    directions: Mapping[str, bool] | Sequence[str],
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> AgreementResult:
    """Agreement of each metric with the human labels of ``rows`` (see the module docstring).

    Args:
        rows: dicts with ``setting``, ``recognised`` (0/1 or a fraction) and one key per metric.
        directions: metric → higher means more similar; or a list of column names of registered image metrics
            (their direction from the registration, :func:`~privlab.measure.image.base.similarity_directions`).
        n_boot: bootstrap resamples for the 95 % intervals.
        seed: seeds the bootstrap.

    Raises:
        ConfigError: no rows, a row without ``setting``/``recognised``, or a metric of unknown direction.
    """
    if not rows:
        raise ConfigError("agreement needs at least one judged reconstruction")
    for i, r in enumerate(rows):
        if "setting" not in r or "recognised" not in r:
            raise ConfigError(f"row {i} lacks 'setting' or 'recognised' (got keys {sorted(r)})")
    if not isinstance(directions, Mapping):
        known = similarity_directions()
        unknown = [m for m in directions if m not in known]
        if unknown:
            raise ConfigError(
                f"direction of metric(s) {', '.join(unknown)} unknown; pass {{name: higher_is_similar}} instead"
            )
        directions = {m: known[m] for m in directions}
    per = setting_means(rows, list(directions))
    human_s = np.array([p["human_rate"] for p in per])
    human_i = np.array([float(r["recognised"]) for r in rows])
    out: dict[str, dict[str, Any]] = {}
    for m, higher in directions.items():
        sign = 1.0 if higher else -1.0
        ms = sign * np.array([p[m] for p in per])
        mi = sign * _values(rows, m)
        set_c = correlations(ms, human_s, n_boot=n_boot, seed=seed)
        img_c = correlations(mi, human_i, n_boot=n_boot, seed=seed)
        set_c["ordering_accuracy"] = ordering_accuracy(ms, human_s)  # type: ignore[assignment]
        img_c["ordering_accuracy"] = ordering_accuracy(mi, human_i)  # type: ignore[assignment]
        out[m] = {"higher_is_similar": bool(higher), "setting": set_c, "image": img_c}
    return AgreementResult(per, out, len(rows), len(per))


_NON_METRIC = {"original", "reconstruction", "setting", "recognised", "annotator", "index", "label"}


def join_scores(manifest: Any, scores_csv: str | Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows for :func:`agreement` from a manifest (:class:`~privlab.measure.semsim.annotations.Manifest` or its
    path) and a CSV of metric values with a ``reconstruction`` column (paths as in the manifest).

    Several answers for one reconstruction are averaged (``recognised`` becomes the fraction of annotators who
    recognised it). Returns ``(rows, info)``; ``info`` has the metric columns and how many rows matched.

    Raises:
        DataMissingError: a file is missing. FileFormatError: no ``reconstruction`` column, a non-numeric metric
        value, or no reconstruction in common.
    """
    import csv
    from pathlib import Path

    from privlab.errors import DataMissingError, FileFormatError
    from privlab.measure.semsim.annotations import Manifest, load_manifest

    m = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
    path = Path(scores_csv).expanduser()
    if not path.is_file():
        raise DataMissingError(
            f"scores file {path} not found (write one with `privlab semsim score --manifest M --csv`)"
        )
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            table = list(reader)
    except (UnicodeDecodeError, csv.Error) as e:
        raise FileFormatError(f"{path}: not a CSV text file ({type(e).__name__}: {str(e)[:100]})") from None
    except OSError as e:
        raise DataMissingError(f"cannot read scores file {path}: {e.strerror or e}") from None
    if "reconstruction" not in header:
        raise FileFormatError(f"{path}: needs a 'reconstruction' column (got {', '.join(header) or 'no header'})")
    metrics = [h for h in header if h not in _NON_METRIC]
    if not metrics:
        raise FileFormatError(f"{path}: no metric column besides {', '.join(sorted(_NON_METRIC & set(header)))}")
    answers: dict[str, list[Any]] = {}
    for r in m.records:
        if r.original:
            answers.setdefault(r.reconstruction, []).append(r)
    rows, unmatched = [], 0
    for i, t in enumerate(table, start=2):
        rec = (t.get("reconstruction") or "").strip()
        if rec not in answers:
            unmatched += 1
            continue
        row: dict[str, Any] = {
            "reconstruction": rec,
            "setting": answers[rec][0].setting,
            "recognised": float(np.mean([a.recognised for a in answers[rec]])),
        }
        for c in metrics:
            text = (t.get(c) or "").strip()
            try:
                row[c] = float(text) if text else float("nan")
            except ValueError:
                raise FileFormatError(f"{path} line {i}: column {c!r} is not a number ({text!r})") from None
        rows.append(row)
    if not rows:
        raise FileFormatError(
            f"no reconstruction of {path} appears in the manifest {m.path}; the 'reconstruction' paths must be "
            "written as in the manifest (relative to its folder)"
        )
    info = {
        "metrics": metrics,
        "matched": len(rows),
        "unmatched_scores": unmatched,
        "unscored_answers": len(set(answers) - {r["reconstruction"] for r in rows}),
    }
    return rows, info
