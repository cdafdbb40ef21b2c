"""The lag profile of the kinetics model: warm-started Newton searches find the same maxima as
cold ones."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regen.exceptions import ConvergenceWarning
from regen.survival.kinetics import Kinetics, LagProfile

INPUT = Path(__file__).resolve().parents[1] / "reference" / "kinetics_input.csv"


def kinetics(dist: str) -> Kinetics:
    data = pd.read_csv(INPUT)
    X = np.column_stack([np.ones(len(data)), (data["age"] - 50) / 10, data["diabetes"]])
    return Kinetics(X, data["lower"].to_numpy(float), data["upper"].to_numpy(float),
                    data["distance_mm"].to_numpy(float), np.ones(len(data)), dist)


def cold(model: Kinetics, lag: float) -> tuple[float, np.ndarray]:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.profile(lag)


@pytest.mark.parametrize("dist", ["lognormal", "weibull", "loglogistic"])
def test_warm_started_profile_equals_cold_starts(dist):
    model = kinetics(dist)
    profile = LagProfile(model)
    lag = profile.estimate()
    profile.interval(lag, 3.84)
    table = profile.table()
    assert len(table) > 25  # the grid, the bounded search and both ends of the interval
    expected = [cold(model, g)[0] for g in table["lag"]]
    np.testing.assert_allclose(table["profile_loglik"], expected, rtol=0, atol=1e-8)
    # The profile's fits stop once a step would gain < 1e-9 in log-likelihood: values to
    # 1e-9, maximisers to about sqrt(1e-9); the fit at the estimate converges in theta.
    for g in (lag, table["lag"].iloc[3]):
        np.testing.assert_allclose(profile.thetas[g], cold(model, g)[1], rtol=0, atol=1e-5)
    np.testing.assert_allclose(model.profile(lag, profile.start(lag))[1], cold(model, lag)[1],
                               rtol=0, atol=1e-7)


def test_a_start_that_fails_falls_back_to_the_cold_start():
    model = kinetics("lognormal")
    value, theta = cold(model, 8.0)
    # no finite log-likelihood at the start (NaN; a scale so small every interval has
    # probability 0): Newton cannot move, and the cold start takes over
    for start in (np.full(4, np.nan), np.append(theta[:-1], -800.0)):
        warm_value, warm_theta = model.profile(8.0, start)
        assert warm_value == pytest.approx(value, abs=1e-9)
        np.testing.assert_allclose(warm_theta, theta, atol=1e-7)


def test_start_interpolates_the_nearest_maximisers():
    profile = LagProfile(kinetics("lognormal"))
    assert profile.start(5.0) is None
    for g in (4.0, 6.0, 9.0):
        profile(g)
    np.testing.assert_array_equal(profile.start(6.0), profile.thetas[6.0])
    start = profile.start(5.0)
    # the quadratic through the three maximisers, nearer the truth than either neighbour
    truth = cold(profile.kinetics, 5.0)[1]
    error = np.abs(start - truth).max()
    assert error < np.abs(profile.thetas[4.0] - truth).max()
    assert error < np.abs(profile.thetas[6.0] - truth).max()


@pytest.mark.parametrize("lag", [0.0, 5.0, 20.0])
def test_merged_rows_give_the_likelihood_of_the_rows(lag, rng):
    """Episodes repeated (same covariates, interval and distance) are merged once for the
    profile; its likelihood, gradient and Hessian at every lag are those of the rows."""
    data = pd.read_csv(INPUT)
    rows = np.r_[np.arange(len(data)), rng.integers(0, len(data), len(data))]
    X = np.column_stack([np.ones(len(rows)), data["diabetes"].to_numpy(float)[rows]])
    model = Kinetics(X, data["lower"].to_numpy(float)[rows], data["upper"].to_numpy(float)[rows],
                     data["distance_mm"].to_numpy(float)[rows], rng.uniform(0.5, 2, len(rows)))
    merged, plain = model.merged(lag), model.aft(lag)
    assert len(merged.w) < 0.75 * len(rows)
    theta = np.array([-1.2, 0.2, np.log(0.6)])
    for got, expected in zip(merged.derivatives(theta), plain.derivatives(theta), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-11)
    assert merged.value(theta) == pytest.approx(plain.w @ plain.terms(theta)[0], rel=1e-12)
