"""Between visits the NPMLE knows a range, not a point: the bounds, intervals that cover the
range, no interval of zero width where no event was seen, and a fit that converges on large
continuous-time cohorts."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import regen
from regen.exceptions import ConvergenceWarning


def visits_episodes(times: np.ndarray, schedule, rng, dropout: float = 0.0) -> pd.DataFrame:
    """(l, u] episodes of event ``times`` seen at ``schedule`` (days, jittered by ±3),
    right-censored at the last visit kept."""
    rows = []
    for t in times:
        days = np.sort(np.asarray(schedule) + rng.integers(-3, 4, len(schedule)))
        if dropout:
            days = days[: max(1, rng.binomial(len(days), 1 - dropout))]
        after = days[days >= t]
        before = days[days < t]
        low = before[-1] if len(before) else 0.0
        rows.append((float(low), float(after[0]) if len(after) else np.inf))
    return pd.DataFrame(rows, columns=["lower", "upper"])


def test_the_bounds_meet_at_visits_and_part_between_them():
    # Masses 1/4 on (0, 7], 3/8 on (7, 30], 3/8 on (30, 60].
    fit = regen.turnbull(lower=[0, 7, 7, 30], upper=[7, 30, np.inf, 60])
    at = fit.survival_at([7, 18.5, 30, 45])
    assert at["survival"].tolist() == pytest.approx([0.75, 0.5625, 0.375, 0.1875])
    assert at["survival_lower"].tolist() == pytest.approx([0.75, 0.375, 0.375, 0.0])
    assert at["survival_upper"].tolist() == pytest.approx([0.75, 0.75, 0.375, 0.375])
    q = fit.quantile([0.5])
    assert (q["time_lower"].item(), q["time"].item(), q["time_upper"].item()) == pytest.approx(
        (7.0, 7 + 23 / 1.5, 30.0))


def test_between_visits_the_interval_covers_the_whole_range():
    rng = np.random.default_rng(11)
    episodes = visits_episodes(rng.weibull(2.0, 120) * 50, (14, 42, 84, 120), rng)
    fit = regen.turnbull(episodes, n_bootstrap=200, seed=4)
    at = fit.survival_at([28.0, 63.0])
    assert (at["ci_lower"] <= at["survival_lower"]).all()
    assert (at["ci_upper"] >= at["survival_upper"]).all()
    assert (at["survival_upper"] - at["survival_lower"] > 0.05).all()   # between visits
    q = fit.quantile([0.25, 0.5])
    assert (q["ci_lower"] <= q["time_lower"]).all() and (q["ci_upper"] >= q["time_upper"]).all()
    assert (q["ci_upper"] > q["ci_lower"]).all()


def test_no_event_yet_gives_the_exact_binomial_limit_not_a_zero_width_interval():
    # 30 episodes, every one still event-free at its day-42 visit: S(28) = 1 in every
    # replicate, yet 30 episodes cannot rule out a share of events below 11.6%.
    episodes = pd.DataFrame({"lower": np.full(30, 42.0), "upper": np.r_[np.full(20, 90.0),
                                                                        np.full(10, np.inf)]})
    fit = regen.turnbull(episodes, n_bootstrap=100, seed=1)
    at = fit.survival_at([28.0]).iloc[0]
    assert at["survival"] == 1 and at["ci_upper"] == 1
    assert at["ci_lower"] == pytest.approx(0.025 ** (1 / 30))   # 0.8843
    # And at 0 when every episode has had it by then: the upper limit is open as much.
    done = pd.DataFrame({"lower": np.zeros(30), "upper": np.full(30, 14.0)})
    at = regen.turnbull(done, n_bootstrap=100, seed=1).survival_at([28.0]).iloc[0]
    assert at["survival"] == 0 and at["ci_lower"] == 0
    assert at["ci_upper"] == pytest.approx(1 - 0.025 ** (1 / 30))


def slow_npmle_loglik(low: np.ndarray, up: np.ndarray, iterations: int = 20_000) -> float:
    """Turnbull's self-consistency (EM) algorithm on every candidate interval: slow and
    obviously right, the reference for the Newton method's optimum."""
    ends = np.unique(np.concatenate([low, up[np.isfinite(up)]]))
    q, p = ends[:-1], ends[1:]
    cells = np.concatenate([np.column_stack([q, p]), [[ends[-1], np.inf]]])
    exact = low == up
    inside = ((cells[None, :, 0] >= low[:, None]) & (cells[None, :, 1] <= up[:, None])) | (
        exact[:, None] & (cells[None, :, 1] == up[:, None]))
    mass = np.full(len(cells), 1.0 / len(cells))
    for _ in range(iterations):
        share = inside * mass
        mass = (share / share.sum(axis=1, keepdims=True)).mean(axis=0)
    return float(np.log(inside @ mass).sum())


