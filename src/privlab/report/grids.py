"""Image grids for the report: several rows of images (clean beside protected …) as one inline PNG data URI.

The PNG encoding itself (:func:`~privlab.store.images.grid_png`, ``save_grid``) lives in :mod:`privlab.store.images`,
below the pipelines that save grids as artifacts.

Example:
    >>> import torch
    >>> grid_data_uri([torch.rand(3, 1, 8, 8), torch.rand(2, 3, 8, 8)]).startswith("data:image/png;base64,")
    True
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import torch

from privlab.store.images import grid_png

__all__ = ["grid_data_uri"]


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
