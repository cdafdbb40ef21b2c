"""regen's defaults and the names its command line offers, in one light module.

Everything here is a plain value: the module imports nothing, so that the command
line can describe its options (``regen --help``) without loading pandas, scipy or
the models. The modules that use a value import it from here (``regen.cohort``,
``regen.episodes``, ``regen.io.limits``, ``regen.survival.likelihood``), so each is
written once.
"""

__all__ = ["DEFAULT_BASELINE_WINDOW_DAYS", "DEFAULT_MAX_FOLLOW_UP_DAYS", "DISTRIBUTION_NAMES",
           "LIMIT_OPTIONS", "LIMIT_UNITS", "OUTCOME_NAMES", "READ_LIMITS", "RELIEF_CONFIRM"]

#: Visits more than this many days before their treatment are errors (the baseline window).
DEFAULT_BASELINE_WINDOW_DAYS = 60
#: Visits more than this many days after their treatment are errors (a typo in the year?).
DEFAULT_MAX_FOLLOW_UP_DAYS = 5 * 365
#: Relief ends at the first of this many consecutive unrelieved visits (docs/episodes.md).
RELIEF_CONFIRM = 3
#: The two outcomes a treatment's episodes follow.
OUTCOME_NAMES = ("numbness", "relief")
#: The laws of the time to the event of the AFT models (``dist=``).
DISTRIBUTION_NAMES = ("weibull", "lognormal", "loglogistic")

#: The defaults of :class:`regen.ReadLimits` (see it for what each bounds).
READ_LIMITS = {
    "max_file_bytes": 1_000_000_000,
    "max_rows": 10_000_000,
    "max_columns": 1_000,
    "max_cells": 50_000_000,
    "max_uncompressed_bytes": 1_000_000_000,
    "max_cell_bytes": 100_000,
}
#: The command-line option that raises each limit; messages name it with the field.
LIMIT_OPTIONS = {
    "max_file_bytes": "--max-file-mb",
    "max_rows": "--max-rows",
    "max_columns": "--max-columns",
    "max_cells": "--max-cells",
    "max_uncompressed_bytes": "--max-uncompressed-mb",
    "max_cell_bytes": "--max-cell-kb",
}
#: Each option's unit (the limit is the option's value times it), and what it bounds: the
#: command line and the analysis scripts describe their options from this.
LIMIT_UNITS = {
    "max_file_bytes": (1_000_000, "Most MB read from disk: the tables' files together."),
    "max_rows": (1, "Most rows in one table."),
    "max_columns": (1, "Most columns in one table (fields on one line of text)."),
    "max_cells": (1, "Most cells (rows × columns) in the three tables together."),
    "max_uncompressed_bytes": (1_000_000, "Most MB the tables' data unpack to (an .xlsx "
                                          "workbook, Parquet files)."),
    "max_cell_bytes": (1_000, "Most kB of text in one cell."),
}
