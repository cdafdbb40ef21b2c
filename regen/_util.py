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
