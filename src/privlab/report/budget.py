"""How many per-run figures one report draws.

A sweep of thousands of runs would otherwise draw thousands of training-curve plots and image grids (≈ 0.2–0.5 s
each with matplotlib): the report of a 500-run store took 4 minutes. Tables keep every run; per-run figures are
drawn for the first ``max_figures`` runs in page order (:data:`DEFAULT_MAX_FIGURES` unless
``privlab report --max-figures N`` says otherwise), and the page's header says how many were left out.
Figures that summarise all runs of a section (accuracy-vs-ε curves, the privacy–utility plane) are not counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["DEFAULT_MAX_FIGURES", "FigureBudget", "figure_budget", "take_figure"]

#: per-run figures one report draws by default
DEFAULT_MAX_FIGURES = 24


@dataclass
class FigureBudget:
    """Per-run figures allowed (``limit``), left to draw, and how many were skipped once none was left."""

    limit: int
    left: int
    skipped: int = 0


_BUDGET: ContextVar[FigureBudget | None] = ContextVar("privlab_report_figure_budget", default=None)


@contextmanager
def figure_budget(max_figures: int) -> Iterator[FigureBudget]:
    """Within the block, at most ``max_figures`` per-run figures are drawn (see :func:`take_figure`)."""
    n = max(0, int(max_figures))
    budget = FigureBudget(limit=n, left=n)
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


def take_figure() -> bool:
    """True if one more per-run figure may be drawn (and count it); False, counted as skipped, when none is left.

    Outside :func:`figure_budget` every figure is drawn.
    """
    budget = _BUDGET.get()
    if budget is None:
        return True
    if budget.left <= 0:
        budget.skipped += 1
        return False
    budget.left -= 1
    return True
