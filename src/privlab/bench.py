"""Benchmark harness: a candidate against a baseline, side by side in one process, with a pass/fail goal.

A benchmark is one file ``benchmarks/bench_<name>.py`` defining ``BENCHMARK = Benchmark(...)`` (or calling
``BENCHMARKS.add(...)``). :func:`run_benchmark` times the candidate and the baseline interleaved (after a warm-up),
takes medians, measures each side's peak memory, and reports ``ratio = candidate / baseline``; ``passed`` says
whether the ratio is within ``max_ratio``. Results go to ``benchmarks/results/<name>.json`` and, through
:func:`render_markdown`, to ``BENCHMARKS.md``.

Example:
    >>> import time
    >>> b = Benchmark(name="sleep", description="10 ms vs 10 ms", candidate=lambda: time.sleep(0.01),
    ...               baseline=lambda: time.sleep(0.01), repeats=2, warmup=0, goal="equal", max_ratio=3.0)
    >>> r = run_benchmark(b)
    >>> 0.3 < r["ratio"] < 3.0, r["passed"]
    (True, True)
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import sys
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from privlab.context import environment
from privlab.errors import ConfigError, DataMissingError
from privlab.registry import Registry
from privlab.store import atomic_write_text

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "discover",
    "latest_results",
    "measure_peak_mib",
    "render_markdown",
    "run_all",
    "run_benchmark",
    "write_results",
]

_MIB = 1024 * 1024


@dataclass
class Benchmark:
    """A timed comparison of a candidate (privlab code) with a baseline doing the same work without it.

    Attributes:
        name: registry name; also the results file name (``<name>.json``).
        description: one line saying what both sides compute.
        candidate: the code under test, called with no argument (its return value is ignored).
        baseline: the reference doing the same work, called with no argument.
        setup: called once before the warm-up (load data, build inputs shared by both sides), or None.
        repeats: timed calls per side (the median is reported).
        warmup: untimed calls per side before timing (imports, caches, allocator warm-up).
        goal: human statement of the target, e.g. ``"overhead ≤ 1.10× bare loop"``.
        max_ratio: pass threshold on ``candidate_s / baseline_s``; None: report only.
        max_candidate_peak_mib: pass threshold on the candidate's peak extra memory (MiB); None: no memory goal.
        max_candidate_s: pass threshold on the candidate's median time in seconds; None: no absolute time goal.
        device: where both sides compute (``"cpu"`` or ``"cuda…"``); on CUDA the timer synchronises and peak
            memory is ``torch.cuda.max_memory_allocated``.
    """

    name: str
    description: str
    candidate: Callable[[], Any]
    baseline: Callable[[], Any]
    setup: Callable[[], None] | None = None
    repeats: int = 5
    warmup: int = 1
    goal: str = ""
    max_ratio: float | None = None
    max_candidate_peak_mib: float | None = None
    max_candidate_s: float | None = None
    device: str = "cpu"


BENCHMARKS: Registry[Benchmark] = Registry("benchmark")

# resolved path of every bench file imported so far → the benchmark names it registered (discover() is idempotent)
_IMPORTED: dict[Path, list[str]] = {}


# -- discovery ----------------------------------------------------------------------------------------------------
def _import_file(file: Path) -> list[str]:
    """Import one bench file and register its ``BENCHMARK``; return the names it registered."""
    before = set(BENCHMARKS.names())
    mod_name = f"_privlab_bench_{file.stem}_{zlib.crc32(str(file).encode()):08x}"
    spec = importlib.util.spec_from_file_location(mod_name, file)
    if spec is None or spec.loader is None:  # pragma: no cover - only for odd file systems
        raise DataMissingError(f"cannot import benchmark file {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(mod_name, None)
        raise
    bench = getattr(module, "BENCHMARK", None)
    if isinstance(bench, Benchmark):
        if bench.name not in BENCHMARKS:
            BENCHMARKS.add(bench.name, bench, description=bench.description, file=str(file))
        elif BENCHMARKS.get(bench.name) is not bench:
            other = BENCHMARKS.entry(bench.name).meta.get("file", "another module")
            raise ConfigError(f"benchmark {bench.name!r} in {file} is already defined in {other}; rename one")
    return [n for n in BENCHMARKS.names() if n not in before]


def discover(path: str | Path) -> list[str]:
    """Import every ``bench_*.py`` in ``path`` so that its benchmark registers; return the names found there.

    A file either calls ``BENCHMARKS.add(name, Benchmark(...))`` itself or defines a module-level
    ``BENCHMARK = Benchmark(...)``, which is registered here. A file already imported is not imported again unless
    one of its benchmarks has since been removed from :data:`BENCHMARKS`.

    Raises:
        DataMissingError: ``path`` is not a folder.
        ConfigError: two files define benchmarks with the same name.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise DataMissingError(f"no benchmarks folder at {folder}; pass the folder holding bench_*.py files")
    found: list[str] = []
    for file in sorted(folder.glob("bench_*.py")):
        key = file.resolve()
        names = _IMPORTED.get(key)
        if names is None or not all(n in BENCHMARKS for n in names):
            for n in names or ():  # some were unregistered (tests do): import the file afresh
                if n in BENCHMARKS:
                    BENCHMARKS.remove(n)
            _IMPORTED[key] = _import_file(key)
        found.extend(_IMPORTED[key])
    return found


