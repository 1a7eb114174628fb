"""JPEG re-compression: encode every image at quality ``q`` with PIL (libjpeg) and decode it again."""

from __future__ import annotations

import io

import numpy as np
import torch
from pydantic import Field

from privlab.attack.countermeasures import COUNTERMEASURES
from privlab.config import Spec

__all__ = ["JpegConfig", "jpeg"]


class JpegConfig(Spec):
    """Settings of the ``jpeg`` counter-measure."""

    quality: int = Field(default=75, ge=1, le=100, description="JPEG quality (1 worst … 100 best; PIL's scale)")


@COUNTERMEASURES.register("jpeg", config=JpegConfig, description="JPEG re-compression at quality q (PIL)")
def jpeg(x: torch.Tensor, cfg: JpegConfig, g: torch.Generator | None = None) -> torch.Tensor:
    """Round-trip ``(N, C, H, W)`` images in ``[0, 1]`` through JPEG at ``cfg.quality`` (deterministic, ``g`` unused).

    Images are rounded to uint8 first; 3-channel images are coded as RGB (PIL's default 4:2:0 chroma subsampling),
    1-channel ones as greyscale, other channel counts channel by channel.
    """
    from PIL import Image

    u8 = (x.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    out = np.empty_like(u8)
    for i, img in enumerate(u8):
        planes = [img.transpose(1, 2, 0)] if img.shape[0] == 3 else list(img)
        decoded = []
        for p in planes:
            buf = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(p)).save(buf, format="JPEG", quality=cfg.quality)
            buf.seek(0)
            with Image.open(buf) as im:
                decoded.append(np.asarray(im))
        out[i] = decoded[0].transpose(2, 0, 1) if img.shape[0] == 3 else np.stack(decoded)
    return torch.from_numpy(out).to(x.device).float().div_(255.0)
