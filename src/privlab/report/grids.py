"""Image grids: originals beside reconstructions, clean beside protected — as PNG bytes, files or data URIs.

Example:
    >>> import torch
    >>> x = torch.rand(6, 1, 8, 8)
    >>> grid_png(x, nrow=3)[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    >>> image_grid(x, nrow=3).shape
    torch.Size([3, 19, 28])
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torchvision.utils import make_grid

from privlab.store.artifacts import atomic_write_bytes

__all__ = ["grid_data_uri", "grid_png", "image_grid", "save_grid", "to_png_bytes"]


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


def grid_data_uri(rows: Sequence[torch.Tensor], *, scale: int = 2) -> str:
    """Several equally long rows of images (each ``N×C×H×W``) as one grid, as a ``data:image/png`` URI.

    Rows with one channel are shown in grey; a row shorter than the first is padded with white.
    """
    n = max(r.shape[0] for r in rows)
    c = max(r.shape[1] for r in rows)
    parts = []
    for r in rows:
        r = r.detach().float().cpu()
        if r.shape[1] != c:
            r = r.expand(-1, c, -1, -1)
        if r.shape[0] < n:
            r = torch.cat([r, torch.ones(n - r.shape[0], *r.shape[1:])])
        parts.append(r)
    png = grid_png(torch.cat(parts), nrow=n, scale=scale)
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
