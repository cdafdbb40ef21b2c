"""Small helpers shared by the table modules: a fast membership test and JSON cleaning."""

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


def json_safe(value, *, nan=None):
    """``value`` with what strict JSON cannot hold made plain, recursively: numpy arrays as
    lists and numpy scalars as Python numbers, infinity as the string "inf" (or "-inf"),
    NaN as ``nan`` (None, JSON's null, for tables and reports; model files pass "nan",
    which they read back as NaN) and missing values (pd.NA, NaT) as None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v, nan=nan) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, nan=nan) for v in value]
    if isinstance(value, np.ndarray | np.generic):
        return json_safe(value.tolist(), nan=nan)
    if isinstance(value, float) and not np.isfinite(value):
        return nan if np.isnan(value) else ("inf" if value > 0 else "-inf")
    if value is pd.NA or value is pd.NaT:
        return None
    return value
