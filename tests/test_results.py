"""The one result base: every model's coefficient table, delta method, text and HTML views,
and the model-file registry that load_model reads."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import regen
from regen.results import COEF_COLUMNS, FitResult, ScaledFit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fits() -> dict[str, FitResult]:
    cohort = regen.read_cohort(ROOT / "data" / "example")
    numbness = cohort.episodes("numbness")
    pain = cohort.measurements("pain").query("day >= 1")
    numb = cohort.measurements("numb").query("day >= 1")
    return {
        "recovery": regen.fit_recovery("~ nerve + age + diabetes", numbness, dist="lognormal",
                                       cluster="patient_id"),
        "regeneration": regen.fit_regeneration(numbness, formula="~ I(age - 50) + diabetes",
                                               alpha=0.1),
        "trajectory": regen.fit_trajectory("pain ~ day + baseline_pain", pain, re_formula="~ 1"),
        "probability": regen.fit_probability("numb ~ np.log(day)", numb),
        "frailty": regen.fit_recovery("~ nerve", numbness, dist="lognormal",
                                      frailty="patient_id"),
    }


def test_every_model_kind_is_registered_once():
    import regen.mixed
    import regen.survival  # noqa: F401  (the families register their kinds when imported)

    assert {name: cls.__name__ for name, cls in FitResult.kinds.items()} == {
        "RecoveryFit": "RecoveryFit", "RegenerationFit": "RegenerationFit",
        "TrajectoryFit": "TrajectoryFit", "ProbabilityFit": "ProbabilityFit", "PHFit": "PHFit",
        "FrailtyFit": "FrailtyFit"}
    with pytest.raises(TypeError, match="two result classes"):
        type("Again", (FitResult,), {}, kind="RecoveryFit")


@pytest.mark.parametrize("name", ["recovery", "regeneration", "trajectory", "probability",
                                  "frailty"])
def test_the_coefficient_table_has_the_same_columns_at_any_level(fits, name):
    fit = fits[name]
    assert tuple(fit.summary.columns[:5]) == COEF_COLUMNS
    if name == "frailty":  # tau's profile interval exists at the fit's level only
        with pytest.raises(ValueError, match="computed at alpha=0.05"):
            fit.coef_table(0.2)
    level = {"regeneration": 0.1, "frailty": 0.05}.get(name, 0.2)
    table = fit.coef_table(level)
    assert tuple(table.columns) == tuple(fit.summary.columns)
    assert list(table.index) == list(fit.params.index)
    np.testing.assert_allclose(table["estimate"], fit.params)
    np.testing.assert_allclose(table["std_err"], np.sqrt(np.diag(fit.covariance)))
    p_values = fit.p_values()
    assert isinstance(p_values, pd.Series) and list(p_values.index) == list(fit.params.index)


def test_a_narrower_level_gives_a_narrower_interval(fits):
    fit = fits["recovery"]
    wide, narrow = fit.coef_table(0.05), fit.coef_table(0.5)
    assert ((narrow["ci_upper"] - narrow["ci_lower"])
            < (wide["ci_upper"] - wide["ci_lower"])).all()
    # t on G - 1 degrees of freedom with cluster=
    z = (wide["ci_upper"] - wide["estimate"]) / wide["std_err"]
    np.testing.assert_allclose(z, fit.critical_value(0.05))
    assert fit.critical_value(0.05) > 1.96


def test_ratios_only_where_a_model_has_them(fits):
    recovery = fits["recovery"].summary
    np.testing.assert_allclose(recovery["time_ratio"].drop("log_scale"),
                               np.exp(recovery["estimate"].drop("log_scale")))
    assert np.isnan(recovery.loc["log_scale", "time_ratio"])
    assert "odds_ratio" in fits["probability"].summary.columns
    assert not any("ratio" in c for c in fits["trajectory"].summary.columns)


def test_scale_only_where_a_model_has_one(fits):
    assert isinstance(fits["recovery"], ScaledFit)
    assert fits["recovery"].scale == pytest.approx(np.exp(fits["recovery"].params["log_scale"]))
    for name in ("trajectory", "probability"):
        assert not hasattr(fits[name], "scale")


def test_delta_method_matches_finite_differences(fits):
    """delta_se of a nonlinear function (the lognormal median at a profile) against the
    standard error of the same function from a numerical Jacobian."""
    fit = fits["recovery"]
    theta = fit.params.to_numpy()
    x = np.zeros(len(theta) - 1)
    x[0] = 1.0

    def log_median(t):
        return x @ t[:-1]  # the median of log T under the lognormal: x'beta

    def survival_at_60(t):
        return stats.norm.sf((np.log(60) - x @ t[:-1]) / np.exp(t[-1]))

    for function in (log_median, survival_at_60):
        step = 1e-6
        jacobian = np.array([(function(theta + step * e) - function(theta - step * e)) / (2 * step)
                             for e in np.eye(len(theta))])
        expected = np.sqrt(jacobian @ fit.covariance.to_numpy() @ jacobian)
        assert fit.delta_se(jacobian[None, :])[0] == pytest.approx(expected, rel=1e-6)
    names = ["Intercept", "log_scale"]
    sub = fit.delta_se(np.array([[1.0, 2.0]]), names)[0]
    cov = fit.covariance.loc[names, names].to_numpy()
    assert sub == pytest.approx(np.sqrt(np.array([1.0, 2.0]) @ cov @ np.array([1.0, 2.0])))


@pytest.mark.parametrize("name", ["recovery", "regeneration", "trajectory", "probability",
                                  "frailty"])
def test_a_result_shows_itself_as_text_and_html(fits, name):
    fit = fits[name]
    text = fit.to_text()
    assert text.splitlines()[0] == repr(fit)
    for parameter in fit.params.index:
        assert parameter in text
    page = fit._repr_html_()
    assert page.count("<tr>") == len(fit.params) + 1
    assert html.escape(repr(fit)) in page


def test_html_escapes_every_name():
    """A covariate level that looks like markup is shown as text."""
    crafted = FitResult()
    crafted.params = pd.Series([0.5], index=["<b onmouseover=x>level</b>"])
    crafted.covariance = pd.DataFrame([[0.01]], index=crafted.params.index,
                                      columns=crafted.params.index)
    page = crafted._repr_html_()
    assert "<b " not in page and "&lt;b onmouseover=x&gt;" in page
    assert not re.search(r"<(?!/?(p|table|thead|tbody|tr|th|td)\b)", page)


def test_load_model_builds_the_class_its_kind_names(fits, tmp_path):
    for name, fit in fits.items():
        loaded = regen.load_model(fit.save(tmp_path / f"{name}.json"))
        assert type(loaded) is type(fit)
        pd.testing.assert_frame_equal(loaded.summary, fit.summary)


@pytest.mark.parametrize("name", ["recovery", "regeneration", "trajectory", "probability",
                                  "frailty"])
def test_effects_are_what_a_forest_plot_draws(fits, name):
    fit = fits[name]
    effects = fit.effects()
    assert list(effects.columns) == ["estimate", "ci_lower", "ci_upper"]
    assert "Intercept" not in effects.index and "log_scale" not in effects.index
    assert (effects["ci_lower"] <= effects["estimate"]).all()
    assert (effects["estimate"] <= effects["ci_upper"]).all()
    if name == "regeneration":
        pd.testing.assert_frame_equal(effects, fit.velocity_ratios)
        with pytest.raises(ValueError, match="alpha=0.1"):
            fit.effects(0.05)
    elif name == "trajectory":
        assert not fit.effects_are_ratios and fit.effect_name == "Effect on pain"
        np.testing.assert_allclose(effects["estimate"], fit.params.drop("Intercept"))
    else:
        assert fit.effects_are_ratios
        np.testing.assert_allclose(effects["estimate"],
                                   np.exp(fit.params.drop(["Intercept", *fit.not_coefficients],
                                                          errors="ignore")))
