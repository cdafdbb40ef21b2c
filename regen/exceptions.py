"""Errors and warnings raised by regen.

Every error is a :class:`RegenError`; the ones caused by bad values are also
:class:`ValueError`, so ``except ValueError`` keeps working for callers that do
not know regen. Warnings derive from :class:`RegenWarning` so that a script can
silence or escalate all of regen's warnings with one filter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:          # no pandas at import: the command line's help needs none
    import pandas as pd

__all__ = [
    "CohortValidationError",
    "ConvergenceWarning",
    "DataWarning",
    "ModelError",
    "OutputError",
    "RegenError",
    "RegenWarning",
]


class RegenError(Exception):
    """Base class of every error regen raises on purpose."""


class CohortValidationError(RegenError, ValueError):
    """The follow-up tables cannot be used as they are.

    The message lists every problem found (file, row, column, value, the rule
    broken and how to fix it); :attr:`problems` holds the same as a DataFrame
    with columns ``file, table, row, column, value, rule, fix``.
    """

    def __init__(self, message: str, problems: pd.DataFrame):
        super().__init__(message)
        self.problems = problems


class ModelError(RegenError, ValueError):
    """A model cannot be fitted to these data (for example: no events)."""


class OutputError(RegenError, ValueError):
    """An output path regen will not write to.

    It resolves to an input of the command (or the folder holding the input
    tables), two outputs of one command share it, or a file stands there that
    regen did not write (or that was changed since): regen replaces such a
    file only when told to (``force=True``, ``--force`` on the command line).
    The command line reports it as a usage error (exit 2).
    """


class RegenWarning(UserWarning):
    """Base class of regen's warnings."""


class DataWarning(RegenWarning):
    """The data are usable but something looks suspicious."""


class ConvergenceWarning(RegenWarning):
    """An optimiser stopped short of a clear optimum."""