# -- measurement --------------------------------------------------------------------------------------------------
def _is_cuda(device: str) -> bool:
    return device.startswith("cuda") and torch.cuda.is_available()


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def measure_peak_mib(fn: Callable[[], Any], device: str = "cpu", *, interval_s: float = 0.002) -> tuple[float, str]:
    """Call ``fn`` once and return ``(peak memory increase in MiB, method)``.

    Methods: ``"cuda"`` — ``torch.cuda.max_memory_allocated`` above the allocation before the call (stats reset
    first); ``"rss"`` — the process resident set size sampled from ``/proc/self/statm`` every ``interval_s``
    seconds in a background thread, peak minus the value before the call, backed by the kernel's high-water mark
    (reset first through ``/proc/self/clear_refs``) and by the Python-heap peak (``tracemalloc``: NumPy arrays and
    Python objects), so that a sampler starved by a loaded machine still sees the call's allocations;
    ``"rss-sampled"`` — the same where the kernel refuses the reset and the call did not raise the process's
    earlier peak (a lower bound for tensor buffers the sampler missed); ``"tracemalloc"`` — Python-heap peak
    alone, where ``/proc`` is absent (it does not see tensor buffers).
    """
    if _is_cuda(device):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return max(0, torch.cuda.max_memory_allocated() - before) / _MIB, "cuda"
    start = _rss_bytes()
    if start is None:
        tracemalloc.start()
        try:
            fn()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return peak / _MIB, "tracemalloc"
    peak = start
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            rss = _rss_bytes()
            if rss is not None and rss > peak:
                peak = rss
            stop.wait(interval_s)

    hwm_reset = _reset_rss_high_water_mark()
    hwm_before = _max_rss_bytes()
    traced = not tracemalloc.is_tracing()
    if traced:
        tracemalloc.start()
    thread = threading.Thread(target=sample, name="privlab-bench-rss", daemon=True)
    thread.start()
    try:
        fn()
    finally:
        stop.set()
        thread.join()
        heap_peak = tracemalloc.get_traced_memory()[1] if traced else 0
        if traced:
            tracemalloc.stop()
    end = _rss_bytes() or 0
    hwm_after = _max_rss_bytes()
    kernel_mark = hwm_reset or hwm_after > hwm_before  # the kernel's high-water mark covers the call
    if kernel_mark:
        peak = max(peak, hwm_after)
    rss_mib = max(0, max(peak, end) - start) / _MIB
    return max(rss_mib, heap_peak / _MIB), "rss" if kernel_mark else "rss-sampled"


def _reset_rss_high_water_mark() -> bool:
    """Reset the process's peak-RSS mark (Linux ``/proc/self/clear_refs``, value 5); False where that is refused."""
    try:  # a kernel control file, not a data file: no atomic replace possible (or needed)
        fd = os.open("/proc/self/clear_refs", os.O_WRONLY)
        try:
            os.write(fd, b"5")
        finally:
            os.close(fd)
        return True
    except OSError:
        return False


