"""Reading the follow-up tables from disk, exactly as the user saved them, within limits.

This module only reads: every value stays as written (text from CSV, cell
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

- the files' sizes come from the file system before any is opened;
- a text file's first 64 KB are checked for binary data before anything else
  is read; one pass in blocks (numpy over the raw bytes) then counts its lines
  and finds any line with more fields than the column limit and any field
  longer than the cell limit, before pandas parses the file, which then reads
  at most the rows the limits leave; a quoted field spanning lines is measured
  after parsing;
- a Parquet file's footer is read only if its size is plausible; its rows,
  columns, values (a list holds many) and uncompressed size come from it.
  Text columns are read dictionary-encoded, so that a value stored once for
  many rows is measured (longest cell, size once decoded) before it is copied
  to every row;
- an .xlsx workbook's zip directory and the declared uncompressed sizes of its
  parts are checked before any part is unpacked. Each table's sheet is then
  read by a streaming XML parser that keeps only the cells holding a value and
  stops at the first value beyond the limits, so a stray value at XFD1048576
  is refused at once and far-away cells that are formatted but empty cost
  nothing; a cell whose text passes the cell limit, or a shared string that
  does, stops the parse as soon as that much is read, and the shared strings
  the cells use count at every cell. Formula cells without a stored value are
  reported: their value is not in the file.

Messages quote at most :data:`regen._scan.SHOWN_CHARACTERS` characters of a value
(:func:`regen._scan.shorten`); the problems table keeps values as written.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field, fields
from pathlib import Path
from xml.parsers import expat

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from regen._scan import (
    SHOWN_CHARACTERS,
    Beyond,
    SheetReader,
    date_styles,
    parquet_footer_size,
    read_sheet,
    scan_lines,
    shared_strings,
    shorten,
    too_wide,
    workbook_parts,
    zip_directory_size,
)
from regen.tables import TABLES

__all__ = ["LIMIT_OPTIONS", "TABLE_SUFFIXES", "RawTable", "ReadLimits", "SourceFile",
           "input_files", "read_tables", "sha256_file"]

_CSV_SUFFIXES = (".csv", ".tsv", ".txt")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_EXCEL_SUFFIXES = (".xlsx", ".xlsm")
#: Suffixes of the files a cohort folder's tables are read from.
TABLE_SUFFIXES = _CSV_SUFFIXES + _PARQUET_SUFFIXES

_BINARY_CHECK_BYTES = 1 << 16   # a NUL byte in these makes a text file binary
_HEAD_BYTES = 1 << 20           # the header of a text file must start within these
_MAX_ZIP_DIRECTORY = 4 << 20    # a workbook's list of parts (a few KB in practice)


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

    max_file_bytes: int = 1_000_000_000
    max_rows: int = 10_000_000
    max_columns: int = 1_000
    max_cells: int = 50_000_000
    max_uncompressed_bytes: int = 1_000_000_000
    max_cell_bytes: int = 100_000

    def __post_init__(self) -> None:
        for limit in fields(self):
            value = getattr(self, limit.name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise TypeError(f"ReadLimits.{limit.name} must be a whole number, not {value!r}")
            if value < 1:
                raise ValueError(f"ReadLimits.{limit.name} must be at least 1, not {value}")


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


def _raise_limit(limit: str) -> str:
    return f"raise the limit with {LIMIT_OPTIONS[limit]} (ReadLimits({limit}=...) in Python)"


@dataclass
class _Budget:
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
        rule = (f"{what}, more than the limit of {_mb(self.limits.max_uncompressed_bytes)} "
                "for the tables together")
        used = self.limits.max_uncompressed_bytes - self.unpacked
        if used:
            rule += f" ({' and '.join(label for label, _ in self.spent)} take {_mb(used)})"
        return rule


def _mb(size: int) -> str:
    """A size for a message: in MB, or in bytes below 0.1 MB (where MB would read 0.0)."""
    return f"{size / 1e6:,.1f} MB" if size >= 100_000 else f"{size:,} bytes"


@dataclass(frozen=True)
class SourceFile:
    """A file read, with its SHA-256, for the report's provenance section.

    ``path`` is where it was read from; it is never written into a report (only
    ``name`` and ``sha256`` are), and it lets writers refuse to write over an input.
    """

    name: str
    sha256: str
    path: Path | None = field(default=None, compare=False)


def input_files(path: str | Path) -> list[Path]:
    """The files :func:`read_tables` reads from ``path``: the workbook itself, or every file
    of a cohort folder whose name is a table's (``visits.csv``, ``Visits.parquet``, ...),
    including two whose names differ only in case (which reading refuses)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if p.is_file() and p.stem.lower() in TABLES
                  and p.suffix.lower() in TABLE_SUFFIXES)


