"""Simulation: the AFT's 95% intervals cover the truth about 95% of the time (slow)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import regen
from regen.survival.likelihood import DISTRIBUTIONS

TRUTH = {"Intercept": 4.0, "age": -0.01, "diabetes": 0.25}
LOG_SCALE = np.log(0.5)
SCHEDULE = np.array([7, 14, 30, 45, 60, 90, 120, 180, 270])
PROFILE = pd.DataFrame({"age": [60.0], "diabetes": [1.0]})


def simulate(rng: np.random.Generator, n: int = 300) -> pd.DataFrame:
    """Weibull AFT times seen through a jittered visit schedule with missed visits."""
    age = rng.uniform(25, 85, n)
    diabetes = (rng.random(n) < 0.3).astype(float)
    eta = TRUTH["Intercept"] + TRUTH["age"] * age \
        + TRUTH["diabetes"] * diabetes
    times = np.exp(eta + np.exp(LOG_SCALE) * np.log(rng.exponential(size=n)))
    visits = SCHEDULE + rng.integers(-3, 4, size=(n, len(SCHEDULE)))
    visits = np.where(rng.random(visits.shape) < 0.15, np.nan, visits)
    before = np.where(visits < times[:, None], visits, np.nan)
    after = np.where(visits >= times[:, None], visits, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        lower = np.nan_to_num(np.nanmax(before, axis=1), nan=0.0)
        upper = np.nan_to_num(np.nanmin(after, axis=1), nan=np.inf)
    return pd.DataFrame({"lower": lower, "upper": upper, "age": age, "diabetes": diabetes})


@pytest.mark.slow
def test_intervals_cover_the_truth():
    rng = np.random.default_rng(400)
    true_median = np.exp(TRUTH["Intercept"] + TRUTH["age"] * 60 + TRUTH["diabetes"]
                         + np.exp(LOG_SCALE) * DISTRIBUTIONS["weibull"].quantile(0.5))
    hits = {name: 0 for name in [*TRUTH, "log_scale", "median"]}
    replicates = 400
    for _ in range(replicates):
        fit = regen.fit_recovery("~ age + diabetes", simulate(rng))
        ci = fit.conf_int()
        for name, value in [*TRUTH.items(), ("log_scale", LOG_SCALE)]:
            hits[name] += ci.loc[name, "ci_lower"] <= value <= ci.loc[name, "ci_upper"]
        median = fit.predict_quantile(PROFILE, q=[0.5]).iloc[0]
        hits["median"] += median["ci_lower"] <= true_median <= median["ci_upper"]
    coverage = {name: hit / replicates for name, hit in hits.items()}
    assert all(0.93 <= c <= 0.97 for c in coverage.values()), coverage
