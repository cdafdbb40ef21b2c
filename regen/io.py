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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from regen.tables import TABLES

__all__ = ["RawTable", "SourceFile", "read_tables"]

_CSV_SUFFIXES = (".csv", ".tsv", ".txt")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_EXCEL_SUFFIXES = (".xlsx", ".xlsm")


@dataclass(frozen=True)
class SourceFile:
    """A file read, with its SHA-256, for the report's provenance section."""

    name: str
    sha256: str


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
            return _read_workbook(path, problems), [SourceFile(path.name, _sha256(path))]
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
        sources.append(SourceFile(file.name, _sha256(file)))
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
        return data.decode("cp1252", errors="replace")


def _header(text: str) -> tuple[int, str]:
    """Lines above the header (blank lines, Excel's ``sep=;`` line) and the delimiter."""
    skipped, declared = 0, None
    for line in text[:65536].splitlines():
        stripped = line.strip()
        found = re.fullmatch(r'"?sep=(.)"?', stripped, flags=re.IGNORECASE)
        if not stripped or (found and declared is None):
            declared = found.group(1) if found else declared
            skipped += 1
            continue
        if declared:
            return skipped, declared
        counts = {sep: len(next(csv.reader([line], delimiter=sep))) for sep in (",", ";", "\t")}
        return skipped, max(counts, key=lambda sep: (counts[sep], sep == ","))
    return skipped, declared or ","


def _read_text(file: Path, name: str, problems, notes) -> RawTable | None:
    text = _decode(file, file.read_bytes(), problems, notes)
    if text is None:
        return None
    if not text.strip():
        problems.add_table(file.name, name, "file is empty",
                           f"the file needs a header row naming the {name} columns")
        return None
    skipped, sep = _header(text)
    options = dict(sep=sep, dtype="string[pyarrow]", keep_default_na=False, na_filter=False,
                   skip_blank_lines=False, engine="c")
    try:
        # index_col=False: data lines that end in a delimiter the header lacks must not
        # turn the first column into an index and shift every value one column left.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            frame = pd.read_csv(io.StringIO(text), skiprows=skipped, index_col=False, **options)
        if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
            # pandas would drop the values beyond the header; read them into a column
            # without a name instead, so that a stray value is reported, not lost.
            names = [*frame.columns, "unnamed: after the last column"]
            frame = pd.read_csv(io.StringIO(text), skiprows=skipped + 1, header=None,
                                names=names, **options)
    except (pd.errors.ParserError, ValueError) as error:
        found = re.search(r"line (\d+)", str(error))
        problems.add(
            file.name, name, int(found.group(1)) if found else None, None, None,
            f"the file cannot be read as a table ({str(error).strip()})",
            "every row needs as many fields as the header; quote values that contain the delimiter",
        )
        return None
    return _finish(frame, name, file.name, problems, header_row=skipped + 1,
                   decimal_comma=sep != ",")


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


def _read_workbook(path: Path, problems) -> dict[str, RawTable]:
    try:
        sheets = pd.read_excel(path, sheet_name=None, dtype=object, engine="openpyxl")
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
        table = _finish(by_name[name], name, f"{path.name}, sheet {name}", problems, header_row=1)
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
