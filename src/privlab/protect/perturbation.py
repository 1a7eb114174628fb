"""The public base of every data-noise protection (unlearnable examples and the like): its config, the generator
interface, the :class:`PerturbationBank` it returns, and the helpers generators share.

A noise protection is one file: a :class:`NoiseConfig` subclass (``name`` = its registry name) and a
:class:`NoiseGenerator` subclass registered with ``@PROTECTIONS.register("<name>", kind="data", config=...)``;
the ``unlearnable`` experiment then uses it by name (``protection: {name: <name>, …}``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import BeforeValidator, Field, SerializeAsAny

from privlab.config import Spec, resolve_named_config
from privlab.context import Progress
from privlab.data.base import LabelledImages
from privlab.errors import BudgetError, FileFormatError, UnknownNameError
from privlab.protect.base import PROTECTIONS, Budget
from privlab.registry import Entry
from privlab.store import load_tensors, save_tensors

__all__ = [
    "DEFAULT_EPS",
    "Monitor",
    "NoiseConfig",
    "NoiseGenerator",
    "NoiseKind",
    "NoiseSpec",
    "PerturbationBank",
    "RoundCallback",
    "check_budget",
    "cycle_batches",
    "noise_entry",
    "noise_shape",
    "resolve_noise",
    "uniform_noise",
]

NoiseKind = Literal["sample", "class"]
RoundCallback = Callable[[int, dict[str, float]], None]
#: a measurement hook: the generator's current model → named numbers for that round's stats
Monitor = Callable[[torch.nn.Module], dict[str, float]]
DEFAULT_EPS = 8 / 255


# -- the bank -----------------------------------------------------------------------------------------------------
@dataclass
class PerturbationBank:
    """A generated perturbation tensor and what it was made for.

    Attributes:
        noise: ``(N, C, H, W)`` (sample-wise, row = sample index) or ``(K, C, H, W)`` (class-wise, row = label),
            in [0, 1] pixel units, within ``[−ε, ε]``.
        kind: ``"sample"`` or ``"class"``.
        epsilon: the L∞ radius ε in [0, 1] pixel units.
        meta: protection name, backbone, data set, seed, generation statistics … (JSON-ready).
        history: per outer round/epoch statistics of the generation.
    """

    noise: torch.Tensor
    kind: NoiseKind
    epsilon: float
    meta: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def budget(self) -> Budget:
        """The budget record: an L∞ radius per image."""
        return Budget(kind="linf", scope="image", radius=self.epsilon, details={"noise": f"{self.kind}-wise"})

    def metadata(self) -> dict[str, Any]:
        """What goes into the file header."""
        return {
            "format": "privlab-perturbation-bank/1",
            "kind": self.kind,
            "epsilon": self.epsilon,
            "shape": list(self.noise.shape),
            **self.meta,
        }

    def save(self, path: str | Path) -> str:
        """Write ``noise`` + metadata as safetensors (atomic); returns the file's SHA-256."""
        return save_tensors(path, {"noise": self.noise.float()}, self.metadata())

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        expected_shape: tuple[int, ...] | None = None,
        kind: NoiseKind | None = None,
    ) -> PerturbationBank:
        """Read a bank written by :meth:`save`, checking it.

        Args:
            path: the ``.safetensors`` file.
            expected_shape: the shape the caller needs (e.g. ``(len(train), C, H, W)``); checked when given.
            kind: the kind the caller needs; checked when given.

        Raises:
            DataMissingError: no such file. FileFormatError: not a bank, another kind or shape, or noise beyond ε.
        """
        tensors, meta = load_tensors(path)
        if "noise" not in tensors or "kind" not in meta or "epsilon" not in meta:
            raise FileFormatError(f"{path}: not a privlab perturbation bank (needs tensor 'noise' and kind/epsilon)")
        noise = tensors["noise"]
        kind_, eps_ = meta.get("kind"), meta.get("epsilon")
        if (
            kind_ not in ("sample", "class")
            or isinstance(eps_, bool)
            or not isinstance(eps_, int | float)
            or not 0 < eps_ <= 1  # also refuses NaN
            or noise.ndim != 4
            or not noise.is_floating_point()
        ):
            raise FileFormatError(
                f"{path}: not a privlab perturbation bank (kind {kind_!r}, epsilon {eps_!r}, noise {noise.dtype} "
                f"{tuple(noise.shape)}; need kind sample|class, 0 < epsilon ≤ 1 in [0, 1] pixel units, float N×C×H×W)"
            )
        if kind is not None and meta["kind"] != kind:
            raise FileFormatError(f"{path}: holds {meta['kind']}-wise noise, expected {kind}-wise")
        if expected_shape is not None and tuple(noise.shape) != tuple(expected_shape):
            raise FileFormatError(
                f"{path}: noise has shape {tuple(noise.shape)}, expected {tuple(expected_shape)} "
                f"({meta['kind']}-wise rows × C×H×W of the data set it is applied to)"
            )
        eps = float(meta["epsilon"])
        if noise.numel() and noise.abs().max().item() > eps + 1e-6:
            raise FileFormatError(f"{path}: noise exceeds its budget ε = {eps:.6g} (max |δ| {noise.abs().max():.6g})")
        extra = {k: v for k, v in meta.items() if k not in ("kind", "epsilon", "shape", "format")}
        return cls(noise=noise, kind=meta["kind"], epsilon=eps, meta=extra)


