"""The shared likelihood engine: one pass over the rows gives what value, gradient and hessian
give one by one, and Newton's method keeps its contract."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from regen._util import distinct_rows
from regen.exceptions import ConvergenceWarning
from regen.survival.likelihood import (
    DISTRIBUTIONS,
    IntervalLikelihood,
    Patterns,
    distinct_matrix_rows,
    newton_maximum,
)

THETAS = ([2.5, 0.3, -0.2, np.log(0.7)], [1.8, -0.4, 0.5, np.log(1.6)], [3.4, 0.1, 0.0, -1.5])


def rows(rng, dist: str, repeated: bool = False) -> IntervalLikelihood:
    """Rows of every kind: right-, left-, interval-censored, exact and (0, inf); with
    ``repeated``, a covariate of few values, so that many rows repeat others."""
    n = 300
    x = rng.integers(0, 3, n) / 2 if repeated else rng.normal(size=n)
    X = np.column_stack([np.ones(n), x, rng.integers(0, 2, n)])
    lower = rng.choice([0.0, 0.5, 2, 7, 14, 30, 60], size=n)
    upper = lower + rng.choice([0.5, 7.0, 16, 30, np.inf], size=n)
    exact = rng.random(n) < 0.1
    upper[exact] = lower[exact] = rng.uniform(1, 90, size=int(exact.sum()))
    likelihood = IntervalLikelihood(DISTRIBUTIONS[dist], X, lower, upper, rng.uniform(0.5, 2, n))
    assert set(np.unique(likelihood.kind)) == {0, 1, 2, 3, 4}
    return likelihood


@pytest.mark.parametrize("repeated", [False, True])
@pytest.mark.parametrize("dist", list(DISTRIBUTIONS))
def test_one_pass_over_merged_rows_equals_the_sums_over_rows(dist, repeated, rng):
    likelihood = rows(rng, dist, repeated)
    if repeated:  # the merged rows are far fewer than the rows
        assert len(likelihood.compact.w) < 0.7 * len(likelihood.w)
        assert len(likelihood.compact.X) == 6
    interval = likelihood.kind == 2
    for theta in map(np.array, THETAS):
        # the interval rows' mass is computed from either tail, by where z_l lies
        z_lower = (likelihood.log_l - likelihood.X @ theta[:-1])[interval] / np.exp(theta[-1])
        assert (z_lower > 0).any() and (z_lower <= 0).any()
        value, gradient, hessian = likelihood.derivatives(theta)
        assert np.isfinite(value)
        assert value == pytest.approx(likelihood.value(theta), rel=1e-12, abs=1e-12)
        assert value == pytest.approx(likelihood.w @ likelihood.terms(theta)[0], rel=1e-12)
        np.testing.assert_allclose(gradient, likelihood.scores(theta).sum(axis=0), rtol=1e-12,
                                   atol=1e-10)
        np.testing.assert_allclose(hessian, likelihood.row_hessians(theta).sum(axis=0),
                                   rtol=1e-12, atol=1e-10)


def slow_distinct(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes by first appearance and first positions, from a dict of row tuples."""
    seen: dict = {}
    codes = [seen.setdefault(tuple(row), len(seen)) for row in table.tolist()]
    first = {}
    for position, code in enumerate(codes):
        first.setdefault(code, position)
    return np.array(codes), np.array([first[c] for c in range(len(seen))])


@pytest.mark.parametrize("columns", [1, 3, 8])
def test_distinct_rows_are_those_a_dictionary_finds(columns, rng):
    table = rng.choice([0.0, 1.0, 2.5, np.inf, -np.inf], size=(500, columns))
    expected = slow_distinct(table)
    for found in (distinct_rows(*table.T), distinct_matrix_rows(table)):
        np.testing.assert_array_equal(found[0], expected[0])
        np.testing.assert_array_equal(found[1], expected[1])
    patterns = Patterns.of(table)
    np.testing.assert_array_equal(patterns.rows[patterns.codes], table)
    assert patterns.counts.sum() == len(table)
    # the weighted distinct rows have the table's Gram matrix (what a rank check reads)
    finite = np.where(np.isfinite(table), table, 3.0)
    gram = Patterns.of(finite).gram_rows()
    np.testing.assert_allclose(gram.T @ gram, finite.T @ finite, rtol=1e-12)


def test_distinct_rows_of_many_wide_columns_keep_their_key_in_range(rng):
    """Twelve columns of 100 values each: 10^24 combinations, past int64, re-coded on the
    way, and no two different rows share a code."""
    table = rng.integers(0, 100, size=(2000, 12)).astype(float)
    table[1000:] = table[:1000]
    codes, first = distinct_rows(*table.T)
    np.testing.assert_array_equal(codes[1000:], codes[:1000])
    assert len(first) == len({tuple(r) for r in table.tolist()}) == 1000


def test_a_matrix_whose_rows_project_alike_is_grouped_column_by_column(monkeypatch, rng):
    """Rows that differ but whose hash (product with a random vector) is equal are not
    merged: the check against each group's first row sends the table to the exact way."""
    table = rng.integers(0, 3, size=(200, 3)).astype(float)
    monkeypatch.setattr(np.random, "default_rng",
                        lambda seed: type("Zero", (), {"uniform": lambda self, a, b, n: np.zeros(n)})())
    codes, first = distinct_matrix_rows(table)
    np.testing.assert_array_equal(codes, slow_distinct(table)[0])


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
    found = newton_maximum(likelihood, likelihood.start(), 1e-9, 100)
    assert found.converged and 1 < found.iterations < 100
    assert found.value == pytest.approx(likelihood.value(found.theta), rel=1e-12)
    np.testing.assert_allclose(found.gradient, likelihood.gradient(found.theta), atol=1e-10)
    assert np.abs(found.gradient).max() < 1e-6
    # no direction improves on it
    for step in np.eye(4) * 1e-4:
        assert likelihood.value(found.theta + step) < found.value
        assert likelihood.value(found.theta - step) < found.value
    np.testing.assert_allclose(found.hessian, likelihood.hessian(found.theta), rtol=1e-12)


def test_newton_warns_when_it_stops_early_unless_asked_not_to(rng):
    likelihood = rows(rng, "weibull")
    start = likelihood.start()
    with pytest.warns(ConvergenceWarning, match="stopped after 1 Newton iterations"):
        newton_maximum(likelihood, start, 1e-9, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = newton_maximum(likelihood, start, 1e-9, 1, warn=False)
    assert not found.converged and found.iterations == 1


def test_a_gain_tolerance_stops_once_a_step_would_gain_less(rng):
    likelihood = rows(rng, "lognormal")
    start = likelihood.start()
    full = newton_maximum(likelihood, start, 1e-12, 100)
    early = newton_maximum(likelihood, start, 1e-12, 100, gain_tol=1e-6)
    assert early.converged and early.iterations < full.iterations
    assert 0 <= full.value - early.value < 1e-6
