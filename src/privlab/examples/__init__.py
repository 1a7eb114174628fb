"""Example spec files shipped with privlab (``demo.yaml``, ``train.yaml``, ``inversion-cpu.yaml`` …).

They are package data, so an installed wheel has them too. On the command line ``examples/NAME.yaml`` names the
packaged example ``NAME`` whenever no such file exists in the current folder (so ``privlab run examples/train.yaml``
works in any folder); ``privlab examples`` lists them and ``privlab examples --copy DIR`` copies them to edit.

Example:
    >>> "demo" in example_names() and example_path("demo").name == "demo.yaml"
    True
    >>> resolve_example("examples/train.yaml") == example_path("train")  # (when ./examples/train.yaml is absent)
    True
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from privlab.errors import ConfigError

__all__ = ["EXAMPLES_PREFIX", "example_names", "example_path", "resolve_example"]

EXAMPLES_PREFIX = "examples"


def _folder() -> Path:
    return Path(str(resources.files(__name__)))


def example_names() -> list[str]:
    """Names of the packaged examples (file names without ``.yaml``), sorted."""
    return sorted(p.stem for p in _folder().glob("*.yaml"))


def example_path(name: str) -> Path:
    """The packaged file of example ``name`` (``demo`` or ``demo.yaml``).

    Raises:
        ConfigError: no such example (the message lists them).
    """
    stem = name[: -len(".yaml")] if name.endswith(".yaml") else name
    if stem not in example_names():
        raise ConfigError(f"no example {name!r}; examples: {', '.join(example_names())} (privlab examples)")
    return _folder() / f"{stem}.yaml"


def resolve_example(path: str | Path) -> Path:
    """``path`` itself if it exists; else, for ``examples/NAME.yaml`` naming a packaged example, that example's file.

    Any other missing path is returned unchanged (loading it then reports the missing file).
    """
    p = Path(path)
    if p.exists() or p.is_absolute() or len(p.parts) != 2 or p.parts[0] != EXAMPLES_PREFIX or p.suffix != ".yaml":
        return p
    packaged = _folder() / p.name
    return packaged if packaged.is_file() else p
