"""The "ConvNet" of inversefed (Geiping et al. 2020), a plain conv–BN–ReLU stack used as a gradient-inversion victim."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable

from torch import nn

from privlab.models import MODELS
from privlab.models.split import output_shape

__all__ = ["convnet", "convnet64"]

# Output-channel multipliers of the eight 3×3 convolutions, and the convolutions followed by a 3×3 max-pool.
_MULTIPLIERS = (1, 2, 2, 4, 4, 4, 4, 4)
_POOL_AFTER = {5: "pool0", 7: "pool1"}


def _build(width: int, num_classes: int, in_shape: tuple[int, int, int]) -> nn.Sequential:
    layers: list[tuple[str, nn.Module]] = []
    in_ch = int(in_shape[0])
    for i, mult in enumerate(_MULTIPLIERS):
        out_ch = mult * width
        layers += [
            (f"conv{i}", nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1)),
            (f"bn{i}", nn.BatchNorm2d(out_ch)),
            (f"relu{i}", nn.ReLU()),
        ]
        if i in _POOL_AFTER:
            layers.append((_POOL_AFTER[i], nn.MaxPool2d(3)))
        in_ch = out_ch
    layers.append(("flatten", nn.Flatten()))
    n_flat = math.prod(output_shape(nn.Sequential(OrderedDict(layers)), in_shape))
    layers.append(("linear", nn.Linear(n_flat, num_classes)))
    return nn.Sequential(OrderedDict(layers))


def convnet(width: int) -> Callable[[int, tuple[int, int, int]], nn.Sequential]:
    """Factory of the inversefed ConvNet with base ``width`` (only width 64 is registered, as ``convnet64``).

    Structure: ``conv0``…``conv7`` (3×3, padding 1, each with ``bn{i}`` and ``relu{i}``) with output channels
    w, 2w, 2w, 4w, 4w, 4w, 4w, 4w; a 3×3 max-pool (stride 3) ``pool0`` after ``conv5`` and ``pool1`` after
    ``conv7``; ``flatten``; ``linear``. For 32×32 inputs the spatial size goes 32 → 10 → 3, so the linear layer has
    4w·3·3 = 36w inputs; the sizes are computed from ``in_shape`` (inputs need H, W ≥ 9).

    Args:
        width: base width w.

    Returns:
        A model factory ``f(num_classes, in_shape) -> nn.Sequential``.
    """

    def factory(num_classes: int, in_shape: tuple[int, int, int]) -> nn.Sequential:
        return _build(width, num_classes, in_shape)

    factory.__name__ = f"convnet{width}"
    factory.__doc__ = f"inversefed ConvNet of width {width} (see :func:`convnet`)."
    return factory


@MODELS.register(
    "convnet64",
    input_hw=None,
    min_hw=(9, 9),
    description="inversefed ConvNet, width 64: 8 conv3×3-BN-ReLU (64..256 ch), 2 max-pools 3×3, linear; H, W ≥ 9",
)
def convnet64(num_classes: int, in_shape: tuple[int, int, int]) -> nn.Sequential:
    """Inversefed "ConvNet" of width 64 (Geiping et al., "Inverting Gradients", NeurIPS 2020).

    The augmentation-defence benchmark uses it as a second victim architecture next to ResNet20-4.

    Args:
        num_classes: number of logits.
        in_shape: ``(C, H, W)`` with H, W ≥ 9 (two 3×3/stride-3 max-pools); 3×32×32 gives a 2304-input linear layer.

    Returns:
        ``nn.Sequential`` mapping ``(N, C, H, W)`` to logits ``(N, num_classes)``; 8 conv blocks ``conv{i}``,
        ``bn{i}``, ``relu{i}``, pools ``pool0`` and ``pool1``, ``flatten``, ``linear``.

    Raises:
        ConfigError: the input is smaller than 9×9.
    """
    return _build(64, num_classes, in_shape)
