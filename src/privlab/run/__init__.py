"""Orchestration: load a spec (file, preset, overrides), expand its sweep, run each point into the store.

``execute`` runs points one after the other in this process (``privlab run``); ``run_sweep`` runs them in worker
processes or Ray tasks with the driver as the only writer of the store (``privlab sweep``).
"""

from privlab.run.local import RunOutcome, execute
from privlab.run.parallel import run_sweep
from privlab.run.sweep import expand, expand_all, load_spec, load_specs, spec_from_mapping

__all__ = ["RunOutcome", "execute", "expand", "expand_all", "load_spec", "load_specs", "run_sweep", "spec_from_mapping"]
