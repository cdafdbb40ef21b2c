"""Regeneration kinetics: T = lag + distance / velocity."""

from __future__ import annotations

import tempfile

import numpy as np
import pandas as pd
import pytest

import regen

FORMULA = "~ I((age - 50) / 10) + diabetes + smoker"


def numbness(n_patients: int, seed: int, **truth) -> pd.DataFrame:
    sim = regen.simulate.cohort(n_patients, seed=seed, **truth)
    with tempfile.TemporaryDirectory() as folder:
        sim.write(folder)
        return regen.read_cohort(folder).episodes("numbness")


@pytest.fixture(scope="module")
def episodes() -> pd.DataFrame:
    return numbness(600, seed=4, velocity_mm_per_day=1.3, lag_days=10.0,
                    diabetes_velocity_ratio=0.8)


@pytest.fixture(scope="module")
def kinetics(episodes):
    return regen.fit_regeneration(episodes, formula=FORMULA, cluster="patient_id")


def test_recovers_velocity_lag_and_the_diabetes_ratio(kinetics):
    # The check: 600 patients, 1.3 mm/day at age 50, lag 10 days, diabetes x0.8.
    assert kinetics.velocity["ci_lower"] <= 1.3 <= kinetics.velocity["ci_upper"]
    assert kinetics.lag["ci_lower"] <= 10 <= kinetics.lag["ci_upper"]
    ratio = kinetics.velocity_ratios.loc["diabetes"]
    assert ratio["ci_lower"] <= 0.8 <= ratio["ci_upper"]
    assert list(kinetics.velocity_ratios.columns) == ["estimate", "ci_lower", "ci_upper"]


@pytest.mark.parametrize("dist", ["lognormal", "loglogistic", "weibull"])
def test_constant_distance_and_zero_lag_is_the_aft(episodes, dist):
    data = episodes.assign(distance_mm=80.0)
    kinetics = regen.fit_regeneration(data, formula="~ diabetes", lag=0, velocity_dist=dist)
    aft = regen.fit_recovery("~ diabetes", data, dist=dist)
    assert kinetics.loglik == pytest.approx(aft.loglik, rel=1e-8)
    # log T = log 80 - beta0 - beta1 x + sigma eps
    assert aft.params["Intercept"] == pytest.approx(np.log(80) - kinetics.params["Intercept"],
                                                    rel=1e-6)
    assert aft.params["diabetes"] == pytest.approx(-kinetics.params["diabetes"], rel=1e-6)
    # The median time is 80 mm at the median velocity, whatever the law.
    profile = pd.DataFrame({"diabetes": [True], "distance_mm": [80.0]})
    median = aft.predict_quantile(profile, q=[0.5])["estimate"].iloc[0]
    assert median == pytest.approx(80 / kinetics.predict_velocity(profile)["estimate"].iloc[0])
    assert median == pytest.approx(kinetics.predict_quantile(profile, q=[0.5])["estimate"].iloc[0])


def test_weibull_regrowth_time_is_an_alternative_with_its_own_aic(episodes):
    fits = {dist: regen.fit_regeneration(episodes, formula=FORMULA, velocity_dist=dist)
            for dist in ("lognormal", "weibull")}
    # The simulated velocity is log-normal, so its model should fit better.
    assert fits["lognormal"].aic < fits["weibull"].aic
    assert fits["weibull"].velocity_dist == "weibull"
    velocity = fits["weibull"].velocity
    assert velocity["ci_lower"] < velocity["estimate"] < velocity["ci_upper"]
    with pytest.raises(ValueError, match="velocity_dist must be one of"):
        regen.fit_regeneration(episodes, velocity_dist="gamma")


def test_a_lag_the_data_cannot_see_is_flagged(episodes):
    with pytest.warns(regen.DataWarning, match="the lag is not identified.*distances hardly vary"):
        fit = regen.fit_regeneration(episodes.assign(distance_mm=80.0))
    assert fit.lag_flat
    # Few episodes: the profile itself is flat over a wide range of lags.
    few = episodes.sample(25, random_state=1)
    with pytest.warns(regen.DataWarning, match="the lag is not identified"):
        regen.fit_regeneration(few)


