"""The benchmark harness: ratios, memory, pass/fail, discovery and output files."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from privlab.bench import BENCHMARKS, Benchmark, discover, render_markdown, run_all, run_benchmark, write_results
from privlab.errors import DataMissingError, UnknownNameError


def _sleepy(name: str = "test_sleep_ratio") -> Benchmark:
    return Benchmark(
        name=name,
        description="20 ms sleep vs 10 ms sleep",
        candidate=lambda: time.sleep(0.02),
        baseline=lambda: time.sleep(0.01),
        repeats=3,
        warmup=1,
        goal="ratio ≤ 1.2",
        max_ratio=1.2,
    )


def test_run_benchmark_ratio_and_record(tmp_path: Path) -> None:
    b = _sleepy()
    BENCHMARKS.add(b.name, b)
    try:
        r = run_benchmark(b, repeats=3)
        assert 1.5 <= r["ratio"] <= 3.0
        assert r["ratio"] == pytest.approx(r["candidate_s"] / r["baseline_s"])
        assert r["passed"] is False
        assert isinstance(r["torch_threads"], int)
        assert r["torch_threads"] >= 1
        assert r["repeats"] == 3
        assert len(r["candidate_times_s"]) == 3
        assert len(r["baseline_times_s"]) == 3
        assert r["candidate_peak_mib"] >= 0
        assert r["baseline_peak_mib"] >= 0
        assert r["versions"]["torch"]
        assert "cpu_count" in r["hardware"]
        assert r["device"] == "cpu"
        assert r["timestamp"]

        paths = write_results([r], tmp_path / "results", markdown_path=tmp_path / "BENCHMARKS.md")
        data = json.loads((tmp_path / "results" / f"{b.name}.json").read_text())
        assert data["name"] == b.name
        assert data["ratio"] == pytest.approx(r["ratio"])
        assert (tmp_path / "BENCHMARKS.md") in paths

        md = render_markdown([r])
        assert b.name in md
        assert f"{r['ratio']:.2f}×" in md
        assert "**no**" in md
        assert "| benchmark | goal |" in md
        assert "threads" in md
    finally:
        BENCHMARKS.remove(b.name)


def test_no_threshold_means_passed_none() -> None:
    b = Benchmark(name="x", description="", candidate=lambda: None, baseline=lambda: time.sleep(0.001), warmup=0)
    r = run_benchmark(b, repeats=1)
    assert r["passed"] is None
    assert r["max_ratio"] is None


def test_allocation_shows_in_peak_memory() -> None:
    def alloc() -> None:
        buf = bytearray(64 * 1024 * 1024)
        for i in range(0, len(buf), 4096):  # touch every page so it is resident
            buf[i] = 1
        time.sleep(0.02)
        del buf

    b = Benchmark(name="alloc", description="", candidate=alloc, baseline=lambda: time.sleep(0.02), warmup=0)
    r = run_benchmark(b, repeats=1)
    assert r["candidate_peak_mib"] > 32
    assert r["baseline_peak_mib"] < r["candidate_peak_mib"]


def test_discover_registers_module_benchmark(tmp_path: Path) -> None:
    (tmp_path / "bench_x.py").write_text(
        "from privlab.bench import Benchmark\n"
        "BENCHMARK = Benchmark(name='test_discovered_x', description='d', candidate=lambda: None,\n"
        "                      baseline=lambda: None, repeats=1, warmup=0)\n"
    )
    (tmp_path / "helper.py").write_text("raise RuntimeError('not a bench file, must not be imported')\n")
    try:
        assert discover(tmp_path) == ["test_discovered_x"]
        assert "test_discovered_x" in BENCHMARKS
        assert discover(tmp_path) == ["test_discovered_x"]  # idempotent: no duplicate-name error
        results = run_all(["test_discovered_x"], tmp_path, repeats=1)
        assert [r["name"] for r in results] == ["test_discovered_x"]
        with pytest.raises(UnknownNameError, match="test_discovered_x"):
            run_all(["test_discovered_y"], tmp_path)
    finally:
        if "test_discovered_x" in BENCHMARKS:
            BENCHMARKS.remove("test_discovered_x")


def test_discover_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataMissingError):
        discover(tmp_path / "absent")


def test_repository_benchmarks_register() -> None:
    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    names = discover(folder)
    try:
        assert "train_loop_overhead" in names
        b = BENCHMARKS.get("train_loop_overhead")
        assert b.max_ratio == 1.15
        assert b.goal
    finally:
        for n in names:
            if n in BENCHMARKS:
                BENCHMARKS.remove(n)


def test_latest_results_keep_other_benchmarks_rows(tmp_path) -> None:
    import json

    from privlab.bench import latest_results

    (tmp_path / "a.json").write_text(json.dumps({"name": "a", "ratio": 1.0}))
    (tmp_path / "b.json").write_text(json.dumps({"name": "b", "ratio": 2.0}))
    (tmp_path / "broken.json").write_text("{not json")
    rows = latest_results(tmp_path, [{"name": "b", "ratio": 0.5}, {"name": "c", "ratio": 3.0}])
    assert [(r["name"], r["ratio"]) for r in rows] == [("a", 1.0), ("b", 0.5), ("c", 3.0)]


def test_cli_results_option_writes_elsewhere_and_leaves_the_bench_folder_alone(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from privlab.cli import app

    bench_dir = tmp_path / "benchmarks"
    bench_dir.mkdir()
    (bench_dir / "bench_r.py").write_text(
        "from privlab.bench import Benchmark\n"
        "BENCHMARK = Benchmark(name='test_results_opt', description='d', candidate=lambda: None,\n"
        "                      baseline=lambda: None, repeats=1, warmup=0)\n"
    )
    (bench_dir / "results").mkdir()
    tracked = bench_dir / "results" / "test_results_opt.json"
    tracked.write_text('{"name": "test_results_opt", "ratio": 9.0}\n')  # stands for the tracked file
    runner = CliRunner()
    try:
        out = tmp_path / "elsewhere"
        r = runner.invoke(app, ["bench", "test_results_opt", "--dir", str(bench_dir), "--results", str(out),
                                "--markdown", str(tmp_path / "B.md"), "--json"])  # fmt: skip
        assert r.exit_code == 0, r.output
        data = json.loads((out / "test_results_opt.json").read_text())
        assert data["name"] == "test_results_opt" and data["ratio"] != 9.0
        assert tracked.read_text() == '{"name": "test_results_opt", "ratio": 9.0}\n'  # untouched
        assert "test_results_opt" in (tmp_path / "B.md").read_text()
        # default: DIR/results, as before
        r = runner.invoke(app, ["bench", "test_results_opt", "--dir", str(bench_dir), "--json"])
        assert r.exit_code == 0, r.output
        assert json.loads(tracked.read_text())["ratio"] != 9.0
        (tmp_path / "file").write_text("x")
        a_file = str(tmp_path / "file")
        r = runner.invoke(app, ["bench", "test_results_opt", "--dir", str(bench_dir), "--results", a_file])
        assert r.exit_code == 2 and "--results" in r.output
    finally:
        if "test_results_opt" in BENCHMARKS:
            BENCHMARKS.remove("test_results_opt")


def test_peak_memory_survives_a_starved_sampler_after_a_bigger_earlier_peak() -> None:
    """On a loaded machine the sampling thread may not run during the call, and the process may already have peaked
    higher (an earlier test): the reset kernel high-water mark (and the Python-heap peak) still see the call's
    allocation."""
    from privlab.bench import measure_peak_mib

    def touch(mib: int) -> None:
        buf = bytearray(mib * 1024 * 1024)
        for i in range(0, len(buf), 4096):
            buf[i] = 1
        del buf

    touch(128)  # an earlier, bigger peak of this process
    peak, method = measure_peak_mib(lambda: touch(64), interval_s=100.0)  # the sampler sees only the start
    assert method in ("rss", "rss-sampled")
    assert 48 < peak < 100


def test_peak_memory_where_the_kernel_refuses_the_high_water_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    """Some sandboxes refuse ``/proc/self/clear_refs`` and the process already peaked higher: with the sampler
    starved too, the Python-heap peak still sees a 64 MiB allocation, and the method says the mark was missing."""
    from privlab import bench

    monkeypatch.setattr(bench, "_reset_rss_high_water_mark", lambda: False)
    monkeypatch.setattr(bench, "_max_rss_bytes", lambda: 10 * 1024**3)  # an earlier 10 GiB peak: never raised

    def touch() -> None:
        buf = bytearray(64 * 1024 * 1024)
        for i in range(0, len(buf), 4096):
            buf[i] = 1
        del buf

    peak, method = bench.measure_peak_mib(touch, interval_s=100.0)
    assert method == "rss-sampled"
    assert 60 < peak < 100
