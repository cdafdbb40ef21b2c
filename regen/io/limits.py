"""How much a read may take: :class:`ReadLimits`, the options that raise them, and the budget.

A :class:`Budget` holds what the tables read so far left of the limits on the cohort as a
whole (cells, bytes unpacked); :func:`too_many` checks a table's rows and columns against
the limits and that budget, and the messages name the option that raises each limit
(:func:`raise_limit`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from regen.defaults import LIMIT_OPTIONS, LIMIT_UNITS, READ_LIMITS

__all__ = ["LIMIT_OPTIONS", "LIMIT_UNITS", "LONG_FIX", "Budget", "ReadLimits", "mb", "raise_limit",
           "too_many"]


@dataclass(frozen=True)
class ReadLimits:
    """How much :func:`regen.read_cohort` reads before it refuses a file.

    Each limit is checked before the data it bounds are loaded, so that a
    crafted or mistaken file (a log, a disk image, a spreadsheet with a stray
    cell far from the table, a cell of 400 MB) fails fast with a message
    instead of filling the memory. The file size, the cells and what the data
    unpack to are budgets for the three tables together: each table may use
    what the ones read before it (patients, then treatments, then visits) left.

    The defaults fit a large practice: 5 million visits (with about 440,000
    patients and 670,000 treatments, 37 million cells and 200 MB of CSV) load
    with them, in about 40 s of processor time and 2.5 GB. Within them, the most
    memory a crafted cohort took was about 5.5 GB (50 million cells of ``1``, a
    99 kB text repeated on every row; the CSV, Parquet and workbook cases are
    listed with the cell-limit tests). Raise a limit only for files you trust.

    Parameters
    ----------
    max_file_bytes : int, default 1_000_000_000
        Most bytes read from disk, from the sizes the file system gives: the
        table files of a folder together, or the workbook.
    max_rows : int, default 10_000_000
        Most rows in one table, below its header.
    max_columns : int, default 1_000
        Most columns in one table; in a text file, also the most fields on any
        one line.
    max_cells : int, default 50_000_000
        Most cells (rows × columns, below the headers) in the three tables
        together. This bounds the memory the tables take while they are read
        and checked, also for a small file whose repeated values unpack to
        large tables.
    max_uncompressed_bytes : int, default 1_000_000_000
        Most bytes the data unpack to, the tables together: for an ``.xlsx``
        workbook, the declared uncompressed size of its parts, and the text of
        its cells (a shared string counted at every cell that uses it); for
        Parquet files, the size of their column data as their footers declare
        it, and the size their columns take once read (a dictionary-encoded
        value counted at every row that uses it).
    max_cell_bytes : int, default 100_000
        Most bytes of text in one cell (UTF-8; in a text file, the field as
        written, with its quotes). A follow-up table's cells hold ids, dates,
        numbers and short notes: a longer one is a quote left open, a file that
        is not a table, or crafted.

    Raises
    ------
    TypeError
        If a limit is not a whole number.
    ValueError
        If a limit is below 1.

    Examples
    --------
    >>> from regen.io import ReadLimits
    >>> limits = ReadLimits(max_rows=50_000_000, max_cells=500_000_000)
    >>> limits.max_rows, limits.max_columns
    (50000000, 1000)
    >>> cohort = regen.read_cohort("data/example", limits=limits)  # doctest: +SKIP
    """

    max_file_bytes: int = READ_LIMITS["max_file_bytes"]
    max_rows: int = READ_LIMITS["max_rows"]
    max_columns: int = READ_LIMITS["max_columns"]
    max_cells: int = READ_LIMITS["max_cells"]
    max_uncompressed_bytes: int = READ_LIMITS["max_uncompressed_bytes"]
    max_cell_bytes: int = READ_LIMITS["max_cell_bytes"]

    def __post_init__(self) -> None:
        for limit in fields(self):
            value = getattr(self, limit.name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise TypeError(f"ReadLimits.{limit.name} must be a whole number, not {value!r}")
            if value < 1:
                raise ValueError(f"ReadLimits.{limit.name} must be at least 1, not {value}")


def raise_limit(limit: str) -> str:
    """The end of a message's fix: the option (and the ``ReadLimits`` field) that raises ``limit``."""
    return f"raise the limit with {LIMIT_OPTIONS[limit]} (ReadLimits({limit}=...) in Python)"


#: The fix for a cell longer than the cell limit, whatever the file's format.
LONG_FIX = "if cells really hold this much text, " + raise_limit("max_cell_bytes")


@dataclass
class Budget:
    """What the tables read so far left of the limits on the cohort as a whole."""

    limits: ReadLimits
    cells: int = 0       # cells left
    unpacked: int = 0    # bytes left to unpack (workbook cells' text, Parquet columns)
    spent: list[tuple[str, int]] = field(default_factory=list)   # (file, cells) read

    def __post_init__(self) -> None:
        self.cells, self.unpacked = self.limits.max_cells, self.limits.max_uncompressed_bytes

    def spend(self, label: str, cells: int, unpacked: int = 0) -> None:
        self.cells -= cells
        self.unpacked -= unpacked
        self.spent.append((label, cells))

    def cells_rule(self, what: str) -> str:
        """``what`` (a table's size) is more than the cells left: the rule that says so."""
        rule = (f"{what}, more cells than the limit of {self.limits.max_cells:,} for the three "
                "tables together")
        if self.spent:
            used = sum(cells for _, cells in self.spent)
            rule += f" ({' and '.join(label for label, _ in self.spent)} take {used:,})"
        return rule

    def unpacked_rule(self, what: str) -> str:
        rule = (f"{what}, more than the limit of {mb(self.limits.max_uncompressed_bytes)} "
                "for the tables together")
        used = self.limits.max_uncompressed_bytes - self.unpacked
        if used:
            rule += f" ({' and '.join(label for label, _ in self.spent)} take {mb(used)})"
        return rule


def mb(size: int) -> str:
    """A size for a message: in MB, or in bytes below 0.1 MB (where MB would read 0.0)."""
    return f"{size / 1e6:,.1f} MB" if size >= 100_000 else f"{size:,} bytes"


def too_many(label: str, table: str, problems, budget: Budget, *, rows: int, columns: int,
             row: int | None = None, exact: bool = True) -> bool:
    """Record a problem if a table of ``rows`` × ``columns`` is beyond the limits (its cells
    beyond those the tables read before it left).

    ``exact=False``: ``rows`` is only known to be at least that (reading stopped there).
    """
    limits = budget.limits
    check = "check that this is the right file (an export of several tables, or a log?); if it is, "
    if columns > limits.max_columns:
        rule = f"{columns:,} columns, more than the limit of {limits.max_columns:,}"
        fix = check + raise_limit("max_columns")
    elif rows > limits.max_rows:
        rule = (f"{rows:,} rows, more than the limit of {limits.max_rows:,}" if exact
                else f"more rows than the limit of {limits.max_rows:,}")
        fix = check + raise_limit("max_rows")
    elif rows * columns > budget.cells:
        rule = budget.cells_rule(f"{rows:,} rows × {columns:,} columns" if exact
                                 else f"more than {rows - 1:,} rows × {columns:,} columns")
        fix = "delete empty or unused columns; if the tables really are this large, " + \
            raise_limit("max_cells")
    else:
        return False
    problems.add(label, table, row, None, None, rule, fix)
    return True
