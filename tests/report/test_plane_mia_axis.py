"""The privacy–utility plane's common membership-inference axis: runs of ldp (classifiers, DP-SGD), unlearnable and
mia that carry the LOSS attack's TPR at 1 % FPR share one panel next to their own experiments' panels."""

from __future__ import annotations

import re
from pathlib import Path

from privlab.report import build_report
from privlab.report.plane import MIA_AXIS_LABEL, mia_axis_points, plane_panels, plane_points
from privlab.store import MetricRecord, Store


def _fake(store: Store, run_id: str, experiment: str, spec: dict, metrics: dict[str, float]) -> None:
    store.start_run(run_id, experiment=experiment, spec=spec, spec_hash=run_id, seed=0, versions={}, hardware={})
    store.log_metrics(run_id, [MetricRecord(k, v) for k, v in metrics.items()])
    store.finish_run(run_id)


def _store(tmp_path: Path) -> Path:
    with Store(tmp_path) as s:
        for eps, tpr, acc in [(1.0, 0.01, 0.3), (100.0, 0.04, 0.9)]:
            _fake(
                s,
                f"ldp-lap-{int(eps)}",
                "ldp",
                {"mechanism": "laplace", "learner": "cnn_shallow", "epsilon": eps},
                {"epsilon": eps, "test_accuracy": acc, "mia_loss_tpr_at_fpr_0.01": tpr, "mia_loss_auc": 0.5},
            )
        _fake(
            s,
            "ldp-dpsgd",
            "ldp",
            {"mechanism": "dpsgd", "learner": "dpsgd", "epsilon": 3.0},
            {"epsilon": 3.0, "test_accuracy": 0.8, "mia_loss_tpr_at_fpr_0.01": 0.02},
        )
        _fake(
            s,
            "ldp-raw",
            "ldp",
            {"mechanism": "none", "learner": "cnn_shallow"},
            {"epsilon": float("inf"), "test_accuracy": 0.95, "mia_loss_tpr_at_fpr_0.01": 0.12},
        )
        _fake(
            s,
            "ldp-kmeans",
            "ldp",
            {"mechanism": "laplace", "learner": "kmeans", "epsilon": 10.0},
            {"epsilon": 10.0, "test_accuracy": 0.7},
        )  # clustering: no probe, own panel only
        _fake(
            s,
            "ue-em",
            "unlearnable",
            {"protection": {"name": "em", "kind": "sample"}},
            {"poisoned_train_test_accuracy": 0.2, "protected_psnr": 30.0, "mia_loss_tpr_at_fpr_0.01": 0.05},
        )
        _fake(
            s,
            "mia-dp",
            "mia",
            {"target": {"kind": "dpsgd", "epsilon": 1.0}},
            {"test_accuracy": 0.7, "mia_tpr_at_fpr_0.01": 0.03, "loss/tpr_at_fpr_0.01": 0.015},
        )
    return tmp_path


def test_common_axis_points_take_each_pipelines_probe_and_model_accuracy(tmp_path: Path) -> None:
    out = _store(tmp_path)
    with Store(out, create=False) as s:
        runs, info = s.runs(), s.metric_info()
    axis = {p.run_id: p for p in mia_axis_points(runs)}
    assert set(axis) == {"ldp-lap-1", "ldp-lap-100", "ldp-dpsgd", "ldp-raw", "ue-em", "mia-dp"}
    assert {p.x_label for p in axis.values()} == {MIA_AXIS_LABEL} and len({p.y_label for p in axis.values()}) == 1
    assert (axis["ldp-lap-100"].x, axis["ldp-lap-100"].y) == (0.04, 0.9)
    assert axis["ldp-lap-1"].method == axis["ldp-lap-100"].method == "LDP laplace → cnn_shallow"  # one curve
    assert axis["ldp-dpsgd"].method == "DP-SGD" and axis["ldp-raw"].method == "raw data → cnn_shallow"
    assert (axis["ue-em"].x, axis["ue-em"].y) == (0.05, 0.2)  # the poisoned victim's clean test accuracy
    assert axis["mia-dp"].x == 0.015  # the LOSS attack's, not the best attack's (0.03): the same attack everywhere
    assert all(p.more_private == "left" and not p.x_log for p in axis.values())
    # the experiments' own panels are kept, and the common one is added
    own = plane_points(runs, info)
    panels = plane_panels(own + list(axis.values()))
    assert len(panels) == len(plane_panels(own)) + 1
    common = [k for k in panels if k[0] == MIA_AXIS_LABEL]
    assert len(common) == 1 and {p.experiment for p in panels[common[0]]} == {"ldp", "unlearnable", "mia"}


def test_report_draws_the_common_axis_and_lists_its_points(tmp_path: Path) -> None:
    page = build_report(_store(tmp_path)).read_text()
    plane = page[page.index('<section id="plane">') : page.index('<section id="metrics">')]
    assert plane.count("data:image/png;base64,") == 1
    assert plane.count(f"<td>{MIA_AXIS_LABEL}</td>") == 6 and "puts the training-time protections" in plane
    # 6 runs on the common axis + 7 on their own panels (kmeans included)
    assert len(re.findall(r'<a href="#run-[^"]+">', plane)) == 13


def test_without_probed_runs_there_is_no_common_panel(tmp_path: Path) -> None:
    with Store(tmp_path) as s:
        _fake(s, "ldp-kmeans", "ldp", {"mechanism": "laplace", "learner": "kmeans", "epsilon": 10.0},
              {"epsilon": 10.0, "test_accuracy": 0.7})  # fmt: skip
    page = build_report(tmp_path).read_text()
    assert MIA_AXIS_LABEL not in page
    with Store(tmp_path, create=False) as s:
        assert mia_axis_points(s.runs()) == []
