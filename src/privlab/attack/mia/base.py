"""What a membership-inference attacker observes, and the query helpers every MIA attack shares.

Example:
    >>> import torch
    >>> from torch import nn
    >>> q = QueryModel(nn.Linear(4, 3))
    >>> q.logits(torch.zeros(5, 4)).shape
    torch.Size([5, 3])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from privlab.attack.base import ATTACKS, AttackOutput, Observation, attack_config
from privlab.errors import ConfigError

__all__ = [
    "MIA_ATTACKS",
    "MIAObservation",
    "QueryModel",
    "View",
    "logit_confidence",
    "run_mia_attack",
    "true_class_prob",
]

MIA_ATTACKS: list[str] = []  # names of the membership-inference attacks, in registration order


@dataclass(frozen=True)
class View:
    """One augmented query: shift by ``(dy, dx)`` pixels (zero padding), then optionally flip horizontally."""

    dy: int = 0
    dx: int = 0
    flip: bool = False

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (``N×C×H×W``) seen through this view."""
        if self.dy or self.dx:
            h, w = x.shape[-2:]
            p = max(abs(self.dy), abs(self.dx))
            padded = F.pad(x, (p, p, p, p))
            x = padded[..., p - self.dy : p - self.dy + h, p - self.dx : p - self.dx + w]
        return x.flip(-1) if self.flip else x


def views(shifts: int = 0, flip: bool = False) -> tuple[View, ...]:
    """The identity, the 4 shifts by ``shifts`` pixels (when > 0), and the flipped copies of all (when ``flip``)."""
    out = [View()]
    if shifts:
        out += [View(shifts, 0), View(-shifts, 0), View(0, shifts), View(0, -shifts)]
    if flip:
        out += [View(v.dy, v.dx, True) for v in out]
    return tuple(out)


class QueryModel:
    """Black-box query access to a classifier: logits (or labels only) of images, memoised per (view, batch).

    Args:
        model: a module or any callable ``N×C×H×W → N×K`` logits.
        batch_size: images per forward pass.
        labels_only: hard-label access — :meth:`logits` refuses, :meth:`labels` answers.
    """

    def __init__(
        self, model: Callable[[torch.Tensor], torch.Tensor], *, batch_size: int = 1024, labels_only: bool = False
    ) -> None:
        self.model, self.batch_size, self.labels_only = model, batch_size, labels_only
        self._cache: dict[tuple[Any, ...], torch.Tensor] = {}
        self.queries = 0

    @torch.no_grad()
    def _forward(self, x: torch.Tensor, view: View) -> torch.Tensor:
        # the address alone could be reused by a later tensor: add a cheap checksum of the contents
        key = (view, x.data_ptr(), tuple(x.shape), float(x.double().sum()), float((x.double() ** 2).sum()))
        if key not in self._cache:
            if isinstance(self.model, torch.nn.Module):
                self.model.eval()
            bs = self.batch_size
            out = [self.model(view.apply(x[i : i + bs])).float() for i in range(0, len(x), bs)]
            self._cache[key] = torch.cat(out)
            self.queries += len(x)
        return self._cache[key]

    def logits(self, x: torch.Tensor, view: View = View()) -> torch.Tensor:
        """``N×K`` logits of ``x`` seen through ``view``."""
        if self.labels_only:
            raise ConfigError("this target answers with labels only (hard-label access); use the label-only attack")
        return self._forward(x, view)

    def labels(self, x: torch.Tensor, view: View = View()) -> torch.Tensor:
        """``N`` predicted labels (int64)."""
        return self._forward(x, view).argmax(1)


@dataclass
class MIAObservation(Observation):
    """What a membership-inference attacker gets (the membership truth is never here).

    Attributes:
        target: query access to the target model.
        data / labels: the candidate records ``N×C×H×W`` in [0, 1] and their labels ``N`` (from :class:`Observation`).
        references: the attacker's reference models (query access), trained on known subsets of the candidates.
        reference_in: ``R×N`` bools: candidate ``j`` was in reference ``r``'s training set.
        population: images ``P×C×H×W`` and labels ``P`` of population data known to be outside the target's
            training set (RMIA's ``z`` samples).
    """

    target: QueryModel | None = None
    references: list[QueryModel] = field(default_factory=list)
    reference_in: torch.Tensor | None = None
    population: tuple[torch.Tensor, torch.Tensor] | None = None

    def candidates(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(images, labels)`` of the candidates; a clear error when missing."""
        if self.data is None or self.labels is None or self.target is None:
            raise ConfigError("a membership-inference observation needs the target, the candidates and their labels")
        if len(self.data) != len(self.labels):
            raise ConfigError(f"{len(self.data)} candidate images but {len(self.labels)} labels")
        return self.data, self.labels

    def need_references(self, attack: str, at_least: int = 1) -> torch.Tensor:
        """``reference_in`` checked against the references and candidates (``R×N`` bool)."""
        n = len(self.candidates()[0])
        if len(self.references) < at_least or self.reference_in is None:
            raise ConfigError(f"{attack} needs at least {at_least} reference model(s), got {len(self.references)}")
        if tuple(self.reference_in.shape) != (len(self.references), n):
            raise ConfigError(
                f"reference_in is {tuple(self.reference_in.shape)}, expected ({len(self.references)}, {n})"
            )
        return self.reference_in.bool()


def true_class_prob(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``N`` softmax probabilities of the true class."""
    return logits.float().softmax(1).gather(1, labels.view(-1, 1)).squeeze(1)


def logit_confidence(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """LiRA's logit-scaled confidence ``log(p_y / (1 − p_y)) = z_y − logsumexp_{i≠y} z_i``, computed stably."""
    z = logits.double()
    zy = z.gather(1, labels.view(-1, 1)).squeeze(1)
    others = z.scatter(1, labels.view(-1, 1), float("-inf"))
    return (zy - others.logsumexp(1)).float()


def register_mia(name: str, *, config: type, description: str, requires: Sequence[str] = ("target",)) -> Any:
    """Register an MIA attack class in ATTACKS (kind ``membership``) and list it in :data:`MIA_ATTACKS`."""
    MIA_ATTACKS.append(name)
    return ATTACKS.register(name, config=config, description=description, requires=tuple(requires), kind="membership")


def run_mia_attack(name: str, obs: MIAObservation, **params: Any) -> torch.Tensor:
    """Build attack ``name`` with config ``params`` and return its ``N`` scores (higher = member).

    Raises:
        ConfigError: an unknown or bad setting in ``params`` (validated by :func:`privlab.attack.base.attack_config`).
    """
    entry = ATTACKS.entry(name)
    attack = entry.obj(attack_config(name, params))
    out: AttackOutput = attack.run(obs)
    assert out.data is not None
    return out.data
