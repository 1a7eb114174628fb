"""The report of a sweep: overview with varying parameters and filters, the privacy–utility plane across
pipelines, run details; and (when Chromium is installed) the page runs in a headless browser without console
errors."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from privlab.plugins import PLUGINS_ENV, load_plugins
from privlab.report import build_report
from privlab.report.plane import plane_points
from privlab.run import load_spec, run_sweep
from privlab.store import MetricRecord, Store

PLUGIN = str(Path(__file__).parents[1] / "run" / "sleepy_plugin.py")


def _fake(store: Store, run_id: str, experiment: str, spec: dict, metrics: dict[str, float]) -> None:
    store.start_run(run_id, experiment=experiment, spec=spec, spec_hash=run_id, seed=0, versions={}, hardware={})
    store.log_metrics(run_id, [MetricRecord(k, v) for k, v in metrics.items()])
    store.finish_run(run_id)


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("sweep")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PLUGINS_ENV, PLUGIN)
        load_plugins()
        spec = load_spec(experiment="test-sleepy", overrides={"sweep": {"scale": [0.25, 0.5, 1.0]}})
        run_sweep([spec], tmp_path, workers=2, quiet=True, report=False)
    with Store(tmp_path) as s:  # runs of the other pipelines, as their plane entries read them
        for eps, acc in [(30.0, 0.4), (3000.0, 0.9)]:
            _fake(
                s,
                f"ldp-{int(eps)}",
                "ldp",
                {"mechanism": "rr", "learner": "cnn_shallow", "epsilon": eps},
                {"epsilon": eps, "test_accuracy": acc},
            )
        _fake(
            s,
            "ldp-dither",
            "ldp",
            {"mechanism": "rr", "binarize": "dither", "learner": "iic", "epsilon": 30.0},
            {"epsilon": 30.0, "test_accuracy": 0.5},
        )
        _fake(
            s,
            "ldp-raw",
            "ldp",
            {"mechanism": "none", "learner": "cnn_shallow"},
            {"epsilon": float("inf"), "test_accuracy": 0.95},
        )
        _fake(
            s,
            "inv-1",
            "inversion",
            {"attack": "idlg", "defense": {"name": "prune"}},
            {"psnr": 14.5, "gradient_cosine": 0.8},
        )
        _fake(s, "shr-1", "shredder", {"preset": "cpu"}, {"mi_reduction": 80.0, "public_accuracy_noisy": 0.93})
        _fake(
            s,
            "ue-1",
            "unlearnable",
            {"protection": {"name": "em", "kind": "class"}},
            {"poisoned_train_test_accuracy": 0.9, "budget_epsilon": 8.0},
        )
        _fake(s, "train-1", "train", {"model": "lenet5"}, {"test_accuracy": 0.97})  # utility only: no point
    build_report(tmp_path)
    return tmp_path


def test_plane_has_every_pipeline_with_a_privacy_and_a_utility(sweep_dir: Path) -> None:
    with Store(sweep_dir, create=False) as s:
        points = {p.run_id: p for p in plane_points(s.runs(), s.metric_info())}
    assert set(points) == {
        *(r for r in points if r.startswith("test-sleepy")),
        "ldp-30",
        "ldp-3000",
        "ldp-raw",
        "ldp-dither",
        "inv-1",
        "shr-1",
        "ue-1",
    }
    assert sum(r.startswith("test-sleepy") for r in points) == 3  # generic entry: first privacy/utility metrics
    assert (points["ldp-30"].x, points["ldp-30"].y, points["ldp-30"].method) == (30.0, 0.4, "rr → cnn_shallow")
    assert points["ldp-30"].x_log
    assert points["ldp-dither"].method == "rr (dither) → iic"
    assert (points["inv-1"].x_label, points["inv-1"].method) == ("reconstruction PSNR (dB)", "idlg vs prune")
    assert points["shr-1"].more_private == "right"  # a larger MI reduction is more private
    assert points["ldp-raw"].x == float("inf")  # the raw-data baseline: drawn as a horizontal line
    assert "train-1" not in points  # utility-only runs have no point


def test_report_of_a_sweep(sweep_dir: Path) -> None:
    page = (sweep_dir / "report.html").read_text()
    assert page.count('<tr data-exp="test-sleepy"') == 3
    assert "scale=0.25" in page and "scale=1.0" in page  # the swept parameter, per run
    assert "seconds=" not in page  # parameters that do not vary are not listed
    for exp in ("test-sleepy", "ldp", "inversion", "shredder", "unlearnable", "train"):
        assert f'<option value="{exp}">{exp}</option>' in page
    plane = page[page.index('<section id="plane">') : page.index('<section id="metrics">')]
    assert plane.count("data:image/png;base64,") == 1
    assert "MI reduction (%)" in plane and "ε (per image, nats)" in plane and "rr → cnn_shallow" in plane
    assert len(re.findall(r'<a href="#run-[^"]+">', plane)) == 10  # 3 sleepy + 4 ldp + inversion + shredder + ue
    assert '<td class="num">∞</td>' in plane
    details = page[page.index('<section id="runs">') :]
    assert details.count('class="run"') == 11
    assert "value.json" in details  # artifacts with checksums
    assert "torch_threads" in details  # hardware recorded per run


def test_report_runs_in_headless_chromium_without_console_errors(sweep_dir: Path, tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")

    def load(page: Path) -> tuple[str, list[str]]:
        res = subprocess.run(
            [
                browser,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--enable-logging=stderr",
                "--v=0",
                "--virtual-time-budget=3000",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        return res.stdout, [ln for ln in res.stderr.splitlines() if ":CONSOLE" in ln]

    bad = tmp_path / "bad.html"  # the detector itself: a page with a script error is caught
    bad.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    assert any("Uncaught ReferenceError" in ln for ln in load(bad)[1])
    dom, console = load(sweep_dir / "report.html")
    assert console == []
    assert "11 of 11 runs shown" in dom  # the filter script ran