def _max_rss_bytes() -> int:
    """The process's resident-set high-water mark (``VmHWM`` of ``/proc/self/status``, else ``getrusage``; bytes)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # KiB on Linux
    except (ImportError, OSError):
        return 0


def _timed(fn: Callable[[], Any], cuda: bool) -> float:
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def run_benchmark(b: Benchmark, repeats: int | None = None) -> dict[str, Any]:
    """Run one benchmark and return its result record (JSON-ready).

    Order: ``setup`` once; ``warmup`` untimed calls per side; ``repeats`` timed rounds, each calling both sides with
    the order alternating (candidate-baseline, then baseline-candidate, …) so slow drift affects both alike; then
    one more call per side under the memory monitor (kept apart so sampling does not disturb the timings).

    Args:
        b: the benchmark.
        repeats: timed calls per side (default ``b.repeats``).

    Returns:
        ``name, description, goal, candidate_s, baseline_s`` (medians, seconds), ``ratio`` (candidate / baseline),
        ``candidate_peak_mib, baseline_peak_mib`` (MiB above the start of the call), ``memory_method``,
        ``candidate_times_s, baseline_times_s`` (every timed call), ``repeats, warmup, torch_threads, device,
        max_ratio, passed`` (ratio ≤ max_ratio, or None without a threshold), ``versions, hardware, timestamp``
        (UTC, ISO 8601).

    Raises:
        ConfigError: ``repeats`` < 1.
    """
    reps = b.repeats if repeats is None else repeats
    if reps < 1:
        raise ConfigError(f"benchmark {b.name!r}: repeats must be ≥ 1, got {reps}")
    cuda = _is_cuda(b.device)
    if b.setup is not None:
        b.setup()
    for _ in range(max(0, b.warmup)):
        b.candidate()
        b.baseline()
    times: dict[str, list[float]] = {"candidate": [], "baseline": []}
    sides = {"candidate": b.candidate, "baseline": b.baseline}
    for i in range(reps):
        order = ("candidate", "baseline") if i % 2 == 0 else ("baseline", "candidate")
        for side in order:
            times[side].append(_timed(sides[side], cuda))
    cand_peak, method = measure_peak_mib(b.candidate, b.device)
    base_peak, _ = measure_peak_mib(b.baseline, b.device)
    cand_s, base_s = statistics.median(times["candidate"]), statistics.median(times["baseline"])
    ratio = cand_s / base_s if base_s > 0 else float("inf")
    versions, hardware = environment()
    return {
        "name": b.name,
        "description": b.description,
        "goal": b.goal,
        "candidate_s": cand_s,
        "baseline_s": base_s,
        "ratio": ratio,
        "candidate_peak_mib": cand_peak,
        "baseline_peak_mib": base_peak,
        "memory_method": method,
        "candidate_times_s": times["candidate"],
        "baseline_times_s": times["baseline"],
        "repeats": reps,
        "warmup": b.warmup,
        "torch_threads": torch.get_num_threads(),
        "device": b.device,
        "max_ratio": b.max_ratio,
        "max_candidate_peak_mib": b.max_candidate_peak_mib,
        "max_candidate_s": b.max_candidate_s,
        "passed": _passed(b, ratio, cand_peak, cand_s),
        "versions": versions,
        "hardware": hardware,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _passed(b: Benchmark, ratio: float, cand_peak: float, cand_s: float = 0.0) -> bool | None:
    """Every goal the benchmark sets is met (None when it sets none)."""
    checks = []
    if b.max_ratio is not None:
        checks.append(ratio <= b.max_ratio)
    if b.max_candidate_peak_mib is not None:
        checks.append(cand_peak <= b.max_candidate_peak_mib)
    if b.max_candidate_s is not None:
        checks.append(cand_s <= b.max_candidate_s)
    return None if not checks else all(checks)


def run_all(names: list[str] | None, path: str | Path, repeats: int | None = None) -> list[dict[str, Any]]:
    """Discover the benchmarks in ``path`` and run ``names`` (all when None or empty), in the order given.

    Raises:
        UnknownNameError: a name is not a registered benchmark (checked for all names before any runs).
    """
    discover(path)
    chosen = [BENCHMARKS.get(n) for n in names] if names else [BENCHMARKS.get(n) for n in BENCHMARKS.names()]
    return [run_benchmark(b, repeats) for b in chosen]


# -- output -------------------------------------------------------------------------------------------------------
def latest_results(json_dir: str | Path, fresh: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Every benchmark's latest result: ``fresh`` ones first-class, the others read from ``json_dir/<name>.json``
    (unreadable files are skipped), sorted by name."""
    by_name: dict[str, dict[str, Any]] = {}
    for f in sorted(Path(json_dir).glob("*.json")):
        try:
            r = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(r, dict) and "name" in r and "ratio" in r:
            by_name[r["name"]] = r
    for r in fresh or []:
        by_name[r["name"]] = r
    return [by_name[n] for n in sorted(by_name)]


