"""One writer per output folder: an exclusive ``flock`` on ``<out>/.privlab.lock``.

``privlab run``/``train``/``invert`` (:func:`privlab.run.execute`) and ``privlab sweep`` hold it while they write
runs into ``--out``. A second writer is refused at once with the holder's pid and command; readers (``privlab runs``,
``privlab report``) never take it. The kernel drops the lock when the holder exits, killed or not, so a lock file left
behind is never an obstacle.

Example:
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> with output_lock(d):
    ...     try:
    ...         with output_lock(d):
    ...             pass
    ...     except ConfigError as e:
    ...         print("refused:", "another privlab process" in str(e))
    refused: True
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from privlab.errors import ConfigError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/macOS: no lock (documented)
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_FILENAME", "lock_busy", "output_lock", "wait_lock"]

LOCK_FILENAME = ".privlab.lock"


@contextlib.contextmanager
def output_lock(out: str | Path, command: str | None = None) -> Iterator[None]:
    """Hold the exclusive write lock of folder ``out`` (which must exist) for the ``with`` block.

    Args:
        out: the output folder.
        command: what the holder runs (written into the lock file; default: this process's command line).

    Raises:
        ConfigError: another live process holds the lock (the message names its pid and command).
    """
    if fcntl is None:  # pragma: no cover
        yield
        return
    path = Path(out) / LOCK_FILENAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 1024, 0).decode("utf-8", "replace").strip() or "unknown"
            raise ConfigError(
                f"{out} is being written by another privlab process ({holder}); wait for it to finish, or use "
                "another --out folder (two writers would store runs twice and mark each other's runs failed)"
            ) from None
        text = command if command is not None else " ".join(sys.argv)[:300]
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {' '.join(text.split())}\n".encode(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def wait_lock(path: str | Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the file ``path`` (created, with its folder) for the ``with`` block, *waiting*
    for another holder to finish; ``on_wait()`` is called once when the lock is busy. Used by the model cache so two
    sweep workers that need the same victim train it once: the second waits, then loads the first one's file.
    """
    if fcntl is None:  # pragma: no cover
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def lock_busy(path: str | Path) -> bool:
    """Whether another process holds the :func:`wait_lock` on ``path`` right now (False when the file is absent).

    Only a scheduling hint (the answer can change the next moment): an unlearnable run that finds the clean baselines
    being computed by another sweep worker trains its own attackers first and reads the baselines afterwards.
    """
    if fcntl is None:  # pragma: no cover
        return False
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
