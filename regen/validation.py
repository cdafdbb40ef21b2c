"""Interpreting and checking the values of one table, collecting every problem.

Each declared column (:mod:`regen.tables`) is parsed by its kind with
vectorised pandas operations; a value that cannot be read, is missing where it
is required, or breaks its range becomes one row of the problem ledger, with
the file, the row the user sees, the column, the value as written, the rule
and a fix. Nothing raises until every table has been checked: then
:meth:`Problems.raise_if_any` raises one :class:`~regen.exceptions.CohortValidationError`
listing them all.

Why not a schema library: the checks that need judgement here are parsing
(yes/no spellings, decimal commas, Excel date serials, ids typed as numbers in
a spreadsheet) and the cross-table rules in :mod:`regen.cohort`. A schema
library's own coercion rejects exactly those spellings, so parsing would stay
ours, and the column checks left over are one vectorised mask each.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from regen._scan import shorten
from regen.io import RawTable
from regen.ledger import SHOWN_IN_FULL, Notes, Problems
from regen.tables import TABLES, Column, Table

__all__ = ["BOOLEAN_WORDS", "missing_column_fix", "parse_table"]

MISSING_TOKENS = frozenset({"", "na", "n/a", "#n/a", "nan", "null", "none", "missing", ".", "-"})
TRUE_WORDS = ("1", "1.0", "true", "t", "yes", "y")
FALSE_WORDS = ("0", "0.0", "false", "f", "no", "n")
BOOLEAN_WORDS = {**dict.fromkeys(TRUE_WORDS, True), **dict.fromkeys(FALSE_WORDS, False)}
#: Columns regen adds to the tables it returns; a file may not bring its own
#: (nor any column whose name starts with ``baseline_``).
RESERVED_COLUMNS = frozenset({"source_row", "lower", "upper", "status", "reason", "n_assessments",
                              "treatment_number", "retreated_day", "last_visit_day"})
EXCEL_EPOCH = pd.Timestamp("1899-12-30")
FIRST_SERIAL = (pd.Timestamp("1970-01-01") - EXCEL_EPOCH).days
#: Serials from 2200 on are not dates of a follow-up (and overflow pandas' timestamps).
LAST_SERIAL = (pd.Timestamp("2200-01-01") - EXCEL_EPOCH).days
#: A whole date, optionally with a time: 2024-03-15, 2024-3-5, 2024-03-15T10:30, 2024-03-15 10:30:00.
FULL_DATE = r"\d{4}-\d{1,2}-\d{1,2}([T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?"
#: Text columns are kept in Arrow (``string[pyarrow]``): bytes and an offset a cell, not a
#: Python object a cell.
TEXT = "string[pyarrow]"
#: A number as pandas reads one to a finite float: 12, -3.5, .5, 5., 1e5, +2.5E-3.
NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
#: From this on, a floating-point number no longer holds every whole number: an id stored
#: as one may have lost digits (1234567890123456789 reads back as ...768; 2**53 itself
#: may be the rounding of 2**53 + 1).
EXACT_FLOAT_LIMIT = 2**53
#: Words that may stand next to a declared column's name in a header meaning that column
#: (``Pain score``, ``age_years``); see :func:`_near_misses`.
HEADER_QUALIFIERS = frozenset({"score", "scale", "rating", "value", "level", "nrs", "vas", "yn",
                               "y", "n", "0", "1", "10", "flag", "mm", "years", "yrs", "kg", "m2"})
_DECLARED = frozenset(name for table in TABLES.values() for name in table.names)


# ---------------------------------------------------------------- parsing ---

def _as_text(values: pd.Series) -> pd.Series:
    """Every cell as text in Arrow (``None`` where empty): integers exactly, in decimal
    (never through a float), and whole-number floats without ``.0``."""
    if isinstance(values.dtype, pd.StringDtype):
        return values if values.dtype.storage == "pyarrow" else values.astype(TEXT)
    if pd.api.types.is_bool_dtype(values):
        return values.astype(TEXT)
    if pd.api.types.is_integer_dtype(values):   # int64, uint64, Int64: exact
        return values.astype(TEXT)
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.astype("float64")
        whole = (numbers.notna() & np.isfinite(numbers) & (numbers == np.round(numbers))
                 & (numbers.abs() < 2**63))
        text = numbers.astype(TEXT)
        text[whole] = numbers[whole].astype("int64").astype(TEXT)
        return text
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.strftime("%Y-%m-%d").astype(TEXT)
    return pd.Series([_cell_text(value) for value in values], index=values.index, dtype=TEXT)


def _arrow(text: pd.Series) -> pa.ChunkedArray:
    """The Arrow array behind a column of text (no copy)."""
    return pa.chunked_array(pa.array(text.array)) if len(text) else pa.chunked_array(
        [], pa.string())


def _matches(text: pd.Series, pattern: str) -> np.ndarray:
    """Where ``text`` matches the regular expression ``pattern`` (RE2, in Arrow); missing: no."""
    found = pc.match_substring_regex(_arrow(text), pattern)
    return pc.fill_null(found, False).to_numpy(zero_copy_only=False).astype(bool)


def _cell_text(value: object) -> str | None:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d") if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _inexact(values: pd.Series) -> np.ndarray:
    """Where a value is a floating-point number of 2**53 or more, whose digits cannot be
    trusted (the float 2**53 is also what 2**53 + 1 rounds to)."""
    if pd.api.types.is_float_dtype(values):
        numbers = values.to_numpy(dtype="float64", na_value=np.nan)
    elif values.dtype == object:
        floats = values.map(lambda value: isinstance(value, float | np.floating)).to_numpy(dtype=bool)
        numbers = np.full(len(values), np.nan)
        numbers[floats] = values[floats].to_numpy(dtype="float64")
    else:
        return np.zeros(len(values), dtype=bool)
    with np.errstate(invalid="ignore"):
        return np.abs(numbers) >= EXACT_FLOAT_LIMIT


def _missing(text: pd.Series) -> np.ndarray:
    return (text.isna() | text.str.lower().isin(MISSING_TOKENS)).to_numpy(dtype=bool)


def _parse_number(values: pd.Series, decimal_comma: bool) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.astype("float64")
        missing = numbers.isna().to_numpy()
        bad = ~missing & ~np.isfinite(numbers.fillna(0).to_numpy())
        return numbers.where(~bad), bad, missing
    text = _as_text(values).str.strip()
    missing = _missing(text)
    if decimal_comma:
        text = text.str.replace(",", ".", regex=False)
    numbers = _to_float(text).to_numpy(copy=True)
    numbers[missing] = np.nan
    finite = np.isfinite(numbers)
    bad = ~missing & ~finite
    numbers[~finite] = np.nan
    return pd.Series(numbers, index=text.index), bad, missing


def _to_float(text: pd.Series) -> pd.Series:
    """Text to float64, NaN where a value is not a number.

    Arrow's cast parses a million numbers in milliseconds but fails as a whole on
    one bad value; then only the values written as a number (:data:`NUMBER`, which
    are the values pandas would read as a finite number) are cast, so that a
    column of words never becomes one Python object a cell.
    """
    values = _arrow(text)
    try:
        cast = pc.cast(values, pa.float64())
        return pd.Series(cast.to_numpy(zero_copy_only=False), index=text.index, dtype="float64")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    numeric = _matches(text, NUMBER)
    numbers = np.full(len(text), np.nan)
    if numeric.any():
        written = values.filter(pa.array(numeric))
        try:
            numbers[numeric] = pc.cast(written, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError):   # not expected: pandas decides
            numbers[numeric] = pd.to_numeric(written.to_pandas().astype(object), errors="coerce")
    return pd.Series(numbers, index=text.index, dtype="float64")


def _parse_boolean(values: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    text = _as_text(values).str.strip().str.lower()
    missing = _missing(text)
    words = _lookup(text, list(BOOLEAN_WORDS))
    truth = np.array(list(BOOLEAN_WORDS.values()), dtype=bool)
    parsed = pd.Series(pd.arrays.BooleanArray(truth[np.maximum(words, 0)], words < 0),
                       index=text.index)
    bad = ~missing & (words < 0)
    return parsed, bad, missing


def _lookup(text: pd.Series, words: list[str]) -> np.ndarray:
    """For each value, its position in ``words`` (exact match), or -1; in Arrow."""
    found = pc.index_in(_arrow(text), value_set=pa.array(words, type=pa.string()))
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _parse_date(values: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray, np.ndarray]:
    """Dates, where a value is not one, where one is missing, and where one was read as an
    Excel date serial."""
    serial_at = np.zeros(len(values), dtype=bool)
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values.dt.tz_localize(None) if values.dt.tz is not None else values
        parsed = parsed.astype("datetime64[ns]").dt.normalize()
        missing = parsed.isna().to_numpy()
        return parsed, np.zeros(len(values), dtype=bool), missing, serial_at
    text = _as_text(values).str.strip()
    missing = _missing(text)
    dates, done = _iso_dates(text)   # 2024-03-15, in Arrow and numpy
    parsed = pd.Series(dates, index=text.index)
    left = ~done & ~missing          # anything else: pandas, value by value, only those
    if left.any():
        candidates = text[left]
        # Only years pandas' nanosecond dates can hold are parsed (pandas 3 would read
        # 1024-01-10 at another resolution, which cannot be stored); the others are
        # pinned below so the date-range rule reports them.
        year = _to_float(candidates.str.slice(0, 4)).to_numpy()
        in_range = (year >= 1678) & (year <= 2261)
        loose = _matches(candidates, r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}$") & in_range   # 2024-3-5
        found = pd.Series(pd.NaT, index=candidates.index, dtype="datetime64[ns]")
        if loose.any():
            found[loose] = pd.to_datetime(candidates[loose].astype(object), format="%Y-%m-%d",
                                          errors="coerce").to_numpy()
        serial = _to_float(candidates).where(found.isna())
        # Excel serials from 1970 on; a bare year such as 2022 is not a date.
        is_serial = serial.notna() & (serial >= FIRST_SERIAL) & (serial < LAST_SERIAL)
        as_serial = EXCEL_EPOCH + pd.to_timedelta(serial.where(is_serial).fillna(0).astype("float64"),
                                                  unit="D")
        complete = pd.Series(_matches(candidates, f"^(?:{FULL_DATE})$"), index=candidates.index)
        iso = found.copy()
        written = serial.isna() & complete & found.isna() & in_range
        if written.any():
            iso[written] = pd.to_datetime(candidates[written].astype(object), format="ISO8601",
                                          errors="coerce").to_numpy()
        found = as_serial.where(is_serial, iso)
        # A well-formed date beyond pandas' years (1024-01-10, 3024-01-10) is a typo in the
        # year: pin it inside the range so the date-range rule reports it with its value.
        unparsed = found.isna().to_numpy(dtype=bool) & complete.to_numpy(dtype=bool)
        found[unparsed & (year < 1678)] = pd.Timestamp("1678-01-01")
        found[unparsed & (year > 2261)] = pd.Timestamp("2261-12-31")
        parsed[left] = found.to_numpy()
        serial_at[left] = is_serial.to_numpy(dtype=bool)
    parsed = _within_timestamps(parsed).astype("datetime64[ns]").dt.normalize()
    bad = ~missing & parsed.isna().to_numpy()
    return parsed, bad, missing, serial_at


def _iso_dates(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Dates written YYYY-MM-DD (1678 to 2261, the years pandas holds), read in Arrow and
    numpy, as datetime64[ns] (NaT elsewhere), and where a value was one."""
    padded = _matches(text, r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    dates = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[ns]")
    if not padded.any():
        return dates, padded
    written = _arrow(text).filter(pa.array(padded))

    def part(start: int, stop: int) -> np.ndarray:
        digits = pc.utf8_slice_codeunits(written, start, stop)
        return pc.cast(digits, pa.int64()).to_numpy(zero_copy_only=False)

    year, month, day = part(0, 4), part(5, 7), part(8, 10)
    valid = (year >= 1678) & (year <= 2261) & (month >= 1) & (month <= 12) & (day >= 1)
    first = ((year - 1970) * 12 + np.clip(month, 1, 12) - 1).astype("datetime64[M]")
    days = ((first + 1).astype("datetime64[D]") - first.astype("datetime64[D]")).astype(np.int64)
    valid &= day <= days
    at = np.flatnonzero(padded)[valid]
    dates[at] = (first[valid].astype("datetime64[D]") + (day[valid] - 1)).astype("datetime64[ns]")
    done = np.zeros(len(text), dtype=bool)
    done[at] = True
    return dates, done


def _within_timestamps(parsed: pd.Series) -> pd.Series:
    """Dates pinned into pandas' nanosecond range (1678–2261), which the date-range rule
    then reports with their own value; pandas 3 parses such years at a coarser unit."""
    if not len(parsed) or parsed.isna().all():
        return parsed
    year = parsed.dt.year.to_numpy(dtype="float64", na_value=np.nan)
    if not ((year < 1678) | (year > 2261)).any():
        return parsed
    pinned = parsed.astype(object)
    pinned[year < 1678] = pd.Timestamp("1678-01-01")
    pinned[year > 2261] = pd.Timestamp("2261-12-31")
    return pd.to_datetime(pinned)


def _normalise_text(text: pd.Series) -> pd.Series:
    return text.str.strip().str.lower().str.replace(r"[\s\-]+", "_", regex=True)


def parse_table(raw: RawTable, table: Table, problems: Problems, notes: Notes,
                today: dt.date | None = None, *, strict: bool = False
                ) -> tuple[pd.DataFrame, set[str]]:
    """Parse and check every declared column of one table.

    Parameters
    ----------
    raw : RawTable
        The table as read by :func:`regen.io.read_tables`.
    table : Table
        Its declaration.
    problems, notes : Problems, Notes
        Collectors; nothing is raised here.
    today : date, optional
        Dates after this day are impossible (default: today).
    strict : bool, default False
        Refuse a descriptive column's value outside its range too (by default it
        is set missing, with a note).

    Returns
    -------
    frame : DataFrame
        Declared columns with their types (absent ones filled with missing
        values), the file's other columns (numbers where every value is a
        number, text otherwise), and ``source_row``.
    present : set of str
        Declared columns that the file has.
    """
    today = pd.Timestamp(today or dt.date.today())
    frame = raw.frame
    out: dict[str, pd.Series] = {}
    present = set()
    for column in table.columns:
        if column.name not in frame.columns:
            if column.required:
                problems.add(raw.file, raw.name, None, column.name, None,
                             "required column missing",
                             missing_column_fix(column.name, frame.columns, table.names))
            out[column.name] = _empty(column, len(frame))
            continue
        present.add(column.name)
        out[column.name] = _parse_column(raw, column, problems, notes, today, strict)
    for name in frame.columns:
        if name in out:
            continue
        if name in RESERVED_COLUMNS or name.startswith("baseline_"):
            problems.add(raw.file, raw.name, None, name, None,
                         "column name is reserved for what regen computes",
                         f"rename the column {name} (for example to {name}_original)")
            continue
        out[name] = _extra_column(raw, name)
    _near_misses(raw, table, present, notes)
    result = pd.DataFrame(out, index=pd.RangeIndex(len(frame)))
    result["source_row"] = raw.rows
    return result, present


def _near_misses(raw: RawTable, table: Table, present: set[str], notes: Notes) -> None:
    """Warn when a header regen does not know looks like an optional column the file lacks.

    A header is taken for a column when it holds the column's name as whole words next to
    a qualifier only (``Pain score``, ``age_years``; see :data:`HEADER_QUALIFIERS`), or
    when it is a close spelling of it starting with the same letter (``distanse_mm``,
    ``diabetis``); any other extra column (``site``, ``side_effects``) is left alone.
    """
    extras = [h for h in raw.frame.columns if h not in _DECLARED and h not in RESERVED_COLUMNS
              and not h.startswith(("baseline_", "unnamed:"))]
    for column in table.columns:
        if column.required or column.name in present or not extras:
            continue
        words = column.name.split("_")
        match = next((h for h in extras if _qualified(re.findall(r"[a-z0-9]+", h), words)), None)
        if match is None:
            close = difflib.get_close_matches(column.name, extras, n=3, cutoff=0.84)
            match = next((h for h in close if h[0] == column.name[0]), None)
        if match is not None:
            extras.remove(match)
            notes.add(f"{raw.file}: column {shorten(raw.headers.get(match, match))!r} is not one regen "
                      f"knows; is it {column.name}? rename it to use it")


def _qualified(tokens: list[str], words: list[str]) -> bool:
    """``tokens`` hold ``words`` in a row, and every other token is a qualifier."""
    for i in range(len(tokens) - len(words) + 1):
        if tokens[i: i + len(words)] == words:
            rest = tokens[:i] + tokens[i + len(words):]
            return bool(rest) and all(token in HEADER_QUALIFIERS for token in rest)
    return False


def missing_column_fix(name: str, found, declared=()) -> str:
    """How to fix a missing column: the columns found, and the closest undeclared one."""
    found = [str(c) for c in found]
    candidates = [c for c in found if c not in declared]
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.5)
    hint = f"; is '{shorten(close[0])}' meant to be {name}? rename it" if close else ""
    listed = ", ".join(shorten(c) for c in found[:SHOWN_IN_FULL]) or "no columns"
    if len(found) > SHOWN_IN_FULL:
        listed += f" and {len(found) - SHOWN_IN_FULL:,} more"
    return f"add a column named {name} (found: {listed}){hint}"


