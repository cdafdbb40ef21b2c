"""Reading a text table (``.csv``, ``.tsv``, ``.txt``) in one bounded pass.

A text file's first 64 KB are checked for binary data before anything else is read; one
pass in blocks (numpy over the raw bytes, :func:`regen._scan.scan_lines`) then counts its
lines and finds any line with more fields than the column limit and any field longer than
the cell limit, before the file is parsed, which then reads at most the rows the limits
leave; a quoted field spanning lines is measured after parsing. A plain file (UTF-8,
without quotes or NUL bytes, each line a row of as many fields as the header) is parsed
by Arrow's CSV reader, which gives the same text cells as pandas' reader, many times
faster; any other file, or one Arrow cannot read so, by pandas.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from regen._scan import SHOWN_CHARACTERS, scan_lines, shorten, too_wide
from regen.io.limits import LONG_FIX, Budget, ReadLimits, mb, raise_limit, too_many
from regen.io.raw import RawTable, column_name, finish, title_rows

__all__ = ["read_text"]

_BINARY_CHECK_BYTES = 1 << 16   # a NUL byte in these makes a text file binary
_HEAD_BYTES = 1 << 20           # the header of a text file must start within these
_LONG_TEXT_FIX = ("check the quotes (a quote left open makes one value of many lines) and the "
                  "delimiter; ")


def read_text(file: Path, name: str, problems, notes, budget: Budget) -> RawTable | None:
    """Read table ``name`` from a text file within what ``budget`` leaves, and spend it.

    Returns None, with the reason in ``problems``, if the file is refused or cannot be read.
    """
    limits = budget.limits
    head = _read_head(file, problems)
    if head is None:
        return None
    encoding = head.encoding
    lines = _head_lines(head.data, head.start, encoding, head.whole)
    header_line, sep, titles = _header(lines) if "".join(lines).strip() else (0, ",", [])
    scan = scan_lines(file, 2 if head.utf16 else head.start, head.unit, sep, limits.max_columns,
                      utf8=not head.utf16, cell=limits.max_cell_bytes)
    if scan.not_utf8 is not None:
        notes.add(f"{file.name} is not UTF-8 (byte {scan.not_utf8}); read it as Windows-1252. "
                  "Check accented text, or export as 'CSV UTF-8'.")
        encoding = "cp1252"
        lines = _head_lines(head.data, head.start, encoding, head.whole)
    decoding = {"<u2": "utf-16-le", ">u2": "utf-16-be"}.get(head.unit, encoding)
    if _refused_by_scan(file, name, scan, decoding, sep, lines, header_line, problems, limits):
        return None
    if not head.whole and not "".join(lines).strip():
        problems.add_table(file.name, name, f"no header in the first {mb(_HEAD_BYTES)}",
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
    if not scan.quotes and too_many(file.name, name, problems, budget, rows=scan.lines - header_line
                                    - 1, columns=width):
        return None   # without quotes, each line is a row
    plain = None
    if not head.utf16 and scan.not_utf8 is None and not scan.quotes and not scan.nul:
        plain = _data_start(head, header_line, sep), scan.lines - header_line - 1
    read = _read_rows(file, name, head.start, encoding, header_line, sep, width, problems, budget,
                      plain)
    if read is None:
        return None
    frame, width, cap = read
    if len(frame) > cap and too_many(file.name, name, problems, budget, rows=len(frame),
                                     columns=width, exact=False):
        return None
    rows = np.arange(len(frame), dtype=np.int64) + header_line + 2
    # Without quotes each value is a stretch the line scan measured (in UTF-8, as here).
    longest = None if plain is not None else _longest_value(frame, limits.max_cell_bytes)
    if longest is not None:   # a quoted field holding line breaks or delimiters
        at, column, length = longest
        names = header + [None] * (width - len(header))
        problems.add(file.name, name, int(rows[at]), column_name(names[column]), None,
                     f"value of {length:,} bytes, more than the limit of "
                     f"{limits.max_cell_bytes:,} bytes for one cell (it starts "
                     f"'{shorten(frame.iat[at, column])}')", _LONG_TEXT_FIX + LONG_FIX)
        return None
    budget.spend(file.name, len(frame) * width)
    frame.columns = header + [f"unnamed: column {i + 1}" for i in range(len(header), width)]
    return finish(frame, name, file.name, problems, rows=rows, header_row=header_line + 1,
                  decimal_comma=sep != ",")


@dataclass(frozen=True)
class _Head:
    """A text file's first bytes (up to ``_HEAD_BYTES``) and how its text is encoded."""

    data: bytes
    whole: bool      # the file ends within these bytes
    encoding: str    # "utf-16" (with a byte-order mark) or "utf-8"
    unit: str        # numpy's type of one code unit: "u1", "<u2" or ">u2"
    start: int       # bytes of a UTF-8 byte-order mark, before the text

    @property
    def utf16(self) -> bool:
        return self.unit != "u1"