def write_results(
    results: list[dict[str, Any]], json_dir: str | Path, *, markdown_path: str | Path | None = None
) -> list[Path]:
    """Write one ``json_dir/<name>.json`` per result (atomically); with ``markdown_path`` also the Markdown table.

    Returns:
        The paths written (JSON files, then the Markdown file if any).
    """
    out = Path(json_dir)
    paths = [
        atomic_write_text(out / f"{r['name']}.json", json.dumps(r, indent=2, sort_keys=True, allow_nan=True) + "\n")
        for r in results
    ]
    if markdown_path is not None:
        paths.append(atomic_write_text(markdown_path, render_markdown(results)))
    return paths


def _fmt_s(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.3f} s"


def _machine_line(r: dict[str, Any]) -> str:
    hw, v = r.get("hardware", {}), r.get("versions", {})
    gpus = ", ".join(hw.get("gpus") or []) or "no GPU"
    return (
        f"{hw.get('platform', '?')}, {hw.get('cpu_count', '?')} CPUs, {gpus}; "
        f"Python {v.get('python', '?')}, torch {v.get('torch', '?')}, privlab {v.get('privlab') or 'dev'}"
    )


def render_markdown(results: list[dict[str, Any]]) -> str:
    """The body of ``BENCHMARKS.md``: what the numbers mean, one table row per benchmark, and the machine."""
    lines = [
        "# Benchmarks",
        "",
        "Each benchmark runs a *candidate* (privlab code) and a *baseline* (the same work written directly in "
        "PyTorch or NumPy) side by side in one process: after a warm-up, the two are called in alternating order "
        "and each time is the median of the timed calls. **ratio** = candidate time / baseline time, so 1.00× "
        "means no overhead and 1.10× means the candidate takes 10 % longer; a benchmark **passes** when the ratio "
        "is at most its goal. Peak memory is the increase of the process's resident memory (GPU: allocated memory) "
        "during one call of each side, in MiB (at least the Python-heap peak; `memory_method` in the JSON says "
        "`rss-sampled` where the kernel's high-water mark could not be reset, a lower bound for tensor buffers). "
        "**threads** is `torch.get_num_threads()` during the run; timings "
        "depend on it and on the machine below. Regenerate with `privlab bench` (or `make bench`); raw numbers are "
        "in `benchmarks/results/<name>.json`.",
        "",
        "| benchmark | goal | candidate | baseline | ratio | peak MiB (cand/base) | threads | passed |",
        "|---|---|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in results:
        passed = {True: "yes", False: "**no**", None: "—"}[r.get("passed")]
        goal = str(r.get("goal") or "").replace("|", "\\|")
        lines.append(
            f"| `{r['name']}` | {goal} | {_fmt_s(r['candidate_s'])} | {_fmt_s(r['baseline_s'])} | "
            f"{r['ratio']:.2f}× | {r['candidate_peak_mib']:.1f} / {r['baseline_peak_mib']:.1f} | "
            f"{r['torch_threads']} | {passed} |"
        )
    lines.append("")
    lines.extend(f"- `{r['name']}`: {r.get('description', '')}" for r in results)
    machines = list(dict.fromkeys(_machine_line(r) for r in results))
    stamps = sorted(str(r.get("timestamp")) for r in results if r.get("timestamp"))
    when = f" Measured {stamps[0]}" + (f" to {stamps[-1]}" if stamps[-1] != stamps[0] else "") + "." if stamps else ""
    lines.append("")
    if len(machines) <= 1:
        lines.append(f"Machine: {machines[0] if machines else 'unknown'}.{when}")
    else:
        lines.extend([f"Machines:{when}", ""] + [f"- {m}" for m in machines])
    lines.append("")
    return "\n".join(lines)
