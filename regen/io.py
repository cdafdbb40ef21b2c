"""Reading the follow-up tables from disk, exactly as the user saved them.

This module only reads: every value stays as written (text from CSV, cell
values from Excel, typed columns from Parquet), with the row number the user
sees in that file, so that :mod:`regen.validation` can name file, row, column
and value in every message. Problems that stop a file from being read at all
(missing, binary, malformed) are recorded, not raised, so that one run reports
everything.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from regen.tables import TABLES

__all__ = ["TABLE_SUFFIXES", "RawTable", "SourceFile", "input_files", "read_tables"]

_CSV_SUFFIXES = (".csv", ".tsv", ".txt")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_EXCEL_SUFFIXES = (".xlsx", ".xlsm")
#: Suffixes of the files a cohort folder's tables are read from.
TABLE_SUFFIXES = _CSV_SUFFIXES + _PARQUET_SUFFIXES


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
    of a cohort folder whose name is a table's (``visits.csv``, ``Visits.parquet``, ...)."""
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
    """

    name: str
    file: str
    frame: pd.DataFrame
    rows: np.ndarray
    decimal_comma: bool = False


def normalise_header(name: object) -> str:
    """``' Patient ID '`` → ``'patient_id'``: case, spaces and hyphens do not matter."""
    text = str(name).replace("\ufeff", "").strip().lower()
    return re.sub(r"[\s\-]+", "_", text)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_tables(path: str | Path, problems, notes) -> tuple[dict[str, RawTable], list[SourceFile]]:
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

    Returns
    -------
    tables : dict
        The tables that could be read, by name.
    sources : list of SourceFile
        Every file read, with its hash.
    """
    path = Path(path)
    if not path.exists():
        problems.add_table(
            str(path), None, "path does not exist",
            "give the folder that holds patients, treatments and visits, or an .xlsx workbook",
        )
        return {}, []
    if path.is_file():
        if path.suffix.lower() in _EXCEL_SUFFIXES:
            return _read_workbook(path, problems, notes), [SourceFile(path.name, _sha256(path),
                                                                      path)]
        problems.add_table(
            path.name, None, "not a folder or an .xlsx workbook",
            "give the folder that holds patients.csv, treatments.csv and visits.csv, "
            "or one .xlsx workbook with sheets of those names",
        )
        return {}, []
    return _read_folder(path, problems, notes)


def _read_folder(folder: Path, problems, notes) -> tuple[dict[str, RawTable], list[SourceFile]]:
    files = {p.name.lower(): p for p in folder.iterdir() if p.is_file()}
    tables: dict[str, RawTable] = {}
    sources: list[SourceFile] = []
    for name in TABLES:
        candidates = [
            files[name + suffix]
            for suffix in _CSV_SUFFIXES + _PARQUET_SUFFIXES
            if name + suffix in files
        ]
        if not candidates:
            found = ", ".join(sorted(p.name for p in files.values())) or "no files"
            books = [p.name for p in files.values() if p.suffix.lower() in _EXCEL_SUFFIXES]
            hint = (f"; or give the workbook itself: {folder.name}/{books[0]}"
                    if len(books) == 1 else "")
            if any(p.stem.lower() == name for p in files.values()
                   if p.suffix.lower() in _EXCEL_SUFFIXES):
                hint = ("; a workbook per table is not read: save each as CSV, or put the three "
                        "tables as sheets of one workbook and give that workbook")
            problems.add_table(
                f"{name}.csv", name, "file missing",
                f"put {name}.csv or {name}.parquet in {folder.name}/ (found: {found}){hint}",
            )
            continue
        if len(candidates) > 1:
            names = " and ".join(p.name for p in candidates)
            problems.add_table(
                candidates[0].name, name, f"two files for one table ({names})",
                "keep one of them and move the other out of the folder",
            )
            continue
        file = candidates[0]
        sources.append(SourceFile(file.name, _sha256(file), file))
        if file.suffix.lower() in _PARQUET_SUFFIXES:
            table = _read_parquet(file, name, problems)
        else:
            table = _read_text(file, name, problems, notes)
        if table is not None:
            tables[name] = table
    return tables, sources


