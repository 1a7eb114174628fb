"""Orchestration: load a spec (file, preset, overrides), expand its sweep, run each point into the store."""

from privlab.run.local import RunOutcome, execute
from privlab.run.sweep import expand, load_spec, spec_from_mapping

__all__ = ["RunOutcome", "execute", "expand", "load_spec", "spec_from_mapping"]
