"""GEE for P(numb | day, covariates): statsmodels' fit, regen's shape, errors, save/load."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import regen

FORMULA = "numb ~ cr(day, df=4, constraints='center') + diabetes"


@pytest.fixture(scope="module")
def numb() -> pd.DataFrame:
    return regen.read_cohort("data/example").measurements("numb").query("day >= 1")


@pytest.fixture(scope="module")
def gee(numb):
    return regen.fit_probability(FORMULA, numb)


def test_equals_statsmodels_gee(numb, gee):
    import statsmodels.api as sm
    from formulaic import model_matrix

    from regen.design import formula_frame

    frame = formula_frame(numb).sort_values(["patient_id", "day"], kind="stable")
    y, X = model_matrix(FORMULA, frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = sm.GEE(np.asarray(y)[:, 0], np.asarray(X), groups=frame["patient_id"],
                           family=sm.families.Binomial(),
                           cov_struct=sm.cov_struct.Exchangeable()).fit()
    np.testing.assert_allclose(gee.params.to_numpy(), reference.params, rtol=1e-6)
    np.testing.assert_allclose(gee.bse.to_numpy(), reference.bse, rtol=1e-6)
    assert gee.working_correlation == pytest.approx(reference.model.cov_struct.dep_params)


def test_results_shape_and_probabilities(gee):
    assert list(gee.summary.columns) == ["estimate", "std_err", "ci_lower", "ci_upper", "p_value",
                                         "odds_ratio", "odds_ratio_ci_lower",
                                         "odds_ratio_ci_upper"]
    assert np.isnan(gee.loglik) and np.isnan(gee.aic) and np.isfinite(gee.qic)
    curve = gee.predict(pd.DataFrame({"day": [7.0, 30, 60, 120, 240], "diabetes": False}))
    assert (curve["ci_lower"] < curve["estimate"]).all()
    assert (curve["estimate"] < curve["ci_upper"]).all()
    # Almost everyone is numb a week after the freeze, almost nobody by 8 months.
    assert curve["estimate"].iloc[0] > 0.9 and curve["estimate"].iloc[-1] < 0.1
    assert curve["estimate"].is_monotonic_decreasing


@pytest.mark.parametrize("correlation", ["ar1", "independence"])
def test_other_working_correlations(numb, gee, correlation):
    other = regen.fit_probability(FORMULA, numb, correlation=correlation)
    # Population-averaged probabilities hardly depend on the working correlation.
    days = pd.DataFrame({"day": [7.0, 30, 60, 120, 240], "diabetes": False})
    np.testing.assert_allclose(other.predict(days)["estimate"], gee.predict(days)["estimate"],
                               atol=0.03)
    if correlation == "independence":
        assert other.working_correlation == 0


def test_errors(numb):
    with pytest.raises(ValueError, match="0/1 or yes/no"):
        regen.fit_probability("pain ~ day", regen.read_cohort("data/example").measurements("pain"))
    with pytest.raises(regen.ModelError, match="every row"):
        regen.fit_probability("numb ~ day", numb.assign(numb=True))
    with pytest.raises(ValueError, match="correlation must be one of"):
        regen.fit_probability("numb ~ day", numb, correlation="unstructured")
    with pytest.warns(regen.DataWarning, match="3 row"):
        regen.fit_probability("numb ~ day", numb.assign(
            numb=numb["numb"].mask(np.arange(len(numb)) < 3)))


def test_save_and_load(gee, tmp_path):
    loaded = regen.load_model(gee.save(tmp_path / "gee.json"))
    profiles = pd.DataFrame({"day": [14.0, 60.0], "diabetes": [True, False]})
    pd.testing.assert_frame_equal(loaded.predict(profiles), gee.predict(profiles))
    pd.testing.assert_frame_equal(loaded.summary, gee.summary)


def test_yes_no_text_responses_and_one_group(numb):
    text = numb.assign(numb=numb["numb"].map({True: "yes", False: "No"}).astype(object))
    fit = regen.fit_probability("numb ~ day", text)
    assert fit.n == len(numb)
    with pytest.raises(ValueError, match="found 'maybe'"):
        regen.fit_probability("numb ~ day", text.assign(numb="maybe"))
    one = numb.loc[numb["patient_id"] == numb["patient_id"].iloc[0]]
    with pytest.raises(regen.ModelError, match="at least 2 values of patient_id"):
        regen.fit_probability("numb ~ day", one)
    with pytest.raises(regen.ModelError, match="constraints='center'"):
        regen.fit_probability("numb ~ cr(day, df=4)", numb)