def test_the_optimum_is_the_self_consistent_one():
    rng = np.random.default_rng(3)
    t = rng.gamma(3.0, 12.0, 150)
    a = rng.uniform(0, 40, 150)
    b = a + rng.uniform(2, 30, 150)
    low = np.where(t <= a, 0, np.where(t <= b, a, b)).round(1)
    up = np.where(t <= a, a, np.where(t <= b, b, np.inf)).round(1)
    fit = regen.turnbull(lower=low, upper=up)
    assert fit.kkt_gap < 1e-7
    assert fit.loglik == pytest.approx(slow_npmle_loglik(low, up), abs=1e-6)
    assert fit.loglik >= slow_npmle_loglik(low, up) - 1e-9


def test_a_large_continuous_time_cohort_converges_without_a_warning():
    """50,000 episodes seen at uniformly random times: thousands of candidate intervals,
    over a hundred with mass. (The Newton step on every candidate took minutes.)"""
    rng = np.random.default_rng(0)
    n = 50_000
    t = rng.weibull(1.5, n) * 60
    a = rng.uniform(0, 60, n)
    b = a + rng.uniform(1, 40, n)
    low = np.where(t <= a, 0, np.where(t <= b, a, b))
    up = np.where(t <= a, a, np.where(t <= b, b, np.inf))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fit = regen.turnbull(lower=low, upper=up)
    assert fit.kkt_gap <= 1e-7
    assert len(fit.intervals) > 100


def test_bootstrap_refits_that_fail_are_counted_and_left_out():
    rng = np.random.default_rng(5)
    episodes = visits_episodes(rng.weibull(1.2, 200) * 60, (7, 14, 30, 60, 90, 120, 180), rng)
    episodes["nerve"] = np.where(np.arange(200) % 2, "a", "b")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = regen.turnbull(episodes, by="nerve", n_bootstrap=40, seed=2, max_iter=3)
    refits = [w for w in caught if "bootstrap refit(s) did not reach" in str(w.message)]
    assert len(refits) == 1 and issubclass(refits[0].category, ConvergenceWarning)
    assert f"{sum(fit.n_failed.values())} of 40 bootstrap refit(s)" in str(refits[0].message)
    assert set(fit.n_failed) == {"a", "b"} and sum(fit.n_failed.values()) > 0
    for key, curves in fit._replicates.items():
        assert len(curves) == 40 - fit.n_failed[key]
        assert all(curve.kkt_gap < 1e-7 for curve in curves)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert regen.turnbull(episodes, n_bootstrap=20, seed=2).n_failed == 0


# ----------------------------------------------------------------- coverage ---

#: The relief durations simulated below: Weibull, shape 3 and scale 80 days, so that
#: 96% are still relieved at 4 weeks (where the old intervals failed), 71% at 8, 31% at 12.
SHAPE, SCALE = 3.0, 80.0


def weibull_survival(t: float) -> float:
    return float(np.exp(-((t / SCALE) ** SHAPE)))


@pytest.mark.slow
def test_fixed_week_shares_cover_the_truth():
    """200 cohorts of 80 episodes seen at days ~14, 42, 70, 98, 140 (so weeks 4, 8 and
    12 fall between visits): the 95% intervals of S at 28, 56 and 84 days cover the true
    share at least 93% of the time. The percentile interval of the interpolated curve
    covered 4 weeks far less often (see the README for the figures)."""
    rng = np.random.default_rng(2026)
    days = np.array([28.0, 56.0, 84.0])
    truth = np.array([weibull_survival(d) for d in days])
    covered = np.zeros(3)
    cohorts = 200
    for i in range(cohorts):
        times = rng.weibull(SHAPE, 80) * SCALE
        episodes = visits_episodes(times, (14, 42, 70, 98, 140), rng, dropout=0.1)
        at = regen.turnbull(episodes, n_bootstrap=200, seed=i).survival_at(days)
        covered += (at["ci_lower"].to_numpy() <= truth) & (truth <= at["ci_upper"].to_numpy())
    coverage = covered / cohorts
    print("coverage at 4, 8, 12 weeks:", coverage)
    assert (coverage >= 0.93).all(), coverage
