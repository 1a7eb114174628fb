"""Agreement statistics against scipy / scikit-learn and brute force; joining scores with a manifest."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from privlab.errors import ConfigError, FileFormatError
from privlab.measure.semsim.agreement import agreement, correlations, join_scores, ordering_accuracy


def test_correlations_equal_scipy_with_bootstrap_intervals():
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    y = 0.6 * x + rng.normal(size=40)
    c = correlations(x, y, n_boot=300, seed=1)
    assert c["spearman"]["value"] == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert c["pearson"]["value"] == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
    assert c["kendall"]["value"] == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    assert c["pearson"]["p_value"] == pytest.approx(stats.pearsonr(x, y).pvalue)
    for name in ("spearman", "pearson", "kendall"):
        lo, hi = c[name]["ci95"]
        assert lo < c[name]["value"] < hi and hi - lo < 1.0
    assert correlations(x, y, n_boot=300, seed=1) == c  # seeded
    assert np.isnan(correlations([1, 2], [3, 4])["spearman"]["value"])  # fewer than 3 points


def test_ordering_accuracy_is_auc_for_binary_and_counts_pairs_otherwise():
    rng = np.random.default_rng(3)
    s = rng.integers(0, 5, size=60).astype(float)  # many ties
    h = rng.integers(0, 2, size=60)
    assert ordering_accuracy(s, h) == pytest.approx(roc_auc_score(h, s))
    hf = rng.integers(0, 4, size=25).astype(float)
    sf = rng.normal(size=25).round(1)
    agree = total = 0.0
    for i, j in itertools.permutations(range(25), 2):
        if hf[i] > hf[j]:
            total += 1
            agree += 1.0 if sf[i] > sf[j] else 0.5 if sf[i] == sf[j] else 0.0
    assert ordering_accuracy(sf, hf) == pytest.approx(agree / total)
    assert np.isnan(ordering_accuracy([1, 2, 3], [1, 1, 1]))


def test_agreement_orients_metrics_and_averages_settings():
    rows = []
    for s, rate, mse in (("a", 0.75, 0.01), ("b", 0.5, 0.05), ("c", 0.25, 0.1), ("d", 0.0, 0.2)):
        for k in range(4):
            rows.append({"setting": s, "recognised": int(k < rate * 4), "mse": mse + 0.001 * k, "ssim": 1 - mse})
    res = agreement(rows, ["mse", "ssim"], n_boot=100, seed=0)
    assert [p["human_rate"] for p in res.per_setting] == [0.75, 0.5, 0.25, 0.0]
    assert res.per_setting[0]["mse"] == pytest.approx(0.0115)
    for m in ("mse", "ssim"):  # lower MSE = more similar: oriented, both agree perfectly per setting
        assert res.metrics[m]["setting"]["spearman"]["value"] == pytest.approx(1.0)
        assert res.metrics[m]["setting"]["ordering_accuracy"] == 1.0
    assert res.metrics["mse"]["higher_is_similar"] is False
    with pytest.raises(ConfigError, match="unknown"):
        agreement(rows, ["nonsense"])


def test_join_scores_averages_annotators(tmp_path):
    (tmp_path / "m.csv").write_text(
        "original,reconstruction,setting,recognised,annotator\n"
        "o.png,r1.png,s,yes,a\no.png,r1.png,s,no,b\no.png,r2.png,t,yes,a\no.png,r3.png,t,no,a\n"
    )
    (tmp_path / "scores.csv").write_text("reconstruction,psnr,semsim\nr1.png,20,0.5\nr2.png,30,0.1\nzz.png,1,1\n")
    rows, info = join_scores(tmp_path / "m.csv", tmp_path / "scores.csv")
    assert [(r["reconstruction"], r["recognised"], r["psnr"]) for r in rows] == [
        ("r1.png", 0.5, 20.0),
        ("r2.png", 1.0, 30.0),
    ]
    assert info == {"metrics": ["psnr", "semsim"], "matched": 2, "unmatched_scores": 1, "unscored_answers": 1}
    (tmp_path / "bad.csv").write_text("reconstruction,psnr\nr1.png,abc\n")
    with pytest.raises(FileFormatError, match="not a number"):
        join_scores(tmp_path / "m.csv", tmp_path / "bad.csv")
