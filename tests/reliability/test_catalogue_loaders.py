"""The bad-input catalogue of privlab's file loaders (docs/reliability.md, "File loaders").

Each row builds one bad input under ``tmp_path``, calls the loader, and asserts the :class:`PrivlabError` subclass,
the message (a regex) and that the message names the input. With ``PRIVLAB_CATALOGUE=FILE`` set, each row appends
``{"id", "message"}`` to FILE (how the table in the docs is regenerated).
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import sqlite3
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from privlab.errors import (
    BudgetError,
    ConfigError,
    DataMissingError,
    FileFormatError,
    PrivlabError,
    UnknownNameError,
)


@dataclass(frozen=True)
class Row:
    """One catalogue row: ``run(tmp, good)`` builds the bad input and calls the loader."""

    loader: str
    bad: str
    run: Callable[[Path, dict[str, Path]], Any]
    exc: type[PrivlabError]
    match: str
    names: str  # a piece of text the message must contain: the file's name, the key, the value

    @property
    def id(self) -> str:
        return f"{self.loader} | {self.bad}"


def record(row_id: str, message: str) -> None:
    """Append the row's message to $PRIVLAB_CATALOGUE (used to regenerate the docs table)."""
    out = os.environ.get("PRIVLAB_CATALOGUE")
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write(json.dumps({"id": row_id, "message": message}) + "\n")


# -- builders -----------------------------------------------------------------------------------------------------


def load_spec(path: Path) -> Any:
    from privlab.run import load_spec

    return load_spec(path)


def expand(s: Any) -> Any:
    from privlab.run import expand

    return expand(s)


def load_array(path: Path | str) -> Any:
    from privlab.store import load_array

    return load_array(path)


def load_bank(path: Path) -> Any:
    from privlab.protect.unlearnable_em import PerturbationBank

    return PerturbationBank.load(path)


def load_checkpoint(path: Path) -> Any:
    from privlab.victim import load_checkpoint

    return load_checkpoint(path)


def load_pairs(path: Path) -> Any:
    from privlab.data.reconstructions import load_pairs

    return load_pairs(path)


