"""User-fixable errors.

Anything a user can fix (a bad config key, a missing data root, an ε ≤ 0, a corrupt file) raises a
:class:`PrivlabError` whose message names the input and says how to fix it. The CLI prints it as one line on
stderr and exits with code 2. Bugs still raise ordinary exceptions.
"""

from __future__ import annotations

__all__ = [
    "BudgetError",
    "ConfigError",
    "DataMissingError",
    "FileFormatError",
    "PrivlabError",
    "UnknownNameError",
]


class PrivlabError(Exception):
    """Base class of every error the user can fix; the CLI turns it into exit code 2."""

    exit_code: int = 2


class ConfigError(PrivlabError, ValueError):
    """A spec or argument is invalid: unknown key, wrong type, value out of range."""


class UnknownNameError(ConfigError, KeyError):
    """A name looked up in a registry does not exist."""

    def __str__(self) -> str:  # KeyError quotes its message; we do not want that.
        return str(self.args[0]) if self.args else ""


class DataMissingError(PrivlabError, FileNotFoundError):
    """A data set, weight file or other input file is absent."""


class FileFormatError(PrivlabError, ValueError):
    """A file exists but is corrupt, truncated, of the wrong shape or of a refused kind (e.g. a pickle)."""


class BudgetError(ConfigError):
    """A privacy budget is out of range (ε ≤ 0, δ ∉ (0, 1), …)."""