def test_fixed_lag_predictions(episodes):
    fit = regen.fit_regeneration(episodes, formula="~ diabetes", lag=10)
    assert fit.lag["estimate"] == 10 and fit.lag_fixed and "lag" not in fit.params.index
    profiles = pd.DataFrame({"diabetes": [False, True], "distance_mm": [60.0, 60.0]})
    velocity = fit.predict_velocity(profiles)
    assert velocity["estimate"].iloc[1] < velocity["estimate"].iloc[0]
    median = fit.predict_quantile(profiles, q=[0.5])
    expected = 10 + 60 / velocity["estimate"]
    assert median["estimate"].to_numpy() == pytest.approx(expected.to_numpy())
    assert (median["ci_lower"] < median["estimate"]).all()


def test_profile_interval_is_where_the_profile_drops_by_1_92(kinetics):
    profile = kinetics.lag_profile
    peak = kinetics.loglik
    inside = profile[(profile["lag"] > kinetics.lag["ci_lower"])
                     & (profile["lag"] < kinetics.lag["ci_upper"])]
    assert (inside["profile_loglik"] >= peak - 1.921 - 1e-6).all()
    assert profile["profile_loglik"].max() <= peak + 1e-6


def test_errors_say_what_is_needed(episodes):
    with pytest.raises(ValueError, match=r"needs each numbness episode's \(lower, upper\] and distance"):
        regen.fit_regeneration(episodes.drop(columns="distance_mm"))
    with pytest.raises(ValueError, match="no column 'patient' \\(cluster\\)"):
        regen.fit_regeneration(episodes, cluster="patient")
    with pytest.raises(ValueError, match="covariates only"):
        regen.fit_regeneration(episodes, formula="upper ~ age")
    with pytest.raises(regen.ModelError, match="only 5 episode"):
        regen.fit_regeneration(episodes.loc[episodes["upper"] < float("inf")].head(5))
    with pytest.warns(regen.DataWarning, match="outside 5–500 mm"):
        regen.fit_regeneration(episodes.assign(distance_mm=episodes["distance_mm"].where(
            episodes.index != episodes.index[0], 4500.0)), lag=10)
    with pytest.warns(regen.DataWarning, match="3 episode"):
        regen.fit_regeneration(episodes.assign(age=episodes["age"].where(
            np.arange(len(episodes)) >= 3)), formula="~ age", lag=10)
    profile = pd.DataFrame({"distance_mm": [-50.0]})
    fixed = regen.fit_regeneration(episodes, lag=10)
    with pytest.raises(ValueError, match="must be > 0 mm"):
        fixed.predict_quantile(profile)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        fixed.predict_quantile(profile.abs(), q=[0.5, 1.5])
    with pytest.raises(ValueError, match="lag must lie in"):
        regen.fit_regeneration(episodes, lag=10_000)
    with pytest.raises(ValueError, match="distance_mm must be > 0"):
        regen.fit_regeneration(episodes.assign(distance_mm=0.0), lag=5)


def test_columns_the_fit_does_not_read_change_nothing(episodes):
    # the fit prepares only the columns it reads; a typo is still matched against them all
    used = ["lower", "upper", "distance_mm", "age", "diabetes", "patient_id"]
    formula = "~ I((age - 50) / 10) + diabetes"
    wide = regen.fit_regeneration(episodes, formula=formula, cluster="patient_id", lag=10)
    narrow = regen.fit_regeneration(episodes[used], formula=formula, cluster="patient_id", lag=10)
    pd.testing.assert_series_equal(wide.params, narrow.params)
    pd.testing.assert_frame_equal(wide.covariance, narrow.covariance)
    with pytest.raises(ValueError, match="no column 'diabetis'.*did you mean 'diabetes'"):
        regen.fit_regeneration(episodes, formula="~ diabetis", lag=10)


@pytest.mark.parametrize("dist", ["lognormal", "weibull"])
def test_save_and_load(kinetics, episodes, tmp_path, dist):
    if dist != "lognormal":
        kinetics = regen.fit_regeneration(episodes, formula=FORMULA, velocity_dist=dist, lag=10)
    loaded = regen.load_model(kinetics.save(tmp_path / "kinetics.json"))
    assert loaded.velocity_dist == dist
    pd.testing.assert_series_equal(loaded.velocity, kinetics.velocity)
    pd.testing.assert_series_equal(loaded.lag, kinetics.lag)
    profiles = pd.DataFrame({"age": [50, 70], "diabetes": [False, True], "smoker": [False, False],
                             "distance_mm": [40.0, 40.0]})
    pd.testing.assert_frame_equal(loaded.predict_quantile(profiles),
                                  kinetics.predict_quantile(profiles))
