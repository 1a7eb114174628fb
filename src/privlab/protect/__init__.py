"""Stage 3 — protections: what a defender applies to data, activations, gradients or training.

Each protection is one file that registers itself: ``@PROTECTIONS.register("<name>", kind=..., description=...)``
(``kind`` is one of ``data``, ``activation``, ``gradient``, ``training``). A protection states its budget as a
:class:`~privlab.protect.base.Budget` (ε/δ, an L∞ radius, an SNR …).
"""

from privlab.protect.base import PROTECTIONS, Budget

__all__ = ["PROTECTIONS", "Budget"]

from privlab.registry import import_submodules

import_submodules(__name__, __path__)
