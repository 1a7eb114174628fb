"""A small, fast CIFAR network with batch norm: the CPU-budget noise backbone and victim of the unlearnable study.

A narrow ResNet-9-style stack ("fast CIFAR" family of DAWNBench entries), made cheap enough for CPUs by pooling
right after the first convolution: 8 conv3×3–BN–ReLU layers (two inside residual blocks), 3 max-pools, global
max-pool, linear layer. 761 k parameters (3 input channels, 10 classes), ≈ 39 M multiply–adds per 32×32 image.
Measured on the 10 000-image CIFAR-10 (JPEG) subset, 2 000 test images: 72.3 % after 8 epochs in 111 s on 2 CPU
threads (SGD + Nesterov, one-cycle peak lr 0.05, batch 128, weight decay 5e-4, label smoothing 0.1, crop+flip); see
docs/data-and-models.md.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from privlab.models import MODELS

__all__ = ["Residual", "conv_block", "fast_cnn"]


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """3×3 convolution (padding 1, no bias) → batch norm → ReLU; children ``conv``, ``bn``, ``relu``."""
    return nn.Sequential(
        OrderedDict(
            [
                ("conv", nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)),
                ("bn", nn.BatchNorm2d(out_channels)),
                ("relu", nn.ReLU()),
            ]
        )
    )


class Residual(nn.Module):
    """``x + block2(block1(x))`` with two :func:`conv_block` of ``channels`` channels (shape kept)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block1 = conv_block(channels, channels)
        self.block2 = conv_block(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block2(self.block1(x))


@MODELS.register(
    "fast_cnn",
    input_hw=None,
    min_hw=(8, 8),
    description="fast CIFAR CNN (ResNet-9 style, BN, 761k params): 8 conv3×3, 2 residual blocks, widths 32..256",
)
def fast_cnn(num_classes: int, in_shape: tuple[int, int, int]) -> nn.Sequential:
    """The fast CIFAR CNN (see the module docstring).

    Structure for a 32×32 input (spatial size in brackets): ``prep`` conv 3→32 [32] + max-pool 2 [16]; ``layer1``
    conv 32→64 + residual(64) [16]; ``pool1`` [8]; ``layer2`` conv 64→128 [8] + max-pool [4] + residual(128);
    ``layer3`` conv 128→256 [4]; ``pool`` global max; ``flatten``; ``fc`` linear 256→classes.

    Args:
        num_classes: number of logits.
        in_shape: ``(C, H, W)`` with H, W ≥ 8 (three 2×2 max-pools; smaller inputs are resized up by build_model).

    Returns:
        ``nn.Sequential`` with children ``prep``, ``layer1``, ``pool1``, ``layer2``, ``layer3``, ``pool``,
        ``flatten``, ``fc`` mapping ``(N, C, H, W)`` to logits ``(N, num_classes)``.
    """
    c = int(in_shape[0])
    return nn.Sequential(
        OrderedDict(
            [
                ("prep", nn.Sequential(OrderedDict([("block", conv_block(c, 32)), ("pool", nn.MaxPool2d(2))]))),
                ("layer1", nn.Sequential(OrderedDict([("block", conv_block(32, 64)), ("res", Residual(64))]))),
                ("pool1", nn.MaxPool2d(2)),
                (
                    "layer2",
                    nn.Sequential(
                        OrderedDict([("block", conv_block(64, 128)), ("pool", nn.MaxPool2d(2)), ("res", Residual(128))])
                    ),
                ),
                ("layer3", conv_block(128, 256)),
                ("pool", nn.AdaptiveMaxPool2d((1, 1))),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(256, num_classes)),
            ]
        )
    )
