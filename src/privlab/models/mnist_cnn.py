"""The "shallow" and "deep" Keras CNNs of the LDP-MNIST study, rewritten in PyTorch.

Differences from Keras that are deliberate: the models return logits (use cross-entropy outside; Keras ended with a
softmax layer), and tensors are channels-first. Kept from Keras: Glorot-uniform weights with zero biases, and
BatchNorm with ``eps=1e-3`` and momentum 0.99 (PyTorch ``momentum=0.01``).
"""

from __future__ import annotations

import math
from collections import OrderedDict

from torch import nn

from privlab.models import MODELS
from privlab.models.split import output_shape

__all__ = ["mnist_cnn_deep", "mnist_cnn_shallow"]

_BN = {"eps": 1e-3, "momentum": 0.01}  # Keras BatchNormalization defaults in PyTorch terms


def _keras_init_(model: nn.Module) -> nn.Module:
    """Glorot-uniform weights and zero biases for every conv and linear layer (Keras defaults), in place."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def _with_head(
    features: list[tuple[str, nn.Module]],
    head: list[tuple[str, nn.Module]],
    in_shape: tuple[int, int, int],
    hidden: int,
) -> nn.Sequential:
    """Append ``flatten`` and a first linear layer sized from ``in_shape`` to ``features``, then ``head``."""
    features = [*features, ("flatten", nn.Flatten())]
    n_flat = math.prod(output_shape(nn.Sequential(OrderedDict(features)), in_shape))
    return _keras_init_(nn.Sequential(OrderedDict([*features, ("fc1", nn.Linear(n_flat, hidden)), *head])))


@MODELS.register(
    "mnist_cnn_shallow",
    input_hw=(28, 28),
    description="LDP-MNIST 'shallow' Keras CNN: conv32-conv64-maxpool-dropout-dense128-dropout-dense",
)
def mnist_cnn_shallow(num_classes: int, in_shape: tuple[int, int, int]) -> nn.Sequential:
    """The "shallow" CNN (``small_model``, report Table 1) of the LDP-MNIST study, itself the Keras MNIST example.

    conv1 3×3 C→32 + ReLU, conv2 3×3 32→64 + ReLU, 2×2 max-pool, dropout 0.25, flatten, fc1 9216→128 + ReLU,
    dropout 0.5, fc2 128→classes. About 1.2 M parameters for 1×28×28 and 10 classes.

    Args:
        num_classes: number of logits.
        in_shape: ``(C, 28, 28)``; :func:`~privlab.models.build_model` resizes other sizes to 28×28.

    Returns:
        ``nn.Sequential`` mapping ``(N, C, 28, 28)`` to logits ``(N, num_classes)`` (no softmax).
    """
    c = int(in_shape[0])
    features: list[tuple[str, nn.Module]] = [
        ("conv1", nn.Conv2d(c, 32, kernel_size=3)),
        ("relu1", nn.ReLU()),
        ("conv2", nn.Conv2d(32, 64, kernel_size=3)),
        ("relu2", nn.ReLU()),
        ("pool", nn.MaxPool2d(2)),
        ("dropout1", nn.Dropout(0.25)),
    ]
    head: list[tuple[str, nn.Module]] = [
        ("relu3", nn.ReLU()),
        ("dropout2", nn.Dropout(0.5)),
        ("fc2", nn.Linear(128, num_classes)),
    ]
    return _with_head(features, head, in_shape, 128)


@MODELS.register(
    "mnist_cnn_deep",
    input_hw=(28, 28),
    description="LDP-MNIST 'deep' Keras CNN: 2×conv32, 2×conv64 + BN, 2 max-pools, dense1024 + BN, dropouts",
)
def mnist_cnn_deep(num_classes: int, in_shape: tuple[int, int, int]) -> nn.Sequential:
    """The "deep" CNN (``medium_model``, report Table 2) of the LDP-MNIST study.

    conv1, conv2 3×3 'same' 32 ch + ReLU, max-pool 2, dropout 0.25, conv3, conv4 3×3 'same' 64 ch + ReLU, BatchNorm,
    max-pool 2, dropout 0.5, flatten, fc1 3136→1024 + ReLU, BatchNorm, dropout 0.25, fc2 1024→classes.

    Args:
        num_classes: number of logits.
        in_shape: ``(C, 28, 28)``; :func:`~privlab.models.build_model` resizes other sizes to 28×28.

    Returns:
        ``nn.Sequential`` mapping ``(N, C, 28, 28)`` to logits ``(N, num_classes)`` (no softmax). In training mode
        the final BatchNorm needs batches of at least 2.
    """
    c = int(in_shape[0])
    features: list[tuple[str, nn.Module]] = [
        ("conv1", nn.Conv2d(c, 32, kernel_size=3, padding=1)),
        ("relu1", nn.ReLU()),
        ("conv2", nn.Conv2d(32, 32, kernel_size=3, padding=1)),
        ("relu2", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2)),
        ("dropout1", nn.Dropout(0.25)),
        ("conv3", nn.Conv2d(32, 64, kernel_size=3, padding=1)),
        ("relu3", nn.ReLU()),
        ("conv4", nn.Conv2d(64, 64, kernel_size=3, padding=1)),
        ("relu4", nn.ReLU()),
        ("bn1", nn.BatchNorm2d(64, **_BN)),
        ("pool2", nn.MaxPool2d(2)),
        ("dropout2", nn.Dropout(0.5)),
    ]
    head: list[tuple[str, nn.Module]] = [
        ("relu5", nn.ReLU()),
        ("bn2", nn.BatchNorm1d(1024, **_BN)),
        ("dropout3", nn.Dropout(0.25)),
        ("fc2", nn.Linear(1024, num_classes)),
    ]
    return _with_head(features, head, in_shape, 1024)
