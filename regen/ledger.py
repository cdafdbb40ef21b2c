"""The ledgers of a read: problems that stop it, notes that warn, and rows set aside.

- :class:`Problems` collects every value that cannot be used (file, the row the
  user sees, column, value as written, rule, fix) and raises them together as one
  :class:`~regen.exceptions.CohortValidationError` (:func:`format_problems` words
  it); it lists :data:`MAX_LISTED_PROBLEMS` one by one and counts the rest.
- :class:`Notes` collects warnings about usable but suspicious data.
- :func:`exclusions` builds rows of the exclusion ledger (``table, row, id,
  reason, detail, outcome``): ``reason`` is one word a table can count
  (``duplicate_visit``), ``detail`` says which row or day (``same as row 4``).
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from regen._scan import shorten
from regen._write import literal
from regen.exceptions import CohortValidationError, DataWarning
from regen.io import RawTable

__all__ = ["EXCLUSION_COLUMNS", "PROBLEM_COLUMNS", "Notes", "Problems", "empty_exclusions",
           "exclusions", "format_problems"]

PROBLEM_COLUMNS = ["file", "table", "row", "column", "value", "rule", "fix"]
SHOWN_IN_FULL = 20
#: Problems kept one by one, and the characters of their values; the rest are counted
#: (see :class:`Problems`).
MAX_LISTED_PROBLEMS = 100_000
MAX_LISTED_CHARACTERS = 50_000_000
#: Lines of the message that count the problems not shown in full.
SHOWN_KINDS = 30


class Problems:
    """The ledger of problems found while reading a cohort.

    The first ``limit`` problems (default :data:`MAX_LISTED_PROBLEMS`, while their
    values come to at most :data:`MAX_LISTED_CHARACTERS`) are kept one by one; beyond
    them, each file, column and fix keeps only a count, which :meth:`frame` adds as
    one row. So a file in which every cell is wrong costs the memory of a hundred
    thousand problems, not of its cells. Which rows of each column have a problem is
    kept for all of them (:meth:`flagged`).
    """

    def __init__(self, limit: int | None = None) -> None:
        self._parts: list[pd.DataFrame] = []
        self._limit = MAX_LISTED_PROBLEMS if limit is None else limit
        self._kept = self._chars = 0   # problems listed, and the characters of their values
        self._unlisted: dict[tuple, list] = {}   # (file, table, column, fix) → [count, rule]
        # (table, column) → where it has a problem: a mask over the table's rows (the
        # table's file rows), and file rows given one by one
        self._flagged: dict[tuple[str, str], dict] = {}

    def add(self, file: str, table: str | None, row: int | None, column: str | None,
            value: object, rule: str, fix: str) -> None:
        """Record one problem."""
        if row is not None and table is not None and column is not None:
            self._flags(table, column)["listed"].append(int(row))
        if self._kept >= self._limit or self._chars >= MAX_LISTED_CHARACTERS:
            self._unlist(file, table, column, fix, 1, rule)
            return
        self._kept += 1
        self._chars += 0 if value is None else len(str(value))
        self._parts.append(pd.DataFrame({
            "file": [file], "table": [table], "row": pd.array([row], dtype="Int64"),
            "column": [column], "value": [None if value is None else str(value)],
            "rule": [rule], "fix": [fix],
        }))

    def add_table(self, file: str, table: str | None, rule: str, fix: str) -> None:
        """Record a problem with a whole file or table (no row)."""
        self.add(file, table, None, None, None, rule, fix)

    def add_rows(self, raw: RawTable, mask: np.ndarray, column: str | None,
                 values: Sequence | pd.Series | np.ndarray | Callable, rule: str | Sequence[str]
                 | Callable, fix: str) -> None:
        """Record one problem per row of ``raw`` where ``mask`` is true.

        ``values`` (and ``rule``, when it varies by row) are aligned with the
        whole table, or are a function that takes the positions of the rows
        kept (an int array) and returns theirs: only the masked rows kept are
        looked at, so a rule written for each row costs nothing for the rows
        beyond :data:`MAX_LISTED_PROBLEMS`.
        """
        where = np.flatnonzero(np.asarray(mask, dtype=bool))
        if not len(where):
            return
        if column is not None:
            flags = self._flags(raw.name, column)
            if flags["rows"] is None:
                flags["rows"], flags["mask"] = raw.rows, np.zeros(len(raw.rows), dtype=bool)
            if flags["rows"] is raw.rows:
                flags["mask"][where] = True
            else:   # another reading of the table
                flags["listed"].extend(raw.rows[where].tolist())
        kept = where[:max(self._limit - self._kept, 0)]
        sizes = _lengths(values, kept)
        if sizes is not None:   # long values as written: keep those that fit
            kept = kept[:int(np.searchsorted(np.cumsum(sizes), MAX_LISTED_CHARACTERS - self._chars,
                                             side="right"))]
        if len(kept) < len(where):
            first = int(where[len(kept)])
            self._unlist(raw.file, raw.name, column, fix, len(where) - len(kept),
                         rule if isinstance(rule, str) else _at(rule, np.array([first]))[0])
        if not len(kept):
            return
        self._kept += len(kept)
        shown = pd.Series(_at(values, kept), dtype=object).map(_show)
        self._chars += int(shown.str.len().sum())
        rules = rule if isinstance(rule, str) else _at(rule, kept)
        self._parts.append(pd.DataFrame({
            "file": raw.file, "table": raw.name,
            "row": pd.array(raw.rows[kept], dtype="Int64"), "column": column,
            "value": shown.to_numpy(dtype=object), "rule": rules, "fix": fix,
        }))

    def _unlist(self, file, table, column, fix, count: int, rule: str) -> None:
        entry = self._unlisted.setdefault((file, table, column, fix), [0, rule])
        entry[0] += count

    def __bool__(self) -> bool:
        return bool(self._parts) or bool(self._unlisted)

    def _flags(self, table: str, column: str) -> dict:
        return self._flagged.setdefault((table, column), {"rows": None, "mask": None, "listed": []})

    def flagged(self, table: str, column: str) -> np.ndarray:
        """File rows of ``table`` that already have a problem in ``column`` (sorted, unique)."""
        flags = self._flagged.get((table, column), {"rows": None, "listed": []})
        marked = (flags["rows"][flags["mask"]] if flags["rows"] is not None
                  else np.zeros(0, dtype=np.int64))
        return np.union1d(marked, np.asarray(flags["listed"], dtype=np.int64))

    def frame(self) -> pd.DataFrame:
        """All problems as a DataFrame (``file, table, row, column, value, rule, fix``).

        Problems beyond the first :data:`MAX_LISTED_PROBLEMS` are one row per file, column
        and fix at the end: no row number, no value, and a rule that gives their number
        and the first one's rule.
        """
        if not self:
            return pd.DataFrame({name: pd.Series(dtype=object) for name in PROBLEM_COLUMNS})
        frame = pd.concat(self._parts, ignore_index=True) if self._parts else None
        if frame is not None:
            order = frame[["file", "row"]].assign(row=frame["row"].fillna(0))
            frame = frame.loc[order.sort_values(["file", "row"], kind="stable").index]
        counts = [count for count, _ in self._unlisted.values()]
        if self._unlisted:
            rest = pd.DataFrame(
                [(file, table, None, column, None,
                  f"{count:,} more problem{'s' if count > 1 else ''} not listed (the list "
                  f"stops at {self._kept:,}); the first: {rule}", fix)
                 for (file, table, column, fix), (count, rule) in self._unlisted.items()],
                columns=PROBLEM_COLUMNS).astype({"row": "Int64"})
            frame = rest if frame is None else pd.concat([frame, rest])
        frame = frame.reset_index(drop=True)
        # What format_problems needs to count every problem: the last rows count many.
        frame.attrs.update(counted=counts, listed=self._kept)
        return frame

    def raise_if_any(self, where: str) -> None:
        """Raise :class:`CohortValidationError` listing every problem, if there is any."""
        if self:
            frame = self.frame()
            raise CohortValidationError(format_problems(frame, where), frame)


def _lengths(values, positions: np.ndarray) -> np.ndarray | None:
    """The characters of a column's values at ``positions``, without copying them; None
    for what is not a column of text (numbers, texts regen wrote: short)."""
    if not isinstance(values, pd.Series) or not len(positions):
        return None
    if isinstance(values.dtype, pd.StringDtype):
        return values.str.len().to_numpy(dtype="float64", na_value=0)[positions]
    if values.dtype == object:
        return values.iloc[positions].map(lambda v: len(v) if isinstance(v, str) else 0
                                          ).to_numpy(dtype="float64")
    return None


def _at(values, positions: np.ndarray) -> np.ndarray:
    """``values`` (aligned with a table, or a function of row positions) at ``positions``."""
    if callable(values):
        return np.asarray(values(positions), dtype=object)
    if isinstance(values, pd.Series | pd.Index):
        return values.take(positions).to_numpy(dtype=object)
    if isinstance(values, np.ndarray):
        return values[positions].astype(object)
    return np.asarray([values[i] for i in positions], dtype=object)


class Notes:
    """Warnings about usable but suspicious data, kept for the report.

    A note is one line; data text in it (file and column names, values) is shown
    literally: :meth:`add` escapes every control character (:func:`regen._write.literal`),
    so a value cannot colour the terminal or forge a line.
    """

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(literal(message))

    def emit(self, stacklevel: int = 3) -> None:
        """Raise each note as a DataWarning (stacklevel 3: the caller of the public function)."""
        for message in self.messages:
            warnings.warn(message, DataWarning, stacklevel=stacklevel)


def _show(value: object) -> str:
    if value is None or value is pd.NA or value is pd.NaT or (
            isinstance(value, float) and math.isnan(value)):
        return "(empty)"
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.strftime("%Y-%m-%d")
    text = str(value)
    return "(empty)" if not text.strip() else text


def format_problems(problems: pd.DataFrame, where: str, limit: int = SHOWN_IN_FULL) -> str:
    """The validation error message: problems grouped by file and rule.

    The first ``limit`` problems are listed in full (file, row, column, value,
    rule, fix); the rest are counted by file, column and rule (the first
    :data:`SHOWN_KINDS` of those, then how many more). Text from the data
    (file and column names, values, and rules or fixes that quote them) is shown
    literally: control characters and escape sequences are written as escapes
    (:func:`regen._write.literal`), so ``"\x1b[2J"`` shows as ``\x1b[2J`` and a
    value cannot clear the screen or forge a line; a value or column name is
    shown up to :data:`~regen._scan.SHOWN_CHARACTERS` characters, then its length
    (:func:`~regen._scan.shorten`). ``problems`` keeps the values as written.
    """
    counted = list(problems.attrs.get("counted", []))   # the last rows stand for many
    listed = problems.iloc[:len(problems) - len(counted)]
    count = len(listed) + sum(counted)
    lines = [f"{literal(where)}: {count:,} problem{'s' if count != 1 else ''}; nothing was "
             f"analysed. Fix {'them' if count != 1 else 'it'} and run again."]
    shown = listed.iloc[:limit]
    for (file, rule, fix), group in shown.groupby(["file", "rule", "fix"], sort=False):
        lines.append("")
        lines.append(f"{literal(file)}: {literal(rule)}")
        for row, column, value in zip(group["row"], group["column"], group["value"], strict=True):
            place = []
            if row is not pd.NA and row is not None:
                place.append(f"row {row}")
            if column is not None and not (isinstance(column, float) and math.isnan(column)):
                place.append(f"column {literal(shorten(column))}")
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                place.append(f"value '{literal(shorten(value))}'" if value != "(empty)"
                             else "value (empty)")
            if place:
                lines.append("  " + ", ".join(place))
        lines.append(f"  fix: {literal(fix)}")
    rest = listed.iloc[limit:]
    if len(rest) or counted:
        lines.append("")
        lines.append(f"... and {count - len(shown):,} more:")
        summary = rest.fillna({"column": "-"}).groupby(["file", "column", "rule"], sort=False).size()
        if counted:   # the rows that count the problems not listed, each with its count
            unlisted = problems.iloc[len(listed):].fillna({"column": "-"})
            summary = pd.concat([summary, pd.Series(counted, index=pd.MultiIndex.from_frame(
                unlisted[["file", "column", "rule"]]))])
        for (file, column, rule), n in summary.iloc[:SHOWN_KINDS].items():
            where_col = f", column {literal(shorten(column))}" if column != "-" else ""
            lines.append(f"  {int(n):,} × {literal(file)}{where_col}: {literal(rule)}")
        if len(summary) > SHOWN_KINDS:
            lines.append(f"  and {int(summary.iloc[SHOWN_KINDS:].sum()):,} more, of "
                         f"{len(summary) - SHOWN_KINDS:,} other kinds")
        if counted:
            lines.append("  (CohortValidationError.problems, or `regen validate PATH --problems "
                         f"FILE`, lists the first {len(listed):,} one by one and counts the rest)")
        else:
            lines.append("  (CohortValidationError.problems, or `regen validate PATH --problems "
                         "FILE`, lists every one)")
    return "\n".join(lines)


# ------------------------------------------------------------- exclusions ---

#: The exclusion ledger's columns: what was set aside (the table and the row the user
#: sees, its id), why in one word (``reason``), which row or day it concerns (``detail``,
#: empty when the reason says all) and for which outcome (empty: for every outcome).
EXCLUSION_COLUMNS = ("table", "row", "id", "reason", "detail", "outcome")


def _text(values, n: int) -> pd.arrays.ArrowStringArray:
    """A column of ``n`` texts in Arrow: one text repeated, or one per row (None: empty)."""
    if values is None or isinstance(values, str):
        return pd.arrays.ArrowStringArray(pa.repeat(pa.scalar(values, pa.string()), n)
                                          if n else pa.array([], pa.string()))
    return pd.array(values, dtype="string[pyarrow]")


def exclusions(table: str, rows, ids, reason, *, detail=None, outcome=None,
               text_dtype: str = "string[pyarrow]") -> pd.DataFrame:
    """Rows of the exclusion ledger (:data:`EXCLUSION_COLUMNS`): one per ``rows`` and ``ids``
    (the row numbers the user sees and the ids set aside); ``reason``, ``detail`` and
    ``outcome`` are one text for all or one per row. Text is in Arrow unless
    ``text_dtype`` says otherwise (``"string"``: pandas' default, as a cohort's tables)."""
    n = len(rows)
    frame = pd.DataFrame({
        "table": _text(table, n), "row": pd.array(np.asarray(rows), dtype="Int64"),
        "id": pd.array(ids, dtype="string[pyarrow]"), "reason": _text(reason, n),
        "detail": _text(detail, n), "outcome": _text(outcome, n),
    })
    text = ["table", "id", "reason", "detail", "outcome"]
    return frame if text_dtype == "string[pyarrow]" else frame.astype(dict.fromkeys(text,
                                                                                    text_dtype))


def empty_exclusions() -> pd.DataFrame:
    """The exclusion ledger with no row."""
    return exclusions("", [], [], "")
