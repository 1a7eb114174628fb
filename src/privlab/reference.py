"""Published values beside measured ones: the ``reference:`` block of a spec and its comparison.

A spec may carry, per metric the run logs, the value a paper reported, where it comes from and how close a
reproduction must come::

    reference:
      mi_clean_nats: {value: 284.14, source: "Shredder (Mireshghallah et al. 2020), Table 2", tolerance: 30}
      public_accuracy: {value: 0.9387, source: "Shredder, Table 2", tolerance: 0.02, note: "MNIST, LeNet-5"}

``value`` and ``tolerance`` are in the **metric's own unit** as privlab logs it (accuracies as fractions in [0, 1],
MI in nats, PSNR in dB …); ``rel_tolerance`` is a fraction of ``|value|``. A row is *within* when
``|measured − published|`` is at most the larger of the two tolerances given.

Example:
    >>> ref = {"acc": Reference(value=0.90, source="paper, Table 1", tolerance=0.02)}
    >>> [(r.metric, round(r.difference, 3), r.within) for r in compare(ref, {"acc": 0.885})]
    [('acc', -0.015, True)]
    >>> compare(ref, {})[0].status
    'not measured'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from privlab.config import Reference

__all__ = ["Reference", "ReferenceRow", "compare"]


@dataclass(frozen=True)
class ReferenceRow:
    """Published vs measured for one metric of one run.

    Attributes:
        metric: the metric name.
        published: the published value; ``measured`` the run's final value (None when the run did not log it).
        difference: measured − published (None without a measurement).
        allowed: the tolerance applied (metric units).
        within: whether the difference is within tolerance (None without a measurement).
        source, note: from the reference.
    """

    metric: str
    published: float
    measured: float | None
    difference: float | None
    allowed: float
    within: bool | None
    source: str
    note: str | None

    @property
    def status(self) -> str:
        """``within``, ``outside`` or ``not measured``."""
        return "not measured" if self.within is None else ("within" if self.within else "outside")

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with ``status``)."""
        return {**asdict(self), "status": self.status}


def compare(references: Mapping[str, Reference | Mapping[str, Any]], metrics: Mapping[str, Any]) -> list[ReferenceRow]:
    """Compare published values with a run's final metrics, one row per reference, in the references' order.

    Args:
        references: metric name → :class:`Reference` (or its dict form, as stored in a run's spec JSON).
        metrics: metric name → final value (a non-finite or missing value counts as not measured).
    """
    rows = []
    for name, ref in references.items():
        r = ref if isinstance(ref, Reference) else Reference.model_validate(ref)
        v = metrics.get(name)
        measured = float(v) if isinstance(v, int | float) and math.isfinite(v) else None
        diff = None if measured is None else measured - r.value
        within = None if diff is None else abs(diff) <= r.allowed() * (1 + 1e-12)
        rows.append(ReferenceRow(name, r.value, measured, diff, r.allowed(), within, r.source, r.note))
    return rows
