"""Write faults: a full disk, a read-only or forbidden folder, an I/O error at each step of the atomic writer.

Every writer of privlab goes through ``store.artifacts.atomic_write_bytes`` (temporary file in the same folder, fsync,
``os.replace``). Faults are injected at each of those steps by a stand-in for the ``os`` / ``tempfile`` modules *of
that module only*; where this machine allows it (root with CAP_SYS_ADMIN), a real 128 KiB tmpfs is filled and a real
read-only remount is used too (``chmod`` does not stop root, so permission tests as root use the mocks). Each case
checks: a :class:`PrivlabError` (exit code 2 through the CLI) naming the file and the cause, the old file intact or no
file at all, and no temporary file left behind. A static guard checks that no module writes files another way.
"""

from __future__ import annotations

import ast
import errno
import json
import os
import re
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import privlab
from privlab.errors import PrivlabError
from privlab.store import artifacts

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False


class _Proxy:
    """A module stand-in: ``name`` raises ``error`` (when ``when(path)``), everything else is the real thing."""

    def __init__(self, real: Any, name: str, error: OSError, when: Any = None) -> None:
        self._real, self._name, self._error, self._when = real, name, error, when

    def __getattr__(self, attr: str) -> Any:
        real = getattr(self._real, attr)
        if attr != self._name:
            return real

        def fail(*args: Any, **kwargs: Any) -> Any:
            if attr == "mkstemp":
                target = f"{kwargs.get('dir')}/{kwargs.get('prefix')}"
            else:
                target = str(args[1] if attr == "replace" else _fd_path(args[0]) if attr == "fsync" else args[0])
            if self._when is None or self._when(target):
                raise self._error
            return real(*args, **kwargs)

        return fail