@dataclass
class RawTable:
    """One table as read, before any value is interpreted.

    Attributes
    ----------
    name : str
        ``patients``, ``treatments`` or ``visits``.
    file : str
        How messages name the file: ``visits.csv`` or ``cohort.xlsx, sheet visits``.
    frame : DataFrame
        The values as read; column names normalised to lower snake case.
    rows : ndarray of int
        For each row of ``frame``, its row number as the user sees it in the
        file (CSV line, spreadsheet row, Parquet record number).
    decimal_comma : bool
        Numbers may use a decimal comma (``;``- or tab-separated text files).
    headers : dict
        Each column's header as written in the file, by its normalised name.
    """

    name: str
    file: str
    frame: pd.DataFrame
    rows: np.ndarray
    decimal_comma: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def normalise_header(name: object) -> str:
    """``' Patient ID '`` → ``'patient_id'``: case, spaces and hyphens do not matter."""
    text = str(name).replace("\ufeff", "").strip().lower()
    return re.sub(r"[\s\-]+", "_", text)


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_tables(path: str | Path, problems, notes, limits: ReadLimits | None = None
                ) -> tuple[dict[str, RawTable], list[SourceFile]]:
    """Read ``patients``, ``treatments`` and ``visits`` from a folder or a workbook.

    Parameters
    ----------
    path : str or Path
        A folder holding ``patients``, ``treatments`` and ``visits`` as
        ``.csv`` (or ``.tsv``/``.txt``) or ``.parquet`` files, or one ``.xlsx``
        workbook with sheets of those names.
    problems : regen.ledger.Problems
        Collector for problems that stop a table from being read.
    notes : regen.ledger.Notes
        Collector for warnings about usable but suspicious input.
    limits : ReadLimits, optional
        How much to read before refusing a file (default: ``ReadLimits()``).

    Returns
    -------
    tables : dict
        The tables that could be read, by name.
    sources : list of SourceFile
        Every file read, with its hash.
    """
    limits = ReadLimits() if limits is None else limits
    path = Path(path)
    if not path.exists():
        problems.add_table(
            str(path), None, "path does not exist",
            "give the folder that holds patients, treatments and visits, or an .xlsx workbook",
        )
        return {}, []
    if path.is_file():
        if path.suffix.lower() in _EXCEL_SUFFIXES:
            if _too_large({None: path}, problems, limits):
                return {}, []
            tables = _read_workbook(path, problems, notes, _Budget(limits))
            return tables, [SourceFile(path.name, sha256_file(path), path)] if tables else []
        problems.add_table(
            path.name, None, "not a folder or an .xlsx workbook",
            "give the folder that holds patients.csv, treatments.csv and visits.csv, "
            "or one .xlsx workbook with sheets of those names",
        )
        return {}, []
    return _read_folder(path, problems, notes, limits)


def _too_large(files: dict[str | None, Path], problems, limits: ReadLimits) -> bool:
    """Record a problem if the files (by table) are larger than the limit together (their
    sizes from the file system): one file alone, or the files together."""
    sizes = {table: file.stat().st_size for table, file in files.items()}
    total = sum(sizes.values())
    if total <= limits.max_file_bytes:
        return False
    fix = "check that this is the right file; if it is, " + _raise_limit("max_file_bytes")
    table = max(sizes, key=lambda name: sizes[name])
    name, size = files[table].name, sizes[table]
    if size > limits.max_file_bytes:
        problems.add(name, table, None, None, f"{size:,} bytes",
                     f"file larger than the limit of {_mb(limits.max_file_bytes)} ({_mb(size)})",
                     fix)
    else:
        listed = ", ".join(f"{files[t].name} {_mb(sizes[t])}" for t in sorted(
            sizes, key=lambda t: -sizes[t]))
        problems.add(name, table, None, None, f"{total:,} bytes",
                     f"files larger together than the limit of {_mb(limits.max_file_bytes)} for "
                     f"the tables' files ({listed})", fix)
    return True


def _too_many(label: str, table: str, problems, budget: _Budget, *, rows: int, columns: int,
              row: int | None = None, exact: bool = True) -> bool:
    """Record a problem if a table of ``rows`` × ``columns`` is beyond the limits (its cells
    beyond those the tables read before it left).

    ``exact=False``: ``rows`` is only known to be at least that (reading stopped there).
    """
    limits = budget.limits
    check = "check that this is the right file (an export of several tables, or a log?); if it is, "
    if columns > limits.max_columns:
        rule = f"{columns:,} columns, more than the limit of {limits.max_columns:,}"
        fix = check + _raise_limit("max_columns")
    elif rows > limits.max_rows:
        rule = (f"{rows:,} rows, more than the limit of {limits.max_rows:,}" if exact
                else f"more rows than the limit of {limits.max_rows:,}")
        fix = check + _raise_limit("max_rows")
    elif rows * columns > budget.cells:
        rule = budget.cells_rule(f"{rows:,} rows × {columns:,} columns" if exact
                                 else f"more than {rows - 1:,} rows × {columns:,} columns")
        fix = "delete empty or unused columns; if the tables really are this large, " + \
            _raise_limit("max_cells")
    else:
        return False
    problems.add(label, table, row, None, None, rule, fix)
    return True


