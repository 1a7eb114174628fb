"""Shared wrapper around torchvision's data-set constructors: clear errors, and no implicit download.

torchvision reports a missing *and* a corrupt data set with the same ``RuntimeError("Dataset not found ...")``;
:func:`open_torchvision` tells them apart by checking beforehand whether the expected files are present, and turns
every failure into a :class:`~privlab.errors.PrivlabError` that names the root, the data set, the expected layout
and what to do.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar
from urllib.error import URLError

import torch

from privlab.errors import DataMissingError, FileFormatError

__all__ = ["check_images", "open_torchvision"]

T = TypeVar("T")


def open_torchvision(
    name: str,
    build: Callable[[str, bool], T],
    root: Path | None,
    download: bool,
    *,
    layout: str,
    files: Sequence[str],
) -> T:
    """Call a torchvision data-set constructor, translating its failures into user-fixable errors.

    Args:
        name: privlab name of the data set (``"mnist"``, ``"cifar10"``, …), used in messages.
        build: ``build(root, download)`` constructs the torchvision data set (e.g. a ``lambda`` around
            ``torchvision.datasets.MNIST``). It is called with ``download`` exactly as given: nothing is fetched unless
            the user asked for it.
        root: the data root (``--data-root``); None when the user gave none.
        download: whether the user allowed a download into ``root``.
        layout: short description of the expected layout below ``root`` (e.g. ``"MNIST/raw/..."``).
        files: paths, relative to ``root``, that torchvision requires for this split (listed in messages); if they
            all exist when torchvision fails, the files are corrupt or truncated rather than missing.

    Returns:
        Whatever ``build`` returns.

    Raises:
        DataMissingError: ``root`` is None, the files are absent (and ``download`` is false), or the download failed.
        FileFormatError: the files exist but are corrupt or truncated.
    """
    if root is None:
        raise DataMissingError(
            f"dataset {name!r} needs a data root: pass --data-root DIR (the folder that holds {layout}) "
            f"and add --download to fetch it (needs internet)"
        )
    paths = [root / f for f in files]
    expected = ", ".join(files)
    if not download and not all(p.is_file() for p in paths):
        missing = next(p for p in paths if not p.is_file())
        raise DataMissingError(
            f"dataset {name!r} not found under data root '{root}' (missing '{missing}'); expected {expected}. "
            f"Point --data-root at the folder that holds {layout}, or add --download to fetch it there (needs internet)"
        )
    corrupt = (
        f"dataset {name!r}: the files under data root '{root}' ({expected}) are corrupt, truncated or not the "
        f"published ones"
    )
    fix = "delete them and fetch them again with --download (needs internet), or replace them"
    try:
        return build(str(root), download)
    except (URLError, ConnectionError, TimeoutError) as exc:
        raise DataMissingError(
            f"dataset {name!r}: download into '{root}' failed ({exc}); check the internet connection or place "
            f"the files there by hand ({expected})"
        ) from exc
    except FileNotFoundError as exc:
        raise DataMissingError(
            f"dataset {name!r}: a file is missing under data root '{root}' ({exc}); expected {expected}. "
            f"Fix the folder or add --download to fetch it (needs internet)"
        ) from exc
    except PermissionError as exc:
        raise DataMissingError(
            f"dataset {name!r}: cannot read the files under data root '{root}' ({exc}); fix their permissions"
        ) from exc
    except RuntimeError as exc:
        msg = str(exc)
        if "Error downloading" in msg:
            raise DataMissingError(
                f"dataset {name!r}: download into '{root}' failed ({msg.splitlines()[0].rstrip(':')}); check the "
                f"internet connection or place the files there by hand ({expected})"
            ) from exc
        if "not found" in msg:  # torchvision's words for "absent or failed its MD5 check"
            if all(p.is_file() for p in paths):
                raise FileFormatError(f"{corrupt} (MD5 checksum mismatch); {fix}") from exc
            raise DataMissingError(
                f"dataset {name!r} not found under data root '{root}'; expected {expected}. "
                f"Add --download to fetch it (needs internet)"
            ) from exc
        raise FileFormatError(f"{corrupt} ({msg.splitlines()[0] if msg else 'RuntimeError'}); {fix}") from exc
    except (AssertionError, ValueError, TypeError, struct.error, EOFError, OSError) as exc:
        raise FileFormatError(f"{corrupt} ({type(exc).__name__}: {exc}); {fix}") from exc


def check_images(
    name: str, root: Path | None, images: torch.Tensor, labels: torch.Tensor, shape: tuple[int, int, int]
) -> None:
    """Check what a torchvision set loaded: ``images (N, C, H, W)`` uint8 of ``shape`` and ``labels (N,)``.

    Raises:
        FileFormatError: wrong dtype, shape or count, naming ``root``.
    """
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) != shape:
        raise FileFormatError(
            f"dataset {name!r} under '{root}': expected uint8 images of shape {shape}, got {images.dtype} "
            f"{tuple(images.shape[1:])}; the files are not the ones torchvision expects"
        )
    if labels.shape != (images.shape[0],):
        raise FileFormatError(
            f"dataset {name!r} under '{root}': {images.shape[0]} images but labels of shape {tuple(labels.shape)}"
        )
