"""Images as PNG artifacts: one image or a tiled grid encoded as 8-bit PNG bytes, or written to a file atomically.

Lives in the store (below data, pipelines and report) because it is a file format like safetensors: pipelines save
grids with it, :mod:`privlab.data.reconstructions` writes image pairs with it, and the report embeds grids.

Example:
    >>> import torch
    >>> x = torch.rand(6, 1, 8, 8)
    >>> grid_png(x, nrow=3)[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    >>> image_grid(x, nrow=3).shape
    torch.Size([3, 19, 28])
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from torchvision.utils import make_grid

from privlab.store.artifacts import atomic_write_bytes

__all__ = ["grid_png", "image_grid", "save_grid", "to_png_bytes"]


def image_grid(images: torch.Tensor, nrow: int = 8, *, padding: int = 1, pad_value: float = 1.0) -> torch.Tensor:
    """Tile ``images`` (``N×C×H×W`` in [0, 1]; C = 1 or 3) into one ``3×H'×W'`` image, ``nrow`` images per row."""
    if images.ndim != 4:
        raise ValueError(f"image_grid wants N×C×H×W, got shape {tuple(images.shape)}")
    x = images.detach().float().cpu().clamp(0, 1)
    return make_grid(x, nrow=max(1, nrow), padding=padding, pad_value=pad_value)


def to_png_bytes(image: torch.Tensor, *, scale: int = 1) -> bytes:
    """One image ``C×H×W`` (or ``H×W``) in [0, 1] as PNG bytes (8-bit), enlarged ``scale`` times (nearest)."""
    from PIL import Image

    x = image.detach().float().cpu().clamp(0, 1)
    if x.ndim == 2:
        x = x[None]
    arr = (x.mul(255).round().to(torch.uint8)).permute(1, 2, 0).numpy()
    arr = arr[..., 0] if arr.shape[2] == 1 else arr
    img = Image.fromarray(np.ascontiguousarray(arr))
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def grid_png(images: torch.Tensor, nrow: int = 8, *, scale: int = 1) -> bytes:
    """:func:`image_grid` as PNG bytes."""
    return to_png_bytes(image_grid(images, nrow), scale=scale)


def save_grid(path: str | Path, images: torch.Tensor, nrow: int = 8, *, scale: int = 1) -> Path:
    """Write :func:`grid_png` to ``path`` atomically."""
    return atomic_write_bytes(path, grid_png(images, nrow, scale=scale))
