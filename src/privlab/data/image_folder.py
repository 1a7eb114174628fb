"""Your own images: a folder in torchvision's ``ImageFolder`` layout, one sub-folder per class.

Layout::

    ROOT/train/<class name>/<image>.png|jpg|…
    ROOT/test/<class name>/<image>.png|jpg|…

Classes are the (non-hidden) sub-folder names of ``ROOT/train`` in sorted order (label ``i`` is the ``i``-th
name), and the test split uses the same mapping, so a class may be absent from ``test/`` but ``test/`` may not hold
a class that ``train/`` lacks. Every image is read with PIL and converted to RGB, so the images are
``(N, 3, H, W)`` uint8 and must all have the same size (or be resized while reading with the loader's ``resize``
argument).

Its :class:`DatasetInfo` cannot know the folder before it is read: ``shape=(3, 0, 0)`` means "3 channels, size from
the files" and ``num_classes=0`` means "from the folder names". Per-channel statistics of an arbitrary folder are not
known in advance either; the neutral ``mean = std = 0.5`` (mapping ``[0, 1]`` to ``[-1, 1]``) is used for both
splits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from privlab.data import DATASETS, DatasetInfo, LabelledImages, resize_images
from privlab.errors import DataMissingError, FileFormatError

__all__ = ["image_folder"]

_LAYOUT = "train/<class>/<image> and test/<class>/<image> (torchvision ImageFolder layout)"

_INFO = DatasetInfo(
    shape=(3, 0, 0),
    num_classes=0,
    needs_root=True,
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    description="your own images under --data-root: train/<class>/*.png and test/<class>/*.png (RGB, one size)",
)


def _class_dirs(folder: Path) -> list[str]:
    """Sorted names of the sub-folders of ``folder``, hidden ones (``.name``) excluded."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_rgb(path: str) -> np.ndarray:
    """Read one image file as ``(H, W, 3)`` uint8 RGB.

    Raises:
        FileFormatError: PIL cannot decode the file (corrupt, truncated or not an image).
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"), dtype=np.uint8)  # a writable copy
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise FileFormatError(
            f"image_folder: cannot read image '{path}' ({type(exc).__name__}: {exc}); the file is corrupt, truncated "
            f"or not an image: replace or remove it"
        ) from exc


@DATASETS.register("image_folder", info=_INFO)
def image_folder(
    split: str, root: Path | None, download: bool = False, *, resize: int | tuple[int, int] | None = None
) -> LabelledImages:
    """Load ``ROOT/<split>`` as uint8-backed :class:`LabelledImages` ``(N, 3, H, W)``, labels from folder names.

    Args:
        split: ``"train"`` or ``"test"``.
        root: the folder holding ``train/`` and ``test/``.
        download: ignored: there is nothing to download.
        resize: if given (``H`` or ``(H, W)`` in pixels), each image is resized (bilinear, antialiased) as it is read,
            so folders of mixed sizes can be loaded; otherwise all images must share one size.

    Returns:
        Images ``(N, 3, H, W)`` stored as uint8 (float ``[0, 1]`` when ``resize`` is given), ``num_classes`` = number
        of class folders in ``train/``, ``class_names`` = those folder names.

    Raises:
        DataMissingError: no root, no ``train/``/``<split>/`` folder, no class folder or no image.
        FileFormatError: an unreadable image (named), images of different sizes (the odd one named), or a class folder
            in ``test/`` that ``train/`` lacks.
    """
    if root is None:
        raise DataMissingError(
            f"dataset 'image_folder' needs a data root: pass --data-root DIR (the folder that holds {_LAYOUT})"
        )
    train_dir, split_dir = root / "train", root / split
    for folder in dict.fromkeys((train_dir, split_dir)):
        if not folder.is_dir():
            raise DataMissingError(
                f"dataset 'image_folder': folder '{folder}' not found; the data root '{root}' must hold {_LAYOUT}"
            )
    classes = _class_dirs(train_dir)
    if not classes:
        raise DataMissingError(
            f"dataset 'image_folder': no class folder in '{train_dir}'; expected {_LAYOUT}, one folder per class"
        )
    extra = sorted(set(_class_dirs(split_dir)) - set(classes))
    if extra:
        raise FileFormatError(
            f"dataset 'image_folder': '{split_dir}' has class folders that '{train_dir}' lacks: {', '.join(extra)}; "
            f"both splits must use the class folders of train/"
        )
    class_to_idx = {c: i for i, c in enumerate(classes)}

    from torchvision.datasets import ImageFolder  # imported late: it is slow and not needed for the checks above

    class _Folder(ImageFolder):
        """ImageFolder whose classes are always those of ``train/`` (so labels agree across splits)."""

        def find_classes(self, directory: str | Path) -> tuple[list[str], dict[str, int]]:
            return list(classes), dict(class_to_idx)

    try:
        samples = _Folder(str(split_dir), allow_empty=split != "train").samples
    except FileNotFoundError as exc:
        raise DataMissingError(f"dataset 'image_folder': {exc} (in '{split_dir}'; expected {_LAYOUT})") from exc
    if not samples:
        raise DataMissingError(f"dataset 'image_folder': no image files in '{split_dir}'; expected {_LAYOUT}")

    arrays: list[np.ndarray | torch.Tensor] = []
    first: tuple[str, tuple[int, ...]] | None = None
    for path, _ in samples:
        a = _read_rgb(path)
        if resize is not None:
            x = torch.from_numpy(a).permute(2, 0, 1)[None].float().div_(255.0)
            arrays.append(resize_images(x, resize)[0])
            continue
        if first is None:
            first = (path, a.shape)
        elif a.shape != first[1]:
            raise FileFormatError(
                f"dataset 'image_folder': all images must have the same size, but '{path}' is "
                f"{a.shape[0]}×{a.shape[1]} (H×W) while '{first[0]}' is {first[1][0]}×{first[1][1]}; "
                f"resize the files to one size first, or pass --resize N (resize=(H, W)) to resize while reading"
            )
        arrays.append(a)
    if resize is not None:
        images = torch.stack(arrays)  # type: ignore[arg-type]  # float (N, 3, H, W) in [0, 1]
    else:
        images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()  # (N, H, W, 3) → (N, 3, H, W)
    labels = torch.tensor([label for _, label in samples], dtype=torch.long)
    return LabelledImages(
        images, labels, len(classes), name="image_folder", mean=_INFO.mean, std=_INFO.std, class_names=classes
    )