def _empty(column: Column, n: int) -> pd.Series:
    """A column of ``n`` missing values of the column's type (built without a value a row)."""
    if column.kind in ("boolean", "integer"):
        data = np.zeros(n, dtype=bool if column.kind == "boolean" else np.int64)
        kind = pd.arrays.BooleanArray if column.kind == "boolean" else pd.arrays.IntegerArray
        return pd.Series(kind(data, np.ones(n, dtype=bool)))
    if column.kind == "number":
        return pd.Series(np.full(n, np.nan))
    if column.kind == "date":
        return pd.Series(np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]"))
    return pd.Series(pd.arrays.ArrowStringArray(pa.nulls(n, pa.large_string())))


def _parse_column(raw: RawTable, column: Column, problems: Problems, notes: Notes,
                  today: pd.Timestamp, strict: bool = False) -> pd.Series:
    values = raw.frame[column.name].reset_index(drop=True)
    label = f"{raw.file}, column {column.name}"
    kind = column.kind
    if kind in ("number", "integer"):
        parsed, bad, missing = _per_value(_parse_number, values, raw.decimal_comma)
        if kind == "integer":
            rule, example = "not a whole number", "a whole number such as 30"
        else:
            decimal = "12,5" if raw.decimal_comma else "12.5"
            rule, example = "not a number", f"a plain number such as {decimal}"
        problems.add_rows(raw, bad, column.name, values, rule,
                          f"write {example}, or leave the cell empty")
        if kind == "integer":
            fraction = ~missing & ~bad & (parsed.fillna(0) % 1 != 0).to_numpy()
            problems.add_rows(raw, fraction, column.name, values, "not a whole number",
                              "write a whole number")
            huge = (~missing & ~bad & ~fraction
                    & (parsed.abs() >= EXACT_FLOAT_LIMIT).fillna(False).to_numpy())
            problems.add_rows(raw, huge, column.name, values, "number too large",
                              f"correct the value; {column.name} must be {column.rule}")
            parsed = parsed.where(~fraction & ~huge).round().astype("Int64")
        parsed = _check_range(raw, column, parsed, values, problems, notes, strict)
    elif kind == "boolean":
        parsed, bad, missing = _per_value(_parse_boolean, values)
        problems.add_rows(raw, bad, column.name, values, "not a yes/no value",
                          "write yes or no (also accepted: true/false, 1/0), or leave the cell empty")
    elif kind == "date":
        parsed, bad, missing, serial = _per_value(_parse_date, values)
        _serial_note(notes, label, values, parsed, serial, missing)
        problems.add_rows(raw, bad, column.name, values, "not a date",
                          "write dates as YYYY-MM-DD (for example 2024-03-15)")
        impossible = (parsed < pd.Timestamp("1900-01-01")) | (parsed > today)
        impossible = impossible.fillna(False).to_numpy(dtype=bool)
        problems.add_rows(raw, impossible, column.name, values,
                          f"date before 1900 or after today ({today:%Y-%m-%d})",
                          "correct the date (a typo in the year?)")
        parsed = parsed.where(~impossible)
    elif kind == "id":
        parsed, missing = _parse_id(raw, column, values, problems, notes, label)
    else:
        parsed, bad, missing = _per_value(_parse_words, values, column)
        problems.add_rows(raw, bad, column.name, values, f"not {column.rule}",
                          f"write {column.rule} (any case), or leave the cell empty")
    if column.required:
        problems.add_rows(raw, missing, column.name, values, "required value missing",
                          f"fill in {column.name} on every row, or remove the row")
    return parsed.reset_index(drop=True)