def load_manifest(path: Path) -> Any:
    from privlab.measure.semsim import load_manifest

    return load_manifest(path)


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def npy_header(header: str) -> bytes:
    h = header.encode("latin1")
    h += b" " * ((64 - (10 + len(h) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h


def put(tmp: Path, name: str, data: bytes | str) -> Path:
    p = tmp / name
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        p.write_text(data, encoding="utf-8")
    else:
        p.write_bytes(data)
    return p


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png() -> bytes:
    """A 100-byte PNG whose header claims 20 000 × 20 000 pixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 10))


def safetensors_with(meta: Any, tensors: dict[str, torch.Tensor] | None = None) -> bytes:
    from safetensors.torch import save

    return save(tensors or {"x": torch.zeros(2)}, metadata={"privlab": json.dumps(meta)})


def spec(tmp: Path, text: str | bytes) -> Any:
    return load_spec(put(tmp, "spec.yaml", text))


def alias_bomb() -> str:
    lines = ["experiment: train", "a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


def array(tmp: Path, name: str, data: bytes) -> Any:
    return load_array(put(tmp, name, data))


def tensors(tmp: Path, name: str, data: bytes) -> Any:
    from privlab.store import load_tensors

    return load_tensors(put(tmp, name, data))


def bank(tmp: Path, noise: torch.Tensor, meta: dict[str, Any], **kw: Any) -> Any:
    from privlab.protect.unlearnable_em import PerturbationBank
    from privlab.store import save_tensors

    save_tensors(tmp / "bank.safetensors", {"noise": noise}, meta)
    return PerturbationBank.load(tmp / "bank.safetensors", **kw)


def checkpoint(tmp: Path, good: dict[str, Path], meta: dict[str, Any] | None = None, drop: str | None = None) -> Any:
    from privlab.store import load_tensors, save_tensors

    t, m = load_tensors(good["checkpoint"])
    if drop:
        t.pop(sorted(t)[-1])
    save_tensors(tmp / "ckpt.safetensors", t, {**m, **(meta or {})})
    return load_checkpoint(tmp / "ckpt.safetensors")


def semsim(tmp: Path, good: dict[str, Path], config: dict[str, Any] | None, fmt: str = "privlab-semsim/1") -> Any:
    from privlab.measure.semsim import load_semsim
    from privlab.measure.semsim.model import FORMAT
    from privlab.store import load_tensors, save_tensors

    t, m = load_tensors(good["semsim"])
    cfg = m["config"] if config is None else {**m["config"], **config}
    save_tensors(tmp / "semsim.safetensors", t, {**m, "config": cfg, "format": FORMAT if fmt == "ok" else fmt})
    return load_semsim(tmp / "semsim.safetensors")


def png(tmp: Path, data: bytes) -> Any:
    from privlab.data.reconstructions import read_png

    return read_png(put(tmp, "0_1_ori.png", data))


def pairs(tmp: Path, good: dict[str, Path], change: Callable[[Path], None]) -> Any:
    folder = tmp / "pairs"
    shutil.copytree(good["pairs"], folder)
    change(folder)
    return load_pairs(folder)


def manifest(tmp: Path, good: dict[str, Path], text: str | bytes, name: str = "m.csv") -> Any:
    folder = tmp / "pairs"
    if not folder.exists():
        shutil.copytree(good["pairs"], folder)
    return load_manifest(put(folder, name, text))


def outside_link(tmp: Path, good: dict[str, Path]) -> Any:
    folder = tmp / "pairs"
    shutil.copytree(good["pairs"], folder)
    (tmp / "secret.png").write_bytes(b"secret")
    (folder / "link.png").symlink_to(tmp / "secret.png")
    return manifest(tmp, good, "original,reconstruction,setting,recognised,annotator\n,link.png,s,no,a\n")


HEADER = "original,reconstruction,setting,recognised,annotator\n"


def store(tmp: Path, data: bytes | None, create: bool = False) -> Any:
    from privlab.store import Store

    folder = tmp / "out"
    folder.mkdir(exist_ok=True)
    if data is not None:
        (folder / "runs.sqlite").write_bytes(data)
    return Store(folder, create=create)


def half_store(tmp: Path, good: dict[str, Path]) -> Any:
    data = (good["store"] / "runs.sqlite").read_bytes()
    return store(tmp, data[: len(data) // 3])


def newer_store(tmp: Path, good: dict[str, Path]) -> Any:
    shutil.copytree(good["store"], tmp / "out")
    with sqlite3.connect(tmp / "out" / "runs.sqlite") as c:
        c.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    c.close()
    return store(tmp, None)


def unknown_run(tmp: Path, good: dict[str, Path]) -> Any:
    from privlab.store import Store

    with Store(good["store"], create=False) as s:
        return s.get_run("nope")


def lpips(tmp: Path, weights: Any, net: str = "alex") -> Any:
    from privlab.measure.image.lpips import lpips_distance

    x = torch.rand(1, 3, 32, 32)
    return lpips_distance(x, x, net=net, weights=weights)


def alexnet(tmp: Path, data: bytes | None) -> Any:
    from privlab.models import build_model
    from privlab.models.alexnet import load_alexnet_features

    p = tmp / "alexnet.safetensors"
    if data is not None:
        p.write_bytes(data)
    return load_alexnet_features(build_model("alexnet", 10, (3, 64, 64)), p)


def dataset(name: str, root: Path | None, split: str = "train") -> Any:
    from privlab.data import load_dataset

    return load_dataset(name, split, root=root)


def truncated_mnist(tmp: Path) -> Any:
    raw = tmp / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
              "t10k-labels-idx1-ubyte"):  # fmt: skip
        # a valid IDX header that announces 60 000 images, then 10 bytes of data
        (raw / f).write_bytes(struct.pack(">IIII", 0x803, 60000, 28, 28) + b"\0" * 10)
    return dataset("mnist", tmp, "test")


def image_folder(tmp: Path, bad: str) -> Any:
    root = tmp / "imgs"
    (root / "train" / "cat").mkdir(parents=True)
    (root / "test").mkdir(parents=True)
    if bad == "corrupt":
        (root / "train" / "cat" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return dataset("image_folder", root)


def scores(tmp: Path, good: dict[str, Path], text: str | bytes) -> Any:
    from privlab.measure.semsim.agreement import join_scores

    return join_scores(good["manifest"], put(tmp, "scores.csv", text))


# -- the catalogue --------------------------------------------------------------------------------------------------

TRUNC = npy_bytes(np.zeros((100, 10)))[:300]
ROWS: list[Row] = [
    # specs (YAML)
    Row("spec YAML", "file does not exist", lambda t, g: load_spec(t / "none.yaml"), DataMissingError,
        r"spec file not found: .*none\.yaml", "none.yaml"),
    Row("spec YAML", "not YAML (unclosed bracket)", lambda t, g: spec(t, "experiment: [train\n"), FileFormatError,
        r"spec\.yaml:2: not valid YAML: while parsing a flow sequence; expected ',' or ']'", "spec.yaml"),
    Row("spec YAML", "a YAML list, not a mapping", lambda t, g: spec(t, "- train\n"), FileFormatError,
        r"must be a YAML mapping .*got list", "spec.yaml"),
    Row("spec YAML", "!!python/object tag", lambda t, g: spec(t, "experiment: !!python/object/apply:os.getcwd []\n"),
        FileFormatError, r"spec\.yaml:1: not valid YAML: .*could not determine a constructor for the tag .*never run",
        "spec.yaml"),
    Row("spec YAML", "alias bomb (9^9 values)", lambda t, g: spec(t, alias_bomb()), FileFormatError,
        r"more than 100000 YAML values once aliases are expanded", "spec.yaml"),
    Row("spec YAML", "nested 500 levels", lambda t, g: spec(t, "experiment: train\nx: " + "[" * 500 + "]" * 500),
        FileFormatError, r"nested more than 64 levels", "spec.yaml"),
    Row("spec YAML", "not UTF-8 (Latin-1 bytes)", lambda t, g: spec(t, b"experiment: tr\xe9in\n"), FileFormatError,
        r"cannot read spec file .*spec\.yaml", "spec.yaml"),
    Row("spec YAML", "empty file", lambda t, g: spec(t, ""), ConfigError, r"missing key 'experiment'", "spec.yaml"),
    Row("spec YAML", "unknown key (typo)", lambda t, g: spec(t, "experiment: train\ntrain: {epoch: 3}\n"), ConfigError,
        r"spec\.yaml:2: unknown key 'train\.epoch'\. Did you mean 'epochs'\? Allowed here: ", "train.epoch"),
    Row("spec YAML", "unknown top-level key", lambda t, g: spec(t, "experiment: train\nmodle: lenet5\n"),
        ConfigError, r"unknown key 'modle'\. Did you mean 'model'\?", "modle"),
    Row("spec YAML", "wrong type (epochs: three)", lambda t, g: spec(t, "experiment: train\ntrain: {epochs: three}\n"),
        ConfigError, r"train\.epochs: Input should be a valid integer", "train.epochs"),
    Row("spec YAML", "wrong type (a list for a name)", lambda t, g: spec(t, "experiment: train\nmodel: [lenet5]\n"),
        ConfigError, r"model: Input should be a valid string", "model"),
    Row("spec YAML", "out of range (epochs: 0)", lambda t, g: spec(t, "experiment: train\ntrain: {epochs: 0}\n"),
        ConfigError, r"train\.epochs: Input should be greater than or equal to 1 \(got 0\)", "train.epochs"),
    Row("spec YAML", "out of range (lr: -0.1)", lambda t, g: spec(t, "experiment: train\ntrain: {lr: -0.1}\n"),
        ConfigError, r"train\.lr: Input should be greater than 0", "train.lr"),
    Row("spec YAML", "NaN (lr: .nan)", lambda t, g: spec(t, "experiment: train\ntrain: {lr: .nan}\n"), ConfigError,
        r"train\.lr: Input should be a finite number", "train.lr"),
    Row("spec YAML", "inf (lr: .inf)", lambda t, g: spec(t, "experiment: train\ntrain: {lr: .inf}\n"), ConfigError,
        r"train\.lr: Input should be a finite number", "train.lr"),
    Row("spec YAML", "negative seed", lambda t, g: spec(t, "experiment: train\nseed: -1\n"), ConfigError,
        r"seed: Input should be greater than or equal to 0", "seed"),
    Row("spec YAML", "wrong choice (optimizer: rmsprop)",
        lambda t, g: spec(t, "experiment: train\ntrain: {optimizer: rmsprop}\n"), ConfigError,
        r"Input should be 'adam', 'adamw', 'sgd' or 'adadelta'", "rmsprop"),
    Row("spec YAML", "unknown experiment", lambda t, g: spec(t, "experiment: trian\n"), UnknownNameError,
        r"unknown experiment 'trian'.*Did you mean 'train'", "trian"),
    Row("spec YAML", "unknown preset", lambda t, g: spec(t, "experiment: train\npreset: fast\n"), ConfigError,
        r"experiment 'train' has no preset 'fast'; available: cpu, paper, smoke", "fast"),
    Row("spec YAML", "LDP ε ≤ 0", lambda t, g: spec(t, "experiment: ldp\npreset: smoke\nepsilon: 0\n"), ConfigError,
        r"epsilon", "epsilon"),
    Row("spec YAML", "MI k ≤ 0", lambda t, g: spec(t, "experiment: mi\npreset: smoke\nk: 0\n"), ConfigError,
        r"k: Input should be greater than or equal to 1", "k"),
    Row("spec YAML", "empty sweep list", lambda t, g: expand(spec(t, "experiment: train\nsweep: {seed: []}\n")),
        ConfigError, r"sweep key 'seed'.* empty|sweep key 'seed'.*non-empty", "seed"),
    # arrays
    Row("store.load_array", "file does not exist", lambda t, g: load_array(t / "no.npy"), DataMissingError,
        r"file not found: .*no\.npy", "no.npy"),
    Row("store.load_array", "a folder", lambda t, g: load_array(put(t, "d.npy/x", b"").parent), DataMissingError,
        r"d\.npy is a folder, not a file", "d.npy"),
    Row("store.load_array", "unsupported extension (.csv)", lambda t, g: array(t, "a.csv", b"1,2\n"),
        FileFormatError, r"unsupported file type \.csv; use \.npy, \.npz or \.safetensors", "a.csv"),
    Row("store.load_array", "empty .npy (0 bytes)", lambda t, g: array(t, "e.npy", b""), FileFormatError,
        r"not a valid \.npy file \(no NumPy header\)", "e.npy"),
    Row("store.load_array", "truncated .npy", lambda t, g: array(t, "t.npy", TRUNC), FileFormatError,
        r"not a valid \.npy file \(truncated: .*8000 bytes, but only \d+ bytes follow", "t.npy"),
    Row("store.load_array", "forged shape (10^12 rows)", lambda t, g: array(
        t, "f.npy", npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }") + b"\0" * 8),
        FileFormatError, r"its header announces a float64 array of shape \(1000000000000,\), 7\.45e\+03 GiB in memory, "
        r"more than privlab loads at once", "f.npy"),
    Row("store.load_array", "header with Python code", lambda t, g: array(
        t, "c.npy", npy_header("__import__('os').getcwd()") + b"\0" * 8), FileFormatError,
        r"not a valid \.npy file \(bad header: malformed node or string .*an expression", "c.npy"),
    Row("store.load_array", "object array (pickle inside .npy)",
        lambda t, g: array(t, "o.npy", npy_header("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }")
                           + b"\x80\x02N."), FileFormatError, r"holds pickled Python objects", "o.npy"),
    Row("store.load_array", "raw pickle named .npy", lambda t, g: array(t, "p.npy", b"\x80\x04\x95N."),
        FileFormatError, r"is a Python pickle, which privlab refuses to load", "p.npy"),
    Row("store.load_array", "string dtype", lambda t, g: array(t, "s.npy", npy_bytes(np.array(["a", "b"]))),
        FileFormatError, r"expected a numeric array .*got dtype <U1", "s.npy"),
    Row("store.load_array", "complex dtype", lambda t, g: array(t, "c.npy", npy_bytes(np.ones(3, np.complex64))),
        FileFormatError, r"not complex\), got dtype complex64", "c.npy"),
    Row("store.load_array", "datetime dtype", lambda t, g: array(
        t, "d.npy", npy_bytes(np.array(["2020-01-01"], dtype="datetime64[D]"))), FileFormatError,
        r"got dtype datetime64\[D\]", "d.npy"),
    Row("store.load_array", ".npz that is not a zip", lambda t, g: array(t, "n.npz", b"not a zip"), FileFormatError,
        r"not a valid \.npz file \(not a zip archive\)", "n.npz"),
    Row("store.load_array", "truncated .npz", lambda t, g: array(t, "n.npz", _npz(a=np.zeros(1000))[:200]),
        FileFormatError, r"not a valid \.npz file", "n.npz"),
    Row("store.load_array", ".npz with two arrays, no name", lambda t, g: array(
        t, "two.npz", _npz(x=np.zeros(2), z=np.ones(2))), FileFormatError,
        r"holds 2 arrays \(x, z\); pick one as .*two\.npz:NAME", "two.npz"),
    Row("store.load_array", ".npz:NAME that is absent", lambda t, g: load_array(
        f"{put(t, 'two.npz', _npz(x=np.zeros(2)))}:q"), FileFormatError, r"no array 'q'; it holds: x", "two.npz"),
    Row("store.load_array", ".npz member that is not .npy", lambda t, g: array(t, "m.npz", _zip({"a.txt": b"hi"})),
        FileFormatError, r"member 'a\.txt' is not a \.npy array", "m.npz"),
    Row("store.load_array", ".npz with an object array", lambda t, g: array(
        t, "o.npz", _zip({"x.npy": npy_header("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }")})),
        FileFormatError, r"o\.npz:x: holds pickled Python objects", "o.npz"),
    Row("store.load_array", ".npz with a forged shape", lambda t, g: array(t, "f.npz", _zip(
        {"x.npy": npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }")})),
        FileFormatError, r"f\.npz:x: its header announces .*shape \(1000000000000,\), 7\.45e\+03 GiB in memory",
        "f.npz"),
    Row("store.load_array", "truncated .safetensors", lambda t, g: array(t, "t.safetensors", safetensors_with({})[:-3]),
        FileFormatError, r"not a valid safetensors file", "t.safetensors"),
    Row("store.load_array", "random bytes .safetensors", lambda t, g: array(t, "r.safetensors", os.urandom(64)),
        FileFormatError, r"not a valid safetensors file .*never pickles", "r.safetensors"),
    Row("store.load_array", "empty .safetensors (no arrays)", lambda t, g: array(
        t, "e.safetensors", _st({})), FileFormatError, r"e\.safetensors: holds no arrays", "e.safetensors"),
    # tensors
    Row("store.load_tensors", "metadata not JSON", lambda t, g: tensors(t, "m.safetensors", _st(
        {"x": torch.zeros(1)}, {"privlab": "{not json"})), FileFormatError, r"metadata is not valid JSON",
        "m.safetensors"),
    Row("store.load_tensors", "metadata a JSON list", lambda t, g: tensors(t, "m.safetensors", safetensors_with([1])),
        FileFormatError, r"metadata must be a JSON object, got list", "m.safetensors"),
    # perturbation banks
    Row("PerturbationBank.load", "not a bank (a SemSim file)", lambda t, g: load_bank(g["semsim"]), FileFormatError,
        r"not a privlab perturbation bank", "semsim.safetensors"),
    Row("PerturbationBank.load", "noise beyond its ε", lambda t, g: bank(
        t, torch.full((2, 1, 4, 4), 0.5), {"kind": "sample", "epsilon": 0.1}), FileFormatError,
        r"noise exceeds its budget ε = 0\.1", "bank.safetensors"),
    Row("PerturbationBank.load", "wrong shape for the data", lambda t, g: bank(
        t, torch.zeros(2, 1, 4, 4), {"kind": "sample", "epsilon": 0.1}, expected_shape=(3, 1, 4, 4)),
        FileFormatError, r"noise has shape \(2, 1, 4, 4\), expected \(3, 1, 4, 4\)", "bank.safetensors"),
    Row("PerturbationBank.load", "class-wise bank where sample-wise is needed", lambda t, g: bank(
        t, torch.zeros(2, 1, 4, 4), {"kind": "class", "epsilon": 0.1}, kind="sample"), FileFormatError,
        r"holds class-wise noise, expected sample-wise", "bank.safetensors"),
    # train checkpoints
    Row("train checkpoint", "not a checkpoint (a SemSim file)", lambda t, g: load_checkpoint(g["semsim"]),
        FileFormatError,
        r"not a privlab checkpoint \(metadata lacks model/in_shape\)", "semsim.safetensors"),
    Row("train checkpoint", "malformed metadata (num_classes: 'ten')", lambda t, g: checkpoint(
        t, g, {"num_classes": "ten"}), FileFormatError, r"malformed metadata.*num_classes 'ten'", "ckpt.safetensors"),
    Row("train checkpoint", "unknown model name", lambda t, g: checkpoint(t, g, {"model": "resnet9000"}),
        FileFormatError, r"cannot rebuild its model: unknown model 'resnet9000'", "ckpt.safetensors"),
    Row("train checkpoint", "forged num_classes = 10^9 (no allocation)", lambda t, g: checkpoint(
        t, g, {"num_classes": 10**9}), FileFormatError, r"weights do not fit model .*1000000000", "ckpt.safetensors"),
    Row("train checkpoint", "a weight tensor missing", lambda t, g: checkpoint(t, g, None, drop="last"),
        FileFormatError, r"do not fit model 'mnist_cnn_shallow': .* is missing in the file", "ckpt.safetensors"),
    # SemSim checkpoints
    Row("SemSim checkpoint", "another format", lambda t, g: semsim(t, g, None, fmt="other/1"), FileFormatError,
        r"is not a SemSim checkpoint \(metadata format 'other/1'", "semsim.safetensors"),
    Row("SemSim checkpoint", "forged width = 10^6 (no allocation)", lambda t, g: semsim(t, g, {"width": 10**6}, "ok"),
        FileFormatError, r"weights do not match the stored SemSim configuration", "semsim.safetensors"),
    Row("SemSim checkpoint", "config with a bad type", lambda t, g: semsim(t, g, {"mean": ["a"]}, "ok"),
        FileFormatError, r"weights do not match the stored SemSim configuration", "semsim.safetensors"),
    # PNG reconstructions
    Row("read_png / load_pairs", "truncated PNG", lambda t, g: png(t, (g["pairs"] / "0_3_ori.png").read_bytes()[:40]),
        FileFormatError, r"cannot read image .*0_1_ori\.png .*corrupt, truncated or not a PNG", "0_1_ori.png"),
    Row("read_png / load_pairs", "0-byte PNG", lambda t, g: png(t, b""), FileFormatError, r"cannot read image",
        "0_1_ori.png"),
    Row("read_png / load_pairs", "text file named .png", lambda t, g: png(t, b"hello"), FileFormatError,
        r"UnidentifiedImageError", "0_1_ori.png"),
    Row("read_png / load_pairs", "decompression bomb (20000×20000 header)", lambda t, g: png(t, bomb_png()),
        FileFormatError, r"DecompressionBombError", "0_1_ori.png"),
    Row("read_png / load_pairs", "folder does not exist", lambda t, g: load_pairs(t / "nope"), DataMissingError,
        r"originals folder .*nope does not exist", "nope"),
    Row("read_png / load_pairs", "no file follows the naming", lambda t, g: pairs(
        t, g, lambda f: [p.rename(p.with_name("x" + p.name)) for p in f.glob("*.png")]), FileFormatError,
        r"no image pairs found in .*pairs: expected files named", "pairs"),
    Row("read_png / load_pairs", "an original without reconstruction", lambda t, g: pairs(
        t, g, lambda f: (f / "1_5_rec.png").unlink()), FileFormatError,
        r"1 originals without a reconstruction \(1_5_ori\.png\)", "1_5_ori.png"),
    Row("read_png / load_pairs", "labels disagree", lambda t, g: pairs(
        t, g, lambda f: (f / "1_5_rec.png").rename(f / "1_6_rec.png")), FileFormatError,
        r"disagree on the label", "1_5_ori.png"),
    Row("read_png / load_pairs", "sizes differ", lambda t, g: pairs(
        t, g, lambda f: shutil.copy(_png_file(t, 5), f / "1_5_rec.png")), FileFormatError,
        r"1_5_rec\.png is 5×5 with 1 channel\(s\) but .* is 12×12", "1_5_rec.png"),
    Row("read_png / load_pairs", "one PNG truncated", lambda t, g: pairs(
        t, g, lambda f: (f / "1_5_rec.png").write_bytes(b"\x89PNG\r\n\x1a\n")), FileFormatError,
        r"cannot read image .*1_5_rec\.png", "1_5_rec.png"),
    # annotation manifests
    Row("annotation manifest", "file does not exist", lambda t, g: load_manifest(t / "m.csv"), DataMissingError,
        r"manifest .*m\.csv not found", "m.csv"),
    Row("annotation manifest", "binary file (not UTF-8)", lambda t, g: manifest(t, g, b"\x80\x04\x95N."),
        FileFormatError, r"m\.csv: not a text file \(not UTF-8\)", "m.csv"),
    Row("annotation manifest", "NUL bytes", lambda t, g: manifest(t, g, HEADER + "\0,a.png,s,yes,a\n"),
        FileFormatError, r"holds NUL bytes", "m.csv"),
    Row("annotation manifest", "header without the columns", lambda t, g: manifest(t, g, "a,b\n1,2\n"),
        FileFormatError, r"CSV header must contain original, reconstruction, .*\(got a, b\)", "m.csv"),
    Row("annotation manifest", "recognised: maybe", lambda t, g: manifest(
        t, g, HEADER + "0_3_ori.png,0_3_rec.png,s,maybe,a\n"), FileFormatError,
        r"m\.csv row 1: recognised must be yes or no", "m.csv"),
    Row("annotation manifest", "absolute path", lambda t, g: manifest(t, g, HEADER + "/etc/passwd,0_3_rec.png,s,y,a\n"),
        FileFormatError, r"row 1: path '/etc/passwd' is absolute", "/etc/passwd"),
    Row("annotation manifest", "'..' in a path", lambda t, g: manifest(t, g, HEADER + "../x.png,0_3_rec.png,s,y,a\n"),
        FileFormatError, r"row 1: path '\.\./x\.png' contains '\.\.'", "../x.png"),
    Row("annotation manifest", "backslash path", lambda t, g: manifest(
        t, g, HEADER + "..\\x.png,0_3_rec.png,s,y,a\n"), FileFormatError, r"is absolute \(or uses backslashes\)",
        "x.png"),
    Row("annotation manifest", "Windows drive path", lambda t, g: manifest(
        t, g, HEADER + "C:x.png,0_3_rec.png,s,y,a\n"), FileFormatError, r"path 'C:x\.png' is absolute", "C:x.png"),
    Row("annotation manifest", "symbolic link leading outside", outside_link, FileFormatError,
        r"path 'link\.png' leads outside the manifest's folder .*symbolic link", "link.png"),
    Row("annotation manifest", "JSON not valid", lambda t, g: manifest(t, g, "{", "m.json"), FileFormatError,
        r"m\.json: not valid JSON", "m.json"),
    Row("annotation manifest", "JSON nested 10^5 deep", lambda t, g: manifest(t, g, "[" * 100000, "m.json"),
        FileFormatError, r"m\.json: not a manifest \(JSON nested too deeply\)", "m.json"),
    Row("annotation manifest", "JSON of the wrong shape", lambda t, g: manifest(t, g, '{"a": 1}', "m.json"),
        FileFormatError, r"expected a JSON list of annotations", "m.json"),
    Row("annotation manifest", "JSON row not an object", lambda t, g: manifest(t, g, "[1]", "m.json"),
        FileFormatError, r"m\.json row 1: expected an object", "m.json"),
    # scores CSV (semsim agreement)
    Row("scores CSV (agreement)", "no reconstruction column", lambda t, g: scores(t, g, "a,b\n1,2\n"), FileFormatError,
        r"scores\.csv: needs a 'reconstruction' column", "scores.csv"),
    Row("scores CSV (agreement)", "a value that is not a number", lambda t, g: scores(
        t, g, "reconstruction,psnr\n0_3_rec.png,high\n"), FileFormatError,
        r"scores\.csv line 2: column 'psnr' is not a number", "scores.csv"),
    Row("scores CSV (agreement)", "binary file", lambda t, g: scores(t, g, b"\xff\xfe\x00\x01"), FileFormatError,
        r"scores\.csv: not a CSV text file", "scores.csv"),
    # results store
    Row("runs.sqlite", "no store in the folder", lambda t, g: store(t, None), DataMissingError,
        r"no results store at .*runs\.sqlite: run an experiment with --out", "runs.sqlite"),
    Row("runs.sqlite", "random bytes", lambda t, g: store(t, os.urandom(4096)), FileFormatError,
        r"runs\.sqlite is not a valid privlab store .*move it away", "runs.sqlite"),
    Row("runs.sqlite", "truncated to a third", half_store, FileFormatError, r"is not a valid privlab store",
        "runs.sqlite"),
    Row("runs.sqlite", "a pickle named runs.sqlite", lambda t, g: store(t, b"\x80\x04\x95N."), FileFormatError,
        r"is not a valid privlab store", "runs.sqlite"),
    Row("runs.sqlite", "written by a newer privlab", newer_store, FileFormatError,
        r"has store schema v99, newer than this privlab \(v1\); upgrade privlab", "runs.sqlite"),
    Row("runs.sqlite", "unknown run id", unknown_run, DataMissingError, r"no run 'nope' in .*; runs here: r1", "nope"),
    # LPIPS / AlexNet weights
    Row("LPIPS weights", "file does not exist", lambda t, g: lpips(t, t / "no.pth"), DataMissingError,
        r"LPIPS-alex weights: the given path .*no\.pth does not exist", "no.pth"),
    Row("LPIPS weights", "folder without the torchvision file", lambda t, g: lpips(t, t), DataMissingError,
        r"is a folder without alexnet-owt-7be5be79\.pth", "alexnet-owt-7be5be79.pth"),
    Row("LPIPS weights", "random bytes .pth", lambda t, g: lpips(t, put(t, "w.pth", os.urandom(100))),
        FileFormatError, r"w\.pth: cannot read LPIPS backbone weights", "w.pth"),
    Row("LPIPS weights", "safetensors with other keys", lambda t, g: lpips(t, put(
        t, "w.safetensors", _st({"a": torch.zeros(1)}))), FileFormatError, r"not alexnet weights for LPIPS-alex",
        "w.safetensors"),
    Row("LPIPS weights", "unknown net", lambda t, g: lpips(t, "random", net="resnet"), ConfigError,
        r"unknown LPIPS net 'resnet'", "resnet"),
    Row("AlexNet features", "file does not exist", lambda t, g: alexnet(t, None), DataMissingError,
        r"AlexNet features weights not found at .*alexnet\.safetensors", "alexnet.safetensors"),
    Row("AlexNet features", "not safetensors", lambda t, g: alexnet(t, b"\x80\x04\x95N."), FileFormatError,
        r"alexnet\.safetensors: not a valid safetensors file", "alexnet.safetensors"),
    Row("AlexNet features", "wrong keys", lambda t, g: alexnet(t, _st({"fc.weight": torch.zeros(1)})),
        FileFormatError, r"unexpected key 'fc\.weight'", "fc.weight"),
    # data roots
    Row("data root", "mnist without --data-root", lambda t, g: dataset("mnist", None), DataMissingError,
        r"dataset 'mnist' needs a data root: pass --data-root DIR .* add --download", "mnist"),
    Row("data root", "a root without the data", lambda t, g: dataset("cifar10", t), DataMissingError,
        r"dataset 'cifar10' not found under data root .* \(missing .*data_batch_1'\)", "cifar10"),
    Row("data root", "truncated MNIST files", lambda t, g: truncated_mnist(t), FileFormatError,
        r"dataset 'mnist': the files under data root .* are corrupt, truncated", "mnist"),
    Row("data root", "image_folder without images", lambda t, g: image_folder(t, "empty"), DataMissingError,
        r"(no image files|Found no valid file) .*train", "train"),
    Row("data root", "image_folder with a corrupt image", lambda t, g: image_folder(t, "corrupt"), FileFormatError,
        r"cannot read image '.*a\.png'", "a.png"),
    Row("data root", "unknown data set", lambda t, g: dataset("mnits", None), UnknownNameError,
        r"unknown dataset 'mnits'.*Did you mean 'mnist'", "mnits"),
]  # fmt: skip


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, v in members.items():
            z.writestr(k, v)
    return buf.getvalue()


def _st(t: dict[str, torch.Tensor], meta: dict[str, str] | None = None) -> bytes:
    from safetensors.torch import save

    return save(t, metadata=meta)


def _png_file(tmp: Path, size: int) -> Path:
    from privlab.data.reconstructions import save_pairs

    save_pairs(tmp / "odd", torch.rand(1, 1, size, size), torch.rand(1, 1, size, size), [9])
    return tmp / "odd" / "0_9_rec.png"


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_loader_catalogue(row, tmp_path, good):
    with pytest.raises(PrivlabError) as info:
        row.run(tmp_path, good)
    err = info.value
    msg = str(err)
    record(row.id, msg)
    assert isinstance(err, row.exc), f"{type(err).__name__}: {msg}"
    assert len(msg.splitlines()) == 1 and len(msg) < 600, msg
    assert re.search(row.match, msg), msg
    assert row.names in msg


def test_the_catalogue_covers_every_loader():
    loaders = {r.loader for r in ROWS}
    assert loaders >= {"spec YAML", "store.load_array", "store.load_tensors", "PerturbationBank.load",
                       "train checkpoint", "SemSim checkpoint", "read_png / load_pairs", "annotation manifest",
                       "runs.sqlite", "LPIPS weights", "AlexNet features", "data root"}  # fmt: skip
    assert len(ROWS) >= 80


def test_budget_errors_are_config_errors():
    """BudgetError is a ConfigError (so `except ConfigError` catches ε ≤ 0 too)."""
    assert issubclass(BudgetError, ConfigError) and issubclass(ConfigError, PrivlabError)


@pytest.mark.parametrize(
    "meta",
    [{"kind": "sample", "epsilon": "abc"}, {"kind": "sample", "epsilon": [1]}, {"kind": "sample", "epsilon": math.nan},
     {"kind": "zzz", "epsilon": 0.1}],
    ids=["epsilon 'abc'", "epsilon [1]", "epsilon NaN", "kind 'zzz'"],
)  # fmt: skip
def test_perturbation_bank_with_forged_metadata(tmp_path, meta):
    with pytest.raises(FileFormatError, match="bank.safetensors"):
        bank(tmp_path, torch.zeros(2, 1, 4, 4), meta)
