"""The public base of every shared-gradient defence, its config, and how a spec or a command line names one.

A defence is one file in this package (or a plugin) registered in :data:`~privlab.protect.PROTECTIONS` as
``gradient-<name>`` with ``kind="gradient"``, its ``config`` (a :class:`DefenseConfig` subclass whose ``name`` is
``<name>``) and, for the short command-line form ``NAME:VALUE``, the ``primary`` field that ``VALUE`` sets::

    @PROTECTIONS.register("gradient-clipnorm", kind="gradient", config=ClipConfig, primary="norm",
                          description="clip the shared gradient's norm")
    class ClipNorm(GradientDefense):
        def shared(self, grads, generator): ...

A spec then says ``defense: {name: clipnorm, norm: 1.0}`` and the command line ``--defense clipnorm:1``.

Example:
    >>> parse_defense("prune:70")
    {'name': 'prune', 'percent': 70.0}
    >>> import torch
    >>> d = build_defense(parse_defense("prune:50"))
    >>> d.shared([torch.tensor([1.0, -4.0, 2.0, 0.5])], torch.Generator())[0]
    tensor([ 0., -4.,  2.,  0.])
"""

from __future__ import annotations

from typing import Annotated, Any

import torch
from pydantic import BeforeValidator, Field, SerializeAsAny

from privlab.config import Spec, resolve_named_config
from privlab.errors import ConfigError, UnknownNameError
from privlab.protect.base import PROTECTIONS, Budget
from privlab.protect.gradient.client import GradientFn
from privlab.registry import Entry

__all__ = [
    "DefenseConfig",
    "DefenseSpec",
    "GradientDefense",
    "build_defense",
    "defense_entry",
    "defense_label",
    "defense_names",
    "parse_defense",
    "resolve_defense",
]

PREFIX = "gradient-"


class DefenseConfig(Spec):
    """Base of every defence's config: ``name`` is the defence's short name (``gaussian``, ``prune`` …)."""

    name: str = Field(default="none", description="the defence (privlab protections: gradient-<name>)")

    def label(self) -> str:
        """Short name for tables and plots (``none``, ``gaussian σ=0.01``, ``prune 70%`` …)."""
        return self.name


class GradientDefense:
    """What a federated client does to what it shares; the base changes nothing (override what the defence changes).

    Args:
        cfg: the defence's config (an instance of the registered ``config`` class, or a mapping validated into it).
    """

    config_class: type[DefenseConfig] = DefenseConfig

    def __init__(self, cfg: DefenseConfig | dict[str, Any] | None = None) -> None:
        if isinstance(cfg, DefenseConfig):
            self.config = cfg
        else:
            from privlab.config import validate

            self.config = validate(self.config_class, dict(cfg or {}), "defence")

    def inputs(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The images the client actually differentiates, ``N×C×H×W`` in [0, 1] (default: ``x`` itself)."""
        return x

    def gradient_fn(self, generator: torch.Generator) -> GradientFn | None:
        """How one local step's gradient is computed (see :func:`~privlab.protect.gradient.client.client_update`);
        None (default) for the plain mean-loss gradient."""
        return None

    def shared(self, grads: list[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
        """Transform the tensors the client sends, one per trainable parameter (default: unchanged)."""
        return grads

    def budget(self, steps: int = 1) -> Budget:
        """The privacy this defence buys for ``steps`` local steps (default: no formal guarantee, kind ``none``)."""
        return Budget(kind="none", scope="gradient", details={"defense": self.label()})

    def label(self) -> str:
        """Short name for tables and plots."""
        return self.config.label()


def defense_names() -> list[str]:
    """The registered defences' short names (``none``, ``gaussian`` …), sorted."""
    return [e.name[len(PREFIX) :] for e in PROTECTIONS.entries() if e.name.startswith(PREFIX)]


def defense_entry(name: str) -> Entry[Any]:
    """The registry entry of the defence ``name`` (short name, or the full ``gradient-<name>``).

    Raises:
        UnknownNameError: no such defence; the message lists the registered ones.
    """
    full = name if str(name).startswith(PREFIX) else f"{PREFIX}{name}"
    if full in PROTECTIONS and PROTECTIONS.entry(full).meta.get("kind") == "gradient":
        return PROTECTIONS.entry(full)
    raise UnknownNameError(f"unknown defence {name!r}; use one of: {', '.join(defense_names())}")


def resolve_defense(value: Any, *, as_field: bool = False) -> DefenseConfig:
    """A defence config from a mapping (``{"name": "prune", "percent": 70}``), None (``none``) or a config.

    Raises:
        UnknownNameError: unknown name. ConfigError: a setting the defence does not have, or a bad value.
    """
    return resolve_named_config(
        value,
        base=DefenseConfig,
        lookup=lambda name: defense_entry(name).meta["config"],
        field="defense",
        default="none",
        example="{name: prune, percent: 70}",
        as_field=as_field,
    )


# the type of a spec's ``defense`` field: validated through the registry, dumped with the concrete config's fields
DefenseSpec = Annotated[SerializeAsAny[DefenseConfig], BeforeValidator(lambda v: resolve_defense(v, as_field=True))]


def build_defense(value: Any) -> GradientDefense:
    """The executable defence for a config or mapping (see :func:`resolve_defense`)."""
    cfg = resolve_defense(value)
    return defense_entry(cfg.name).obj(cfg)


def defense_label(data: dict[str, Any] | None) -> str:
    """The label of a stored spec's ``defense`` mapping; keys the defence does not have (older specs stored every
    defence's settings) are ignored, and an unknown or invalid defence falls back to its name."""
    data = dict(data or {})
    name = str(data.get("name", "none"))
    try:
        cls = defense_entry(name).meta["config"]
        return cls(**{k: v for k, v in data.items() if k in cls.model_fields}).label()
    except Exception:  # a report must render whatever a store holds
        return name


def _cli_names() -> dict[str, str]:
    """Command-line name → short name: every defence, plus each one's ``cli_aliases`` (``noise`` → ``gaussian``)."""
    out: dict[str, str] = {}
    for short in defense_names():
        out[short] = short
        for alias in defense_entry(short).meta.get("cli_aliases", ()):
            out[alias] = short
    return out


def parse_defense(text: str) -> dict[str, Any]:
    """Parse a command-line defence: ``NAME[:VALUE][,KEY=VALUE…]`` or ``NAME:KEY=VALUE,…``.

    ``VALUE`` alone sets the defence's ``primary`` setting (``prune:70`` → ``percent``); values are numbers except
    for string-typed fields (``augment:flip``).

    Raises:
        ConfigError: unknown name or malformed value.
    """
    name, _, rest = text.strip().partition(":")
    names = _cli_names()
    if name not in names:
        raise ConfigError(f"unknown defence {name!r} in {text!r}; use one of: {', '.join(names)}")
    entry = defense_entry(names[name])
    primary = entry.meta.get("primary")
    fields = entry.meta["config"].model_fields
    out: dict[str, Any] = {"name": names[name]}
    for i, part in enumerate(p for p in rest.split(",") if p):
        key, eq, value = part.partition("=")
        if not eq:
            if i or primary is None:
                raise ConfigError(f"defence {text!r}: write extra settings as key=value")
            key, value = primary, part
        key = key.strip()
        if key in fields and fields[key].annotation is str:
            out[key] = value.strip()
            continue
        try:
            out[key] = float(value)
        except ValueError:
            raise ConfigError(f"defence {text!r}: {key}={value!r} is not a number") from None
    return out
