"""A table as read (:class:`RawTable`), and what every reader does to finish one.

:func:`finish` normalises the headers (:func:`normalise_header`), refuses a column
named twice, reports values in a column without a header, drops blank spacing rows and
keeps each row's number as the user sees it in the file. :func:`title_rows` finds the
title rows above a header, in a text file or a sheet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["RawTable", "column_name", "finish", "normalise_header", "title_rows"]


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


def column_name(header: str | None) -> str | None:
    """How a message names the column of ``header``: None for no header or a blank one."""
    return None if header is None or not normalise_header(header) else normalise_header(header)


def title_rows(filled: list[int]) -> int:
    """How many leading rows are titles: rows with far fewer filled cells than the header."""
    widest = max(filled, default=0)
    titles = 0
    for count in filled:
        if count > max(1, widest // 2):
            break
        titles += 1
    return titles if titles < len(filled) else 0


def finish(frame: pd.DataFrame, name: str, label: str, problems, *, rows: np.ndarray,
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