def _read_head(file: Path, problems) -> _Head | None:
    """The file's first bytes and its encoding, from its byte-order mark; None (a problem
    recorded) if its first 64 KB hold a NUL byte outside UTF-16, which makes it binary."""
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
        unit = "<u2" if head.startswith(codecs.BOM_UTF16_LE) else ">u2"
        return _Head(head, whole, encoding="utf-16", unit=unit, start=0)
    start = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
    return _Head(head, whole, encoding="utf-8", unit="u1", start=start)


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
    titles = title_rows([sum(1 for cell in fields(n, sep) if cell.strip()) for n in top])
    return top[titles], sep, top[:titles]


def _head_lines(head: bytes, start: int, encoding: str, whole: bool) -> list[str]:
    """The complete lines of the file's first bytes (a line cut off at their end is left out).

    Lines are split at \\n, \\r\\n or \\r only, as pandas' reader sees them: ``str.splitlines``
    also splits at vertical tabs, form feeds and other separators, which pandas keeps inside
    a cell; the two would then disagree on the rows.
    """
    text = head[start:].decode(encoding, errors="replace")
    lines = re.split(r"\r\n|\n|\r", text)
    if not whole or lines[-1] == "":
        lines = lines[:-1]
    return lines


def _refused_by_scan(file: Path, name: str, scan, encoding: str, sep: str, lines: list[str],
                     header_line: int, problems, limits: ReadLimits) -> bool:
    """Record a problem if the line scan found a line with more fields than the column limit,
    or a field longer than the cell limit: both are refused before pandas reads the file."""
    wide = too_wide(file, scan, encoding, sep, limits.max_columns)
    if wide is not None:
        problems.add(file.name, name, wide[0], None, None,
                     f"line with {wide[1]:,} fields, more than the limit of "
                     f"{limits.max_columns:,} columns",
                     "check the delimiter and the quotes on that line; if the table really has "
                     "so many columns, " + raise_limit("max_columns"))
        return True
    if scan.long is not None:
        header = next(csv.reader(lines[header_line: header_line + 1], delimiter=sep), [])
        _long_field(file, name, scan, encoding, header, header_line, problems, limits)
        return True
    return False


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
        column = column_name(header[number])
    size = (f"value of {length:,} bytes, more than" if length is not None
            else "value longer than")
    problems.add(file.name, name, line, column, None,
                 f"{size} the limit of {limits.max_cell_bytes:,} bytes for one cell (it starts "
                 f"'{start}')", _LONG_TEXT_FIX + LONG_FIX)


def _data_start(head: _Head, header_line: int, sep: str) -> int | None:
    """The file offset of the line after the header, or None when the header's end is not
    within the first bytes or the delimiter is not one Arrow reads as pandas does."""
    if sep not in (",", ";", "\t", "|"):
        return None
    ends = re.finditer(rb"\r\n|\n|\r", head.data[head.start:])
    end = next(itertools.islice(ends, header_line, None), None)
    if end is None or (end.end() == len(head.data) - head.start and not head.whole):
        return None   # a \r\n may be cut after its \r
    return head.start + end.end()


def _read_plain(file: Path, offset: int, sep: str, width: int, rows: int) -> pd.DataFrame | None:
    """The ``rows`` lines from ``offset`` as text cells, ``width`` columns, by Arrow's reader;
    None if Arrow cannot read them so (a row of another width, a blank line): then pandas
    reads the file. Only for a file without quotes, whose every line is a row."""
    names = [str(i) for i in range(width)]
    try:
        with pa.OSFile(str(file)) as handle:
            handle.seek(offset)
            table = pa_csv.read_csv(
                handle, read_options=pa_csv.ReadOptions(column_names=names, use_threads=False),
                parse_options=pa_csv.ParseOptions(delimiter=sep, quote_char=False,
                                                  ignore_empty_lines=True),
                convert_options=pa_csv.ConvertOptions(
                    column_types=dict.fromkeys(names, pa.large_string()), strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != rows:   # blank lines, which pandas keeps as rows
        return None
    return pd.DataFrame({i: pd.arrays.ArrowStringArray(table.column(i)) for i in range(width)},
                        index=pd.RangeIndex(rows))


def _read_rows(file: Path, name: str, start: int, encoding: str, header_line: int, sep: str,
               width: int, problems, budget: Budget, plain: tuple[int | None, int] | None = None
               ) -> tuple[pd.DataFrame, int, int] | None:
    """The rows below the header as text cells, their width, and the most rows the limits
    leave (``cap``; one row more is read, to tell a table that reaches it). None, with a
    problem recorded, if a row has more fields than the column limit or pandas cannot
    parse the file. ``plain``: where the rows start and how many lines they are, when the
    file is plain (:func:`_read_plain`)."""
    limits = budget.limits
    if plain is not None and plain[0] is not None:
        frame = _read_plain(file, plain[0], sep, width, plain[1])
        if frame is not None:
            return frame, width, min(limits.max_rows, budget.cells // max(width, 1))

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
                             "has so many columns, " + raise_limit("max_columns"))
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
    return frame, width, cap


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