def _parse_id(raw: RawTable, column: Column, values: pd.Series, problems: Problems, notes: Notes,
              label: str) -> tuple[pd.Series, np.ndarray]:
    """Ids as text, exactly as written but for the spaces around them (a note counts those)."""
    text = _as_text(values)
    stripped = text.str.strip()
    missing = _missing(stripped)
    problems.add_rows(raw, _inexact(values) & ~missing, column.name, values,
                      "id stored as a floating-point number of 2**53 or more, which "
                      "cannot hold every digit (two ids may have become one)",
                      "store ids as text: format the id column as Text in the spreadsheet "
                      "(or write it as a text column) and export again")
    padded = (text != stripped).fillna(False).to_numpy(dtype=bool) & ~missing
    if padded.any():
        first = int(np.flatnonzero(padded)[0])
        notes.add(f"{label}: removed spaces around {int(padded.sum())} id(s) "
                  f"(first on row {raw.rows[first]}: {shorten(text.iloc[first])!r}).")
    return (stripped.where(~missing) if missing.any() else stripped).astype(TEXT), missing


def _parse_words(values: pd.Series, column: Column) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """A text column normalised to lower snake case, or a category's values in their
    canonical spelling; where a category's value is none of them, and where one is missing."""
    stripped = _as_text(values).str.strip()
    missing = _missing(stripped)
    if column.kind == "category":
        canonical = {value.lower(): value for value in column.allowed}
        canonical.update((alias.lower(), value) for alias, value in column.aliases)
        found = _lookup(stripped.str.lower(), list(canonical))
        parsed = pd.Series(pd.arrays.ArrowStringArray(pa.array(
            np.asarray(list(canonical.values()), dtype=object)[np.maximum(found, 0)],
            mask=found < 0, type=pa.string())), index=stripped.index)
        bad = ~missing & (found < 0)
    else:
        parsed, bad = _normalise_text(stripped), np.zeros(len(values), dtype=bool)
    return parsed.where(~missing).astype(TEXT), bad, missing   # one storage, whatever the source


