"""SemSim distance of reconstructions to their originals, and its registration as a similarity metric.

``semsim(original, reconstruction) = ‖φ(original) − φ(reconstruction)‖₂`` with φ the trained embedding
(:class:`~privlab.measure.semsim.model.SemSimNet`, L2-normalised when it was trained so). Lower = more semantically
similar = more leakage. Images are preprocessed exactly as in training.

This file registers ``semsim`` as an image metric (:data:`privlab.measure.image.SIMILARITY_METRICS`); the metric
reads its checkpoint from ``score(..., semsim_model=PATH)`` (the inversion experiment's ``semsim_model:``), else
from :func:`set_default_model` or, failing that, the environment variable ``PRIVLAB_SEMSIM_MODEL`` (so
``PRIVLAB_SEMSIM_MODEL=ckpt.safetensors privlab similarity DIR --metrics psnr,semsim`` works).

Example:
    >>> import torch
    >>> from privlab.measure.semsim.model import SemSimNet
    >>> net = SemSimNet(in_channels=1, width=2, input_size=16).eval()
    >>> x = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> semsim_distance(net, x, x).abs().max().item() < 1e-5
    True
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from privlab.errors import DataMissingError
from privlab.measure.image.base import MetricOutput, SimilarityOptions, register_metric
from privlab.measure.semsim.model import SemSimNet, load_semsim

__all__ = ["ENV_VAR", "cached_model", "default_model", "semsim_distance", "set_default_model"]

ENV_VAR = "PRIVLAB_SEMSIM_MODEL"
_default: str | None = None
_cache: dict[tuple[str, float, str], SemSimNet] = {}


@torch.no_grad()
def semsim_distance(
    model: SemSimNet, original: torch.Tensor, reconstruction: torch.Tensor, *, batch_size: int = 256
) -> torch.Tensor:
    """Per-pair SemSim distance ``[N]`` (float64) between ``original`` and ``reconstruction`` (``N×C×H×W``, [0, 1])."""
    if original.shape[0] != reconstruction.shape[0]:
        from privlab.errors import ConfigError

        raise ConfigError(f"{original.shape[0]} originals but {reconstruction.shape[0]} reconstructions")
    was = model.training
    model.eval()
    out = []
    try:
        for i in range(0, original.shape[0], batch_size):
            a = model.embed(original[i : i + batch_size])
            b = model.embed(reconstruction[i : i + batch_size])
            out.append(torch.linalg.vector_norm(a - b, dim=1).double().cpu())
    finally:
        model.train(was)
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def set_default_model(path: str | Path | None) -> None:
    """Checkpoint used by the ``semsim`` similarity metric (None: fall back to ``$PRIVLAB_SEMSIM_MODEL``)."""
    global _default
    _default = str(path) if path is not None else None


def default_model(device: str | torch.device | None = None) -> tuple[SemSimNet, str]:
    """The ``semsim`` metric's network (cached per file and modification time) and its path.

    Raises:
        DataMissingError: no checkpoint configured (the message says how to give one).
    """
    path = _default or os.environ.get(ENV_VAR)
    if not path:
        raise DataMissingError(
            "similarity metric 'semsim' needs a trained SemSim checkpoint: train one with `privlab semsim train` "
            f"(or `privlab semsim proxy`), then set {ENV_VAR}=PATH/semsim.safetensors or call "
            "privlab.measure.semsim.set_default_model(PATH)"
        )
    return cached_model(path, device, source=f"from {ENV_VAR} or set_default_model")


def cached_model(
    path: str | Path, device: str | torch.device | None = None, *, source: str = "given"
) -> tuple[SemSimNet, str]:
    """The SemSim network of the checkpoint ``path`` (cached per file, modification time and device) and its path.

    Raises:
        DataMissingError: no such file (the message names ``source``: where the path came from).
        FileFormatError: not a SemSim checkpoint.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataMissingError(f"SemSim checkpoint {p} not found ({source})")
    dev = str(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    key = (str(p.resolve()), p.stat().st_mtime, dev)
    if key not in _cache:
        _cache[key] = load_semsim(p, dev)[0]
    return _cache[key], str(p)


@register_metric(
    "semsim",
    unit=None,
    higher_is_better=False,
    description=f"learned human-aligned distance (SemSim); checkpoint from semsim_model or ${ENV_VAR}",
)
def _semsim_metric(x: torch.Tensor, y: torch.Tensor, opts: SimilarityOptions) -> MetricOutput:
    device = opts.device if opts.device not in (None, "auto") else None
    if opts.semsim_model is not None:
        model, path = cached_model(opts.semsim_model, device, source="semsim_model")
    else:
        model, path = default_model(device)
    cfg = model.config()
    note = (
        f"SemSim: L2 distance of {model.dim}-d ResNet-18 embeddings"
        f"{' (L2-normalised)' if cfg['l2_normalize'] else ''}, images resized to {cfg['input_size']}² as in "
        f"training; lower = more similar; checkpoint {Path(path).name}"
    )
    return MetricOutput({"semsim": semsim_distance(model, x, y)}, note)
