"""Untrusted files: a malicious pickle, in every form a user could be handed, is refused by every loader and every
CLI command that reads files, without executing (the ``marker`` fixture fails the test if it ever runs); and no
source file of privlab uses an unpickling API unsafely (a static guard, so a later change cannot reintroduce one).
"""

from __future__ import annotations

import ast
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import privlab
from privlab.errors import DataMissingError, FileFormatError, PrivlabError


def test_the_payload_is_live(tmp_path, payload):
    """Control: the payloads really run code when unpickled, so the refusals below are meaningful."""
    m = tmp_path / "control"
    pickle.loads(payload(m))  # the deliberate unpickling of the test suite
    assert m.read_text() == "pwned"
    m.unlink()
    torch.save({"w": _Reduce(m)}, tmp_path / "t.pth")
    torch.load(tmp_path / "t.pth", weights_only=False)  # what privlab never does
    assert m.read_text() == "pwned"


class _Reduce:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def _alexnet(path: Path) -> Any:
    from privlab.models import build_model
    from privlab.models.alexnet import load_alexnet_features

    return load_alexnet_features(build_model("alexnet", 10, (3, 64, 64)), path)


def _lpips(path: Path) -> Any:
    from privlab.measure.image.lpips import lpips_distance

    x = torch.rand(1, 3, 32, 32)
    return lpips_distance(x, x, weights=path)


def _bank(path: Path) -> Any:
    from privlab.protect.unlearnable_em import PerturbationBank

    return PerturbationBank.load(path)


def _checkpoint(path: Path) -> Any:
    from privlab.victim import load_checkpoint

    return load_checkpoint(path)


def _semsim(path: Path) -> Any:
    from privlab.measure.semsim import load_semsim

    return load_semsim(path)


def _array(path: Path) -> Any:
    from privlab.store import load_array

    return load_array(path)


def _tensors(path: Path) -> Any:
    from privlab.store import load_tensors

    return load_tensors(path)


def _png(path: Path) -> Any:
    from privlab.data.reconstructions import read_png

    return read_png(path)


def _spec(path: Path) -> Any:
    from privlab.run import load_spec

    return load_spec(path)


def _store(path: Path) -> Any:
    from privlab.store import Store

    folder = path.parent / "store"
    folder.mkdir(exist_ok=True)
    shutil.copy(path, folder / "runs.sqlite")
    return Store(folder, create=False)


def _manifest(path: Path) -> Any:
    from privlab.measure.semsim import load_manifest

    target = path.with_name("manifest.json")
    shutil.copy(path, target)
    return load_manifest(target)


LOADERS: dict[str, tuple[Callable[[Path], Any], list[str]]] = {
    "store.load_array": (_array, ["raw.npy", "raw.npz", "raw.safetensors", "object.npy", "object.npz",
                                  "torch.safetensors", "raw.pt", "raw.pkl"]),
    "store.load_tensors": (_tensors, ["raw.safetensors", "torch.safetensors", "bank.safetensors", "raw.pt"]),
    "PerturbationBank.load": (_bank, ["bank.safetensors", "raw.safetensors"]),
    "victim.load_checkpoint": (_checkpoint, ["model.safetensors", "raw.pt", "torch.pth"]),
    "semsim.load_semsim": (_semsim, ["model.safetensors", "raw.pt"]),
    "models.alexnet.load_alexnet_features": (_alexnet, ["torch.safetensors", "torch.pth"]),
    "measure.image.lpips (weights file)": (_lpips, ["torch.pth", "raw.pth", "raw.pt"]),
    "data.reconstructions.read_png": (_png, ["raw.png"]),
    "run.load_spec (YAML)": (_spec, ["spec.yaml"]),
    "store.Store (runs.sqlite)": (_store, ["runs.sqlite"]),
    "semsim.load_manifest (JSON)": (_manifest, ["raw.pkl"]),
}  # fmt: skip
LOADER_ROWS = [(name, f) for name, (_, files) in LOADERS.items() for f in files]


@pytest.mark.parametrize(("loader", "file"), LOADER_ROWS, ids=[f"{a}:{b}" for a, b in LOADER_ROWS])
def test_every_loader_refuses_a_malicious_pickle(loader, file, evil_files, marker):
    fn, _ = LOADERS[loader]
    with pytest.raises(PrivlabError) as info:
        fn(evil_files[file])
    assert isinstance(info.value, FileFormatError | DataMissingError) or "unsupported" in str(info.value)
    named = {evil_files[file].name, "manifest.json", "runs.sqlite"}  # the last two: copies under those names
    assert any(n in str(info.value) for n in named)
    assert not marker.exists()