class _HalfWriter:
    """A file object that writes half of the data, then reports a full disk."""

    def __init__(self, f: Any) -> None:
        self._f = f

    def write(self, data: bytes) -> int:
        self._f.write(data[: len(data) // 2])
        self._f.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._f, attr)

    def __enter__(self) -> _HalfWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()


def _fd_path(fd: Any) -> str:
    """The path an open descriptor refers to (Linux /proc; '' elsewhere)."""
    try:
        return os.readlink(f"/proc/self/fd/{int(fd)}")
    except (OSError, TypeError, ValueError):
        return ""


def _half_fdopen(when: Any) -> Any:
    def fdopen(fd: int, mode: str = "r", *a: Any, **k: Any) -> Any:
        f = os.fdopen(fd, mode, *a, **k)
        return _HalfWriter(f) if when is None or when(_fd_path(fd)) else f

    return fdopen


FAULTS = {
    "no permission to create the temporary file": ("tempfile", "mkstemp", OSError(errno.EACCES, "Permission denied")),
    "disk full while writing": ("os", "fdopen", None),
    "I/O error on fsync": ("os", "fsync", OSError(errno.EIO, "Input/output error")),
    "read-only file system on rename": ("os", "replace", OSError(errno.EROFS, "Read-only file system")),
}
REASONS = {
    "no permission to create the temporary file": "Permission denied",
    "disk full while writing": "No space left on device",
    "I/O error on fsync": "Input/output error",
    "read-only file system on rename": "Read-only file system",
}


@pytest.fixture
def inject(monkeypatch):
    """``inject(fault, when=None)``: make the atomic writer fail at that step (for paths where ``when(path)``)."""

    def apply(fault: str, when: Any = None) -> None:
        module, name, error = FAULTS[fault]
        if name == "fdopen":
            proxy = _Proxy(os, "__none__", OSError())
            proxy.fdopen = _half_fdopen(when)  # set attributes win over __getattr__
            monkeypatch.setattr(artifacts, "os", proxy)
            return
        real = os if module == "os" else tempfile
        monkeypatch.setattr(artifacts, module, _Proxy(real, name, error, when))

    return apply


def _check_clean(folder: Path, leftovers) -> None:
    assert leftovers(folder) == [], "a temporary file was left behind"


# -- the atomic writer itself -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("existed", [False, True], ids=["new file", "overwrite"])
def test_atomic_write_fails_cleanly(tmp_path, inject, leftovers, fault, existed):
    target = tmp_path / "out" / "result.json"
    if existed:
        target.parent.mkdir()
        target.write_text("old content")
    inject(fault)
    with pytest.raises(PrivlabError) as info:
        artifacts.atomic_write_text(target, "new content " * 1000)
    msg = str(info.value)
    assert msg.startswith(f"cannot write {target}: {REASONS[fault]}") and "check free space and write permission" in msg
    assert (target.read_text() == "old content") if existed else not target.exists()
    _check_clean(tmp_path, leftovers)


# -- every library writer -------------------------------------------------------------------------------------------


def _writers(tmp: Path, good: dict[str, Path]) -> dict[str, tuple[Any, Path]]:
    from privlab.data.reconstructions import save_pairs
    from privlab.measure.image import score
    from privlab.measure.semsim.annotations import Annotation, append_annotation
    from privlab.store import replace_section, save_tensors

    x = torch.rand(2, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    table = score(x, x.flip(0), ["mse"])
    man = tmp / "pairs" / "annotations.csv"
    return {
        "save_tensors": (lambda: save_tensors(tmp / "t.safetensors", {"x": x}), tmp / "t.safetensors"),
        "save_pairs (PNG)": (lambda: save_pairs(tmp / "png", x, x, [1, 2]), tmp / "png" / "0_1_ori.png"),
        "append_annotation": (lambda: append_annotation(man, Annotation("0_3_ori.png", "0_3_rec.png", "s", True, "z")),
                              man),
        "replace_section (BENCHMARKS.md)": (lambda: replace_section(tmp / "B.md", "x", "body"), tmp / "B.md"),
        "SimilarityTable.to_csv": (lambda: table.to_csv(tmp / "sim.csv"), tmp / "sim.csv"),
    }  # fmt: skip


WRITERS = ["save_tensors", "save_pairs (PNG)", "append_annotation", "replace_section (BENCHMARKS.md)",
           "SimilarityTable.to_csv"]  # fmt: skip


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("fault", ["disk full while writing", "read-only file system on rename"])
def test_library_writers_fail_cleanly(tmp_path, good, inject, leftovers, writer, fault):
    import shutil

    shutil.copytree(good["pairs"], tmp_path / "pairs")
    before = (tmp_path / "pairs" / "annotations.csv").read_bytes()
    call, target = _writers(tmp_path, good)[writer]
    inject(fault)
    with pytest.raises(PrivlabError, match=rf"cannot write .*{target.name}: {REASONS[fault]}"):
        call()
    if target.name == "annotations.csv":
        assert target.read_bytes() == before  # no answer lost, none half-written
    else:
        assert not target.exists()
    _check_clean(tmp_path, leftovers)


# -- every CLI command that writes ----------------------------------------------------------------------------------


def _cli_writes(tmp: Path, good: dict[str, Path]) -> dict[str, tuple[list[Any], Path]]:
    import shutil

    layout = tmp / "layout" / "7"
    layout.mkdir(parents=True)
    shutil.copy(good["pairs"] / "0_3_ori.png", layout / "a_ori.png")
    shutil.copy(good["pairs"] / "0_3_rec.png", layout / "b.png")
    return {
        "ldp privatize": (["ldp", "privatize", "-m", "laplace", "-e", "1", good["images.npy"], tmp / "o.npy"],
                          tmp / "o.npy"),
        "ldp privatize (the budget sidecar)": (["ldp", "privatize", "-m", "rr", "-e", "1", good["images.npy"],
                                                tmp / "o.npy"], tmp / "o.npy.json"),
        "runs export --to": (["runs", "export", "--out", good["store"], "--to", tmp / "e.csv"], tmp / "e.csv"),
        "similarity --csv": (["similarity", good["pairs"], "--metrics", "mse,psnr", "--csv", tmp / "s.csv"],
                             tmp / "s.csv"),
        "semsim score --csv": (["semsim", "score", good["pairs"], "--model", good["semsim"], "--csv", tmp / "c.csv"],
                               tmp / "c.csv"),
        "semsim import": (["semsim", "import", tmp / "layout"], tmp / "layout" / "manifest.csv"),
        "mi calibrate --markdown": (["mi", "calibrate", "--n", "50", "--task", "bimodal-1x1", "-e", "gaussian",
                                     "--markdown", tmp / "B.md", "-q"], tmp / "B.md"),
    }  # fmt: skip


CLI_WRITES = ["ldp privatize", "ldp privatize (the budget sidecar)", "runs export --to", "similarity --csv",
              "semsim score --csv", "semsim import", "mi calibrate --markdown"]  # fmt: skip


@pytest.mark.parametrize("command", CLI_WRITES)
@pytest.mark.parametrize("fault", ["disk full while writing", "no permission to create the temporary file"])
def test_cli_writers_fail_with_one_line_and_leave_nothing(tmp_path, good, inject, leftovers, cli, command, fault):
    args, target = _cli_writes(tmp_path, good)[command]
    # the sidecar row fails only on the second file: the data file must then be removed too
    inject(fault, when=(lambda p: ".o.npy.json." in p) if "sidecar" in command else None)
    msg = cli.error(*args)
    assert msg.startswith("cannot write ") and target.name in msg and REASONS[fault] in msg
    assert not target.exists()
    if "privatize" in command:
        assert not (tmp_path / "o.npy").exists() and not (tmp_path / "o.npy.json").exists()
    _check_clean(tmp_path, leftovers)


def test_output_folder_that_cannot_be_created(tmp_path, good, cli):
    """--out pointing below a file (the same error as a folder without write permission: mkdir fails)."""
    msg = cli.error("train", "--out", good["x.npy"] / "runs", "--quiet")
    assert msg.startswith("cannot create output folder ") and "x.npy" in msg


def test_store_in_a_folder_without_permission_mocked(tmp_path, monkeypatch):
    from privlab.store import Store

    def deny(self: Path, *a: Any, **k: Any) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", deny)
    with pytest.raises(PrivlabError, match=r"cannot create output folder .*out: Permission denied"):
        Store(tmp_path / "out")


@pytest.mark.skipif(ROOT, reason="running as root: chmod does not stop root from writing (the mocked and the "
                                 "read-only-mount tests cover this)")  # fmt: skip
def test_folder_without_write_permission_real(tmp_path, good, cli, leftovers):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        msg = cli.error("ldp", "privatize", "-m", "laplace", "-e", "1", good["images.npy"], out / "o.npy")
        assert msg.startswith(f"cannot write {out / 'o.npy'}: Permission denied")
        assert not (out / "o.npy").exists()
    finally:
        out.chmod(0o755)
    _check_clean(tmp_path, leftovers)


def test_annotation_server_reports_a_failed_write_and_keeps_the_manifest(tmp_path, good, inject):
    import http.client
    import shutil
    import threading

    from privlab.measure.semsim.server import make_server

    shutil.copytree(good["pairs"], tmp_path / "pairs")
    before = (tmp_path / "pairs" / "annotations.csv").read_bytes()
    srv = make_server(tmp_path / "pairs", port=0)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        inject("disk full while writing")
        conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=10)
        body = json.dumps({"reconstruction": "1_5_rec.png", "recognised": True, "annotator": "b"})
        conn.request("POST", "/api/answer", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        payload = json.loads(resp.read())
        conn.close()
    finally:
        srv.shutdown()
        srv.server_close()
    assert resp.status == 500 and "cannot write" in payload["error"] and "No space left" in payload["error"]
    assert (tmp_path / "pairs" / "annotations.csv").read_bytes() == before


# -- real file systems (root with CAP_SYS_ADMIN only; skipped elsewhere) -----------------------------------------------


def test_real_full_disk(tiny_fs, good, cli, leftovers):
    fs = tiny_fs("128k")
    big = fs.parent / "big.npy"
    np.save(big, np.random.default_rng(0).random((64, 1, 32, 32)).astype(np.float32))  # 256 KiB: does not fit
    msg = cli.error("ldp", "privatize", "-m", "laplace", "-e", "1", big, fs / "o.npy")
    assert msg.startswith(f"cannot write {fs / 'o.npy'}: No space left on device")
    assert list(fs.iterdir()) == [] and leftovers(fs) == []


def test_real_read_only_folder(tiny_fs, readonly, good, cli, leftovers):
    fs = tiny_fs("1m")
    (fs / "old.npy").write_bytes(b"old")
    readonly(fs)
    msg = cli.error("ldp", "privatize", "-m", "laplace", "-e", "1", good["images.npy"], fs / "old.npy")
    assert msg.startswith(f"cannot write {fs / 'old.npy'}") and "Read-only file system" in msg  # OUT.json first
    assert (fs / "old.npy").read_bytes() == b"old"
    msg = cli.error("runs", "export", "--out", good["store"], "--to", fs / "e.csv")
    assert "Read-only file system" in msg


def _fill(store: Any) -> int:
    """Log batches of 50 metrics until the disk is full; returns how many were committed (raises the error)."""
    from privlab.store import MetricRecord

    written = 0
    for i in range(10000):
        store.log_metrics("r", [MetricRecord("m", float(j), i) for j in range(50)])
        written += 50
    return written


def test_real_full_disk_under_the_store(tiny_fs):
    from privlab.store import Store

    fs = tiny_fs("160k")
    with Store(fs / "runs") as s:
        s.start_run("r", experiment="x", spec={}, spec_hash="h", seed=0, versions={}, hardware={})
        with pytest.raises(PrivlabError, match="cannot write .*runs.sqlite"):
            _fill(s)
        assert s.integrity_ok()


def test_real_full_disk_under_the_store_loses_nothing_committed(tiny_fs):
    """Whatever error type comes out, the store stays valid and every committed batch is there in full."""
    from privlab.store import MetricRecord, Store

    fs = tiny_fs("160k")
    written = 0
    with Store(fs / "runs") as s:
        s.start_run("r", experiment="x", spec={}, spec_hash="h", seed=0, versions={}, hardware={})
        error = None
        try:
            for i in range(10000):
                s.log_metrics("r", [MetricRecord("m", float(j), i) for j in range(50)])
                written += 50
        except (PrivlabError, sqlite3.OperationalError) as e:
            error = e
    assert error is not None and re.search("full|cannot write", str(error))
    with sqlite3.connect(fs / "runs" / "runs.sqlite") as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert c.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == written > 0
    c.close()


def test_real_read_only_store_can_be_listed(tiny_fs, readonly, good, cli):
    import shutil

    fs = tiny_fs("1m")
    shutil.copy(good["store"] / "runs.sqlite", fs / "runs.sqlite")
    readonly(fs)
    r = cli.invoke("runs", "list", "--out", fs)
    assert r.exit_code == 0 and "r1" in r.output


# -- the static guard ------------------------------------------------------------------------------------------------

SRC = Path(privlab.__file__).resolve().parent
#: Files allowed to write without the atomic writer, and why.
ALLOWED = {
    "store/artifacts.py": "the atomic writer itself",
    "run/worker.py": "append-only log of a sweep worker (a torn last line is harmless)",
}


def non_atomic_writes(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, what)`` of every call that writes a file directly (not through the atomic writer)."""
    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        first = node.args[0] if node.args else None
        to_buffer = isinstance(first, ast.Name) and first.id in ("buf", "buffer")
        if name in ("write_text", "write_bytes") or (name == "savefig" and not to_buffer):
            bad.append((node.lineno, f"{name}("))
        if name in ("open", "fdopen"):
            mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"),
                                                                None)  # fmt: skip
            if isinstance(mode, ast.Constant) and isinstance(mode.value, str) and set(mode.value) & set("wax+"):
                bad.append((node.lineno, f"{name}(..., {mode.value!r})"))
        if name in ("save", "savez", "savez_compressed") and isinstance(f, ast.Attribute):
            owner = f.value.id if isinstance(f.value, ast.Name) else ""
            if owner in ("np", "numpy", "torch") and not to_buffer:
                bad.append((node.lineno, f"{owner}.{name}( to a path"))
    return bad


def test_the_write_guard_catches_direct_writes():
    code = "p.write_text('x')\nopen(p, 'w')\nnp.save(p, a)\ntorch.save(m, p)\nfig.savefig('a.png')\nopen(p, 'rb')"
    assert [w for _, w in non_atomic_writes(ast.parse(code))] == [
        "write_text(", "open(..., 'w')", "np.save( to a path", "torch.save( to a path", "savefig("]  # fmt: skip


def test_every_file_is_written_atomically():
    found = []
    for f in sorted(SRC.rglob("*.py")):
        rel = f.relative_to(SRC).as_posix()
        if rel in ALLOWED:
            continue
        found += [f"{rel}:{line}: {what}" for line, what in non_atomic_writes(ast.parse(f.read_text("utf-8")))]
    assert found == [], "write through privlab.store.atomic_write_bytes/text instead:\n" + "\n".join(found)


@pytest.mark.parametrize("failing", [".o.npy.json.", ".o.npy."])
def test_privatize_keeps_the_previous_output_when_a_write_fails(tmp_path, good, inject, leftovers, cli, failing):
    """A failed write of the sidecar (or of the data) leaves the OUT and OUT.json of the last run as they were."""
    args = ["ldp", "privatize", "-m", "laplace", "-e", "1", good["images.npy"], tmp_path / "o.npy"]
    assert cli.invoke(*args).exit_code == 0
    before = {n: (tmp_path / n).read_bytes() for n in ("o.npy", "o.npy.json")}
    inject("disk full while writing", when=lambda p: failing in p and (failing == ".o.npy.json." or ".json." not in p))
    msg = cli.error(*args[:-1], "--seed", "7", tmp_path / "o.npy")
    assert msg.startswith("cannot write ")
    assert {n: (tmp_path / n).read_bytes() for n in before} == before
    _check_clean(tmp_path, leftovers)


def test_privatize_refuses_noise_that_overflows(tmp_path, good, cli):
    """ε = 1e-320 makes the Laplace scale overflow: refused (exit 2), not written as ±inf with exit 0."""
    msg = cli.error("ldp", "privatize", "-m", "laplace", "-e", "1e-320", "--no-clip", good["images.npy"],
                    tmp_path / "o.npy")  # fmt: skip
    assert "overflows float32" in msg and "--epsilon" in msg
    assert not (tmp_path / "o.npy").exists() and not (tmp_path / "o.npy.json").exists()