def _read_folder(folder: Path, problems, notes, limits: ReadLimits
                 ) -> tuple[dict[str, RawTable], list[SourceFile]]:
    files = sorted((p for p in folder.iterdir() if p.is_file()), key=lambda p: p.name)
    found: dict[str, Path] = {}
    for name in TABLES:
        candidates = [p for p in files if p.stem.lower() == name
                      and p.suffix.lower() in _CSV_SUFFIXES + _PARQUET_SUFFIXES]
        if not candidates:
            listed = ", ".join(shorten(p.name) for p in files[:20]) or "no files"
            if len(files) > 20:
                listed += f" and {len(files) - 20:,} more"
            books = [p.name for p in files if p.suffix.lower() in _EXCEL_SUFFIXES]
            hint = (f"; or give the workbook itself: {folder.name}/{books[0]}"
                    if len(books) == 1 else "")
            if any(p.stem.lower() == name for p in files if p.suffix.lower() in _EXCEL_SUFFIXES):
                hint = ("; a workbook per table is not read: save each as CSV, or put the three "
                        "tables as sheets of one workbook and give that workbook")
            problems.add_table(
                f"{name}.csv", name, "file missing",
                f"put {name}.csv or {name}.parquet in {folder.name}/ (found: {listed}){hint}",
            )
        elif len(candidates) > 1:
            names = " and ".join(p.name for p in candidates)
            alike = len({p.name.lower() for p in candidates}) < len(candidates)
            problems.add_table(
                candidates[0].name, name,
                f"two files for one table, named alike but for case ({names})" if alike
                else f"two files for one table ({names})",
                "keep one of them and move the other out of the folder",
            )
        else:
            found[name] = candidates[0]
    tables: dict[str, RawTable] = {}
    sources: list[SourceFile] = []
    if _too_large(found, problems, limits):
        return tables, sources
    budget = _Budget(limits)
    for name, file in found.items():
        if file.suffix.lower() in _PARQUET_SUFFIXES:
            table = _read_parquet(file, name, problems, budget)
        else:
            table = _read_text(file, name, problems, notes, budget)
        if table is not None:   # a file refused is not hashed: that would read all of it
            tables[name] = table
            sources.append(SourceFile(file.name, sha256_file(file), file))
    return tables, sources


# ------------------------------------------------------------------ text ---

