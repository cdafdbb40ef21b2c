"""Regeneration kinetics against R (tests/reference/kinetics.R): survival::survreg on the
transformed intervals ((l - L)/d, (u - L)/d] with the lag L profiled out by optimize() and
its 95% profile-likelihood interval by uniroot(); log-normal and Weibull, with covariates and
intercept-only. Also the fit with the lag fixed (beta, log sigma, conditional standard errors)
and the profile log-likelihood at fixed lags.

The input, tests/reference/kinetics_input.csv, was simulated by regen and is now a fixed
reference input (369 numbness episodes: 25 right-censored, 4 with lower = 0, none exact;
upper = inf written as "inf", which pandas and R's read.csv both read as infinity). It was
written by ``simulated_input()`` below; to regenerate it (only if the input must change, then
rerun ``Rscript tests/reference/kinetics.R``):

    .venv/bin/python tests/survival/test_regeneration_reference.py --write-input
"""

from __future__ import annotations

import sys
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import regen

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
INPUT = REFERENCE / "kinetics_input.csv"
COVARIATES = "~ I((age - 50) / 10) + diabetes + smoker"
CASES = [(f, dist) for f in (COVARIATES, "~ 1") for dist in ("lognormal", "weibull")]
FIXED_LAG = 10.0
PROFILE_LAGS = (0.0, 5.0, 10.0, 15.0, 20.0)
# R's term names -> regen's
TERMS = {"(Intercept)": "Intercept", "I((age - 50)/10)": "I((age - 50) / 10)",
         "diabetes": "diabetes", "smoker": "smoker", "Log(scale)": "log_scale"}


def simulated_input() -> pd.DataFrame:
    """How kinetics_input.csv was made (regen's simulator at the time of writing)."""
    sim = regen.simulate.cohort(250, seed=11, velocity_mm_per_day=1.3, lag_days=10.0,
                                diabetes_velocity_ratio=0.8)
    with tempfile.TemporaryDirectory() as folder:
        sim.write(folder)
        episodes = regen.read_cohort(folder).episodes("numbness")
    rows = episodes[episodes["distance_mm"].notna() & (episodes["lower"] != episodes["upper"])]
    return rows[["lower", "upper", "distance_mm", "age", "diabetes", "smoker"]].astype(
        {"diabetes": "int64", "smoker": "int64"}).reset_index(drop=True)


def write_input(path: Path = INPUT) -> None:
    out = simulated_input()
    for column in ("lower", "upper", "distance_mm", "age"):
        v = out[column].to_numpy(dtype="float64")
        assert np.all(v[np.isfinite(v)] == np.round(v[np.isfinite(v)])), column
        out[column] = ["inf" if np.isinf(x) else f"{x:.0f}" for x in v]
    out.to_csv(path, index=False, lineterminator="\n")


@cache
def data() -> pd.DataFrame:
    return pd.read_csv(INPUT)


@cache
def values() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "kinetics_values.csv", keep_default_na=False)


def reference(formula: str, dist: str, quantity: str) -> pd.Series:
    v = values()
    rows = v[(v["formula"] == formula) & (v["dist"] == dist) & (v["quantity"] == quantity)]
    assert len(rows), (formula, dist, quantity)
    return pd.Series(rows["value"].to_numpy(dtype="float64"),
                     index=[TERMS.get(t, t) for t in rows["term"]])


@cache
def fit(formula: str, dist: str, lag: float | None) -> regen.RegenerationFit:
    return regen.fit_regeneration(data(), distance="distance_mm", formula=formula,
                                  velocity_dist=dist, lag=lag)


def test_input_is_what_r_read():
    d = data()
    assert len(d) == int(reference(COVARIATES, "lognormal", "n").iloc[0]) == 369
    assert np.isinf(d["upper"]).sum() == 25 and (d["lower"] == 0).sum() == 4
    assert (d["lower"] < d["upper"]).all()                    # no exact rows: no Jacobian
    assert d["upper"][np.isfinite(d["upper"])].min() == reference(COVARIATES, "weibull",
                                                                  "lag_max").iloc[0]


@pytest.mark.parametrize(("formula", "dist"), CASES)
def test_profiled_lag_matches_r(formula, dist):
    kinetics = fit(formula, dist, None)
    lag = reference(formula, dist, "lag")
    # regen finds the lag with xatol 1e-4 and the interval ends with brentq xtol 1e-4.
    assert kinetics.lag["estimate"] == pytest.approx(lag["estimate"], abs=1e-3)
    assert kinetics.params["lag"] == kinetics.lag["estimate"]
    assert kinetics.lag["ci_lower"] == pytest.approx(lag["ci_lower"], abs=1e-2)
    assert kinetics.lag["ci_upper"] == pytest.approx(lag["ci_upper"], abs=1e-2)
    assert kinetics.loglik == pytest.approx(reference(formula, dist, "loglik").iloc[0],
                                            rel=1e-7)
    beta = reference(formula, dist, "beta")
    assert list(kinetics.params.index) == [*beta.index, "log_scale", "lag"]
    assert kinetics.params[beta.index].to_numpy() == pytest.approx(beta.to_numpy(), abs=1e-4)
    assert kinetics.params["log_scale"] == pytest.approx(
        reference(formula, dist, "log_scale")["log_scale"], abs=1e-4)


@pytest.mark.parametrize(("formula", "dist"), CASES)
def test_fixed_lag_matches_survreg(formula, dist):
    kinetics = fit(formula, dist, FIXED_LAG)
    assert reference(formula, dist, "fixed_lag").iloc[0] == FIXED_LAG
    assert list(kinetics.lag) == [FIXED_LAG] * 3
    beta = reference(formula, dist, "fixed_beta")
    se = reference(formula, dist, "fixed_se")
    assert list(kinetics.params.index) == [*beta.index, "log_scale"]
    assert kinetics.params[beta.index].to_numpy() == pytest.approx(beta.to_numpy(), abs=1e-6)
    assert kinetics.params["log_scale"] == pytest.approx(
        reference(formula, dist, "fixed_log_scale")["log_scale"], abs=1e-6)
    # Conditional on the lag: the inverse observed information in (beta, log sigma), as vcov().
    assert kinetics.bse[se.index].to_numpy() == pytest.approx(se.to_numpy(), rel=1e-4)
    assert kinetics.loglik == pytest.approx(reference(formula, dist, "fixed_loglik").iloc[0],
                                            rel=1e-7)


@pytest.mark.parametrize("lag", PROFILE_LAGS)
@pytest.mark.parametrize(("formula", "dist"), CASES)
def test_profile_loglik_at_fixed_lags(formula, dist, lag):
    expected = reference(formula, dist, "profile_loglik")[f"{lag:g}"]
    assert fit(formula, dist, lag).loglik == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize(("formula", "dist"), CASES)
def test_lag_profile_table_at_zero(formula, dist):
    # The estimated fit's own profile table starts its grid at lag 0.
    table = fit(formula, dist, None).lag_profile
    at_zero = table.loc[table["lag"] == 0, "profile_loglik"]
    assert len(at_zero) == 1
    assert at_zero.iloc[0] == pytest.approx(
        reference(formula, dist, "profile_loglik")["0"], rel=1e-7)


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-input"]:
        write_input()
        print(f"wrote {INPUT}")
    else:
        sys.exit("usage: test_regeneration_reference.py --write-input")