def _decode(file: Path, data: bytes, problems, notes) -> str | None:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if b"\x00" in data[:65536]:
        problems.add_table(
            file.name, None, "binary data, not a text table",
            "export the table from your spreadsheet as CSV (UTF-8)",
        )
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        notes.add(
            f"{file.name} is not UTF-8 (byte {error.start}); read it as Windows-1252. "
            "Check accented text, or export as 'CSV UTF-8'."
        )
        body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data  # a BOM on a cp1252 body
        return body.decode("cp1252", errors="replace")


def _title_rows(filled: list[int]) -> int:
    """How many leading rows are titles: rows with far fewer filled cells than the header."""
    widest = max(filled, default=0)
    titles = 0
    for count in filled:
        if count > max(1, widest // 2):
            break
        titles += 1
    return titles if titles < len(filled) else 0


def _header(text: str, file: str, notes) -> tuple[int, str]:
    """Lines above the header (blank, Excel's ``sep=;``, titles) and the delimiter."""
    lines = _lines(text[:65536])
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
        return len(lines), declared or ","

    def fields(number: int, sep: str) -> list[str]:
        return next(csv.reader([lines[number]], delimiter=sep), [])

    sep = declared or max((",", ";", "\t"),
                          key=lambda d: (max(len(fields(n, d)) for n in top), d == ","))
    filled = [sum(1 for cell in fields(n, sep) if cell.strip()) for n in top]
    titles = _title_rows(filled)
    if titles:
        shown = "; ".join(lines[n].strip()[:60] for n in top[:titles])
        notes.add(f"{file}: skipped {titles} line(s) above the header ({shown!r}); the header "
                  f"is line {top[titles] + 1}.")
    return top[titles], sep


def _lines(text: str) -> list[str]:
    """The text's lines as pandas' reader sees them: split at \\n, \\r\\n or \\r only.

    ``str.splitlines`` also splits at vertical tabs, form feeds and other separators,
    which pandas keeps inside a cell; the two would then disagree on the rows.
    """
    lines = re.split(r"\r\n|\n|\r", text)
    return lines[:-1] if lines and lines[-1] == "" else lines


def _read_text(file: Path, name: str, problems, notes) -> RawTable | None:
    text = _decode(file, file.read_bytes(), problems, notes)
    if text is None:
        return None
    header_line, sep = _header(text, file.name, notes) if text.strip() else (0, ",")
    lines = _lines(text)
    if header_line >= len(lines):
        problems.add_table(file.name, name, "file is empty",
                           f"the file needs a header row naming the {name} columns")
        return None
    header = next(csv.reader([lines[header_line]], delimiter=sep))
    first_data = next((line for line in lines[header_line + 1: header_line + 2]), "")
    width = max(len(header), len(next(csv.reader([first_data], delimiter=sep), [])))
    try:
        frame = _read_fields(text, header_line + 1, sep, width)
        if frame is None:
            # Some line is wider than the first ones: find the widest, then read again so
            # that a stray value lands in a column without a header and is reported.
            body = io.StringIO("\n".join(lines[header_line + 1:]))
            width = max((len(row) for row in csv.reader(body, delimiter=sep)), default=width)
            frame = _read_fields(text, header_line + 1, sep, width)
        if frame is None:
            raise ValueError("rows of different widths that could not be lined up")
    except (pd.errors.ParserError, ValueError) as error:
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
    frame.columns = header + [f"unnamed: column {i + 1}" for i in range(len(header), width)]
    return _finish(frame, name, file.name, problems, header_row=header_line + 1,
                   decimal_comma=sep != ",")


def _read_fields(text: str, skip: int, sep: str, width: int) -> pd.DataFrame | None:
    """The lines after the header as text cells, ``width`` columns; None if a line is wider.

    Columns are named by position and the header is set afterwards, so that a header
    repeated exactly is not renamed by pandas (``pain``, ``pain.1``) but reported.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        try:
            frame = pd.read_csv(
                io.StringIO(text), sep=sep, header=None, names=range(width), skiprows=skip,
                index_col=False, dtype="string[pyarrow]", keep_default_na=False,
                na_filter=False, skip_blank_lines=False, engine="c")
        except pd.errors.ParserError as error:
            if "Expected" in str(error):
                return None  # a line with more fields than the first ones
            raise
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        return None
    return frame


def _read_parquet(file: Path, name: str, problems) -> RawTable | None:
    try:
        frame = pd.read_parquet(file)
    except Exception as error:  # pyarrow raises many types for a damaged file
        problems.add_table(
            file.name, name, f"not a readable Parquet file ({type(error).__name__}: {error})",
            "write the table again, or export it as CSV",
        )
        return None
    return _finish(frame.reset_index(drop=True), name, file.name, problems, header_row=0)


def _read_workbook(path: Path, problems, notes) -> dict[str, RawTable]:
    try:
        sheets = pd.read_excel(path, sheet_name=None, header=None, dtype=object, engine="openpyxl")
    except Exception as error:  # openpyxl/zipfile raise many types for a damaged workbook
        problems.add_table(
            path.name, None, f"not a readable .xlsx workbook ({type(error).__name__}: {error})",
            "open it in your spreadsheet program and save it again as .xlsx",
        )
        return {}
    by_name = {normalise_header(sheet): frame for sheet, frame in sheets.items()}
    tables = {}
    for name in TABLES:
        if name not in by_name:
            found = ", ".join(map(str, sheets)) or "none"
            problems.add_table(
                path.name, name, f"sheet '{name}' missing",
                f"name the sheets patients, treatments and visits (found: {found})",
            )
            continue
        label = f"{path.name}, sheet {name}"
        cells = by_name[name]
        filled = cells.notna() & (cells.astype(str).apply(lambda c: c.str.strip()) != "")
        counts = filled.sum(axis=1).to_numpy()
        used = np.flatnonzero(counts > 0)
        if not len(used):
            problems.add_table(label, name, "sheet is empty",
                               f"the sheet needs a header row naming the {name} columns")
            continue
        titles = _title_rows(counts[used[:6]].tolist())
        header_at = int(used[titles])
        if header_at > used[0]:
            notes.add(f"{label}: skipped row(s) above the header; the header is row "
                      f"{header_at + 1}.")
        frame = cells.iloc[header_at + 1:].reset_index(drop=True)
        frame.columns = [f"unnamed: column {i + 1}" if pd.isna(h) else h
                         for i, h in enumerate(cells.iloc[header_at])]
        table = _finish(frame, name, label, problems, header_row=header_at + 1)
        if table is not None:
            tables[name] = table
    return tables


def _finish(frame: pd.DataFrame, name: str, label: str, problems, *, header_row: int,
            decimal_comma: bool = False) -> RawTable | None:
    """Normalise headers, drop blank spacing rows, and number rows as the user sees them.

    ``header_row`` is the header's row number in the file (1 for CSV and
    spreadsheets, where data start on row 2; 0 for Parquet, whose records are
    numbered from 1).
    """
    headers = [normalise_header(column) for column in frame.columns]
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
    rows = np.arange(len(frame), dtype=np.int64) + header_row + 1
    # An unnamed, empty column comes from a stray delimiter at the end of each line;
    # values in a column without a name are reported.
    unnamed = [h for h in headers if h.startswith("unnamed:")]
    for header in unnamed:
        stray = ~_blank_values(frame[header])
        if stray.any():
            raw = RawTable(name=name, file=label, frame=frame, rows=rows)
            problems.add_rows(raw, stray, None, frame[header], "value in a column that has no header",
                              "give the column a header, or delete the stray values")
    frame = frame.drop(columns=unnamed)
    # Rows with no value at all are spacing, not data.
    blank = np.ones(len(frame), dtype=bool)
    for column in frame.columns:
        blank &= _blank_values(frame[column])
        if not blank.any():
            break
    if len(frame.columns) and blank.any():
        frame = frame.loc[~blank].reset_index(drop=True)
        rows = rows[~blank]
    return RawTable(name=name, file=label, frame=frame, rows=rows, decimal_comma=decimal_comma)


def _blank_values(values: pd.Series) -> np.ndarray:
    """True where a cell holds nothing: missing, or text that is only whitespace."""
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        text = values.astype("string").str.strip()
        return (text.isna() | (text == "")).to_numpy(dtype=bool)
    return values.isna().to_numpy(dtype=bool)
