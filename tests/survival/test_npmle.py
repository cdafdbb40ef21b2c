"""Turnbull NPMLE: hand-solved cases, Kaplan-Meier, the KKT optimum, large data, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import regen
from regen.survival.npmle import support_intervals

INF = np.inf


def masses(fit) -> list[float]:
    return fit.intervals["mass"].round(10).tolist()


def test_hand_solved_case():
    # Rows (0,7] (7,30] (7,inf) (30,60]: maximise p1 p2 (p2 + p3) p3 -> 1/4, 3/8, 3/8.
    fit = regen.turnbull(lower=[0, 7, 7, 30], upper=[7, 30, INF, 60])
    assert fit.intervals[["lower", "upper"]].values.tolist() == [[0, 7], [7, 30], [30, 60]]
    assert masses(fit) == [0.25, 0.375, 0.375]
    assert fit.survival_at([0, 7, 30, 60])["survival"].tolist() == pytest.approx(
        [1, 0.75, 0.375, 0])
    assert fit.loglik == pytest.approx(np.log(0.25 * 0.375 * 0.75 * 0.375))
    assert fit.kkt_gap < 1e-7


def test_half_open_intervals_are_not_closed_ones():
    # (0,7] and (7,14] share the point 7 only under a closed-interval reading: under (l, u]
    # they are disjoint, so each gets half the mass.
    fit = regen.turnbull(lower=[0, 7], upper=[7, 14])
    assert masses(fit) == [0.5, 0.5]
    assert fit.loglik == pytest.approx(2 * np.log(0.5))


def test_support_intervals_of_exact_and_censored_rows():
    q, p, lo, hi = support_intervals(np.array([5.0, 0.0, 5.0, 10.0]), np.array([5.0, 5.0, INF, 20.0]))
    # exact 5 -> point (5, 5]; (0, 5] contains it; (5, inf) and (10, 20] give (10, 20].
    assert list(zip(q, p, strict=True)) == [(5.0, 5.0), (10.0, 20.0)]
    assert lo.tolist() == [0, 0, 1, 1] and hi.tolist() == [0, 0, 1, 1]


def test_equals_kaplan_meier_on_exact_and_right_censored_data(rng):
    lifelines = pytest.importorskip("lifelines")
    times = rng.integers(1, 60, size=300).astype(float)
    observed = rng.random(300) < 0.7
    fit = regen.turnbull(lower=np.where(observed, times, times),
                         upper=np.where(observed, times, INF))
    km = lifelines.KaplanMeierFitter().fit(times, observed)
    grid = np.arange(0, 61, dtype=float)
    expected = km.survival_function_at_times(grid).to_numpy()
    assert fit.survival_at(grid)["survival"].to_numpy() == pytest.approx(expected, abs=1e-7)
    assert fit.median == pytest.approx(km.median_survival_time_)


def _em(lo, hi, w, m, iterations):
    """Plain self-consistency (EM), an independent route to the same optimum."""
    p = np.full(m, 1.0 / m)
    for _ in range(iterations):
        c = np.concatenate([[0.0], np.cumsum(p)])
        r = w / (c[hi + 1] - c[lo])
        d = np.cumsum(np.bincount(lo, r, m + 1) - np.bincount(hi + 1, r, m + 1))[:m]
        p = p * d / w.sum()
    c = np.concatenate([[0.0], np.cumsum(p)])
    return float(w @ np.log(c[hi + 1] - c[lo]))


def test_reaches_the_optimum_that_em_approaches(rng):
    schedule = np.array([0, 7, 14, 30, 45, 60, 90, 120, 180])
    true = rng.gamma(4, 15, size=400)
    visit = np.sort(rng.choice(schedule[1:], size=(400, 4)), axis=1)
    before = np.where(visit < true[:, None], visit, 0).max(axis=1).astype(float)
    after = np.where(visit >= true[:, None], visit, np.inf).min(axis=1)
    fit = regen.turnbull(lower=before, upper=after)
    assert fit.kkt_gap < 1e-7
    pairs, inverse = np.unique(np.column_stack([before, after]), axis=0, return_inverse=True)
    w = np.bincount(inverse.ravel()).astype(float)
    q, p, lo, hi = support_intervals(pairs[:, 0], pairs[:, 1])
    em = _em(lo, hi, w, len(q), 20000)
    assert fit.loglik >= em - 1e-6
    assert fit.loglik - em < 1e-3


def test_weights_equal_repeated_rows():
    lower, upper = [0, 7, 7, 30, 14], [7, 30, INF, 60, 45]
    weighted = regen.turnbull(lower=lower, upper=upper, weights=[2, 1, 3, 1, 2])
    repeated = regen.turnbull(lower=np.repeat(lower, [2, 1, 3, 1, 2]),
                              upper=np.repeat(upper, [2, 1, 3, 1, 2]))
    pd.testing.assert_frame_equal(weighted.intervals, repeated.intervals)
    assert weighted.loglik == pytest.approx(repeated.loglik)


def test_by_group_and_frame_outputs():
    episodes = pd.DataFrame({
        "nerve": ["a"] * 4 + ["b"] * 2,
        "lower": [0, 7, 7, 30, 0, 7], "upper": [7, 30, INF, 60, 7, 14],
    })
    fit = regen.turnbull(episodes, by="nerve")
    alone = regen.turnbull(episodes[episodes["nerve"] == "a"])
    assert fit.loglik == pytest.approx(alone.loglik + 2 * np.log(0.5))
    # a: masses 1/4 on (0,7], 3/8 on (7,30], 3/8 on (30,60]; spread evenly, the median
    # lies 0.25/0.375 of the way through (7, 30].
    assert fit.median.to_dict() == pytest.approx({"a": 7 + 23 * 0.25 / 0.375, "b": 7.0})
    at = fit.survival_at([7, 30])
    assert list(at.columns) == ["nerve", "time", "survival", "survival_lower", "survival_upper"]
    assert at["survival"].tolist() == pytest.approx([0.75, 0.375, 0.5, 0.0])
    quantiles = fit.quantile([0.25, 0.75])
    assert quantiles.query("nerve == 'a'")["time"].tolist() == pytest.approx([7.0, 40.0])
    bounds = fit.quantile([0.5], within="upper")
    assert bounds.query("nerve == 'a'")["time"].tolist() == [30.0]
    curve = fit.to_frame()
    assert curve.groupby("nerve")["survival"].first().tolist() == [1.0, 1.0]
    assert fit.n.to_dict() == {"a": 4.0, "b": 2.0}


def test_quantile_never_reached_is_infinite():
    fit = regen.turnbull(lower=[0, 30, 30], upper=[30, INF, INF])
    assert fit.quantile(0.5)["time"].tolist() == [INF]
    assert fit.survival_at(1000)["survival"].tolist() == pytest.approx([2 / 3])


def test_cohort_episodes_fit_fast_and_match_the_truth():
    sim = regen.simulate.cohort(3000, seed=5)
    truth = sim.events["recovery_day"].to_numpy()
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        sim.write(folder)
        episodes = regen.read_cohort(folder).episodes("numbness")
    fit = regen.turnbull(episodes)
    for t in (30, 60, 90):
        assert fit.survival_at(t)["survival"].iloc[0] == pytest.approx((truth > t).mean(), abs=0.03)


@pytest.mark.parametrize(("lower", "upper", "message"), [
    ([0, 5], [7, 3], "upper < lower"),
    ([-1, 5], [7, 9], "lower < 0"),
    ([np.nan, 5], [7, 9], "missing or non-numeric"),
    ([INF, 5], [INF, 9], "lower is infinite"),
])
def test_bad_intervals_name_the_row(lower, upper, message):
    with pytest.raises(ValueError, match=message):
        regen.turnbull(lower=lower, upper=upper)


def test_bad_arguments():
    frame = pd.DataFrame({"lower": [0.0], "upper": [7.0]})
    with pytest.raises(ValueError, match="no column 'start'"):
        regen.turnbull(frame, lower="start")
    with pytest.raises(ValueError, match="by= needs data"):
        regen.turnbull(lower=[0], upper=[1], by="nerve")
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        regen.turnbull(frame).quantile(1.5)
    with pytest.raises(regen.ModelError, match="every weight is 0"):
        regen.turnbull(frame, weights=[0.0])


def test_within_bounds_agree_at_endpoints_and_bracket_between():
    fit = regen.turnbull(lower=[0, 7, 7, 30], upper=[7, 30, INF, 60])
    ends = [0, 7, 30, 60]
    for within in ("linear", "upper", "lower"):
        assert fit.survival_at(ends, within=within)["survival"].tolist() == pytest.approx(
            [1, 0.75, 0.375, 0])
    between = [3, 20, 45]
    upper = fit.survival_at(between, within="upper")["survival"].to_numpy()
    lower = fit.survival_at(between, within="lower")["survival"].to_numpy()
    linear = fit.survival_at(between)["survival"].to_numpy()
    assert (lower <= linear).all() and (linear <= upper).all() and (lower < upper).all()
    assert linear.tolist() == pytest.approx([1 - 0.25 * 3 / 7, 0.75 - 0.375 * 13 / 23,
                                             0.375 - 0.375 * 15 / 30])
    curve = fit.to_frame()
    assert (curve["survival_lower"] <= curve["survival_upper"]).all()
    with pytest.raises(ValueError, match="within must be one of"):
        fit.survival_at(3, within="middle")


def test_bootstrap_intervals_are_seeded_and_cover_the_estimate():
    sim_lower = np.repeat([0, 7, 7, 30, 14, 30], [5, 8, 4, 9, 6, 3]).astype(float)
    sim_upper = np.repeat([7, 30, INF, 60, 45, INF], [5, 8, 4, 9, 6, 3]).astype(float)
    a = regen.turnbull(lower=sim_lower, upper=sim_upper, n_bootstrap=60, seed=3)
    b = regen.turnbull(lower=sim_lower, upper=sim_upper, n_bootstrap=60, seed=3, n_jobs=2)
    at_a, at_b = a.survival_at([7, 30, 40]), b.survival_at([7, 30, 40])
    pd.testing.assert_frame_equal(at_a, at_b)
    assert (at_a["ci_lower"] <= at_a["survival"]).all()
    assert (at_a["survival"] <= at_a["ci_upper"]).all()
    assert (at_a["ci_upper"] - at_a["ci_lower"]).gt(0).all()
    median = a.quantile(0.5)
    assert median["ci_lower"].iloc[0] <= median["time"].iloc[0] <= median["ci_upper"].iloc[0]
    other = regen.turnbull(lower=sim_lower, upper=sim_upper, n_bootstrap=60, seed=4)
    assert not other.survival_at([30]).equals(a.survival_at([30]))


def test_cluster_bootstrap_resamples_whole_patients():
    frame = pd.DataFrame({"lower": [0, 7, 7, 30, 14, 30.0], "upper": [7, 30, INF, 60, 45, INF],
                          "patient_id": ["a", "a", "b", "b", "c", "c"]})
    fit = regen.turnbull(frame, n_bootstrap=40, seed=1, cluster="patient_id")
    assert {"ci_lower", "ci_upper"} <= set(fit.survival_at([30]).columns)
    with pytest.raises(ValueError, match="no column 'site'"):
        regen.turnbull(frame, n_bootstrap=5, cluster="site")
    with pytest.raises(ValueError, match="n_bootstrap must be"):
        regen.turnbull(frame, n_bootstrap=-1)


def test_cluster_bootstrap_by_group_resamples_each_groups_own_patients():
    """A small group whose patients come last in the data must still bootstrap."""
    rng = np.random.default_rng(0)
    n = 1000
    lower = rng.choice([0.0, 7, 30, 60], n)
    frame = pd.DataFrame({"lower": lower, "upper": lower + 30,
                          "group": ["big"] * (n - 3) + ["small"] * 3,
                          "patient_id": [f"P{i}" for i in range(n)]})
    fit = regen.turnbull(frame, by="group", n_bootstrap=50, seed=1, cluster="patient_id")
    small = fit.survival_at([40]).set_index("group").loc["small"]
    assert small["ci_lower"] <= small["survival"] <= small["ci_upper"]
