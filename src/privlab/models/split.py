"""Cut a named-children :class:`~torch.nn.Sequential` into an edge part and a cloud part.

Split inference (Shredder) runs ``edge = f[:k+1]`` on the device, perturbs the activation and sends it to
``cloud = f[k+1:]``. Every registered model is an ``nn.Sequential`` with named children, so a cut point is simply a
child name (``"c5"`` for LeNet-5) or an index.

Example:
    >>> import torch
    >>> from collections import OrderedDict
    >>> from torch import nn
    >>> from privlab.models.split import split_model
    >>> m = nn.Sequential(OrderedDict(fc1=nn.Linear(4, 3), relu=nn.ReLU(), fc2=nn.Linear(3, 2)))
    >>> edge, cloud = split_model(m, "relu")
    >>> list(dict(edge.named_children())), list(dict(cloud.named_children()))
    (['fc1', 'relu'], ['fc2'])
    >>> x = torch.randn(5, 4)
    >>> torch.equal(cloud(edge(x)), m(x))
    True

This module imports only :mod:`torch` and :mod:`privlab.errors` (``privlab.models`` imports it at the end of its
``__init__``; the model files may import :func:`output_shape` from here).
"""

from __future__ import annotations

import difflib
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from privlab.errors import ConfigError

__all__ = ["freeze", "insert_at", "output_shape", "split_model"]


def _cut_index(model: nn.Sequential, at: str | int) -> int:
    """Index of the child after which ``model`` is cut (validated: the cloud part is not empty)."""
    if not isinstance(model, nn.Sequential):
        raise ConfigError(
            f"split_model needs an nn.Sequential of named children, got {type(model).__name__}; "
            "build the model with privlab.models.build_model or wrap its layers in nn.Sequential(OrderedDict(...))"
        )
    names = [name for name, _ in model.named_children()]
    n = len(names)
    if n < 2:
        raise ConfigError(f"cannot split a model with {n} child(ren) ({', '.join(names) or 'none'}): need at least 2")
    if isinstance(at, bool) or not isinstance(at, (str, int)):
        raise ConfigError(f"cut point must be a child name (str) or an index (int), got {at!r}")
    if isinstance(at, str):
        if at not in names:
            close = difflib.get_close_matches(at, names, n=1, cutoff=0.5)  # layer names are short
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"no layer named {at!r} to cut the model at.{hint} Valid names: {', '.join(names)}.")
        idx = names.index(at)
    else:
        if not -n <= at < n:
            raise ConfigError(f"cut index {at} out of range for a model with {n} children (valid: {-n}..{n - 1})")
        idx = at % n
    if idx == n - 1:
        raise ConfigError(
            f"cannot cut after the last layer {names[idx]!r}: the cloud part would be empty; "
            f"cut at one of: {', '.join(names[:-1])}"
        )
    return idx


def split_model(model: nn.Sequential, at: str | int) -> tuple[nn.Sequential, nn.Sequential]:
    """Split ``model`` right AFTER the child ``at``.

    Args:
        model: an ``nn.Sequential`` with named children (every registered model is one).
        at: name of the last child of the edge part, or its index (negative counts from the end).

    Returns:
        ``(edge, cloud)``: two ``nn.Sequential`` holding the *same* module objects as ``model`` (no copy; training one
        trains the other) and keeping the child names, such that ``cloud(edge(x))`` equals ``model(x)``.

    Raises:
        ConfigError: ``model`` is not an ``nn.Sequential``; ``at`` names no child (the message lists the valid
            names) or is out of range; or ``at`` is the last child (the cloud part would be empty).
    """
    idx = _cut_index(model, at)
    children = list(model.named_children())
    edge = nn.Sequential(OrderedDict(children[: idx + 1]))
    cloud = nn.Sequential(OrderedDict(children[idx + 1 :]))
    return edge, cloud


def insert_at(model: nn.Sequential, at: str | int, module: nn.Module) -> nn.Sequential:
    """Put ``module`` between the edge and the cloud parts of ``model`` cut after ``at``.

    Used to place Shredder's noise layer at the cut point. The result is nested, so parameter names gain a prefix
    (``c1.weight`` becomes ``edge.c1.weight``); the wrapped layers are shared with ``model``, not copied.

    Args:
        model: an ``nn.Sequential`` with named children.
        at: cut point, as for :func:`split_model`.
        module: the layer to insert; it maps the edge output to a tensor of the same shape the cloud expects.

    Returns:
        ``nn.Sequential(OrderedDict(edge=edge, inserted=module, cloud=cloud))``; ``out.edge``, ``out.inserted``
        and ``out.cloud`` give the three parts.

    Raises:
        ConfigError: as for :func:`split_model`.
    """
    edge, cloud = split_model(model, at)
    return nn.Sequential(OrderedDict([("edge", edge), ("inserted", module), ("cloud", cloud)]))


def freeze(module: nn.Module) -> nn.Module:
    """Freeze ``module`` in place: ``requires_grad=False`` on every parameter and ``eval()`` mode (BatchNorm, dropout).

    Note that a later ``.train()`` on a parent module switches it back to training mode; call ``freeze`` again or
    call ``.eval()`` on it after ``parent.train()``.

    Returns:
        ``module`` itself.
    """
    for p in module.parameters():
        p.requires_grad_(False)
    return module.eval()


def output_shape(module: nn.Module, in_shape: Sequence[int]) -> tuple[int, ...]:
    """Shape (without the batch dimension) of ``module``'s output for one input of shape ``in_shape``.

    Runs one forward pass on zeros under ``torch.no_grad()`` in eval mode (so BatchNorm running statistics are not
    touched and a single sample is accepted), then restores the training flags. Model factories use it to size the
    first linear layer; split pipelines use it to size a tensor at the cut (``output_shape(edge, (C, H, W))``).

    Raises:
        ConfigError: the input is too small for the architecture (the forward pass fails on its shape).
    """
    modes = {m: m.training for m in module.modules()}
    try:
        module.eval()
        param = next(module.parameters(), None)
        dtype = param.dtype if param is not None else torch.float32
        device = param.device if param is not None else None
        with torch.no_grad():
            out = module(torch.zeros(1, *(int(s) for s in in_shape), dtype=dtype, device=device))
    except RuntimeError as err:
        raise ConfigError(f"input of shape {tuple(in_shape)} does not fit this architecture: {err}") from err
    finally:
        for m, mode in modes.items():
            m.training = mode
    return tuple(out.shape[1:])