def _title_rows(filled: list[int]) -> int:
    """How many leading rows are titles: rows with far fewer filled cells than the header."""
    widest = max(filled, default=0)
    titles = 0
    for count in filled:
        if count > max(1, widest // 2):
            break
        titles += 1
    return titles if titles < len(filled) else 0


def _header(lines: list[str]) -> tuple[int, str, list[int]]:
    """Lines above the header (blank, Excel's ``sep=;``, titles), the delimiter, and the
    title lines above the header."""
    declared, top = None, []
    for number, line in enumerate(lines):
        stripped = line.strip()
        found = re.fullmatch(r'"?sep=(.)"?', stripped, flags=re.IGNORECASE)
        if found and declared is None and not top:
            declared = found.group(1)
        elif stripped:
            top.append(number)
        if len(top) == 6:
            break
    if not top:
        return len(lines), declared or ",", []

    def fields(number: int, sep: str) -> list[str]:
        return next(csv.reader([lines[number]], delimiter=sep), [])

    sep = declared or max((",", ";", "\t"),
                          key=lambda d: (max(len(fields(n, d)) for n in top), d == ","))
    titles = _title_rows([sum(1 for cell in fields(n, sep) if cell.strip()) for n in top])
    return top[titles], sep, top[:titles]


def _lines(text: str) -> list[str]:
    """The text's lines as pandas' reader sees them: split at \\n, \\r\\n or \\r only.

    ``str.splitlines`` also splits at vertical tabs, form feeds and other separators,
    which pandas keeps inside a cell; the two would then disagree on the rows.
    """
    lines = re.split(r"\r\n|\n|\r", text)
    return lines[:-1] if lines and lines[-1] == "" else lines


def _head_lines(head: bytes, start: int, encoding: str, whole: bool) -> list[str]:
    """The complete lines of the file's first bytes (a line cut off at their end is left out)."""
    text = head[start:].decode(encoding, errors="replace")
    lines = re.split(r"\r\n|\n|\r", text)
    if not whole or lines[-1] == "":
        lines = lines[:-1]
    return lines


def _read_text(file: Path, name: str, problems, notes, budget: _Budget) -> RawTable | None:
    limits = budget.limits
    size = file.stat().st_size
    with file.open("rb") as handle:
        head = handle.read(_BINARY_CHECK_BYTES)
        utf16 = head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
        if not utf16 and b"\x00" in head:
            problems.add_table(
                file.name, None, "binary data, not a text table",
                "export the table from your spreadsheet as CSV (UTF-8)",
            )
            return None
        head += handle.read(_HEAD_BYTES - len(head))
    whole = len(head) >= size
    if utf16:
        encoding, start = "utf-16", 0
        unit = "<u2" if head.startswith(codecs.BOM_UTF16_LE) else ">u2"
    else:
        encoding, unit = "utf-8", "u1"
        start = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
    lines = _head_lines(head, start, encoding, whole)
    header_line, sep, titles = _header(lines) if "".join(lines).strip() else (0, ",", [])
    scan = scan_lines(file, 2 if utf16 else start, unit, sep, limits.max_columns, utf8=not utf16,
                      cell=limits.max_cell_bytes)
    if scan.not_utf8 is not None:
        notes.add(f"{file.name} is not UTF-8 (byte {scan.not_utf8}); read it as Windows-1252. "
                  "Check accented text, or export as 'CSV UTF-8'.")
        encoding = "cp1252"
        lines = _head_lines(head, start, encoding, whole)
    decoding = {"<u2": "utf-16-le", ">u2": "utf-16-be"}.get(unit, encoding)
    wide = too_wide(file, scan, decoding, sep, limits.max_columns)
    if wide is not None:
        problems.add(file.name, name, wide[0], None, None,
                     f"line with {wide[1]:,} fields, more than the limit of "
                     f"{limits.max_columns:,} columns",
                     "check the delimiter and the quotes on that line; if the table really has "
                     "so many columns, " + _raise_limit("max_columns"))
        return None
    if scan.long is not None:
        header = next(csv.reader(lines[header_line: header_line + 1], delimiter=sep), [])
        _long_field(file, name, scan, decoding, header, header_line, problems, limits)
        return None
    if not whole and not "".join(lines).strip():
        problems.add_table(file.name, name, f"no header in the first {_mb(_HEAD_BYTES)}",
                           f"the file needs a header row naming the {name} columns at its top")
        return None
    if titles:
        shown = "; ".join(shorten(lines[n].strip(), 60) for n in titles)
        notes.add(f"{file.name}: skipped {len(titles)} line(s) above the header ({shown!r}); the "
                  f"header is line {header_line + 1}.")
    if header_line >= len(lines):
        problems.add_table(file.name, name, "file is empty",
                           f"the file needs a header row naming the {name} columns")
        return None
    header = next(csv.reader([lines[header_line]], delimiter=sep), [])
    first_data = next(csv.reader(lines[header_line + 1: header_line + 2], delimiter=sep), [])
    width = max(len(header), len(first_data))
    if not scan.quotes and _too_many(file.name, name, problems, budget, rows=scan.lines - header_line
                                     - 1, columns=width):
        return None   # without quotes, each line is a row

    def source() -> io.TextIOWrapper:
        raw = file.open("rb")
        raw.seek(start)
        return io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")

    try:
        cap = min(limits.max_rows, budget.cells // max(width, 1))
        frame = _read_fields(source, header_line + 1, sep, width, cap + 1)
        if frame is None:
            # Some line is wider than the first ones: find the widest, then read again so
            # that a stray value lands in a column without a header and is reported.
            width, row = _widest(source, header_line + 1, sep, width, limits.max_columns)
            if row is not None:
                problems.add(file.name, name, row, None, None,
                             f"row with {width:,} fields, more than the limit of "
                             f"{limits.max_columns:,} columns",
                             "check the delimiter and the quotes on that row; if the table really "
                             "has so many columns, " + _raise_limit("max_columns"))
                return None
            cap = min(limits.max_rows, budget.cells // max(width, 1))
            frame = _read_fields(source, header_line + 1, sep, width, cap + 1)
        if frame is None:
            raise ValueError("rows of different widths that could not be lined up")
    except (pd.errors.ParserError, ValueError, csv.Error) as error:
        # pandas names the file's line ("line 5", counted from 1) or, for a quote left
        # open, the row where it starts ("row 3", counted from 0).
        found = re.search(r"\b(line|row) (\d+)", str(error))
        row = None if not found else int(found.group(2)) + (found.group(1) == "row")
        problems.add(
            file.name, name, row, None, None,
            f"the file cannot be read as a table ({str(error).strip()})",
            "every row needs as many fields as the header; quote values that contain the delimiter",
        )
        return None
    if len(frame) > cap and _too_many(file.name, name, problems, budget, rows=len(frame),
                                      columns=width, exact=False):
        return None
    rows = np.arange(len(frame), dtype=np.int64) + header_line + 2
    longest = _longest_value(frame, limits.max_cell_bytes)
    if longest is not None:   # a quoted field holding line breaks or delimiters
        at, column, length = longest
        names = header + [None] * (width - len(header))
        problems.add(file.name, name, int(rows[at]), _column_name(names[column]), None,
                     f"value of {length:,} bytes, more than the limit of "
                     f"{limits.max_cell_bytes:,} bytes for one cell (it starts "
                     f"'{shorten(frame.iat[at, column])}')", _LONG_TEXT_FIX + _LONG_FIX)
        return None
    budget.spend(file.name, len(frame) * width)
    frame.columns = header + [f"unnamed: column {i + 1}" for i in range(len(header), width)]
    return _finish(frame, name, file.name, problems, rows=rows, header_row=header_line + 1,
                   decimal_comma=sep != ",")


_LONG_TEXT_FIX = ("check the quotes (a quote left open makes one value of many lines) and the "
                  "delimiter; ")
_LONG_FIX = "if cells really hold this much text, " + _raise_limit("max_cell_bytes")


def _column_name(header: str | None) -> str | None:
    return None if header is None or not normalise_header(header) else normalise_header(header)


def _long_field(file: Path, name: str, scan, encoding: str, header: list[str],
                header_line: int, problems, limits: ReadLimits) -> None:
    """Report the field the line scan found longer than the cell limit, with its start."""
    line, offset, number, length = scan.long
    with file.open("rb") as handle:
        handle.seek(offset)
        start = handle.read(min(4 * SHOWN_CHARACTERS, length or 4 * SHOWN_CHARACTERS))
    start = start.decode(encoding, errors="replace")[:SHOWN_CHARACTERS] + "…"
    column = None
    if number is not None and line > header_line + 1 and number < len(header):
        column = _column_name(header[number])
    size = (f"value of {length:,} bytes, more than" if length is not None
            else "value longer than")
    problems.add(file.name, name, line, column, None,
                 f"{size} the limit of {limits.max_cell_bytes:,} bytes for one cell (it starts "
                 f"'{start}')", _LONG_TEXT_FIX + _LONG_FIX)


def _longest_value(frame: pd.DataFrame, limit: int) -> tuple[int, int, int] | None:
    """The first value longer than ``limit`` bytes, as (row position, column position,
    bytes), or None; Arrow measures every text column without copying it."""
    for j in range(frame.shape[1]):
        values = pa.array(frame.iloc[:, j].array)
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            continue
        lengths = pc.binary_length(values)
        if len(values) and (pc.max(lengths).as_py() or 0) > limit:
            at = pc.index(pc.greater(lengths, limit), True).as_py()
            return at, j, int(lengths[at].as_py())
    return None


def _read_fields(source, skip: int, sep: str, width: int, nrows: int) -> pd.DataFrame | None:
    """The lines after the header as text cells, ``width`` columns; None if a line is wider.

    Columns are named by position and the header is set afterwards, so that a header
    repeated exactly is not renamed by pandas (``pain``, ``pain.1``) but reported.
    At most ``nrows`` rows are read.
    """
    with warnings.catch_warnings(record=True) as caught, source() as handle:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        try:
            frame = pd.read_csv(
                handle, sep=sep, header=None, names=range(width), skiprows=skip, nrows=nrows,
                index_col=False, dtype="string[pyarrow]", keep_default_na=False,
                na_filter=False, skip_blank_lines=False, engine="c")
        except pd.errors.ParserError as error:
            if "Expected" in str(error):
                return None  # a line with more fields than the first ones
            raise
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        return None
    return frame


def _widest(source, skip: int, sep: str, width: int, limit: int) -> tuple[int, int | None]:
    """The most fields in a row after the first ``skip`` lines, and the first row with more
    than ``limit`` fields (its line number) or None. Only read when a row is wider than the
    first ones; the line scan has already refused any line wider than ``limit``."""
    with source() as handle:
        for _ in range(skip):
            handle.readline()
        for number, row in enumerate(csv.reader(handle, delimiter=sep), start=skip + 1):
            if len(row) > limit:
                return len(row), number
            width = max(width, len(row))
    return width, None


# --------------------------------------------------------------- Parquet ---

#: Integer columns become pandas' nullable integers: exact, also with missing values
#: (to_pandas would otherwise make an integer column with a gap float64); text stays in
#: Arrow, as from a CSV file (not one Python object a cell).
_PANDAS_TYPES = {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(),
                 pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype(),
                 pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
                 pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype(),
                 pa.string(): pd.StringDtype("pyarrow"), pa.large_string(): pd.StringDtype("pyarrow")}
_MAX_PARQUET_FOOTER = 32_000_000   # a Parquet file's metadata (a few KB for a table)
_PARQUET_BATCH_ROWS = 65_536   # rows decoded at a time, each batch measured before the next


def _read_parquet(file: Path, name: str, problems, budget: _Budget) -> RawTable | None:
    limits = budget.limits

    def refuse(rule: str, fix: str, column: str | None = None) -> None:
        problems.add(file.name, name, None, column, None, rule, fix)

    unpacked_fix = "check that this is the right file; if it is, " + _raise_limit(
        "max_uncompressed_bytes")
    parquet = None
    try:
        footer = parquet_footer_size(file)
        if footer is not None and footer > _MAX_PARQUET_FOOTER:
            raise ValueError(f"its footer takes {_mb(footer)}; a table's takes a few KB")
        parquet = pq.ParquetFile(file)
        meta = parquet.metadata   # the footer only: no data read yet
        rows, columns = meta.num_rows, meta.num_columns
        schema = parquet.schema_arrow
        nested = [f for f in schema if pa.types.is_nested(f.type)]
        if nested:
            refuse(f"column of {shorten(nested[0].type)}, which a table's cell cannot hold",
                   "write the column as text, numbers or dates", _column_name(nested[0].name))
            return None
        if _too_many(file.name, name, problems, budget, rows=rows, columns=columns):
            return None
        # Declared data, and the fixed-width columns as they will be in memory (a column
        # of nulls, or dictionary-encoded, may take little room in the file).
        declared = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        fixed = sum(rows * f.type.bit_width // 8 for f in schema if _fixed_width(f.type))
        if max(declared, fixed) > budget.unpacked:
            refuse(budget.unpacked_rule(f"data that unpack to {_mb(max(declared, fixed))}"),
                   unpacked_fix)
            return None
        text = [f.name for f in schema if _variable_width(f.type)]
        parquet.close()
        parquet = pq.ParquetFile(file, metadata=meta, read_dictionary=text)
        # In batches, text dictionary-encoded (each value stored once), each batch measured
        # as it would be decoded before the next is read: a footer can understate the data.
        batches, size, rows_read = [], 0, 0
        for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS):
            part = pa.Table.from_batches([batch])
            part_size, longest = _decoded(part, limits.max_cell_bytes)
            if longest is not None:
                at, j, length = longest
                problems.add(file.name, name, rows_read + at + 1,
                             _column_name(part.column_names[j]), None,
                             f"value of {length:,} bytes, more than the limit of "
                             f"{limits.max_cell_bytes:,} bytes for one cell", _LONG_FIX)
                return None
            size += part_size
            if size > budget.unpacked:
                refuse(budget.unpacked_rule(
                    f"columns that take more than {_mb(size)} once read (each dictionary-encoded "
                    "value counted at every row; reading stopped there)"), unpacked_fix)
                return None
            batches.append(batch)
            rows_read += len(batch)
        table = pa.Table.from_batches(batches, schema=parquet.schema_arrow if not batches
                                      else batches[0].schema)
        table = table.cast(pa.schema([f.with_type(f.type.value_type)
                                      if pa.types.is_dictionary(f.type) else f
                                      for f in table.schema], metadata=table.schema.metadata))
        frame = table.to_pandas(types_mapper=_PANDAS_TYPES.get)
        del table
    except Exception as error:  # pyarrow raises many types for a damaged file
        problems.add_table(
            file.name, name,
            f"not a readable Parquet file ({type(error).__name__}: {shorten(error, 300)})",
            "write the table again, or export it as CSV",
        )
        return None
    finally:
        if parquet is not None:
            parquet.close()
    budget.spend(file.name, rows * columns, size)
    # A named index (df.set_index("patient_id").to_parquet()) holds data: it becomes a
    # column again. An unnamed one is pandas' row numbers and is dropped.
    named = [level for level in frame.index.names if level is not None]
    if named:
        frame = frame.reset_index(level=named, allow_duplicates=True)
    frame = frame.reset_index(drop=True)
    return _finish(frame, name, file.name, problems, rows=np.arange(1, len(frame) + 1),
                   header_row=0)


def _fixed_width(kind: pa.DataType) -> bool:
    try:
        return kind.bit_width > 0 and not pa.types.is_dictionary(kind)
    except ValueError:   # variable width: no bit_width
        return False


def _variable_width(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind)
            or pa.types.is_large_binary(kind))


def _decoded(table: pa.Table, limit: int) -> tuple[int, tuple[int, int, int] | None]:
    """The bytes the text columns of ``table`` take once each dictionary is decoded (their
    values, and four bytes of offset a row), plus those of the other columns as they are;
    and the first value longer than ``limit`` bytes as (row, column, bytes), or None."""
    total = 0
    for j, column in enumerate(table.columns):
        if not _variable_width(column.type):
            total += column.nbytes
            continue
        offset = 0
        for chunk in column.chunks:
            if pa.types.is_dictionary(chunk.type):
                lengths = pc.take(pc.binary_length(chunk.dictionary), chunk.indices)
            else:
                lengths = pc.binary_length(chunk)
            total += (pc.sum(lengths).as_py() or 0) + 4 * len(chunk)
            if len(chunk) and (pc.max(lengths).as_py() or 0) > limit:
                at = pc.index(pc.greater(lengths, limit), True).as_py()
                return total, (offset + at, j, int(lengths[at].as_py()))
            offset += len(chunk)
    return total, None


# -------------------------------------------------------------- workbook ---

def _read_workbook(path: Path, problems, notes, budget: _Budget) -> dict[str, RawTable]:
    limits = budget.limits

    def damaged(error: Exception | str) -> dict:
        detail = (f"{type(error).__name__}: {shorten(error, 300)}" if isinstance(error, Exception)
                  else error)
        problems.add_table(path.name, None, f"not a readable .xlsx workbook ({detail})",
                           "open it in your spreadsheet program and save it again as .xlsx")
        return {}

    try:
        directory = zip_directory_size(path)
        if directory is not None and directory > _MAX_ZIP_DIRECTORY:
            return damaged(f"its list of parts takes {_mb(directory)}; a workbook's takes a few KB")
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
            unpacked = sum(part.file_size for part in parts)
            if unpacked > limits.max_uncompressed_bytes:
                largest = max(parts, key=lambda part: part.file_size)
                problems.add(path.name, None, None, None, None,
                             f"workbook that unpacks to {_mb(unpacked)}, more than the limit of "
                             f"{_mb(limits.max_uncompressed_bytes)} (largest part: "
                             f"{shorten(largest.filename)}, {_mb(largest.file_size)})",
                             "check that this is the right file (a small file that unpacks to "
                             "so much is suspicious); if it is, "
                             + _raise_limit("max_uncompressed_bytes"))
                return {}
            return _read_sheets(path, archive, problems, notes, budget)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, IndexError, ValueError,
            expat.ExpatError, OSError, EOFError, zlib.error, NotImplementedError,
            RuntimeError) as error:  # zipfile, expat and int() raise these for a damaged workbook
        return damaged(error)


def _read_sheets(path: Path, archive: zipfile.ZipFile, problems, notes, budget: _Budget
                 ) -> dict[str, RawTable]:
    limits = budget.limits
    sheets, strings_part, styles_part, epoch = workbook_parts(archive)
    by_name: dict[str, list[tuple[str, str | None]]] = {}
    for sheet, part in sheets:
        by_name.setdefault(normalise_header(sheet), []).append((sheet, part))
    strings = styles = None
    tables = {}
    for name in TABLES:
        found = by_name.get(name, [])
        if not found:
            listed = ", ".join(shorten(sheet) for sheet, _ in sheets[:20]) or "none"
            if len(sheets) > 20:
                listed += f" and {len(sheets) - 20:,} more"
            problems.add_table(path.name, name, f"sheet '{name}' missing",
                               f"name the sheets patients, treatments and visits (found: {listed})")
            continue
        if len(found) > 1:
            problems.add_table(path.name, name, "two sheets for one table ("
                               + " and ".join(shorten(sheet) for sheet, _ in found[:5]) + ")",
                               "keep one of them, and rename or delete the other")
            continue
        (title, part), label = found[0], f"{path.name}, sheet {name}"
        if part is None or part not in archive.namelist():
            raise ValueError(f"sheet {shorten(title)!r} has no worksheet part")
        if strings is None:
            try:
                strings, sizes = shared_strings(archive, strings_part, limits.max_cell_bytes)
            except Beyond as beyond:
                problems.add(path.name, None, None, None, None, *_beyond(beyond, budget))
                return {}
            styles = date_styles(archive, styles_part)
        try:
            sheet = read_sheet(archive, part, strings, styles, epoch, max_rows=limits.max_rows,
                               max_columns=limits.max_columns, max_cells=budget.cells,
                               max_cell_bytes=limits.max_cell_bytes,
                               max_text_bytes=budget.unpacked, sizes=sizes)
        except Beyond as beyond:
            problems.add(label, name, beyond.row, None, beyond.value, *_beyond(beyond, budget))
            continue
        table = _sheet_table(sheet, name, label, problems, notes)
        if table is not None:
            budget.spend(f"sheet {name}", max(sheet.n_rows - 1, 0) * sheet.width,
                         sheet.text_bytes)
            tables[name] = table
    return tables


def _beyond(beyond: Beyond, budget: _Budget) -> tuple[str, str]:
    """The rule and fix for a value beyond the limits (the sheet's stray cell)."""
    limits = budget.limits
    declared = f" (the sheet declares its range as {beyond.dimension})" if beyond.dimension else ""
    fix = ("delete the stray cells beyond the data (select the columns right of the table and "
           "the rows below it, delete them, and save)")
    stray = f"cell {beyond.cell} holds a value beyond the table"
    if beyond.reason == "grid":
        return f"cell {beyond.cell} lies outside a spreadsheet's grid (A1:XFD1048576){declared}", fix
    if beyond.reason == "columns":
        return (f"{stray}: column {beyond.columns:,} is past the limit of "
                f"{limits.max_columns:,} columns{declared}",
                f"{fix}; if the table really is that wide, " + _raise_limit("max_columns"))
    if beyond.reason == "rows":
        return (f"{stray}: row {beyond.row:,} is past the limit of {limits.max_rows:,} rows"
                f"{declared}", f"{fix}; if the table really is that long, " + _raise_limit("max_rows"))
    if beyond.reason in ("text", "string"):
        where = (f"cell {beyond.cell} holds" if beyond.reason == "text" else
                 f"shared string {beyond.row:,} of {shorten(beyond.cell)} (the text of cells) holds")
        return (f"{where} more than the limit of {limits.max_cell_bytes:,} bytes for one cell "
                f"(it starts '{beyond.start}…')",
                "shorten that text (a follow-up table's cells hold ids, dates, numbers and short "
                "notes); " + _LONG_FIX)
    if beyond.reason == "unpacked":
        return (budget.unpacked_rule(f"cells whose text comes to {_mb(beyond.size)} (to cell "
                                     f"{beyond.cell}; a shared string counts at every cell)"),
                "check that this is the right file; if it is, "
                + _raise_limit("max_uncompressed_bytes"))
    return (budget.cells_rule(f"values spread over {beyond.rows - 1:,} rows × "
                              f"{beyond.columns:,} columns below the header (to cell "
                              f"{beyond.cell})") + declared,
            f"{fix}; if the tables really are that large, " + _raise_limit("max_cells"))


def _filled(row: np.ndarray) -> int:
    return sum(1 for value in row if value is not None and str(value).strip())


def _sheet_table(sheet: SheetReader, name: str, label: str, problems, notes) -> RawTable | None:
    grid, numbers = sheet.grid()
    counts: list[int] = []
    for begin in range(0, len(grid), 64):   # until six rows with a value are found
        counts += [_filled(row) for row in grid[begin: begin + 64]]
        if sum(count > 0 for count in counts) >= 6:
            break
    used = np.flatnonzero(np.asarray(counts, dtype=np.int64) > 0)
    header_at = int(used[_title_rows([counts[i] for i in used[:6]])]) if len(used) else 0
    header = list(grid[header_at]) if len(used) else []
    if sheet.n_unknown:
        fix = ("open the workbook in your spreadsheet program and save it, so that the values "
               "of its formulas are stored (a workbook written by a program may hold formulas "
               "without their values)")
        for cell, row, column, formula in sheet.unknown:
            named = header[column - 1] if column <= len(header) else None
            problems.add(label, name, row, None if named is None else normalise_header(named),
                         "=" + formula, f"cell {cell} holds a formula without a stored "
                         "value, so its value is unknown", fix)
        if sheet.n_unknown > len(sheet.unknown):
            problems.add(label, name, None, None, None,
                         f"{sheet.n_unknown - len(sheet.unknown):,} more formula cells without "
                         "a stored value", fix)
        return None
    if not len(used):
        problems.add_table(label, name, "sheet is empty",
                           f"the sheet needs a header row naming the {name} columns")
        return None
    if header_at > used[0]:
        notes.add(f"{label}: skipped row(s) above the header; the header is row "
                  f"{numbers[header_at]}.")
    frame = pd.DataFrame(grid[header_at + 1:], columns=range(grid.shape[1]))
    frame.columns = [f"unnamed: column {i + 1}" if h is None else h for i, h in enumerate(header)]
    return _finish(frame, name, label, problems, rows=numbers[header_at + 1:],
                   header_row=int(numbers[header_at]))


# ---------------------------------------------------------------- common ---

def _finish(frame: pd.DataFrame, name: str, label: str, problems, *, rows: np.ndarray,
            header_row: int, decimal_comma: bool = False) -> RawTable | None:
    """Normalise headers, drop blank spacing rows, and keep each row's number in the file.

    ``rows`` are the rows' numbers as the user sees them; ``header_row`` is the header's
    (0 for Parquet, which has no header row).
    """
    written = [str(column) for column in frame.columns]
    headers = [normalise_header(column) for column in written]
    # A blank header cell is a column without a name, like one past the header's end.
    headers = [h if h else f"unnamed: column {i + 1}" for i, h in enumerate(headers)]
    counts = pd.Series(headers).value_counts()
    repeated = sorted(counts.index[counts > 1])
    for header in repeated:
        problems.add(label, name, header_row or None, header, None,
                     "column appears more than once", "keep one column of that name")
    if repeated:
        return None
    frame.columns = headers
    rows = np.asarray(rows, dtype=np.int64)
    # An unnamed, empty column comes from a stray delimiter at the end of each line;
    # values in a column without a name are reported.
    unnamed = [i for i, h in enumerate(headers) if h.startswith("unnamed:")]
    if unnamed:
        stray = _filled_cells(frame.iloc[:, unnamed])
        raw = RawTable(name=name, file=label, frame=frame, rows=rows)
        for j in np.flatnonzero(stray.any(axis=0)):
            problems.add_rows(raw, stray[:, j], None, frame.iloc[:, unnamed[j]],
                              "value in a column that has no header",
                              "give the column a header, or delete the stray values")
        frame = frame.drop(columns=[headers[i] for i in unnamed])
    # Rows with no value at all are spacing, not data: column by column, until none is left.
    blank = np.ones(len(frame), dtype=bool)
    for j in range(frame.shape[1]):
        blank &= _blank_values(frame.iloc[:, j])
        if not blank.any():
            break
    if len(frame.columns) and blank.any():
        frame = frame.loc[~blank].reset_index(drop=True)
        rows = rows[~blank]
    return RawTable(name=name, file=label, frame=frame, rows=rows, decimal_comma=decimal_comma,
                    headers={h: w for h, w in zip(headers, written, strict=True)
                             if not h.startswith("unnamed:")})


def _object_columns(frame: pd.DataFrame) -> np.ndarray:
    return np.array([dtype == np.dtype(object) for dtype in frame.dtypes], dtype=bool)


def _filled_cells(frame: pd.DataFrame) -> np.ndarray:
    """Where a cell holds something (not missing, not only whitespace), rows × columns.

    Object columns (a workbook's cells) are looked at in one block, so that a sheet
    thousands of columns wide (nearly all empty) costs no pandas call per column; only
    the text cells are stripped.
    """
    filled = np.zeros(frame.shape, dtype=bool)
    objects = _object_columns(frame)
    if objects.any():
        values = frame.iloc[:, np.flatnonzero(objects)].to_numpy(dtype=object)
        block = ~pd.isna(values)
        block[block] = ~_blank_text(values[block])
        filled[:, objects] = block
    for j in np.flatnonzero(~objects):
        filled[:, j] = ~_blank_values(frame.iloc[:, j])
    return filled


def _blank_values(values: pd.Series) -> np.ndarray:
    """True where a cell holds nothing: missing, or text that is only whitespace."""
    if values.dtype == object:   # a workbook's cells: only its text is looked at
        cells = values.to_numpy(dtype=object)
        blank = pd.isna(cells)
        blank[~blank] = _blank_text(cells[~blank])
        return blank
    if pd.api.types.is_string_dtype(values):
        text = values.str.strip()
        return (text.isna() | (text == "")).to_numpy(dtype=bool)
    return values.isna().to_numpy(dtype=bool)


_BLANK = np.frompyfunc(lambda value: isinstance(value, str) and not value.strip(), 1, 1)


def _blank_text(cells: np.ndarray) -> np.ndarray:
    """Which of these cells (none missing) are text of only whitespace."""
    return _BLANK(cells).astype(bool) if len(cells) else np.zeros(0, dtype=bool)
