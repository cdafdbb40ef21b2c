"""The shared likelihood engine: one pass over the rows gives what value, gradient and hessian
give one by one, and Newton's method keeps its contract."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from regen.exceptions import ConvergenceWarning
from regen.survival.likelihood import (
    DISTRIBUTIONS,
    IntervalLikelihood,
    log_midpoint_start,
    newton,
    newton_maximum,
)

THETAS = ([2.5, 0.3, -0.2, np.log(0.7)], [1.8, -0.4, 0.5, np.log(1.6)], [3.4, 0.1, 0.0, -1.5])


def rows(rng, dist: str) -> IntervalLikelihood:
    """Rows of every kind: right-, left-, interval-censored, exact and (0, inf)."""
    n = 300
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n)])
    lower = rng.choice([0.0, 0.5, 2, 7, 14, 30, 60], size=n)
    upper = lower + rng.choice([0.5, 7.0, 16, 30, np.inf], size=n)
    exact = rng.random(n) < 0.1
    upper[exact] = lower[exact] = rng.uniform(1, 90, size=int(exact.sum()))
    likelihood = IntervalLikelihood(DISTRIBUTIONS[dist], X, lower, upper, rng.uniform(0.5, 2, n))
    assert set(np.unique(likelihood.kind)) == {0, 1, 2, 3, 4}
    return likelihood


@pytest.mark.parametrize("dist", list(DISTRIBUTIONS))
def test_one_pass_equals_value_gradient_and_hessian(dist, rng):
    likelihood = rows(rng, dist)
    interval = likelihood.kind == 2
    for theta in map(np.array, THETAS):
        # the interval rows' mass is computed from either tail, by where z_l lies
        z_lower = (likelihood.log_l - likelihood.X @ theta[:-1])[interval] / np.exp(theta[-1])
        assert (z_lower > 0).any() and (z_lower <= 0).any()
        value, gradient, hessian = likelihood.derivatives(theta)
        assert np.isfinite(value)
        assert value == pytest.approx(likelihood.value(theta), rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(gradient, likelihood.gradient(theta), rtol=1e-12, atol=1e-10)
        np.testing.assert_allclose(hessian, likelihood.hessian(theta), rtol=1e-12, atol=1e-10)
        np.testing.assert_allclose(hessian, likelihood.row_hessians(theta).sum(axis=0),
                                   rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("dist", list(DISTRIBUTIONS))
def test_hessian_matches_finite_differences_of_the_gradient(dist, rng):
    likelihood = rows(rng, dist)
    theta = np.array(THETAS[0])
    numeric = np.array([(likelihood.gradient(theta + h) - likelihood.gradient(theta - h)) / 2e-6
                        for h in np.eye(4) * 1e-6])
    np.testing.assert_allclose(likelihood.derivatives(theta)[2], numeric, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dist", list(DISTRIBUTIONS))
def test_newton_reaches_the_maximum_and_reports_it(dist, rng):
    likelihood = rows(rng, dist)
    start = log_midpoint_start(likelihood.X, np.exp(likelihood.log_l), np.exp(likelihood.log_u))
    found = newton_maximum(likelihood, start, 1e-9, 100)
    assert found.converged and 1 < found.iterations < 100
    assert found.value == pytest.approx(likelihood.value(found.theta), rel=1e-12)
    np.testing.assert_allclose(found.gradient, likelihood.gradient(found.theta), atol=1e-10)
    assert np.abs(found.gradient).max() < 1e-6
    # no direction improves on it
    for step in np.eye(4) * 1e-4:
        assert likelihood.value(found.theta + step) < found.value
        assert likelihood.value(found.theta - step) < found.value
    theta, iterations = newton(likelihood, start, 1e-9, 100)
    np.testing.assert_array_equal(theta, found.theta)
    assert iterations == found.iterations


def test_newton_warns_when_it_stops_early_unless_asked_not_to(rng):
    likelihood = rows(rng, "weibull")
    start = log_midpoint_start(likelihood.X, np.exp(likelihood.log_l), np.exp(likelihood.log_u))
    with pytest.warns(ConvergenceWarning, match="stopped after 1 Newton iterations"):
        newton(likelihood, start, 1e-9, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = newton_maximum(likelihood, start, 1e-9, 1, warn=False)
    assert not found.converged and found.iterations == 1
