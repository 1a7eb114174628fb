"""A registry per stage: components register themselves by name with a decorator.

Example:
    >>> from privlab.registry import Registry
    >>> THINGS = Registry("thing")
    >>> @THINGS.register("square", description="x²")
    ... def square(x: int) -> int:
    ...     return x * x
    >>> THINGS.get("square")(3)
    9
    >>> THINGS.names()
    ['square']
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from privlab.errors import UnknownNameError

__all__ = ["Entry", "Registry", "import_submodules"]

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered component: its name, the object, aliases and free-form metadata."""

    name: str
    obj: T
    aliases: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Name → component map that refuses duplicates and suggests close names on a miss.

    Args:
        kind: what is registered ("dataset", "model", …), used in messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}

    def register(
        self, name: str, *, aliases: tuple[str, ...] | list[str] = (), force: bool = False, **meta: Any
    ) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name`` (and ``aliases``) with metadata ``meta``.

        Raises:
            ValueError: the name or an alias is taken and ``force`` is false (a programming error, not a user one).
        """

        def deco(obj: T) -> T:
            self.add(name, obj, aliases=aliases, force=force, **meta)
            return obj

        return deco

    def add(
        self, name: str, obj: T, *, aliases: tuple[str, ...] | list[str] = (), force: bool = False, **meta: Any
    ) -> None:
        """Register ``obj`` directly (the non-decorator form of :meth:`register`)."""
        for key in (name, *aliases):
            if not force and (key in self._entries or key in self._aliases):
                raise ValueError(f"{self.kind} {key!r} is already registered")
        self._entries[name] = Entry(name=name, obj=obj, aliases=tuple(aliases), meta=dict(meta))
        for alias in aliases:
            self._aliases[alias] = name

    def remove(self, name: str) -> None:
        """Unregister ``name`` and its aliases (used by tests that register dummies)."""
        entry = self._entries.pop(name)
        for alias in entry.aliases:
            self._aliases.pop(alias, None)

    def entry(self, name: str) -> Entry[T]:
        """Return the :class:`Entry` for ``name`` or an alias.

        Raises:
            UnknownNameError: no such name; the message lists the registered names and the closest match.
        """
        key = self._aliases.get(name, name)
        if key in self._entries:
            return self._entries[key]
        known = sorted([*self._entries, *self._aliases])
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownNameError(f"unknown {self.kind} {name!r}.{hint} Registered: {', '.join(self.names())}.")

    def check_name(self, name: str) -> str:
        """Return ``name`` if it (or an alias) is registered, else raise ``ValueError`` with the same message as
        :meth:`entry` — for pydantic validators, so that a spec naming an unknown entry is refused before a run
        starts (and before anything is written)."""
        try:
            self.entry(name)
        except UnknownNameError as err:
            raise ValueError(str(err)) from None
        return name

    def get(self, name: str) -> T:
        """Return the registered object for ``name`` (see :meth:`entry`)."""
        return self.entry(name).obj

    def names(self) -> list[str]:
        """Registered names, sorted (aliases excluded)."""
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        """All entries, sorted by name."""
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


def import_submodules(package_name: str, package_path: list[str]) -> None:
    """Import every module of a package so that their ``@register`` decorators run.

    Each stage's ``__init__.py`` calls this, so a new component is one new file.
    """
    for info in pkgutil.iter_modules(package_path):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package_name}.{info.name}")
