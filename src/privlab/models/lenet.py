"""LeNet variants: the ReLU LeNet-5 of Shredder v2 and the sigmoid LeNet of Deep Leakage from Gradients (DLG)."""

from __future__ import annotations

import math
from collections import OrderedDict

from torch import nn

from privlab.models import MODELS
from privlab.models.split import output_shape

__all__ = ["dlg_uniform_init_", "lenet5", "lenet_dlg"]


@MODELS.register(
    "lenet5",
    input_hw=(32, 32),
    description="LeNet-5 with ReLU (Shredder v2), 32×32 input, cut point 'c5' gives a 120×1×1 activation",
)
def lenet5(num_classes: int, in_shape: tuple[int, int, int]) -> nn.Sequential:
    """LeNet-5 (LeCun et al. 1998) with ReLU activations and max pooling, as used by Shredder v2 on MNIST.

    Layers: ``c1`` conv 5×5 C→6, ``s2`` max-pool 2, ``c3`` conv 5×5 6→16, ``s4`` max-pool 2, ``c5`` conv 5×5 16→120
    (output 120×1×1: Shredder's cut point, followed by ``relu5``), ``f6`` linear 120→84, ``f7`` linear 84→classes.
    Shredder uses a 2-class head (public task "digit > 5") and a 10-class head (private task / adversary).

    Args:
        num_classes: number of logits.
        in_shape: ``(C, 32, 32)``; :func:`~privlab.models.build_model` resizes other sizes to 32×32.

    Returns:
        ``nn.Sequential`` mapping ``(N, C, 32, 32)`` to logits ``(N, num_classes)`` (no softmax).
    """
    c = int(in_shape[0])
    return nn.Sequential(
        OrderedDict(
            [
                ("c1", nn.Conv2d(c, 6, kernel_size=5)),
                ("relu1", nn.ReLU()),
                ("s2", nn.MaxPool2d(2)),
                ("c3", nn.Conv2d(6, 16, kernel_size=5)),
                ("relu3", nn.ReLU()),
                ("s4", nn.MaxPool2d(2)),
                ("c5", nn.Conv2d(16, 120, kernel_size=5)),
                ("relu5", nn.ReLU()),
                ("flatten", nn.Flatten()),
                ("f6", nn.Linear(120, 84)),
                ("relu6", nn.ReLU()),
                ("f7", nn.Linear(84, num_classes)),
            ]
        )
    )


@MODELS.register(
    "lenet_dlg",
    input_hw=None,
    description="sigmoid LeNet of DLG (Zhu et al. 2019): 4 conv 5×5 ×12 channels + linear, any input size",
)
def lenet_dlg(num_classes: int, in_shape: tuple[int, int, int]) -> nn.Sequential:
    """The small sigmoid LeNet attacked in "Deep Leakage from Gradients" (Zhu, Liu, Han, NeurIPS 2019).

    Four 5×5 convolutions with 12 channels, padding 2 and strides 2, 2, 1, 1, each followed by a sigmoid (twice
    differentiable, as gradient matching needs), then a linear layer. For a 3×32×32 input the activation is
    12×8×8 = 768 values. The DLG paper initialises all weights and biases uniformly in (-0.5, 0.5); call
    :func:`dlg_uniform_init_` on the result to reproduce that (the factory keeps PyTorch's default initialisation).

    Args:
        num_classes: number of logits (100 for CIFAR-100 in the paper).
        in_shape: ``(C, H, W)``, any size; the linear layer has ``12·⌈H/4⌉·⌈W/4⌉`` inputs.

    Returns:
        ``nn.Sequential`` mapping ``(N, C, H, W)`` to logits ``(N, num_classes)`` (no softmax).
    """
    c = int(in_shape[0])
    layers: list[tuple[str, nn.Module]] = []
    for i, stride in enumerate((2, 2, 1, 1), start=1):
        layers.append((f"conv{i}", nn.Conv2d(c if i == 1 else 12, 12, kernel_size=5, stride=stride, padding=2)))
        layers.append((f"sigmoid{i}", nn.Sigmoid()))
    layers.append(("flatten", nn.Flatten()))
    n_flat = math.prod(output_shape(nn.Sequential(OrderedDict(layers)), in_shape))
    layers.append(("fc", nn.Linear(n_flat, num_classes)))
    return nn.Sequential(OrderedDict(layers))


def dlg_uniform_init_(model: nn.Module, bound: float = 0.5) -> nn.Module:
    """Initialise every weight and bias of ``model`` uniformly in ``(-bound, bound)``, in place (DLG's init).

    Returns:
        ``model`` itself.
    """
    for module in model.modules():
        for name in ("weight", "bias"):
            param = getattr(module, name, None)
            if isinstance(param, nn.Parameter):
                nn.init.uniform_(param, -bound, bound)
    return model
