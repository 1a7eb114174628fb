"""CIFAR-style ResNets with basic blocks (He et al. 2016): ResNet-20-4 (inversefed) and ResNet-18 (3×3 stem)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from privlab.models import MODELS

__all__ = ["BasicBlock", "cifar_resnet", "resnet18", "resnet20", "resnet20_4"]


class BasicBlock(nn.Module):
    """Two 3×3 conv–BN layers with an identity shortcut, or a 1×1 conv–BN shortcut when the shape changes.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: stride of the first convolution (and of the projection shortcut).
    """

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                OrderedDict(
                    [
                        ("conv", nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)),
                        ("bn", nn.BatchNorm2d(out_channels)),
                    ]
                )
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


def cifar_resnet(
    block_counts: Sequence[int],
    widths: Sequence[int],
    num_classes: int,
    in_channels: int,
    strides: Sequence[int] | None = None,
) -> nn.Sequential:
    """Build a CIFAR ResNet of basic blocks.

    Args:
        block_counts: number of blocks per stage.
        widths: output channels per stage; the stem outputs ``widths[0]`` channels.
        num_classes: number of logits.
        in_channels: input channels.
        strides: stride of the first block of each stage; default 1 for the first stage and 2 for the others.

    Returns:
        ``nn.Sequential`` with children ``stem`` (3×3 conv stride 1 + BN + ReLU, no max-pool), ``layer1``…``layerK``
        (each an ``nn.Sequential`` of :class:`BasicBlock`), ``pool`` (global average), ``flatten``, ``fc``.
    """
    if len(block_counts) != len(widths):
        raise ValueError(f"block_counts {tuple(block_counts)} and widths {tuple(widths)} differ in length")
    strides = tuple(strides) if strides is not None else (1,) + (2,) * (len(widths) - 1)
    layers: list[tuple[str, nn.Module]] = [
        (
            "stem",
            nn.Sequential(
                OrderedDict(
                    [
                        ("conv", nn.Conv2d(in_channels, widths[0], kernel_size=3, stride=1, padding=1, bias=False)),
                        ("bn", nn.BatchNorm2d(widths[0])),
                        ("relu", nn.ReLU()),
                    ]
                )
            ),
        )
    ]
    ch = widths[0]
    for stage, (count, width, stride) in enumerate(zip(block_counts, widths, strides, strict=True), start=1):
        blocks = []
        for j in range(count):
            blocks.append(BasicBlock(ch, width, stride if j == 0 else 1))
            ch = width
        layers.append((f"layer{stage}", nn.Sequential(*blocks)))
    layers += [
        ("pool", nn.AdaptiveAvgPool2d((1, 1))),
        ("flatten", nn.Flatten()),
        ("fc", nn.Linear(ch * BasicBlock.expansion, num_classes)),
    ]
    return nn.Sequential(OrderedDict(layers))


@MODELS.register(
    "resnet20_4",
    input_hw=None,
    description="ResNet-20-4 (inversefed): CIFAR ResNet-20, 3×3 basic blocks, widths 64/128/256",
)
def resnet20_4(num_classes: int, in_shape: tuple[int, int, int]) -> nn.Sequential:
    """ResNet-20 with 4× width ("ResNet20-4" of inversefed, Geiping et al. 2020).

    The default victim of the augmentation-defence benchmark. 3×3 stem (64 channels), three stages of 3 basic
    blocks with 64, 128, 256 channels and strides 1, 2, 2, global average pooling, linear layer. 4,327,754
    parameters for 3 input channels and 10 classes.

    Args:
        num_classes: number of logits.
        in_shape: ``(C, H, W)``, any size (the pooling is adaptive).

    Returns:
        ``nn.Sequential`` (children ``stem``, ``layer1``–``layer3``, ``pool``, ``flatten``, ``fc``) mapping
        ``(N, C, H, W)`` to logits ``(N, num_classes)``.
    """
    return cifar_resnet((3, 3, 3), (64, 128, 256), num_classes, int(in_shape[0]))


@MODELS.register(
    "resnet18",
    input_hw=None,
    description="CIFAR ResNet-18: 3×3 stem without max-pool, 4×2 basic blocks, widths 64/128/256/512",
)
def resnet18(num_classes: int, in_shape: tuple[int, int, int]) -> nn.Sequential:
    """ResNet-18 (He et al. 2016) in its CIFAR form: 3×3 stride-1 stem and no max-pool.

    Four stages of 2 basic blocks with 64, 128, 256, 512 channels and strides 1, 2, 2, 2, global average pooling,
    linear layer; 11,173,962 parameters for 10 classes and 3 input channels.

    Args:
        num_classes: number of logits.
        in_shape: ``(C, H, W)``, any size (the pooling is adaptive).

    Returns:
        ``nn.Sequential`` (children ``stem``, ``layer1``–``layer4``, ``pool``, ``flatten``, ``fc``) mapping
        ``(N, C, H, W)`` to logits ``(N, num_classes)``.
    """
    return cifar_resnet((2, 2, 2, 2), (64, 128, 256, 512), num_classes, int(in_shape[0]))


@MODELS.register(
    "resnet20",
    input_hw=None,
    description="CIFAR ResNet-20 (He et al. 2016): 3×3 basic blocks, widths 16/32/64, 272k params",
)
def resnet20(num_classes: int, in_shape: tuple[int, int, int]) -> nn.Sequential:
    """The original CIFAR ResNet-20 (He et al. 2016), 1× width: the CPU-affordable member of the ResNet-20 family.

    Same structure as :func:`resnet20_4` (3×3 stem, three stages of 3 basic blocks, strides 1, 2, 2, global average
    pooling, linear layer) with 16, 32, 64 channels (projection shortcuts): 272,474 parameters for 3 input channels
    and 10 classes, ≈ 41 M multiply–adds per 32×32 image (ResNet-20-4: ≈ 16× more).

    Args:
        num_classes: number of logits.
        in_shape: ``(C, H, W)``, any size (the pooling is adaptive).

    Returns:
        ``nn.Sequential`` (children ``stem``, ``layer1``–``layer3``, ``pool``, ``flatten``, ``fc``).
    """
    return cifar_resnet((3, 3, 3), (16, 32, 64), num_classes, int(in_shape[0]))
