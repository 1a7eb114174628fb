"""The attack registry, the observation an attacker gets, what an attack returns, and the base every attack shares.

An attack is one file: a config (a :class:`~privlab.config.Spec`) and a class registered with
``@ATTACKS.register("<name>", requires=(...), config=ConfigClass, description=...)``. The class is built from its
config (``ATTACKS.get(name)(cfg)``) and has one calling convention, :meth:`Attack.run`:
``run(observation, *, seed, generator, device, progress) -> AttackOutput``. A pipeline puts into the
:class:`Observation` only the fields the attack's ``requires`` names (what its threat model grants); evaluation data
never goes in — an attack that trains a model returns it (``AttackOutput.model``) and the pipeline measures it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from privlab.config import Spec
from privlab.context import Progress
from privlab.data.base import LabelledImages
from privlab.registry import Registry

__all__ = ["ATTACKS", "Attack", "AttackOutput", "Observation", "attack_config", "build_attack"]

ATTACKS: Registry[Any] = Registry("attack")


@dataclass
class Observation:
    """What the attacker sees. Only the fields its threat model exposes are set.

    Attributes:
        gradients: the shared gradient (or model update), one tensor per trainable parameter, in parameter order.
        model: the model the attacker knows (e.g. the federated global model the client differentiated).
        activations: intermediate activations (split inference).
        data: released data: images ``N×C×H×W`` in [0, 1], or the released data set itself (a
            :class:`~privlab.data.base.LabelledImages`, e.g. a protected training set with its labels).
        labels: labels when the threat model reveals them (known-label attacks), int64 ``N``.
        meta: everything else the attacker is told: batch size, image shape, number of local steps, learning rate ….
    """

    gradients: list[torch.Tensor] | None = None
    model: nn.Module | None = None
    activations: torch.Tensor | None = None
    data: torch.Tensor | LabelledImages | None = None
    labels: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def granted(cls, requires: tuple[str, ...] | list[str], meta: dict[str, Any] | None = None, **available: Any):
        """The observation holding only the ``available`` fields that ``requires`` names (the rest stay None).

        Example:
            >>> import torch
            >>> obs = Observation.granted(("gradients",), gradients=[torch.zeros(1)], labels=torch.tensor([3]))
            >>> obs.labels is None, len(obs.gradients)
            (True, 1)
        """
        return cls(**{k: v for k, v in available.items() if k in requires}, meta=dict(meta or {}))


@dataclass
class AttackOutput:
    """What an attack produced.

    Attributes:
        data: reconstructed images ``N×C×H×W`` in [0, 1] (or another attack's main output).
        labels: recovered / used labels ``N`` (int64), when the attack outputs labels.
        stats: numbers about the attack itself (final objective, iterations, seconds, chosen restart …).
        model: the model the attack trained (an unauthorized classifier, an SSL encoder …), in eval mode, for the
            pipeline to measure.
    """

    data: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    model: nn.Module | None = None


class Attack:
    """Base of every attack: built from its config, run on observations.

    Subclasses set ``config_class`` (and ``requires``, the :class:`Observation` fields the threat model grants) and
    implement :meth:`run`.

    Args:
        cfg: the attack's config (an instance of ``config_class`` or a mapping validated into it; None: defaults).
    """

    config_class: ClassVar[type[Spec]] = Spec
    requires: tuple[str, ...] = ()

    def __init__(self, cfg: Spec | dict[str, Any] | None = None) -> None:
        if isinstance(cfg, self.config_class):
            self.config = cfg
        else:
            from privlab.config import validate

            self.config = validate(self.config_class, dict(cfg or {}), "attack config")

    def run(
        self,
        observation: Observation,
        *,
        seed: int = 0,
        generator: torch.Generator | None = None,
        device: Any = "cpu",
        progress: Progress | None = None,
    ) -> AttackOutput:
        """Attack what ``observation`` reveals.

        Args:
            observation: only the fields named in ``requires`` are set.
            seed: seeds the attack's own randomness (model initialisation, batch order) where no generator is given.
            generator: a random stream that persists across calls (e.g. one inversion per batch of a run).
            device: where the attack computes.
            progress: progress reporter.
        """
        raise NotImplementedError


def attack_config(name: str, overrides: dict[str, Any] | None = None) -> Spec:
    """The validated config of the registered attack ``name``: its preset (``meta["preset"]``, if any) with
    ``overrides`` on top, validated by the entry's ``config`` class. Works for any registered attack, plugins too.

    Raises:
        UnknownNameError: no such attack. ConfigError: an unknown or bad setting, or an attack without a config.
    """
    from privlab.config import validate
    from privlab.errors import ConfigError

    entry = ATTACKS.entry(name)
    cls = entry.meta.get("config")
    if cls is None:
        raise ConfigError(f"attack {name!r} has no config class and cannot be built from a spec")
    return validate(cls, {**entry.meta.get("preset", {}), **dict(overrides or {})}, f"attack {name!r} config")


def build_attack(name: str, overrides: dict[str, Any] | None = None, **kwargs: Any) -> Attack:
    """The registered attack ``name`` built from :func:`attack_config` (``kwargs`` go to its constructor)."""
    return ATTACKS.get(name)(attack_config(name, overrides), **kwargs)
