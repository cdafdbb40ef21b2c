"""Reading the follow-up tables from disk, exactly as the user saved them, within limits.

This package only reads: every value stays as written (text from CSV, cell
values from Excel, typed columns from Parquet, integers exact), with the row
number the user sees in that file, so that :mod:`regen.validation` can name
file, row, column and value in every message. Problems that stop a file from
being read at all (missing, binary, malformed, too large) are recorded, not
raised, so that one run reports everything.

Reads are bounded by :class:`ReadLimits`, and every check runs before the data
are loaded (the scanners are in :mod:`regen._scan`). The size of the files,
the cells and what the data unpack to are budgets for the cohort as a whole:
the tables are read in the order patients, treatments, visits, and each may
use what the ones before it left.

- :mod:`regen.io.files`: which files a path holds (:func:`input_files`), and
  :func:`read_tables`, which reads a folder's files or a workbook by their kind,
  checks their sizes from the file system before any is opened, and hashes each
  file read (:class:`SourceFile`, :func:`sha256_file`);
- :mod:`regen.io.limits`: :class:`ReadLimits`, the options that raise them
  (:data:`LIMIT_OPTIONS`, :data:`LIMIT_UNITS`), and the budget the tables share;
- :mod:`regen.io.text`: a ``.csv``, ``.tsv`` or ``.txt`` table, checked for binary
  data and scanned once in blocks for over-wide lines and over-long fields before
  Arrow's CSV reader (a plain file) or pandas parses at most the rows the limits leave;
- :mod:`regen.io.parquet`: a Parquet table, its size from the footer, its text
  columns read dictionary-encoded in batches and measured before they are decoded;
- :mod:`regen.io.workbook`: the sheets of an ``.xlsx`` workbook, its parts' sizes
  checked before any is unpacked, each sheet streamed and stopped at the first
  value beyond the limits;
- :mod:`regen.io.raw`: :class:`RawTable`, a table as read, and what every reader
  does to finish one (:func:`normalise_header`, blank rows dropped, each row's
  number in the file kept).

Messages quote at most :data:`regen._scan.SHOWN_CHARACTERS` characters of a value
(:func:`regen._scan.shorten`); the problems table keeps values as written.
"""

from regen.io.files import TABLE_SUFFIXES, SourceFile, input_files, read_tables, sha256_file
from regen.io.limits import LIMIT_OPTIONS, LIMIT_UNITS, ReadLimits
from regen.io.raw import RawTable, normalise_header

__all__ = ["LIMIT_OPTIONS", "LIMIT_UNITS", "TABLE_SUFFIXES", "RawTable", "ReadLimits", "SourceFile",
           "input_files", "normalise_header", "read_tables", "sha256_file"]
