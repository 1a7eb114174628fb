"""Stage 7 — the report: one self-contained HTML page per output folder.

:func:`build_report` reads the results store of an output folder and writes ``report.html`` (inline CSS and PNG
plots, no scripts, no external addresses). Each experiment gets a section from :data:`SECTIONS` (register a
renderer with ``@SECTIONS.register("<experiment>", title="…")``) or a generic one.

Example:
    >>> from privlab.report import SECTIONS
    >>> "train" in SECTIONS
    True
"""

from privlab.registry import import_submodules
from privlab.report.build import REPORT_FILENAME, build_report, render_report
from privlab.report.sections import SECTIONS

import_submodules(__name__, __path__)

__all__ = ["REPORT_FILENAME", "SECTIONS", "build_report", "render_report"]
