"""The victim stage: trained models that pipelines attack or measure with, trained once and cached.

Every pipeline that needs a trained classifier (a victim whose gradient or activations leak, or a reference
classifier that scores reconstructions) goes through :func:`train_or_load`. There is one cache folder,
``OUT/cache/models/<role>-<key>.safetensors``, where ``key`` hashes the role and everything that determines the
model (``key_parts``: data set, architecture, training settings, seed, …). The file's metadata holds the role, the
key and the key's source, and is checked on load.

Two processes that need the same entry (two sweep workers on one ``--out``) take turns on a lock file
(``OUT/cache/locks/<entry>.lock``): the first trains and saves, the second waits and then loads.

One policy for a bad cache entry (unreadable, another key or role, weights that do not fit): a warning naming the
file and why, then the model is retrained and the file atomically overwritten. Nothing is ever deleted silently.

:func:`load_checkpoint` rebuilds a model saved by ``privlab train`` (``model.safetensors`` in its run folder);
:func:`load_state_dict_model` builds a registered architecture and loads a plain safetensors state dict written
elsewhere into it; :func:`load_model_file` picks one of the two and checks the model against a data set.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from privlab.data.base import LabelledImages
from privlab.errors import ConfigError, FileFormatError, PrivlabError
from privlab.models import build_model
from privlab.store import load_tensors, save_tensors
from privlab.store.lock import wait_lock
from privlab.train import TrainConfig, fit

if TYPE_CHECKING:
    from privlab.context import RunContext

__all__ = [
    "CACHE_FOLDER",
    "cache_key",
    "cache_path",
    "load_checkpoint",
    "load_model_file",
    "load_state_dict_model",
    "reference_classifier",
    "train_or_load",
]

CACHE_FOLDER = Path("cache") / "models"
"""Where cached models live, relative to the output folder."""
LOCK_FOLDER = Path("cache") / "locks"
"""Where the per-entry lock files live (outside CACHE_FOLDER, which holds only models)."""

_FORMAT = 1


def cache_key(role: str, key_parts: Mapping[str, Any]) -> str:
    """20 hex digits of the SHA-256 of ``role`` and ``key_parts`` (JSON, sorted keys; other values as ``str``)."""
    src = json.dumps({"role": role, "parts": key_parts, "format": _FORMAT}, sort_keys=True, default=str)
    return hashlib.sha256(src.encode()).hexdigest()[:20]


def cache_path(out: Path, role: str, key: str) -> Path:
    """The cache file of ``role`` with ``key`` under the output folder ``out``."""
    return Path(out) / CACHE_FOLDER / f"{role}-{key}.safetensors"


def _load_entry(path: Path, model: nn.Module, role: str, key: str) -> tuple[str | None, dict[str, Any]]:
    """Load ``path`` into ``model``: ``(None, metadata)`` on success, else ``(why the entry is unusable, {})``."""
    try:
        tensors, meta = load_tensors(path)
    except PrivlabError as e:
        return str(e).splitlines()[0][:200], {}
    if meta.get("role") != role or meta.get("key") != key:
        why = f"its metadata names role {meta.get('role')!r} and key {meta.get('key')!r}, not {role!r} and {key!r}"
        return why, {}
    if "fit" in meta and not isinstance(meta["fit"], dict):
        return f"its metadata 'fit' is {type(meta['fit']).__name__}, not an object", {}
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        return f"its weights do not fit the model ({str(e).splitlines()[0][:160]})", {}
    return None, meta


def train_or_load(
    ctx: RunContext,
    *,
    role: str,
    model_factory: Callable[[], nn.Module],
    train_data: LabelledImages,
    train_config: TrainConfig,
    key_parts: Mapping[str, Any],
    init_seed: int | None = None,
    before_fit: Callable[[nn.Module], None] | None = None,
    fit_fn: Callable[[nn.Module, LabelledImages], Mapping[str, Any] | None] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """The model of ``role``: loaded from the cache, or built, trained with :func:`privlab.train.fit` and cached.

    Args:
        ctx: the run (its ``out`` holds the cache; ``seed``, ``device`` and ``progress`` are used for training).
        role: what the model is for (a file-name part: letters, digits, ``-``, ``_``), e.g. ``"inversion-victim"``.
        model_factory: builds the untrained model (called after ``torch.manual_seed(init_seed)`` when given).
        train_data: the training split (already relabelled / limited).
        train_config: how to train it (``fit(..., seed=ctx.seed)``).
        key_parts: everything else that determines the model (data set, architecture, settings, seed); JSON-able.
        init_seed: seed of the initial weights.
        before_fit: called on a fresh model before training (e.g. to freeze a part).
        fit_fn: trains the fresh model on ``train_data`` instead of ``fit(..., seed=ctx.seed)`` (another seed,
            DP-SGD, privatised inputs, …); it must train in place and may return facts about the training
            (JSON-able, e.g. the accountant's ε), stored in the cache entry as ``fit``.

    Returns:
        ``(model in eval mode on ctx.device, info)``: info has ``cached`` (bool), ``path``, ``key`` and
        ``train_seconds`` (0 when loaded); with ``fit_fn`` also ``fit`` (what it returned, from the cache when
        loaded).
    """
    key = cache_key(role, key_parts)
    path = cache_path(ctx.out, role, key)

    def waiting() -> None:  # stderr (a sweep worker's run.log), even with --quiet: it explains a pause
        print(f"[privlab] waiting for another process that trains the same {role} model ({path})", file=sys.stderr)

    # one trainer per entry: a second sweep worker that needs the same model waits, then loads the first one's file
    with wait_lock(ctx.out / LOCK_FOLDER / f"{path.stem}.lock", on_wait=waiting):
        if path.exists():
            if init_seed is not None:
                torch.manual_seed(init_seed)
            model = model_factory()
            why, meta = _load_entry(path, model, role, key) if path.is_file() else ("it is not a file", {})
            if why is None:
                info = {"cached": True, "path": str(path), "key": key, "train_seconds": 0.0}
                if fit_fn is not None:
                    info["fit"] = dict(meta.get("fit", {}))
                return model.to(ctx.device).eval(), info
            warnings.warn(
                f"model cache {path} is unusable ({why}); retraining it and overwriting the file", stacklevel=2
            )
        if init_seed is not None:
            torch.manual_seed(init_seed)
        model = model_factory()  # rebuilt: seeded initial weights
        if before_fit is not None:
            before_fit(model)
        t0 = time.perf_counter()
        facts: dict[str, Any] = {}
        if fit_fn is None:
            fit(model, train_data, train_config, seed=ctx.seed, device=ctx.device, progress=ctx.progress)
        else:
            facts = json.loads(json.dumps(dict(fit_fn(model, train_data) or {}), default=str))
        seconds = time.perf_counter() - t0
        meta = {"role": role, "key": key, "source": dict(key_parts), "train_seconds": seconds, "format": _FORMAT}
        if fit_fn is not None:
            meta["fit"] = facts
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        save_tensors(path, state, json.loads(json.dumps(meta, default=str)))  # atomic: replaces a bad entry
        info = {"cached": False, "path": str(path), "key": key, "train_seconds": seconds}
        if fit_fn is not None:
            info["fit"] = facts
        return model.to(ctx.device).eval(), info


def reference_classifier(
    ctx: RunContext, train: LabelledImages, config: TrainConfig, *, dataset: Mapping[str, Any], model: str = "lenet5"
) -> nn.Module:
    """The reference classifier that scores reconstructions: ``model`` (a registered architecture, LeNet-5 by
    default; normalised with ``train``'s mean/std) trained on the clean ``train`` split, initialised with seed
    ``ctx.seed + 1``; cached as role ``reference``.

    ``dataset`` describes the data set (its spec as JSON) for the cache key. Returns the model in eval mode.
    """
    ref, _ = train_or_load(
        ctx,
        role="reference",
        model_factory=lambda: build_model(model, train.num_classes, train.shape, mean=train.mean, std=train.std),
        train_data=train,
        train_config=config,
        key_parts={"dataset": dict(dataset), "model": model, "train": config.model_dump(mode="json"),
                   "seed": ctx.seed},
        init_seed=ctx.seed + 1,
    )  # fmt: skip
    return ref


# -- checkpoints of `privlab train` --------------------------------------------------------------------------------
def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _numbers(v: Any, n: int) -> bool:
    return v is None or (
        isinstance(v, list) and len(v) == n and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
    )


def load_checkpoint(path: str | Path, *, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model saved by the ``train`` experiment: ``(model in eval mode, metadata)``.

    The metadata is checked and the architecture is first built on PyTorch's ``meta`` device (no memory) and compared
    tensor by tensor with the file, so a forged header cannot make privlab allocate a huge model.

    Raises:
        DataMissingError: no such file. FileFormatError: not a privlab checkpoint (metadata missing or malformed, an
        unknown model) or weights of another shape.
    """
    tensors, meta = load_tensors(path)
    if "model" not in meta or "in_shape" not in meta:
        raise FileFormatError(f"{path}: not a privlab checkpoint (metadata lacks model/in_shape)")
    name, k, shape = meta["model"], meta.get("num_classes"), meta["in_shape"]
    if not (
        isinstance(name, str)
        and _int(k)
        and isinstance(shape, list)
        and len(shape) == 3
        and all(_int(v) for v in shape)
        and _numbers(meta.get("mean"), shape[0])
        and _numbers(meta.get("std"), shape[0])
    ):
        raise FileFormatError(
            f"{path}: not a privlab checkpoint (malformed metadata: model {name!r}, num_classes {k!r}, in_shape "
            f"{shape!r}); write it with `privlab train`"
        )
    norm = {"mean": meta["mean"], "std": meta["std"]} if meta.get("mean") and meta.get("std") else {}
    try:
        with torch.device("meta"):
            skeleton = build_model(name, k, tuple(shape), **norm)
    except PrivlabError as e:
        raise FileFormatError(f"{path}: cannot rebuild its model: {e}") from None
    except (TypeError, ValueError, RuntimeError) as e:
        raise FileFormatError(f"{path}: cannot rebuild model {name!r} from its metadata ({e})") from None
    want = {key: tuple(v.shape) for key, v in skeleton.state_dict().items()}
    got = {key: tuple(v.shape) for key, v in tensors.items()}
    if want != got:
        diff = sorted(set(want) ^ set(got)) or [key for key in want if want[key] != got[key]]
        key = diff[0]
        raise FileFormatError(
            f"{path}: weights do not fit model {name!r}: {key} is {got.get(key, 'missing')} in the file, "
            f"{want.get(key, 'absent')} in the model ({len(diff)} tensor(s) differ)"
        )
    model = build_model(name, k, tuple(shape), **norm)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        raise FileFormatError(f"{path}: weights do not fit model {name!r}: {str(e).splitlines()[0]}") from None
    return model.to(device).eval(), meta


# -- models trained elsewhere: a plain state dict and a registered architecture -------------------------------------
_PREFIXES = ("module.", "_module.")  # torch DataParallel / DDP, opacus GradSampleModule


def _first_mismatch(want: Mapping[str, tuple[int, ...]], got: Mapping[str, tuple[int, ...]]) -> tuple[str, int]:
    """``(description of the first key that differs, number of keys that differ)``: the model's keys in its own
    order (missing from the file, or of another shape), then the file's extra keys (sorted)."""
    diffs = []
    for key, shape in want.items():
        if key not in got:
            diffs.append(f"{key} is missing from the file (the model has {list(shape)})")
        elif got[key] != shape:
            diffs.append(f"{key} is {list(got[key])} in the file, {list(shape)} in the model")
    for key in sorted(set(got) - set(want)):
        diffs.append(f"{key} ({list(got[key])}) is in the file but not in the model")
    return (diffs[0] if diffs else ""), len(diffs)


def load_state_dict_model(
    path: str | Path,
    arch: str,
    num_classes: int,
    in_shape: tuple[int, int, int] | list[int],
    *,
    mean: list[float] | tuple[float, ...] | None = None,
    std: list[float] | tuple[float, ...] | None = None,
    normalize: bool | None = None,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """Build the registered architecture ``arch`` with :func:`privlab.models.build_model` for ``num_classes``
    classes and images of ``in_shape = (C, H, W)`` in ``[0, 1]``, and load the plain safetensors state dict
    ``path`` into it (a file written with ``safetensors.torch.save_file(model.state_dict(), path)``; privlab
    metadata, if any, is ignored).

    The state dict must be the one of the model as ``build_model`` builds it: the ``resize`` layer that a
    fixed-size architecture gets has no weights; the ``normalize`` layer has two buffers, ``normalize.mean`` and
    ``normalize.std`` (``1×C×1×1``). A common ``module.`` / ``_module.`` prefix (DataParallel, opacus) is dropped.

    Args:
        normalize: ``None`` (the file decides): a normalize layer exactly when the file holds ``normalize.mean``
            and ``normalize.std``, with the file's values; ``True``: a normalize layer always, with the file's
            values when it has them, else ``mean``/``std`` (the model was trained on standardised inputs);
            ``False``: no normalize layer (the model takes ``[0, 1]`` images; a file with one does not fit).
        mean, std: per-channel statistics for ``normalize=True`` when the file has none (``C`` values each).

    Returns:
        The model, in eval mode on ``device``.

    Raises:
        DataMissingError: no such file. FileFormatError: not a safetensors file, or a state dict that does not fit
        the architecture (the message names the file, the architecture and the first key that differs).
        UnknownNameError: no such architecture. ConfigError: ``normalize=True`` without statistics.
    """
    tensors, _ = load_tensors(path)
    for prefix in _PREFIXES:
        if tensors and all(k.startswith(prefix) for k in tensors):
            tensors = {k.removeprefix(prefix): v for k, v in tensors.items()}
    c = int(in_shape[0])
    has_norm = "normalize.mean" in tensors and "normalize.std" in tensors
    use_norm = has_norm if normalize is None else normalize
    norm: dict[str, Any] = {}
    if use_norm:
        if has_norm:
            norm = {"mean": [0.0] * c, "std": [1.0] * c}  # placeholders: the file's values are loaded below
        elif mean is None or std is None:
            raise ConfigError(f"{path}: a normalize layer needs the data set's mean and std, and none were given")
        else:
            norm = {"mean": list(mean), "std": list(std)}
    model = build_model(arch, num_classes, tuple(int(s) for s in in_shape), **norm)
    if use_norm and not has_norm:  # the data set's statistics, set by build_model
        tensors = {**tensors, **{k: v for k, v in model.state_dict().items() if k.startswith("normalize.")}}
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    first, count = _first_mismatch(want, got)
    if count:
        layer = "with" if use_norm else "without"
        raise FileFormatError(
            f"{path}: the state dict does not fit architecture {arch!r} ({num_classes} classes, "
            f"{list(in_shape)} images, {layer} a normalize layer): {first}; {count} key(s) differ in all"
        )
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise FileFormatError(f"{path}: tensor {bad[0]} holds NaN or inf ({len(bad)} tensor(s) do)")
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        raise FileFormatError(
            f"{path}: the state dict does not fit architecture {arch!r}: {str(e).splitlines()[0][:200]}"
        ) from None
    return model.to(device).eval()


def load_model_file(
    path: str | Path,
    data: LabelledImages,
    *,
    dataset: str,
    arch: str | None = None,
    normalize: bool | None = None,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """A classifier of ``data``'s images from a file: a privlab checkpoint (``arch`` None, see
    :func:`load_checkpoint`) or a plain state dict of the registered architecture ``arch`` built for ``data``'s
    shape and classes (see :func:`load_state_dict_model`; ``normalize=True`` uses ``data``'s mean/std).

    Args:
        dataset: the data set's name, for the messages.

    Raises:
        ConfigError: a checkpoint made for another image shape or number of classes; ``normalize`` without
        ``arch``. DataMissingError / FileFormatError / UnknownNameError: as the two loaders.
    """
    if arch is None:
        if normalize is not None:
            raise ConfigError(
                "--normalize/--no-normalize apply to a state dict with --arch; a privlab checkpoint records its "
                "own normalisation"
            )
        net, meta = load_checkpoint(path, device=device)
        if tuple(meta["in_shape"]) != tuple(data.shape) or meta["num_classes"] != data.num_classes:
            raise ConfigError(
                f"{path}: trained on {meta['in_shape']} images with {meta['num_classes']} classes, but "
                f"{dataset} has {list(data.shape)} with {data.num_classes}; pass its data set"
            )
        return net
    return load_state_dict_model(path, arch, data.num_classes, data.shape, mean=data.mean, std=data.std,
                                 normalize=normalize, device=device)  # fmt: skip
