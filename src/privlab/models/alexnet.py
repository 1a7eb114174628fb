"""AlexNet (torchvision's layout, built with ``weights=None``) as a named ``nn.Sequential``, plus local weights.

Shredder v1 cuts AlexNet after its convolutional stack (``pool5``: 256×6×6 = 9 216 values for a 224×224 input).
privlab never downloads weights: :func:`load_alexnet_features` reads the ``features`` part from a local
safetensors file with torchvision's ``features`` keys (``0.weight`` … ``10.bias``).

Example:
    >>> import torch
    >>> from privlab.models import build_model
    >>> from privlab.models.split import output_shape, split_model
    >>> m = build_model("alexnet", 10, (3, 224, 224))
    >>> edge, cloud = split_model(m, "pool5")
    >>> output_shape(edge, (3, 224, 224))
    (256, 6, 6)
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from privlab.errors import DataMissingError, FileFormatError
from privlab.models import MODELS

__all__ = ["FEATURE_NAMES", "HOW_TO_GET_WEIGHTS", "alexnet", "load_alexnet_features"]

#: privlab's child names for torchvision's ``features[0..12]``.
FEATURE_NAMES = (
    "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "conv3", "relu3", "conv4", "relu4", "conv5", "relu5", "pool5",
)  # fmt: skip
_CLASSIFIER_NAMES = ("drop6", "fc6", "relu6", "drop7", "fc7", "relu7", "fc8")

HOW_TO_GET_WEIGHTS = (
    'privlab never downloads weights; on a machine with internet run: python -c "import torch, torchvision; '
    "from safetensors.torch import save_file; m = torchvision.models.alexnet(weights='IMAGENET1K_V1'); "
    "save_file({k: v.contiguous() for k, v in m.features.state_dict().items()}, "
    "'alexnet-features-imagenet.safetensors')\" and pass that file's path"
)


@MODELS.register(
    "alexnet",
    input_hw=None,
    min_hw=(63, 63),
    description="torchvision AlexNet (no weights; load the conv stack with load_alexnet_features), cut 'pool5'",
)
def alexnet(num_classes: int, in_shape: tuple[int, int, int]) -> nn.Sequential:
    """torchvision's AlexNet with named children; randomly initialised (``weights=None``).

    Children: ``conv1 relu1 pool1 conv2 relu2 pool2 conv3 relu3 conv4 relu4 conv5 relu5 pool5`` (torchvision's
    ``features[0..12]``), ``avgpool`` (adaptive 6×6), ``flatten``, ``drop6 fc6 relu6 drop7 fc7 relu7 fc8``.

    Args:
        num_classes: logits of ``fc8``.
        in_shape: ``(C, H, W)`` with H, W ≥ 63 (224 gives the 256×6×6 ``pool5`` output of the papers).
    """
    from torchvision.models import alexnet as tv_alexnet

    tv = tv_alexnet(weights=None, num_classes=num_classes)
    feats = list(tv.features.children())
    if int(in_shape[0]) != 3:
        old = feats[0]
        feats[0] = nn.Conv2d(int(in_shape[0]), old.out_channels, old.kernel_size, old.stride, old.padding)
    layers = list(zip(FEATURE_NAMES, feats, strict=True))
    layers += [("avgpool", tv.avgpool), ("flatten", nn.Flatten())]
    layers += list(zip(_CLASSIFIER_NAMES, tv.classifier.children(), strict=True))
    return nn.Sequential(OrderedDict(layers))


def load_alexnet_features(model: nn.Module, path: str | Path) -> nn.Module:
    """Load torchvision-keyed AlexNet ``features`` weights (``0.weight`` … ``10.bias``) from a local safetensors file
    into ``model`` (built by ``build_model("alexnet", …)``, with or without ``resize``/``normalize`` in front).

    Returns:
        ``model`` itself.

    Raises:
        DataMissingError: no such file (the message says how to make one). FileFormatError: not safetensors, or
        keys/shapes that are not AlexNet's conv stack.
    """
    p = Path(path)
    if not p.is_file():
        raise DataMissingError(f"AlexNet features weights not found at '{p}'. {HOW_TO_GET_WEIGHTS}")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        sd = load_file(str(p))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise FileFormatError(f"{p}: not a valid safetensors file ({' '.join(str(e).split())[:100]})") from None
    children = dict(model.named_children())
    mapped: dict[str, torch.Tensor] = {}
    for key, tensor in sd.items():
        idx, _, kind = key.partition(".")
        if not idx.isdigit() or int(idx) >= len(FEATURE_NAMES) or kind not in ("weight", "bias"):
            raise FileFormatError(
                f"{p}: unexpected key {key!r}; expected torchvision AlexNet features keys (0.weight …)"
            )
        name = FEATURE_NAMES[int(idx)]
        target = getattr(children.get(name), kind, None)
        if target is None or tuple(target.shape) != tuple(tensor.shape):
            got = None if target is None else tuple(target.shape)
            raise FileFormatError(f"{p}: {key} has shape {tuple(tensor.shape)}, the model's {name}.{kind} has {got}")
        mapped[f"{name}.{kind}"] = tensor
    missing = {f"{n}.{k}" for n in FEATURE_NAMES if n.startswith("conv") for k in ("weight", "bias")} - set(mapped)
    if missing:
        raise FileFormatError(f"{p}: lacks {', '.join(sorted(missing))}; expected all 5 conv layers of AlexNet")
    model.load_state_dict(mapped, strict=False)
    return model
