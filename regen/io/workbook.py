"""Reading the three tables from the sheets of an ``.xlsx`` workbook, streamed and bounded.

An .xlsx workbook's zip directory and the declared uncompressed sizes of its parts are
checked before any part is unpacked. Each table's sheet is then read by a streaming XML
parser (:func:`regen._scan.read_sheet`) that keeps only the cells holding a value and
stops at the first value beyond the limits, so a stray value at XFD1048576 is refused at
once and far-away cells that are formatted but empty cost nothing; a cell whose text
passes the cell limit, or a shared string that does, stops the parse as soon as that much
is read, and the shared strings the cells use count at every cell. Formula cells without
a stored value are reported: their value is not in the file.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from xml.parsers import expat

import numpy as np
import pandas as pd

from regen._scan import (
    Beyond,
    SheetReader,
    date_styles,
    read_sheet,
    shared_strings,
    shorten,
    workbook_parts,
    zip_directory_size,
)
from regen.io.limits import LONG_FIX, Budget, mb, raise_limit
from regen.io.raw import RawTable, finish, normalise_header, title_rows
from regen.tables import TABLES

__all__ = ["read_workbook"]

_MAX_ZIP_DIRECTORY = 4 << 20    # a workbook's list of parts (a few KB in practice)

def read_workbook(path: Path, problems, notes, budget: Budget) -> dict[str, RawTable]:
    """Read the tables from the sheets named patients, treatments and visits of ``path``,
    within what ``budget`` leaves, and spend it.

    Returns the tables that could be read, by name; the reason any could not is in
    ``problems`` (a workbook that cannot be read at all returns none).
    """
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
            return damaged(f"its list of parts takes {mb(directory)}; a workbook's takes a few KB")
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
            unpacked = sum(part.file_size for part in parts)
            if unpacked > limits.max_uncompressed_bytes:
                largest = max(parts, key=lambda part: part.file_size)
                problems.add(path.name, None, None, None, None,
                             f"workbook that unpacks to {mb(unpacked)}, more than the limit of "
                             f"{mb(limits.max_uncompressed_bytes)} (largest part: "
                             f"{shorten(largest.filename)}, {mb(largest.file_size)})",
                             "check that this is the right file (a small file that unpacks to "
                             "so much is suspicious); if it is, "
                             + raise_limit("max_uncompressed_bytes"))
                return {}
            return _read_sheets(path, archive, problems, notes, budget)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, IndexError, ValueError,
            expat.ExpatError, OSError, EOFError, zlib.error, NotImplementedError,
            RuntimeError) as error:  # zipfile, expat and int() raise these for a damaged workbook
        return damaged(error)


def _read_sheets(path: Path, archive: zipfile.ZipFile, problems, notes, budget: Budget
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


def _beyond(beyond: Beyond, budget: Budget) -> tuple[str, str]:
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
                f"{fix}; if the table really is that wide, " + raise_limit("max_columns"))
    if beyond.reason == "rows":
        return (f"{stray}: row {beyond.row:,} is past the limit of {limits.max_rows:,} rows"
                f"{declared}", f"{fix}; if the table really is that long, " + raise_limit("max_rows"))
    if beyond.reason in ("text", "string"):
        where = (f"cell {beyond.cell} holds" if beyond.reason == "text" else
                 f"shared string {beyond.row:,} of {shorten(beyond.cell)} (the text of cells) holds")
        return (f"{where} more than the limit of {limits.max_cell_bytes:,} bytes for one cell "
                f"(it starts '{beyond.start}…')",
                "shorten that text (a follow-up table's cells hold ids, dates, numbers and short "
                "notes); " + LONG_FIX)
    if beyond.reason == "unpacked":
        return (budget.unpacked_rule(f"cells whose text comes to {mb(beyond.size)} (to cell "
                                     f"{beyond.cell}; a shared string counts at every cell)"),
                "check that this is the right file; if it is, "
                + raise_limit("max_uncompressed_bytes"))
    return (budget.cells_rule(f"values spread over {beyond.rows - 1:,} rows × "
                              f"{beyond.columns:,} columns below the header (to cell "
                              f"{beyond.cell})") + declared,
            f"{fix}; if the tables really are that large, " + raise_limit("max_cells"))


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
    header_at = int(used[title_rows([counts[i] for i in used[:6]])]) if len(used) else 0
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
    return finish(frame, name, label, problems, rows=numbers[header_at + 1:],
                   header_row=int(numbers[header_at]))
