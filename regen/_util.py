"""Small vectorised helpers shared by the table modules."""

from __future__ import annotations

import numpy as np
import pandas as pd


def isin(values: pd.Series, candidates) -> np.ndarray:
    """``values.isin(candidates)`` as a boolean array, by hashing.

    pandas' ``isin`` on Arrow-backed strings walks a large ``candidates`` in
    Python; an index lookup is a hash join and stays fast at a million ids.
    Missing values are never members.
    """
    index = pd.Index(pd.unique(pd.Series(candidates).dropna()))
    return index.get_indexer(values) >= 0


#: A spreadsheet runs a cell starting with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot run as spreadsheet formulas.

    A text cell starting with ``= + - @``, a tab or a carriage return gets a
    leading apostrophe (OWASP's advice for CSV injection), which spreadsheets
    show as text. Numeric columns are left alone, so -0.5 stays a number.
    """
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
            continue
        text = column.astype("string")
        risky = text.str.startswith(FORMULA_STARTS).fillna(False).to_numpy(dtype=bool)
        if risky.any():
            out[name] = column.astype(object).where(~risky, "'" + text.astype(object))
    return out


def write_csv(frame: pd.DataFrame, path, **options) -> None:
    """``frame.to_csv`` with text cells made safe for spreadsheets."""
    spreadsheet_safe(frame).to_csv(path, **options)


def json_safe(value):
    """``value`` with what strict JSON cannot hold made plain, recursively: numpy scalars as
    Python numbers, NaN and missing as None, infinity as the string "inf" (or "-inf")."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None if np.isnan(value) else ("inf" if value > 0 else "-inf")
    if value is pd.NA or value is pd.NaT:
        return None
    return value