# -- config and generator -----------------------------------------------------------------------------------------
class NoiseConfig(Spec):
    """Base of every noise protection's config: ``name`` (its registry name), the kind and the L∞ budget."""

    name: str = Field(default="em", description="the protection (privlab protections, kind data)")
    kind: NoiseKind = Field(default="sample", description="sample-wise (one δ per image) or class-wise (per label)")
    epsilon: float = Field(default=DEFAULT_EPS, gt=0, le=1, description="L∞ radius, [0, 1] pixel units (8/255)")

    def label(self) -> str:
        """A short row label: ``em sample-wise (lenet5)``, ``random class-wise`` …"""
        backbone = getattr(self, "backbone", None)
        return f"{self.name} {self.kind}-wise" + (f" ({backbone})" if backbone else "")


class NoiseGenerator:
    """Base of every noise generator: built from its config, :meth:`generate` makes the bank for a data set.

    Args:
        cfg: the config (an instance of ``config_class`` or a mapping of its fields; None: defaults).
    """

    config_class: ClassVar[type[NoiseConfig]] = NoiseConfig

    def __init__(self, cfg: NoiseConfig | dict[str, Any] | None = None) -> None:
        if isinstance(cfg, self.config_class):
            self.cfg = cfg
        else:
            from privlab.config import validate

            self.cfg = validate(self.config_class, dict(cfg or {}), "protection")
        check_budget(self.cfg)

    def generate(
        self,
        data: LabelledImages,
        *,
        seed: int = 0,
        device: Any = "cpu",
        progress: Progress | None = None,
        on_round: RoundCallback | None = None,
        monitor: Monitor | None = None,
    ) -> PerturbationBank:
        """The perturbation bank for ``data`` (clean images in [0, 1]).

        Args:
            seed: seeds everything the generation draws.
            on_round: called as ``on_round(round, stats)`` after each outer round/epoch.
            monitor: a measurement hook the defender may watch its progress with: called with the generator's
                current model (e.g. TUE's SSL encoder), returns named numbers added to that round's stats. Measuring
                is the caller's (the pipeline's) business, so protections never import measure/.
        """
        raise NotImplementedError


def noise_entry(name: str) -> Entry[Any]:
    """The registry entry of the noise protection ``name`` (a ``kind="data"`` protection with a
    :class:`NoiseGenerator`).

    Raises:
        UnknownNameError: no such noise protection; the message lists them.
    """
    names = [e.name for e in PROTECTIONS.entries() if isinstance(e.obj, type) and issubclass(e.obj, NoiseGenerator)]
    if name in names:
        return PROTECTIONS.entry(name)
    raise UnknownNameError(f"unknown noise protection {name!r}; use one of: {', '.join(names)}")


def resolve_noise(value: Any, *, as_field: bool = False) -> NoiseConfig:
    """A noise protection's config from a mapping (``{"name": "em", "kind": "class"}``), None (``em``) or a config."""
    return resolve_named_config(
        value,
        base=NoiseConfig,
        lookup=lambda name: noise_entry(name).meta["config"],
        field="protection",
        default="em",
        example="{name: em}",
        as_field=as_field,
    )


# the type of a spec's ``protection`` field: validated through the registry, dumped with the concrete config's fields
NoiseSpec = Annotated[SerializeAsAny[NoiseConfig], BeforeValidator(lambda v: resolve_noise(v, as_field=True))]


# -- helpers shared by the generators -------------------------------------------------------------------------------
def uniform_noise(shape: tuple[int, ...], epsilon: float, seed: int) -> torch.Tensor:
    """``U(−ε, ε)`` of ``shape`` drawn from a CPU generator seeded with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) * 2 - 1) * epsilon


def _noise_shape(data: LabelledImages, kind: NoiseKind) -> tuple[int, ...]:
    return (len(data) if kind == "sample" else data.num_classes, *data.shape)


def noise_shape(data: LabelledImages, kind: NoiseKind) -> tuple[int, ...]:
    """``(N, C, H, W)`` for sample-wise noise, ``(K, C, H, W)`` for class-wise."""
    return (len(data) if kind == "sample" else data.num_classes, *data.shape)


def cycle_batches(n: int, batch_size: int, g: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless shuffled index batches over ``range(n)`` (a new permutation each pass)."""
    while True:
        order = torch.randperm(n, generator=g)
        for i in range(0, n, batch_size):
            yield order[i : i + batch_size]


def check_budget(cfg: NoiseConfig) -> None:
    """Raise :class:`BudgetError` when a PGD step is larger than the budget ε."""
    if getattr(cfg, "step_size", 0) > cfg.epsilon:
        raise BudgetError(f"step_size {cfg.step_size:.4g} exceeds the budget epsilon {cfg.epsilon:.4g}; lower it")
