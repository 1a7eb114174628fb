"""The SemSim embedding network: a ResNet-18 trunk mapping an image to a 512-d vector (optionally L2-normalised).

SemSim (Sun et al., "SemSim: a learned, human-aligned privacy metric") scores a reconstruction by the Euclidean
distance between the embeddings of the original and of the reconstruction. The trunk is privlab's CIFAR ResNet-18
(3×3 stem, no max-pool, 4 × 2 basic blocks) with the classifier removed; ``width`` scales every stage
(64 → the paper's 512-d embedding; smaller widths give ``8·width`` dimensions for CPU-sized experiments).

Preprocessing is ONE function, :func:`preprocess`, used by training and scoring alike: channel adaptation (grey
images are repeated to 3 channels for an RGB network), bilinear resize to ``input_size`` and the per-channel
normalisation stored in the network. (The original code normalised and resized during training but fed raw
``ToTensor()`` images at scoring time; that mismatch is not reproduced.)

Example:
    >>> import torch
    >>> net = SemSimNet(in_channels=1, width=4, input_size=16)
    >>> net.embed(torch.rand(2, 1, 20, 20)).shape
    torch.Size([2, 32])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from privlab.errors import ConfigError, FileFormatError
from privlab.models.resnet import cifar_resnet
from privlab.store import load_tensors, save_tensors

__all__ = ["FORMAT", "SemSimNet", "load_semsim", "preprocess", "save_semsim"]

FORMAT = "privlab-semsim-v1"


def preprocess(x: torch.Tensor, *, in_channels: int, input_size: int) -> torch.Tensor:
    """Images ``N×C×H×W`` in ``[0, 1]`` → ``N×in_channels×input_size×input_size`` in ``[0, 1]`` (train = score).

    Grey images are repeated to 3 channels for an RGB network; RGB images for a grey network are an error.

    Raises:
        ConfigError: not a 4-d batch, or an RGB image for a 1-channel network.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] not in (1, 3):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ConfigError(f"SemSim expects images N×C×H×W with C = 1 or 3 in [0, 1], got {shape}")
    x = x.float()
    if x.shape[1] != in_channels:
        if x.shape[1] == 1 and in_channels == 3:
            x = x.expand(-1, 3, -1, -1)
        else:
            raise ConfigError(
                f"this SemSim model takes {in_channels}-channel images but got {x.shape[1]}-channel ones; "
                "train a model on images like these (privlab semsim train)"
            )
    if tuple(x.shape[-2:]) != (input_size, input_size):
        x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(0, 1)


class SemSimNet(nn.Module):
    """ResNet-18 trunk → ``8·width``-d embedding (512 for ``width = 64``).

    Args:
        in_channels: 1 (grey) or 3 (RGB) — the channels the trunk is built for.
        width: channels of the first stage (64 in the paper); stages have width, 2·, 4·, 8·width.
        input_size: images are resized to ``input_size × input_size`` by :func:`preprocess`.
        l2_normalize: divide each embedding by its L2 norm (training and scoring both).
        mean, std: per-channel normalisation applied inside (``[0, 1]`` images come in).
    """

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 64,
        input_size: int = 32,
        l2_normalize: bool = True,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if in_channels not in (1, 3):
            raise ConfigError(f"SemSim in_channels must be 1 or 3, got {in_channels}")
        if width < 1 or input_size < 8:
            raise ConfigError(f"SemSim width must be ≥ 1 and input_size ≥ 8, got {width} and {input_size}")
        self.in_channels, self.width, self.input_size = int(in_channels), int(width), int(input_size)
        self.l2_normalize = bool(l2_normalize)
        mean = list(mean) if mean is not None else [0.5] * in_channels
        std = list(std) if std is not None else [0.5] * in_channels
        if len(mean) != in_channels or len(std) != in_channels or min(std) <= 0:
            raise ConfigError(f"SemSim mean/std need {in_channels} values each (std > 0), got {mean} and {std}")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        trunk = cifar_resnet((2, 2, 2, 2), (width, 2 * width, 4 * width, 8 * width), 1, in_channels)
        trunk.fc = nn.Identity()
        self.trunk = trunk

    @property
    def dim(self) -> int:
        """Embedding dimension (``8·width``)."""
        return 8 * self.width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed already-preprocessed images (``N×in_channels×S×S`` in ``[0, 1]``) → ``N×dim``."""
        z = self.trunk((x - self.mean) / self.std)
        return F.normalize(z, dim=1) if self.l2_normalize else z

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocess (:func:`preprocess`) and embed images ``N×C×H×W`` in ``[0, 1]`` → ``N×dim``."""
        dev = self.mean.device
        return self(preprocess(x, in_channels=self.in_channels, input_size=self.input_size).to(dev))

    def config(self) -> dict[str, Any]:
        """What rebuilds this network (stored in checkpoints)."""
        return {
            "in_channels": self.in_channels,
            "width": self.width,
            "input_size": self.input_size,
            "l2_normalize": self.l2_normalize,
            "mean": self.mean.flatten().tolist(),
            "std": self.std.flatten().tolist(),
        }


def save_semsim(path: str | Path, model: SemSimNet, meta: dict[str, Any] | None = None) -> str:
    """Save ``model`` as safetensors with its configuration and ``meta`` in the header; returns the SHA-256."""
    header = {"format": FORMAT, "config": model.config(), **(meta or {})}
    return save_tensors(path, dict(model.state_dict()), header)


def load_semsim(path: str | Path, device: str | torch.device = "cpu") -> tuple[SemSimNet, dict[str, Any]]:
    """Load a checkpoint written by :func:`save_semsim` → ``(model in eval mode, metadata)``.

    Raises:
        DataMissingError: no such file. FileFormatError: not a SemSim checkpoint (or weights that do not fit).
    """
    tensors, meta = load_tensors(Path(path).expanduser())
    if meta.get("format") != FORMAT or not isinstance(meta.get("config"), dict):
        raise FileFormatError(
            f"{path} is not a SemSim checkpoint (metadata format {meta.get('format')!r}, expected {FORMAT!r}); "
            "create one with `privlab semsim train`"
        )
    cfg = meta["config"]
    try:  # built on the meta device first (no memory): a forged width cannot allocate a huge network
        with torch.device("meta"):
            skeleton = SemSimNet(**cfg)
        want = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
        if want != {k: tuple(v.shape) for k, v in tensors.items()}:
            raise RuntimeError("tensor names or shapes differ")
        model = SemSimNet(**cfg)
        model.load_state_dict(tensors)
    except (TypeError, ValueError, RuntimeError, OverflowError, ConfigError) as e:
        raise FileFormatError(
            f"{path}: weights do not match the stored SemSim configuration ({str(e)[:160]})"
        ) from None
    return model.to(device).eval(), meta