def _cli_rows(e: dict[str, Path], tmp: Path) -> list[list[Any]]:
    pairs = tmp / "pairs"
    if not pairs.exists():
        from privlab.data.reconstructions import save_pairs

        save_pairs(pairs, torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), [1])
    store = tmp / "evilstore"
    store.mkdir(exist_ok=True)
    shutil.copy(e["runs.sqlite"], store / "runs.sqlite")
    out = tmp / "out.npy"
    return [
        ["mi", e["raw.npy"], e["object.npy"]],
        ["mi", "estimate", e["object.npz"], e["raw.npz"]],
        ["mi", e["torch.safetensors"], e["raw.safetensors"]],
        ["ldp", "privatize", "-m", "laplace", "-e", "1", e["raw.npy"], out],
        ["ldp", "privatize", "-m", "laplace", "-e", "1", e["object.npy"], out],
        ["ldp", "privatize", "-m", "ue", "-e", "1", e["torch.safetensors"], out],
        ["similarity", pairs, "--metrics", "lpips", "--lpips-weights", e["torch.pth"]],
        ["similarity", pairs, "--metrics", "psnr,lpips", "--lpips-weights", e["raw.pt"]],
        ["semsim", "score", pairs, "--model", e["raw.pt"]],
        ["semsim", "score", pairs, "--model", e["model.safetensors"]],
        ["invert", "--checkpoint", e["model.safetensors"], "--out", tmp / "inv", "--quiet"],
        ["invert", "--checkpoint", e["raw.pt"], "--out", tmp / "inv", "--quiet"],
        ["run", e["spec.yaml"], "--out", tmp / "run"],
        ["runs", "list", "--out", store],
        ["report", store],
    ]


CLI_IDS = ["mi-npy", "mi-npz", "mi-safetensors", "ldp-raw", "ldp-object", "ldp-ue", "similarity-lpips-pth",
           "similarity-lpips-pt", "semsim-pt", "semsim-torch", "invert-safetensors", "invert-pt", "run-yaml",
           "runs-list", "report"]  # fmt: skip


@pytest.mark.parametrize("row", range(len(CLI_IDS)), ids=CLI_IDS)
def test_every_file_command_refuses_a_malicious_pickle(row, evil_files, marker, tmp_path, cli):
    args = _cli_rows(evil_files, tmp_path)[row]
    msg = cli.error(*args)
    assert any(Path(a).name in msg for a in args if isinstance(a, Path)) or "runs.sqlite" in msg
    assert not marker.exists()
    assert not (tmp_path / "out.npy").exists()


def test_cifar_batches_replaced_by_a_pickle_are_refused(tmp_path, payload, marker):
    """CIFAR's own files are pickles; torchvision checks their published MD5 before unpickling, so a swapped file is
    reported as corrupt and never loaded."""
    from privlab.data import load_dataset

    root = tmp_path / "data" / "cifar-10-batches-py"
    root.mkdir(parents=True)
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]:
        (root / name).write_bytes(payload(marker))
    with pytest.raises(FileFormatError, match=r"MD5 checksum mismatch.*--download|corrupt"):
        load_dataset("cifar10", "test", root=tmp_path / "data")
    assert not marker.exists()


# -- the static guard --------------------------------------------------------------------------------------------

SRC = Path(privlab.__file__).resolve().parent
#: Modules that may never be imported by privlab (each can execute code from a file).
BANNED_MODULES = {"dill", "cloudpickle", "joblib", "shelve", "marshal", "jsonpickle"}
#: ``pickle`` may be imported only to name its exception class.
PICKLE_ALLOWED_ATTRS = {"UnpicklingError", "PicklingError", "PickleError"}


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _kw(call: ast.Call, name: str) -> Any:
    for k in call.keywords:
        if k.arg == name:
            return k.value.value if isinstance(k.value, ast.Constant) else _dotted(k.value)
    return "<absent>"


