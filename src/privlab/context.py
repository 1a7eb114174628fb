"""RunContext: what a pipeline gets besides its spec — device, seed, output folder, store, progress.

Also the helpers that make runs reproducible and self-describing: :func:`resolve_device`, :func:`seed_everything`
and :func:`environment` (library versions and hardware, recorded next to every run's results).
"""

from __future__ import annotations

import os
import platform
import random
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from privlab.errors import ConfigError
from privlab.store import MetricRecord, Store, atomic_write_text, save_tensors, sha256_file
from privlab.store.artifacts import json_safe

__all__ = ["Progress", "RunContext", "environment", "resolve_device", "seed_everything"]

_LIBS = ("privlab", "torch", "torchvision", "numpy", "scikit-learn", "scipy", "torchmetrics", "opacus", "pydantic")


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` as given.

    Raises:
        ConfigError: a CUDA/MPS device was asked for but is not available, or the name is not a device.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} asked for but CUDA is not available here; use --device cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' asked for but not available here; use --device cpu or auto")
    return dev


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA); with ``deterministic`` also ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment() -> tuple[dict[str, Any], dict[str, Any]]:
    """``(versions, hardware)``: library versions and the machine a run used (stored with every run)."""
    versions = {"python": platform.python_version()} | {lib: _version(lib) for lib in _LIBS}
    hardware: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available()
        else [],
    }
    return versions, hardware


def _fmt_fields(fields: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())


class Progress:
    """A thin progress reporter over ``rich`` (stderr), silent when ``quiet``.

    Example:
        >>> p = Progress(quiet=True)
        >>> with p.task("epochs", total=3) as advance:
        ...     for _ in range(3):
        ...         advance(1)
    """

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self._rich: Any = None
        self._depth = 0

    @contextmanager
    def task(self, description: str, total: float | None) -> Iterator[Any]:
        """Context manager yielding ``advance(n=1, **fields)``; nested tasks share one live display."""
        if self.quiet or not sys.stderr:
            yield lambda n=1, **kw: None
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        if self._rich is None:
            self._rich = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=Console(stderr=True),
                transient=False,
            )
            self._rich.start()
        self._depth += 1
        tid = self._rich.add_task(description, total=total, info="")
        try:
            yield lambda n=1, **kw: self._rich.update(tid, advance=n, info=_fmt_fields(kw))
        finally:
            if self._depth > 1:  # inner bars (batches) disappear when done; the outer one stays
                self._rich.remove_task(tid)
            self._depth -= 1
            if self._depth == 0:
                self._rich.stop()
                self._rich = None


@dataclass
class RunContext:
    """Everything a pipeline needs besides its spec.

    Attributes:
        run_id: the run's id in the store.
        out: the output folder (holds ``runs.sqlite`` and ``report.html``).
        run_dir: this run's own folder (``out/<run_id>``) for its artifacts.
        store: the results store of ``out``.
        device: torch device the run computes on.
        seed: the run's seed; :meth:`generator` derives independent streams from it.
        data_root: folder of on-disk data sets (``--data-root``), or None.
        download: whether data sets may be downloaded (``--download``).
        progress: progress reporter (silent with ``--quiet``).
    """

    run_id: str
    out: Path
    run_dir: Path
    store: Store
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0
    data_root: Path | None = None
    download: bool = False
    progress: Progress = field(default_factory=Progress)

    def generator(self, stream: int = 0, device: torch.device | str | None = None) -> torch.Generator:
        """A torch Generator seeded from ``(seed, stream)``; use one stream per independent random draw."""
        g = torch.Generator(device=device or "cpu")
        g.manual_seed(self.seed * 1_000_003 + stream)
        return g

    def log(
        self,
        name: str,
        value: float,
        *,
        step: int | None = None,
        unit: str | None = None,
        kind: str | None = None,
        higher_is_better: bool | None = None,
        note: str | None = None,
    ) -> None:
        """Store one metric value (``step=None`` for a final value); ``note`` says why a NaN/±inf value is
        undefined (it is stored as undefined with that reason)."""
        self.store.log_metrics(
            self.run_id, [MetricRecord(name, float(value), step, unit, kind, higher_is_better, note)]
        )

    def log_many(self, records: list[MetricRecord]) -> None:
        """Store several metric values in one transaction."""
        self.store.log_metrics(self.run_id, records)

    def save_json(self, kind: str, filename: str, data: Mapping[str, Any]) -> Path:
        """Write JSON to ``run_dir/filename`` atomically (NaN → null) and record the artifact."""
        import json

        path = self.run_dir / filename
        atomic_write_text(path, json.dumps(json_safe(dict(data)), indent=1, sort_keys=True, default=str))
        self.store.add_artifact(self.run_id, kind, path, sha256_file(path), {"format": "json"})
        return path

    def save_tensors(
        self, kind: str, filename: str, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any] | None = None
    ) -> Path:
        """Write tensors to ``run_dir/filename`` (safetensors + JSON metadata) and record the artifact."""
        path = self.run_dir / filename
        digest = save_tensors(path, tensors, meta)
        self.store.add_artifact(self.run_id, kind, path, digest, dict(meta or {}))
        return path
