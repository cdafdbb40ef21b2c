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


def distinct_rows(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of the table these 1-D columns make: each row's code (0, 1, ...
    in order of first appearance) and the position of each code's first row.

    Exact: each column is factorized (a hash of its values), and the codes are combined
    by mixed radix, re-factorized when the product of the columns' sizes nears 2^62.
    """
    n = len(columns[0]) if columns else 0
    key, size = np.zeros(n, dtype=np.int64), 1
    for column in columns:
        codes, uniques = pd.factorize(column, use_na_sentinel=False)
        if size * len(uniques) >= 2**62:
            key, seen = pd.factorize(key)
            size = len(seen)
        key, size = key * len(uniques) + codes, size * max(len(uniques), 1)
    return first_appearance(pd.factorize(key)[0])


def first_appearance(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The codes (numbered by first appearance) and the position of each one's first row."""
    if len(codes) == 0:
        return codes, np.zeros(0, dtype=np.int64)
    running = np.maximum.accumulate(codes)
    return codes, np.flatnonzero(np.r_[True, running[1:] > running[:-1]])
