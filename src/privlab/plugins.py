"""User plugins: your own experiments, attacks, protections, metrics, models or data sets, in your own files.

A component registers itself by name when its module is imported (``@PIPELINES.register(...)``, ``@ATTACKS…``).
List such modules in the environment variable ``PRIVLAB_PLUGINS`` — importable module names or ``.py`` file paths,
separated by commas — and every ``privlab`` command imports them first. Sweep workers (local processes and Ray
tasks) import the driver's plugins too, so a sweep can run your experiment in parallel::

    PRIVLAB_PLUGINS=./my_attack.py,mylab.pipelines privlab sweep my-sweep.yaml --workers 4
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

from privlab.errors import ConfigError

__all__ = ["PLUGINS_ENV", "load_plugins", "plugin_names"]

PLUGINS_ENV = "PRIVLAB_PLUGINS"
_loaded: dict[str, str] = {}


def plugin_names() -> list[str]:
    """The plugins named in ``$PRIVLAB_PLUGINS`` (comma-separated), file paths made absolute."""
    names = [n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(",") if n.strip()]
    return [str(Path(n).resolve()) if n.endswith(".py") else n for n in names]


def load_plugins(names: list[str] | None = None) -> list[str]:
    """Import each plugin once (``names`` default: :func:`plugin_names`); return the module names imported.

    Raises:
        ConfigError: a plugin file or module does not exist or fails to import (the message names it).
    """
    loaded = []
    for name in plugin_names() if names is None else names:
        if name in _loaded:
            loaded.append(_loaded[name])
            continue
        try:
            if name.endswith(".py"):
                path = Path(name)
                if not path.is_file():
                    raise ConfigError(f"plugin file not found: {path} (from ${PLUGINS_ENV})")
                mod_name = f"privlab_plugin_{path.stem}"
                spec = importlib.util.spec_from_file_location(mod_name, path)
                if spec is None or spec.loader is None:
                    raise ConfigError(f"cannot import plugin file {path}")
                module = importlib.util.module_from_spec(spec)
                sys.modules[mod_name] = module
                spec.loader.exec_module(module)
            else:
                mod_name = importlib.import_module(name).__name__
        except ConfigError:
            raise
        except ModuleNotFoundError as e:
            raise ConfigError(f"plugin {name!r} (from ${PLUGINS_ENV}) cannot be imported: {e}") from None
        except Exception as e:
            raise ConfigError(f"plugin {name!r} failed while importing: {type(e).__name__}: {e}") from None
        _loaded[name] = mod_name
        loaded.append(mod_name)
    return loaded
