"""AFT fits against R's survreg (tests/reference/aft.R): coefficients, scale,
log-likelihood, standard errors and predicted quantiles, three distributions, two
datasets with left-censored, right-censored and exact rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import regen

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
FORMULAS = {"a": "~ nerve + age + diabetes", "b": "~ bmi + retreatment"}
CASES = [(d, dist) for d in FORMULAS for dist in ("weibull", "lognormal", "loglogistic")]


@pytest.fixture(scope="module")
def values() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "aft_values.csv")


def reference(values, dataset, dist, quantity) -> pd.Series:
    rows = values[(values["dataset"] == dataset) & (values["dist"] == dist)
                  & (values["quantity"] == quantity)]
    return pd.Series(rows["value"].to_numpy(dtype=float), index=rows["term"].fillna(""))


@pytest.mark.parametrize(("dataset", "dist"), CASES)
def test_matches_survreg(values, dataset, dist):
    data = pd.read_csv(REFERENCE / f"aft_input_{dataset}.csv")
    fit = regen.fit_recovery(FORMULAS[dataset], data, dist=dist)
    coef = reference(values, dataset, dist, "coef")
    se = reference(values, dataset, dist, "se")
    # R names terms its own way (nerveintercostal); the order is the same.
    assert fit.params.iloc[:-1].to_numpy() == pytest.approx(coef.to_numpy(), rel=1e-5, abs=1e-8)
    assert fit.params["log_scale"] == pytest.approx(
        reference(values, dataset, dist, "log_scale").iloc[0], rel=1e-5)
    assert fit.loglik == pytest.approx(reference(values, dataset, dist, "loglik").iloc[0],
                                       rel=1e-8)
    assert fit.bse.to_numpy() == pytest.approx(se.to_numpy(), rel=1e-4)

    profiles = pd.read_csv(REFERENCE / "aft_profiles.csv")
    profiles = profiles[profiles["dataset"] == dataset].reset_index(drop=True)
    predicted = fit.predict_quantile(profiles, q=[0.25, 0.5, 0.75])
    log_quantile = reference(values, dataset, dist, "uquantile")
    log_se = reference(values, dataset, dist, "uquantile_se")
    quantile = reference(values, dataset, dist, "quantile")
    quantile_se = reference(values, dataset, dist, "quantile_se")
    for _, row in predicted.iterrows():
        term = f"profile{row['profile']}:p{row['q']:g}"
        assert np.log(row["estimate"]) == pytest.approx(log_quantile[term], rel=1e-6)
        assert row["std_err_log"] == pytest.approx(log_se[term], rel=1e-4)
        # R's se.fit on the time scale is the same delta method: t_q * se(log t_q).
        assert row["estimate"] == pytest.approx(quantile[term], rel=1e-6)
        assert row["estimate"] * row["std_err_log"] == pytest.approx(quantile_se[term], rel=1e-4)


def test_weibull_matches_lifelines_where_it_converges():
    lifelines = pytest.importorskip("lifelines")
    data = pd.read_csv(REFERENCE / "aft_input_a.csv")
    ours = regen.fit_recovery("~ age + diabetes", data)
    theirs = lifelines.WeibullAFTFitter().fit_interval_censoring(
        data.assign(lower=data["lower"].astype(float).clip(lower=1e-9))[
            ["lower", "upper", "age", "diabetes"]],
        lower_bound_col="lower", upper_bound_col="upper")
    lam = theirs.params_.loc["lambda_"]
    assert [lam["Intercept"], lam["age"], lam["diabetes"]] == pytest.approx(
        ours.params[["Intercept", "age", "diabetes"]].tolist(), rel=1e-4, abs=1e-6)
    # lifelines' rho_ is the Weibull shape, 1 / sigma.
    assert np.exp(theirs.params_.loc[("rho_", "Intercept")]) == pytest.approx(1 / ours.scale,
                                                                              rel=1e-4)
    assert theirs.log_likelihood_ == pytest.approx(ours.loglik, rel=1e-6)
