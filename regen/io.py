"""Reading the follow-up tables from disk, exactly as the user saved them, within limits.

This module only reads: every value stays as written (text from CSV, cell
values from Excel, typed columns from Parquet, integers exact), with the row
number the user sees in that file, so that :mod:`regen.validation` can name
file, row, column and value in every message. Problems that stop a file from
being read at all (missing, binary, malformed, too large) are recorded, not
raised, so that one run reports everything.

Reads are bounded by :class:`ReadLimits`, and every check runs before the data
are loaded (the scanners are in :mod:`regen._scan`):

- each file's size comes from the file system before it is opened;
- a text file's first 64 KB are checked for binary data before anything else
  is read; one pass in blocks (numpy over the raw bytes) then counts its lines
  and finds any line with more fields than the column limit, before pandas
  parses the file, which then reads at most the row limit;
- a Parquet file's rows, columns and uncompressed size come from its footer;
- an .xlsx workbook's zip directory and the declared uncompressed sizes of its
  parts are checked before any part is unpacked. Each table's sheet is then
  read by a streaming XML parser that keeps only the cells holding a value and
  stops at the first value beyond the limits, so a stray value at XFD1048576
  is refused at once and far-away cells that are formatted but empty cost
  nothing. Formula cells without a stored value are reported: their value is
  not in the file.
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
import pyarrow.parquet as pq

from regen._scan import (
    Beyond,
    SheetReader,
    date_styles,
    read_sheet,
    scan_lines,
    shared_strings,
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
    cell far from the table) fails fast with a message instead of filling the
    memory. The defaults fit a large practice: a folder of 5 million visit rows
    loads with them.

    Parameters
    ----------
    max_file_bytes : int, default 1_000_000_000
        Largest file read, from its size on disk: each CSV or Parquet file, or
        the workbook.
    max_rows : int, default 10_000_000
        Most rows in one table, below its header.
    max_columns : int, default 1_000
        Most columns in one table; in a text file, also the most fields on any
        one line.
    max_cells : int, default 100_000_000
        Most cells (rows × columns) in one table. This bounds the memory a
        table takes while it is read (about 8 bytes a cell, plus its values),
        also for a small file whose repeated values unpack to a large table.
    max_uncompressed_bytes : int, default 1_000_000_000
        Most bytes a file unpacks to: for an ``.xlsx`` workbook, the total
        declared uncompressed size of its parts; for a Parquet file, the size
        of its column data as its footer declares it (before decompression,
        after dictionary encoding).

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
    max_cells: int = 100_000_000
    max_uncompressed_bytes: int = 1_000_000_000

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
}


def _raise_limit(limit: str) -> str:
    return f"raise the limit with {LIMIT_OPTIONS[limit]} (ReadLimits({limit}=...) in Python)"


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


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
    problems : regen.validation.Problems
        Collector for problems that stop a table from being read.
    notes : regen.validation.Notes
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
            if _too_large(path, None, problems, limits):
                return {}, []
            tables = _read_workbook(path, problems, notes, limits)
            return tables, [SourceFile(path.name, sha256_file(path), path)] if tables else []
        problems.add_table(
            path.name, None, "not a folder or an .xlsx workbook",
            "give the folder that holds patients.csv, treatments.csv and visits.csv, "
            "or one .xlsx workbook with sheets of those names",
        )
        return {}, []
    return _read_folder(path, problems, notes, limits)


def _too_large(file: Path, table: str | None, problems, limits: ReadLimits) -> bool:
    """Record a problem if the file is larger than the limit (its size from the file system)."""
    size = file.stat().st_size
    if size <= limits.max_file_bytes:
        return False
    problems.add(file.name, table, None, None, f"{size:,} bytes",
                 f"file larger than the limit of {_mb(limits.max_file_bytes)} ({_mb(size)})",
                 "check that this is the right file; if it is, " + _raise_limit("max_file_bytes"))
    return True


def _too_many(label: str, table: str, problems, limits: ReadLimits, *, rows: int, columns: int,
              row: int | None = None, exact: bool = True) -> bool:
    """Record a problem if a table of ``rows`` × ``columns`` is beyond the limits.

    ``exact=False``: ``rows`` is only known to be at least that (reading stopped there).
    """
    check = "check that this is the right file (an export of several tables, or a log?); if it is, "
    if columns > limits.max_columns:
        rule = f"{columns:,} columns, more than the limit of {limits.max_columns:,}"
        fix = check + _raise_limit("max_columns")
    elif rows > limits.max_rows:
        rule = (f"{rows:,} rows, more than the limit of {limits.max_rows:,}" if exact
                else f"more rows than the limit of {limits.max_rows:,}")
        fix = check + _raise_limit("max_rows")
    elif rows * columns > limits.max_cells:
        rule = (f"{rows:,} rows × {columns:,} columns" if exact
                else f"more than {rows - 1:,} rows × {columns:,} columns")
        rule += f", more cells than the limit of {limits.max_cells:,}"
        fix = "delete empty or unused columns; if the table really is this large, " + \
            _raise_limit("max_cells")
    else:
        return False
    problems.add(label, table, row, None, None, rule, fix)
    return True


def _read_folder(folder: Path, problems, notes, limits: ReadLimits
                 ) -> tuple[dict[str, RawTable], list[SourceFile]]:
    files = sorted((p for p in folder.iterdir() if p.is_file()), key=lambda p: p.name)
    tables: dict[str, RawTable] = {}
    sources: list[SourceFile] = []
    for name in TABLES:
        candidates = [p for p in files if p.stem.lower() == name
                      and p.suffix.lower() in _CSV_SUFFIXES + _PARQUET_SUFFIXES]
        if not candidates:
            found = ", ".join(p.name for p in files) or "no files"
            books = [p.name for p in files if p.suffix.lower() in _EXCEL_SUFFIXES]
            hint = (f"; or give the workbook itself: {folder.name}/{books[0]}"
                    if len(books) == 1 else "")
            if any(p.stem.lower() == name for p in files if p.suffix.lower() in _EXCEL_SUFFIXES):
                hint = ("; a workbook per table is not read: save each as CSV, or put the three "
                        "tables as sheets of one workbook and give that workbook")
            problems.add_table(
                f"{name}.csv", name, "file missing",
                f"put {name}.csv or {name}.parquet in {folder.name}/ (found: {found}){hint}",
            )
            continue
        if len(candidates) > 1:
            names = " and ".join(p.name for p in candidates)
            alike = len({p.name.lower() for p in candidates}) < len(candidates)
            problems.add_table(
                candidates[0].name, name,
                f"two files for one table, named alike but for case ({names})" if alike
                else f"two files for one table ({names})",
                "keep one of them and move the other out of the folder",
            )
            continue
        file = candidates[0]
        if _too_large(file, name, problems, limits):
            continue
        if file.suffix.lower() in _PARQUET_SUFFIXES:
            table = _read_parquet(file, name, problems, limits)
        else:
            table = _read_text(file, name, problems, notes, limits)
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


def _read_text(file: Path, name: str, problems, notes, limits: ReadLimits) -> RawTable | None:
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
    scan = scan_lines(file, 2 if utf16 else start, unit, sep, limits.max_columns, utf8=not utf16)
    if scan.not_utf8 is not None:
        notes.add(f"{file.name} is not UTF-8 (byte {scan.not_utf8}); read it as Windows-1252. "
                  "Check accented text, or export as 'CSV UTF-8'.")
        encoding = "cp1252"
        lines = _head_lines(head, start, encoding, whole)
    wide = too_wide(file, scan, {"<u2": "utf-16-le", ">u2": "utf-16-be"}.get(unit, encoding), sep,
                     limits.max_columns)
    if wide is not None:
        problems.add(file.name, name, wide[0], None, None,
                     f"line with {wide[1]:,} fields, more than the limit of "
                     f"{limits.max_columns:,} columns",
                     "check the delimiter and the quotes on that line; if the table really has "
                     "so many columns, " + _raise_limit("max_columns"))
        return None
    if not whole and not "".join(lines).strip():
        problems.add_table(file.name, name, f"no header in the first {_mb(_HEAD_BYTES)}",
                           f"the file needs a header row naming the {name} columns at its top")
        return None
    if titles:
        shown = "; ".join(lines[n].strip()[:60] for n in titles)
        notes.add(f"{file.name}: skipped {len(titles)} line(s) above the header ({shown!r}); the "
                  f"header is line {header_line + 1}.")
    if header_line >= len(lines):
        problems.add_table(file.name, name, "file is empty",
                           f"the file needs a header row naming the {name} columns")
        return None
    header = next(csv.reader([lines[header_line]], delimiter=sep), [])
    first_data = next(csv.reader(lines[header_line + 1: header_line + 2], delimiter=sep), [])
    width = max(len(header), len(first_data))
    if not scan.quotes and _too_many(file.name, name, problems, limits, rows=scan.lines - header_line
                                     - 1, columns=width):
        return None   # without quotes, each line is a row

    def source() -> io.TextIOWrapper:
        raw = file.open("rb")
        raw.seek(start)
        return io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")

    try:
        cap = min(limits.max_rows, limits.max_cells // max(width, 1))
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
            cap = min(limits.max_rows, limits.max_cells // max(width, 1))
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
    if len(frame) > cap and _too_many(file.name, name, problems, limits, rows=len(frame),
                                      columns=width, exact=False):
        return None
    frame.columns = header + [f"unnamed: column {i + 1}" for i in range(len(header), width)]
    rows = np.arange(len(frame), dtype=np.int64) + header_line + 2
    return _finish(frame, name, file.name, problems, rows=rows, header_row=header_line + 1,
                   decimal_comma=sep != ",")


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
#: (to_pandas would otherwise make an integer column with a gap float64).
_EXACT_INTEGERS = {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(),
                   pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype(),
                   pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
                   pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype()}


def _read_parquet(file: Path, name: str, problems, limits: ReadLimits) -> RawTable | None:
    parquet = None
    try:
        parquet = pq.ParquetFile(file)
        meta = parquet.metadata   # the footer only: no data read yet
        rows, columns = meta.num_rows, meta.num_columns
        unpacked = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if _too_many(file.name, name, problems, limits, rows=rows, columns=columns):
            return None
        if unpacked > limits.max_uncompressed_bytes:
            problems.add(file.name, name, None, None, None,
                         f"data that unpack to {_mb(unpacked)}, more than the limit of "
                         f"{_mb(limits.max_uncompressed_bytes)}",
                         "check that this is the right file; if it is, "
                         + _raise_limit("max_uncompressed_bytes"))
            return None
        frame = parquet.read().to_pandas(types_mapper=_EXACT_INTEGERS.get)
    except Exception as error:  # pyarrow raises many types for a damaged file
        problems.add_table(
            file.name, name, f"not a readable Parquet file ({type(error).__name__}: {error})",
            "write the table again, or export it as CSV",
        )
        return None
    finally:
        if parquet is not None:
            parquet.close()
    # A named index (df.set_index("patient_id").to_parquet()) holds data: it becomes a
    # column again. An unnamed one is pandas' row numbers and is dropped.
    named = [level for level in frame.index.names if level is not None]
    if named:
        frame = frame.reset_index(level=named, allow_duplicates=True)
    frame = frame.reset_index(drop=True)
    return _finish(frame, name, file.name, problems, rows=np.arange(1, len(frame) + 1),
                   header_row=0)


# -------------------------------------------------------------- workbook ---

def _read_workbook(path: Path, problems, notes, limits: ReadLimits) -> dict[str, RawTable]:
    def damaged(error: Exception | str) -> dict:
        detail = f"{type(error).__name__}: {error}" if isinstance(error, Exception) else error
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
                             f"{largest.filename}, {_mb(largest.file_size)})",
                             "check that this is the right file (a small file that unpacks to "
                             "so much is suspicious); if it is, "
                             + _raise_limit("max_uncompressed_bytes"))
                return {}
            return _read_sheets(path, archive, problems, notes, limits)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, IndexError, ValueError,
            expat.ExpatError, OSError, EOFError, zlib.error, NotImplementedError,
            RuntimeError) as error:  # zipfile, expat and int() raise these for a damaged workbook
        return damaged(error)


def _read_sheets(path: Path, archive: zipfile.ZipFile, problems, notes, limits: ReadLimits
                 ) -> dict[str, RawTable]:
    sheets, strings_part, styles_part, epoch = workbook_parts(archive)
    by_name: dict[str, list[tuple[str, str | None]]] = {}
    for sheet, part in sheets:
        by_name.setdefault(normalise_header(sheet), []).append((sheet, part))
    strings = styles = None
    tables = {}
    for name in TABLES:
        found = by_name.get(name, [])
        if not found:
            listed = ", ".join(sheet for sheet, _ in sheets) or "none"
            problems.add_table(path.name, name, f"sheet '{name}' missing",
                               f"name the sheets patients, treatments and visits (found: {listed})")
            continue
        if len(found) > 1:
            problems.add_table(path.name, name, "two sheets for one table ("
                               + " and ".join(sheet for sheet, _ in found) + ")",
                               "keep one of them, and rename or delete the other")
            continue
        (title, part), label = found[0], f"{path.name}, sheet {name}"
        if part is None or part not in archive.namelist():
            raise ValueError(f"sheet {title!r} has no worksheet part")
        if strings is None:
            strings = shared_strings(archive, strings_part)
            styles = date_styles(archive, styles_part)
        try:
            sheet = read_sheet(archive, part, strings, styles, epoch, max_rows=limits.max_rows,
                               max_columns=limits.max_columns, max_cells=limits.max_cells)
        except Beyond as beyond:
            problems.add(label, name, beyond.row, None, beyond.value, *_beyond(beyond, limits))
            continue
        table = _sheet_table(sheet, name, label, problems, notes)
        if table is not None:
            tables[name] = table
    return tables


def _beyond(beyond: Beyond, limits: ReadLimits) -> tuple[str, str]:
    """The rule and fix for a value beyond the limits (the sheet's stray cell)."""
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
    return (f"values spread over {beyond.rows:,} rows × {beyond.columns:,} columns (to cell "
            f"{beyond.cell}), more cells than the limit of {limits.max_cells:,}{declared}",
            f"{fix}; if the table really is that large, " + _raise_limit("max_cells"))


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
                         "=" + formula[:200], f"cell {cell} holds a formula without a stored "
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
    # Rows with no value at all are spacing, not data.
    if len(frame.columns) and _object_columns(frame).all():
        blank = ~_filled_cells(frame).any(axis=1)
    else:
        blank = np.ones(len(frame), dtype=bool)
        for column in frame.columns:
            blank &= _blank_values(frame[column])
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

    Object columns (a workbook's cells) are looked at in one block, cell values only, so
    that a sheet thousands of columns wide costs no pandas call per column.
    """
    filled = np.zeros(frame.shape, dtype=bool)
    objects = _object_columns(frame)
    if objects.any():
        values = frame.iloc[:, np.flatnonzero(objects)].to_numpy(dtype=object)
        present = ~pd.isna(values)
        text = pd.Series(values[present], dtype=object).astype(str).str.strip()
        block = np.zeros(values.shape, dtype=bool)
        block[present] = (text != "").to_numpy(dtype=bool)
        filled[:, objects] = block
    for j in np.flatnonzero(~objects):
        filled[:, j] = ~_blank_values(frame.iloc[:, j])
    return filled


def _blank_values(values: pd.Series) -> np.ndarray:
    """True where a cell holds nothing: missing, or text that is only whitespace."""
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        text = values.astype("string").str.strip()
        return (text.isna() | (text == "")).to_numpy(dtype=bool)
    return values.isna().to_numpy(dtype=bool)