def unsafe_calls(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, what)`` of every unsafe deserialisation pattern in one module's AST."""
    bad: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            for n in names:
                if n and n.split(".")[0] in BANNED_MODULES:
                    bad.append((node.lineno, f"import of {n}"))
            if isinstance(node, ast.ImportFrom) and node.module == "pickle":
                bad += [(node.lineno, f"from pickle import {a.name}") for a in node.names
                        if a.name not in PICKLE_ALLOWED_ATTRS]  # fmt: skip
        elif isinstance(node, ast.Attribute) and _dotted(node.value) in ("pickle", "cPickle", "_pickle"):
            if node.attr not in PICKLE_ALLOWED_ATTRS:
                bad.append((node.lineno, f"pickle.{node.attr}"))
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            short = name.split(".")[-1]
            if name in ("torch.load", "torch.serialization.load") and _kw(node, "weights_only") is not True:
                bad.append((node.lineno, f"{name}( without weights_only=True"))
            if name in ("torch.jit.load", "pandas.read_pickle", "pd.read_pickle"):
                bad.append((node.lineno, f"{name}("))
            if short == "read_array" and _kw(node, "allow_pickle") is not False:
                bad.append((node.lineno, f"{name}( without allow_pickle=False"))
            if name in ("np.load", "numpy.load") and _kw(node, "allow_pickle") is not False:
                bad.append((node.lineno, f"{name}( without allow_pickle=False"))
            if _kw(node, "allow_pickle") is True:
                bad.append((node.lineno, "allow_pickle=True"))
            if name in ("yaml.load", "yaml.load_all", "yaml.full_load", "yaml.unsafe_load", "yaml.full_load_all",
                        "yaml.unsafe_load_all"):  # fmt: skip
                loader = str(_kw(node, "Loader"))
                if "Safe" not in loader and "_LineLoader" not in loader:
                    bad.append((node.lineno, f"{name}( without a SafeLoader"))
            if name in ("yaml.compose", "yaml.parse") and "_LineLoader" not in str(_kw(node, "Loader")):
                bad.append((node.lineno, f"{name}( without the safe _LineLoader"))
            if isinstance(node.func, ast.Name) and node.func.id in ("eval", "exec"):
                bad.append((node.lineno, f"{name}("))
        elif isinstance(node, ast.ClassDef):
            bases = {_dotted(b) for b in node.bases}
            if bases & {"yaml.Loader", "yaml.FullLoader", "yaml.UnsafeLoader", "Loader", "FullLoader"}:
                bad.append((node.lineno, f"class {node.name} derives an unsafe YAML loader"))
    return bad


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("import pickle\npickle.loads(b'')", "pickle.loads"),
        ("import pickle\nx = pickle.Unpickler", "pickle.Unpickler"),
        ("from pickle import load", "from pickle import load"),
        ("import torch\ntorch.load('f')", "torch.load( without weights_only=True"),
        ("import torch\ntorch.load('f', weights_only=False)", "torch.load( without weights_only=True"),
        ("import numpy as np\nnp.load('f')", "np.load( without allow_pickle=False"),
        ("import numpy as np\nnp.load('f', allow_pickle=True)", "allow_pickle=True"),
        ("import yaml\nyaml.load(t)", "yaml.load( without a SafeLoader"),
        ("import yaml\nyaml.load(t, Loader=yaml.Loader)", "yaml.load( without a SafeLoader"),
        ("import yaml\nyaml.unsafe_load(t)", "yaml.unsafe_load( without a SafeLoader"),
        ("import joblib", "import of joblib"),
        ("import torch\ntorch.jit.load('m.pt')", "torch.jit.load("),
        ("eval('1')", "eval("),
        ("import numpy as np\nnp.lib.format.read_array(f)", "np.lib.format.read_array( without allow_pickle=False"),
    ],
)
def test_the_guard_catches_unsafe_patterns(code, expected):
    """The static guard would fail on each pattern (so the clean result below means something)."""
    assert expected in [w for _, w in unsafe_calls(ast.parse(code))]


@pytest.mark.parametrize(
    "code",
    [
        "import torch\ntorch.load('f', map_location='cpu', weights_only=True)",
        "import numpy as np\nnp.load('f', allow_pickle=False)",
        "import yaml\nyaml.safe_load(t)",
        "import yaml\nyaml.load(t, Loader=yaml.SafeLoader)",
        "import pickle\nexcept_ = pickle.UnpicklingError",
    ],
)
def test_the_guard_accepts_safe_patterns(code):
    assert unsafe_calls(ast.parse(code)) == []


def test_no_source_file_unpickles_or_loads_yaml_unsafely():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 50  # the whole package is scanned
    found = []
    for f in files:
        for line, what in unsafe_calls(ast.parse(f.read_text("utf-8"), filename=str(f))):
            found.append(f"{f.relative_to(SRC.parent)}:{line}: {what}")
    assert found == [], "unsafe deserialisation in privlab:\n" + "\n".join(found)