#: A column of text with at least this many rows, and at most this share of them distinct,
#: is parsed once per distinct value.
_PER_VALUE_ROWS, _PER_VALUE_SHARE = 1_000, 0.5


def _per_value(parse, values: pd.Series, *args) -> tuple:
    """``parse(values, *args)``, computed once per distinct value of a text column and given
    to each row of that value: a column of a million dates or scores holds a few thousand
    distinct ones. ``parse`` works value by value, and returns Series and arrays aligned
    with ``values``; so is what this returns. Other columns are parsed as they are."""
    if not isinstance(values.dtype, pd.StringDtype) or len(values) < _PER_VALUE_ROWS:
        return parse(values, *args)
    codes, distinct = pd.factorize(values, use_na_sentinel=False)
    if len(distinct) > _PER_VALUE_SHARE * len(values):
        return parse(values, *args)
    return tuple(part.take(codes).reset_index(drop=True) if isinstance(part, pd.Series)
                 else part[codes] for part in parse(pd.Series(distinct), *args))


def _serial_note(notes: Notes, label: str, values: pd.Series, parsed: pd.Series,
                 serial: np.ndarray, missing: np.ndarray) -> None:
    """A note when some dates (not all) are Excel date serials, with the first of them."""
    n_serial = int(serial.sum())
    if n_serial and n_serial < int((~missing).sum()):
        first = int(np.flatnonzero(serial)[0])
        written = _as_text(values.iloc[[first]]).str.strip().iloc[0]
        notes.add(f"{label}: {n_serial} value(s) are Excel date serials among ISO dates "
                  f"(e.g. {shorten(written)!r} read as {parsed.iloc[first]:%Y-%m-%d}); check that "
                  "they are dates.")


