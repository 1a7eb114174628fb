"""Property-based tests of the file loaders: random bytes, truncated and bit-flipped real files give the data or a
:class:`FileFormatError` — never another exception, never an unpickled object, never a huge allocation.

Deterministic (``derandomize=True``); no shrinking phase for the known-bug test so it stays fast.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from privlab.errors import DataMissingError, FileFormatError, PrivlabError

PROPS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


def attempt(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` or the :class:`PrivlabError` it raised; any other exception fails the test."""
    try:
        return fn(*args)
    except PrivlabError as e:
        return e


def _bytes(a: Any, save: Any) -> bytes:
    buf = io.BytesIO()
    save(buf, a)
    return buf.getvalue()


def _real_files() -> dict[str, bytes]:
    from safetensors.torch import save

    from privlab.data.reconstructions import save_pairs

    g = np.random.default_rng(0)
    a = g.random((6, 5)).astype(np.float32)
    npz = io.BytesIO()
    np.savez_compressed(npz, x=a)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        save_pairs(d, torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), [0])
        png = (Path(d) / "0_0_ori.png").read_bytes()
    return {
        ".npy": _bytes(a, lambda f, x: np.save(f, x, allow_pickle=False)),
        ".npz": npz.getvalue(),
        ".safetensors": save({"x": torch.from_numpy(a)}, metadata={"privlab": json.dumps({"n": 6})}),
        ".png": png,
    }


REAL = _real_files()
EXT = st.sampled_from([".npy", ".npz", ".safetensors"])


def _damage(data: bytes, seed: int, truncate: bool, flips: int) -> bytes:
    """``data`` truncated at a uniform position and/or with ``flips`` bytes overwritten at uniform positions."""
    import random

    rng = random.Random(seed)
    b = bytearray(data)
    if truncate:
        b = b[: rng.randrange(len(b) + 1)]
    for _ in range(flips if b else 0):
        b[rng.randrange(len(b))] = rng.randrange(256)
    return bytes(b)


@st.composite
def damaged(draw: st.DrawFn, ext: str) -> bytes:
    """A real file of type ``ext``, truncated and/or with up to 8 bytes overwritten (positions drawn uniformly)."""
    return _damage(REAL[ext], draw(st.integers(0, 2**32)), draw(st.booleans()), draw(st.integers(0, 8)))


def _numeric_or_refused(result: Any, path: Path) -> None:
    if isinstance(result, PrivlabError):
        assert isinstance(result, FileFormatError), f"{type(result).__name__}: {result}"
        assert path.name in str(result)
        return
    assert isinstance(result, np.ndarray) and result.dtype.kind in "biuf"


@PROPS
@given(ext=EXT, data=st.binary(max_size=300))
def test_random_bytes_never_load_as_anything_but_numbers(tmp_path_factory, ext, data):
    from privlab.store import load_array

    p = tmp_path_factory.mktemp("rb") / f"f{ext}"
    p.write_bytes(data)
    _numeric_or_refused(attempt(load_array, p), p)


@PROPS
@given(ext=EXT, data=st.data())
def test_damaged_real_arrays_load_or_are_refused(tmp_path_factory, ext, data):
    from privlab.store import load_array

    p = tmp_path_factory.mktemp("dmg") / f"f{ext}"
    p.write_bytes(data.draw(damaged(ext)))
    _numeric_or_refused(attempt(load_array, p), p)


@PROPS
@given(st.one_of(st.binary(max_size=200), damaged(".png")))
def test_damaged_pngs_read_or_are_refused(tmp_path_factory, data):
    from privlab.data.reconstructions import read_png

    p = tmp_path_factory.mktemp("png") / "0_0_rec.png"
    p.write_bytes(data)
    r = attempt(read_png, p)
    if isinstance(r, PrivlabError):
        assert isinstance(r, FileFormatError) and p.name in str(r)
    else:
        assert r.ndim == 3 and r.shape[0] in (1, 3) and float(r.min()) >= 0 and float(r.max()) <= 1


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.floats() | st.text(max_size=10),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12,
)
META_KEYS = st.sampled_from(["model", "num_classes", "in_shape", "mean", "std", "format", "config", "kind", "epsilon"])


@PROPS
@given(meta=st.one_of(JSONISH, st.dictionaries(META_KEYS, JSONISH, max_size=6)))
def test_checkpoint_loaders_survive_forged_metadata(tmp_path_factory, good, meta):
    """Whatever JSON a file's header holds, the checkpoint loaders return a model or refuse it (FileFormatError)."""
    from privlab.measure.semsim import load_semsim
    from privlab.store import load_tensors, save_tensors
    from privlab.victim import load_checkpoint

    d = tmp_path_factory.mktemp("meta")
    for src, loader in ((good["checkpoint"], load_checkpoint), (good["semsim"], load_semsim)):
        tensors, real = load_tensors(src)
        forged = {**real, **meta} if isinstance(meta, dict) else meta
        p = d / src.name
        from safetensors.torch import save

        if isinstance(forged, dict):
            save_tensors(p, tensors, forged)
        else:  # metadata that is JSON but not an object
            p.write_bytes(save(tensors, metadata={"privlab": json.dumps(forged)}))
        r = attempt(loader, p)
        if isinstance(r, PrivlabError):
            assert isinstance(r, FileFormatError), f"{type(r).__name__}: {r}"
        else:
            assert isinstance(r[0], torch.nn.Module)


@PROPS
@given(st.one_of(st.text(max_size=300), st.binary(max_size=200)), st.sampled_from(["m.csv", "m.json"]))
def test_random_manifests_load_or_are_refused(tmp_path_factory, text, name):
    from privlab.measure.semsim import load_manifest

    p = tmp_path_factory.mktemp("man") / name
    if isinstance(text, str):
        p.write_text(text, encoding="utf-8")
    else:
        p.write_bytes(text)
    r = attempt(load_manifest, p)
    if isinstance(r, PrivlabError):
        assert isinstance(r, FileFormatError | DataMissingError) and name in str(r)


def _store_bytes() -> bytes:
    import tempfile

    from privlab.store import MetricRecord, Store

    with tempfile.TemporaryDirectory() as d:
        with Store(d) as s:
            for r in range(3):
                s.start_run(f"r{r}", experiment="x", spec={"a": r}, spec_hash=f"h{r}", seed=0, versions={},
                            hardware={})  # fmt: skip
                s.log_metrics(f"r{r}", [MetricRecord("m", float(i), i) for i in range(100)])
                s.finish_run(f"r{r}")
        return (Path(d) / "runs.sqlite").read_bytes()


DAMAGE = {"seed": st.integers(0, 2**32), "truncate": st.booleans(), "flips": st.integers(1, 16)}


STORE = _store_bytes()


def _open_and_read(folder: Path) -> None:
    from privlab.store import Store

    with Store(folder, create=False) as s:
        for r in s.runs():
            s.metrics(r.id)
            s.artifacts(r.id)


@settings(PROPS, max_examples=40, phases=[Phase.explicit, Phase.generate])
@given(**DAMAGE)
def test_damaged_store_opens_and_reads_or_is_refused(tmp_path_factory, seed, truncate, flips):
    """A damaged runs.sqlite (truncated, bytes overwritten) is read or refused with a FileFormatError."""
    d = tmp_path_factory.mktemp("store")
    (d / "runs.sqlite").write_bytes(_damage(STORE, seed, truncate, flips))
    r = attempt(_open_and_read, d)
    assert r is None or isinstance(r, FileFormatError)
