"""regen.simulate.trial: two groups, a known hazard ratio, events seen at visits."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import regen
from regen.simulate import trial

TREATED = "group[T.treated]"


def test_the_same_seed_gives_the_same_study_and_another_seed_another():
    first = trial(80, hazard_ratio=1.5, dropout_per_year=0.3, seed=11)
    pd.testing.assert_frame_equal(first, trial(80, hazard_ratio=1.5, dropout_per_year=0.3,
                                               seed=11))
    assert first.attrs["truth"] == trial(80, hazard_ratio=1.5, dropout_per_year=0.3,
                                         seed=11).attrs["truth"]
    assert not np.array_equal(first["event_day"], trial(80, hazard_ratio=1.5, seed=12)["event_day"])


def test_seed_none_records_a_seed_that_reproduces_the_study():
    first = trial(30)
    seed = first.attrs["truth"]["seed"]
    assert isinstance(seed, int)
    pd.testing.assert_frame_equal(first, trial(30, seed=seed))


def test_the_frame_is_one_episode_per_patient_with_the_documented_columns():
    ep = trial(101, p_treated=0.3, seed=3)
    assert ep.columns.tolist() == ["patient_id", "treatment_id", "group", "lower", "upper",
                                   "status", "event_day"]
    assert ep["patient_id"].is_unique and ep["treatment_id"].is_unique and len(ep) == 101
    assert ep["group"].value_counts().to_dict() == {"control": 71, "treated": 30}
    truth = ep.attrs["truth"]
    assert truth["n_treated"] == 30


def test_studies_that_differ_in_the_effect_share_every_other_draw():
    base = trial(200, hazard_ratio=1.0, seed=4)
    stronger = trial(200, hazard_ratio=3.0, seed=4)
    exact = trial(200, hazard_ratio=1.0, seed=4, exact=True)
    control = base["group"] == "control"
    assert (stronger["group"] == base["group"]).all()
    pd.testing.assert_frame_equal(stronger[control], base[control])
    treated = ~control
    # proportional hazards: a treated time is the control-law time shrunk by HR^(-1/shape)
    np.testing.assert_allclose(stronger.loc[treated, "event_day"],
                               base.loc[treated, "event_day"] * 3.0 ** -1, rtol=1e-12)
    np.testing.assert_array_equal(exact["event_day"], base["event_day"])


@pytest.mark.parametrize("settings", [
    {},
    {"p_missed": 0.5, "dropout_per_year": 0.8, "jitter_days": 6},
    {"shape": 2.5, "median_days": 20.0, "hazard_ratio": 0.4, "schedule": (7, 14, 21, 28)},
    {"shape": 0.6, "median_days": 200.0, "jitter_days": 0},
])
def test_each_interval_holds_the_true_event_time(settings):
    ep = trial(400, seed=5, **settings)
    lower, upper, event = ep["lower"], ep["upper"], ep["event_day"]
    assert ((lower < event) & (event <= upper)).all()
    finite = np.isfinite(upper)
    assert (lower[finite] < upper[finite]).all()
    assert (ep.loc[~finite, "status"] == "right_censored").all()
    assert (ep.loc[finite & (lower == 0), "status"] == "left_censored").all()
    assert (ep.loc[finite & (lower > 0), "status"] == "interval_censored").all()
    schedule = settings.get("schedule", (14, 28, 56, 84, 112, 168))
    jitter = settings.get("jitter_days", 3)
    visit_days = np.r_[lower, upper[finite]]
    assert np.all(visit_days == np.round(visit_days))
    assert visit_days.max() <= schedule[-1] + jitter
    # every kind of episode is there, so each is checked above
    assert set(ep["status"]) == {"right_censored", "left_censored", "interval_censored"}


def test_exact_times_are_exact_or_censored_at_leaving_or_at_the_end():
    ep = trial(400, dropout_per_year=0.9, schedule=(30, 90), seed=6, exact=True)
    seen = ep["status"] == "exact"
    assert 0 < seen.mean() < 1
    assert (ep.loc[seen, "lower"] == ep.loc[seen, "event_day"]).all()
    assert (ep.loc[seen, "upper"] == ep.loc[seen, "event_day"]).all()
    censored = ep.loc[~seen]
    assert (censored["status"] == "right_censored").all() and np.isinf(censored["upper"]).all()
    assert (censored["lower"] < censored["event_day"]).all()
    assert (censored["lower"] <= 90).all() and (censored["lower"] < 90).any()


def test_without_censoring_the_models_find_the_true_effects():
    hr, shape = 1.8, 1.5
    ep = trial(600, hazard_ratio=hr, shape=shape, median_days=45.0, schedule=(100_000,),
               exact=True, seed=7)
    assert (ep["status"] == "exact").all()
    truth = ep.attrs["truth"]
    assert truth["log_hazard_ratio"] == pytest.approx(math.log(hr))
    assert truth["aft_coefficient"] == pytest.approx(-math.log(hr) / shape)
    ph = regen.fit_ph("~ group", ep)
    assert abs(ph.params[TREATED] - math.log(hr)) < 3 * ph.bse[TREATED]
    aft = regen.fit_recovery("~ group", ep, dist="weibull")
    assert abs(aft.params[TREATED] - truth["aft_coefficient"]) < 3 * aft.bse[TREATED]
    assert abs(aft.params["log_scale"] + math.log(shape)) < 3 * aft.bse["log_scale"]
    # the medians: the AFT's by group, and the nonparametric curves'
    medians = aft.predict_quantile(pd.DataFrame({"group": ["control", "treated"]}), q=0.5)
    assert (medians["ci_lower"].to_numpy()
            < [truth["median_days_control"], truth["median_days_treated"]]).all()
    assert (medians["ci_upper"].to_numpy()
            > [truth["median_days_control"], truth["median_days_treated"]]).all()
    curves = regen.turnbull(ep, by="group").quantile(0.5).set_index("group")["time"]
    assert curves["control"] == pytest.approx(truth["median_days_control"], rel=0.2)
    assert curves["treated"] == pytest.approx(truth["median_days_treated"], rel=0.2)


def test_interval_censored_studies_fit_with_every_model():
    ep = trial(300, hazard_ratio=2.0, dropout_per_year=0.5, seed=8)
    assert ep["status"].nunique() == 3
    assert regen.logrank_test(ep, by="group").p_value < 0.05
    assert regen.fit_ph("~ group", ep).params[TREATED] > 0
    assert regen.fit_recovery("~ group", ep, dist="weibull").params[TREATED] < 0
    assert regen.fit_recovery("~ group", ep, dist="weibull", cluster="patient_id").params[
        TREATED] < 0
    survival = regen.turnbull(ep, by="group").survival_at([56]).set_index("group")
    assert (survival.loc["treated", "survival_upper"]
            < survival.loc["control", "survival_lower"])


@pytest.mark.slow
def test_the_logrank_test_holds_its_level_when_the_hazard_ratio_is_one():
    p_values = np.array([regen.logrank_test(trial(60, seed=seed), by="group").p_value
                         for seed in range(200)])
    assert 0.01 <= (p_values < 0.05).mean() <= 0.10
    assert 0.4 < p_values.mean() < 0.6      # uniform: mean 1/2


@pytest.mark.parametrize(("arguments", "error", "match"), [
    ({"n_patients": 0}, ValueError, "n_patients must be >= 1, got 0"),
    ({"n_patients": 2.5}, TypeError, "n_patients must be a whole number"),
    ({"hazard_ratio": 0}, ValueError, "hazard_ratio must be > 0, got 0"),
    ({"hazard_ratio": -1.0}, ValueError, "hazard_ratio must be > 0"),
    ({"hazard_ratio": math.inf}, ValueError, "hazard_ratio must be finite"),
    ({"hazard_ratio": "2"}, TypeError, "hazard_ratio must be a number"),
    ({"median_days": 0.0}, ValueError, "median_days must be > 0, got 0.0"),
    ({"shape": -0.5}, ValueError, "shape must be > 0, got -0.5"),
    ({"p_treated": 1.2}, ValueError, "p_treated must be <= 1, got 1.2"),
    ({"schedule": (28, 14)}, ValueError, "schedule must be non-empty, strictly increasing"),
    ({"schedule": ()}, ValueError, "schedule must be non-empty"),
    ({"schedule": (0, 14)}, ValueError, "schedule day must be >= 1, got 0"),
    ({"schedule": "14"}, TypeError, "schedule must be a sequence of days"),
    ({"jitter_days": -1}, ValueError, "jitter_days must be >= 0, got -1"),
    ({"p_missed": -0.1}, ValueError, "p_missed must be >= 0, got -0.1"),
    ({"dropout_per_year": 1.0}, ValueError, "dropout_per_year must be below 1"),
    ({"dropout_per_year": 2}, ValueError, "dropout_per_year must be <= 1, got 2"),
    ({"exact": "yes"}, TypeError, "exact must be True or False"),
    ({"seed": -3}, ValueError, "seed must be >= 0, got -3"),
])
def test_bad_arguments_are_refused_naming_the_argument_and_value(arguments, error, match):
    arguments = {"n_patients": 10, **arguments}
    with pytest.raises(error, match=match):
        trial(**arguments)
