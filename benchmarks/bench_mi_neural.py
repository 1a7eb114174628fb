"""Neural MI estimators: time per estimate at n = 5 000 on the CPU (goal ≤ 2 minutes), beside KSG on the same data."""

from __future__ import annotations

from privlab.bench import BENCHMARKS, Benchmark
from privlab.measure.mi import estimate_mi
from privlab.measure.mi.tasks import get_task

_DATA: dict[str, tuple] = {}


def _setup() -> None:
    if "x" not in _DATA:
        _DATA["x"] = get_task("normal-dense-5x5").sample(5000, seed=0)


for _name in ("infonce", "smile"):
    BENCHMARKS.add(
        f"mi_neural_{_name}",
        Benchmark(
            name=f"mi_neural_{_name}",
            description=f"{_name} (defaults) on normal-dense-5x5, n = 5 000, vs ksg on the same samples",
            setup=_setup,
            candidate=lambda n=_name: estimate_mi(*_DATA["x"], n, seed=0, diagnose=False),
            baseline=lambda: estimate_mi(*_DATA["x"], "ksg", diagnose=False),
            repeats=1,
            warmup=0,
            goal="≤ 2 minutes per estimate at n = 5 000 on the CPU",
            max_candidate_s=120.0,
        ),
    )
