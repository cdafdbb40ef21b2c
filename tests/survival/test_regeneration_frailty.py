"""The kinetics model with a patient effect on log velocity (fit_regeneration(frailty=))."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import regen
from regen.exceptions import ModelError
from regen.simulate import cohort


@pytest.fixture(scope="module")
def episodes(tmp_path_factory):
    sim = cohort(250, seed=5, retreat="on_relief_end", patient_sd_log=0.35, lag_days=8,
                 max_treatments=4)
    folder = tmp_path_factory.mktemp("kinetics_frailty")
    sim.write(folder)
    return regen.read_cohort(folder).episodes("numbness")


@pytest.fixture(scope="module")
def fit(episodes):
    return regen.fit_regeneration(episodes, formula="~ I((age - 50) / 10) + diabetes",
                                  frailty="patient_id")


def test_the_truth_is_recovered(fit):
    assert fit.frailty_sd == pytest.approx(0.35, abs=0.07)
    assert fit.scale == pytest.approx(0.25, abs=0.05)
    assert fit.velocity["estimate"] == pytest.approx(1.4, rel=0.12)
    assert fit.lag["estimate"] == pytest.approx(8, abs=4)
    ratios = fit.velocity_ratios
    assert ratios.loc["diabetes", "ci_lower"] < 0.8 < ratios.loc["diabetes", "ci_upper"]
    low, high = fit.frailty_ci
    assert low < fit.frailty_sd < high
    assert tuple(fit.conf_int().loc["frailty_sd"]) == fit.frailty_ci
    assert fit.summary.loc["frailty_sd", "p_value"] == fit.frailty_test["p_value"] < 1e-6
    assert list(fit.params.index[-3:]) == ["log_scale", "frailty_sd", "lag"]


def test_the_test_compares_with_the_model_without_frailty_at_its_own_best_lag(fit, episodes):
    plain = regen.fit_regeneration(episodes, formula="~ I((age - 50) / 10) + diabetes")
    assert fit.frailty_test["loglik_without_frailty"] == pytest.approx(plain.loglik, abs=1e-6)
    assert fit.frailty_test["statistic"] == pytest.approx(2 * (fit.loglik - plain.loglik))
    # a patient effect the model without frailty leaves in its spread: sigma shrinks, the
    # diabetes ratio's interval widens (the patients, not the episodes, carry diabetes)
    assert fit.scale < plain.scale
    assert fit.bse["diabetes"] > plain.bse["diabetes"]


def test_marginal_lognormal_quantiles_have_the_closed_form(fit, episodes):
    profiles = episodes[["age", "diabetes", "distance_mm"]].head(3)
    predicted = fit.predict_quantile(profiles, q=[0.25, 0.5])
    X = fit.design.matrix(profiles)
    beta = fit.params.iloc[:X.shape[1]].to_numpy()
    spread = np.hypot(fit.scale, fit.frailty_sd)
    d = profiles["distance_mm"].to_numpy(float)
    expected = [fit.lag["estimate"] + d * np.exp(-X @ beta + spread * stats.norm.ppf(p))
                for p in (0.25, 0.5)]
    assert np.allclose(predicted["estimate"], np.concatenate(expected), rtol=1e-8)
    assert (predicted["ci_lower"] < predicted["estimate"]).all()
    assert (predicted["estimate"] < predicted["ci_upper"]).all()


def test_save_and_load(fit, tmp_path):
    loaded = regen.load_model(fit.save(tmp_path / "kinetics.json"))
    assert loaded.frailty == "patient_id" and loaded.frailty_ci == pytest.approx(fit.frailty_ci)
    pd.testing.assert_frame_equal(loaded.summary, fit.summary)
    profiles = pd.DataFrame({"age": [55.0], "diabetes": [True], "distance_mm": [60.0]})
    pd.testing.assert_frame_equal(loaded.predict_quantile(profiles),
                                  fit.predict_quantile(profiles))


def test_refusals(fit, episodes):
    with pytest.raises(ValueError, match="not both"):
        regen.fit_regeneration(episodes, frailty="patient_id", cluster="patient_id")
    with pytest.raises(ValueError, match="no column 'patient'"):
        regen.fit_regeneration(episodes, frailty="patient")
    with pytest.raises(ModelError, match="does not refit the frailty model"):
        fit.sensitivity()
