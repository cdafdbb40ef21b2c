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
