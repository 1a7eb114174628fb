"""privlab: reproduce, measure and compare privacy attacks and defences on neural networks.

The data flow, one sub-package per stage::

    data → models → protect → attack → measure → store → report

``pipelines`` wire the stages into experiments, ``run`` executes specs (and sweeps) into a results store, and
``cli`` is the ``privlab`` command.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