def _check_range(raw: RawTable, column: Column, parsed: pd.Series, values: pd.Series,
                 problems: Problems, notes: Notes, strict: bool) -> pd.Series:
    """The values outside the column's range are problems; for a descriptive column (unless
    ``strict``) they are set missing, with a note naming them. Returns the parsed column."""
    if column.minimum is None and column.maximum is None:
        return parsed
    numbers = parsed.astype("float64")
    outside = np.zeros(len(parsed), dtype=bool)
    if column.minimum is not None:
        low = numbers < column.minimum if column.minimum_inclusive else numbers <= column.minimum
        outside |= low.fillna(False).to_numpy(dtype=bool)
    if column.maximum is not None:
        outside |= (numbers > column.maximum).fillna(False).to_numpy(dtype=bool)
    if column.descriptive and not strict and outside.any():
        rows = raw.rows[outside]
        shown = ", ".join(f"row {r}: {v}" for r, v in zip(rows[:5], values[outside][:5],
                                                          strict=False))
        notes.add(f"{raw.file}: {int(outside.sum())} {column.name} value(s) not {column.rule} "
                  f"were set missing ({shown}{', ...' if outside.sum() > 5 else ''})"
                  f"; no model uses {column.name} unless asked. Correct them, or run with "
                  "--strict (read_cohort(strict=True)) to have them refused.")
        return parsed.where(~outside)
    problems.add_rows(raw, outside, column.name, values, f"out of range: must be {column.rule}",
                      f"correct the value; {column.name} must be {column.rule}")
    return parsed


def _extra_column(raw: RawTable, name: str) -> pd.Series:
    """A column regen does not declare: kept, as numbers when every value is one."""
    values = raw.frame[name].reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values
    numbers, bad, missing = _per_value(_parse_number, values, raw.decimal_comma)
    if not bad.any() and not missing.all():
        return numbers
    text = _as_text(values).str.strip()
    return text.where(~_missing(text)).astype(TEXT)
