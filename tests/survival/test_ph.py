"""The interval-censored proportional-hazards model (regen.fit_ph): against R's cloglog GLM
and coxph (tests/reference/ph.R), an independent direct maximisation, its own derivatives,
the Weibull AFT, and as a result (predictions, saving, errors)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

import regen
from regen.exceptions import ModelError
from regen.survival.ph import interval_problem

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
TERMS = ["x", "age", "group[T.b]", "group[T.c]"]


def reference_values() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "ph_values.csv", keep_default_na=False)


def value(values, dataset, method, quantity, term=""):
    rows = values.query("dataset == @dataset and method == @method and quantity == @quantity "
                        "and term == @term")
    assert len(rows) == 1, (dataset, method, quantity, term)
    return float(rows["value"].iloc[0])


def right_censored(dataset: str) -> pd.DataFrame:
    """The reference data as (l, u] episodes: an event at t is (t-, t], a censoring (c, inf)."""
    data = pd.read_csv(REFERENCE / f"ph_{dataset}_input.csv")
    event = data["status"] == 1
    return data.assign(lower=data["time"].astype(float),
                       upper=np.where(event, data["time"], np.inf))


def interval_cohort(n=250, seed=0, beta=(0.5, 0.03), shape=1.5) -> pd.DataFrame:
    """Interval-censored episodes from a PH model with a Weibull baseline, visits every
    2 weeks (jittered, some missed) and drop-out."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, n)
    age = rng.uniform(30, 80, n)
    eta = beta[0] * x + beta[1] * (age - 55)
    t = 60 * (rng.exponential(size=n) / np.exp(eta)) ** (1 / shape)
    lower, upper = np.zeros(n), np.full(n, np.inf)
    for i in range(n):
        visits = np.arange(14, 200, 14) + rng.integers(-3, 4, 14)
        visits = visits[(rng.uniform(size=len(visits)) > 0.1) & (visits < rng.uniform(50, 220))]
        after = visits[visits >= t[i]]
        before = visits[visits < t[i]]
        lower[i] = before.max() if len(before) else 0.0
        upper[i] = after.min() if len(after) else np.inf
    return pd.DataFrame({"x": x, "age": age, "lower": lower, "upper": upper,
                         "group": np.where(rng.uniform(size=n) < 0.5, "a", "b")})


# ----------------------------------------------------------- R references --

@pytest.mark.parametrize("dataset", ["noties", "ties"])
def test_equals_the_cloglog_glm_on_person_period_data(dataset):
    """On right-censored data the model is the binomial cloglog GLM with a factor per event
    time: R's coefficients to 1e-6 and log-likelihood to 1e-8."""
    values = reference_values()
    fit = regen.fit_ph("~ x + age + group", right_censored(dataset))
    for term in TERMS:
        assert fit.params[term] == pytest.approx(
            value(values, dataset, "cloglog_glm", "coef", term), abs=1e-6)
    assert fit.loglik == pytest.approx(value(values, dataset, "cloglog_glm", "loglik"), abs=1e-8)
    # its model-based SEs are the observed (not the GLM's expected) information's: close
    for term in TERMS:
        assert fit.bse[term] == pytest.approx(value(values, dataset, "cloglog_glm", "se", term),
                                              rel=0.01)


def test_close_to_coxph_on_visit_days():
    """Grouped-continuous PH is not Cox's partial likelihood; on whole days with ties the two
    differ by under 2% and 0.05 standard errors (Efron's ties)."""
    values = reference_values()
    fit = regen.fit_ph("~ x + age + group", right_censored("ties"))
    for term in TERMS:
        cox = value(values, "ties", "coxph_efron", "coef", term)
        se = value(values, "ties", "coxph_efron", "se", term)
        assert abs(fit.params[term] - cox) <= 0.02 * abs(cox)
        assert abs(fit.params[term] - cox) <= 0.05 * se


@pytest.mark.parametrize("dataset", ["noties", "ties"])
@pytest.mark.parametrize("by", ["group", "x"])
def test_logrank_equals_the_glm_rao_score_test(dataset, by):
    """The test is the Rao score test of the group term in the cloglog GLM (R's
    anova(glm0, glm1, test = "Rao")) to 1e-6, and near survdiff's log-rank chi-square."""
    values = reference_values()
    data = right_censored(dataset)
    result = regen.logrank_test(data, by=by)
    rao = value(values, dataset, f"glm_rao_{by}", "statistic")
    assert result.statistic == pytest.approx(rao, rel=1e-6)
    assert result.df == value(values, dataset, f"glm_rao_{by}", "df")
    assert result.p_value == pytest.approx(value(values, dataset, f"glm_rao_{by}", "p_value"),
                                           rel=1e-5)
    survdiff = value(values, dataset, f"survdiff_{by}", "chisq")
    # tied visit days: within 2%; continuous times without ties, where each event time is
    # its own baseline jump, the weights -log(1-h)/h of the two tests differ more (3.3%)
    assert result.statistic == pytest.approx(survdiff, rel=0.02 if dataset == "ties" else 0.04)
    observed = values.loc[(values["dataset"] == dataset) & (values["method"] == f"survdiff_{by}")
                          & (values["quantity"] == "observed"), "value"].to_numpy()
    np.testing.assert_allclose(result.table["events"].to_numpy(), observed)


def test_stratified_logrank_is_near_survdiff_with_strata():
    values = reference_values()
    result = regen.logrank_test(right_censored("ties"), by="x", strata="group")
    assert result.statistic == pytest.approx(
        value(values, "ties", "survdiff_x_strata_group", "chisq"), rel=0.02)
    # each stratum its own baseline: not the unstratified statistic
    assert abs(result.statistic - regen.logrank_test(right_censored("ties"), by="x").statistic) > 0.01


# ------------------------------------------------- independent maximisation --

def direct_maximum(data: pd.DataFrame, covariates: list[str]):
    """An independent fit: the baseline's cumulative hazard at every distinct finite end of
    the data, nondecreasing through non-negative increments, maximised with the covariates by
    L-BFGS-B (no support intervals, no Newton, no projection)."""
    low, up = data["lower"].to_numpy(), data["upper"].to_numpy()
    X = data[covariates].to_numpy(dtype=float)
    grid = np.unique(np.concatenate([low[low > 0], up[np.isfinite(up)]]))
    at_low = np.searchsorted(grid, low, side="right")       # index into [0, grid...] of l
    at_up = np.searchsorted(grid, up, side="right")

    def negative(theta):
        beta, inc = theta[:X.shape[1]], theta[X.shape[1]:]
        H = np.concatenate([[0.0], np.cumsum(inc), [np.inf]])
        risk = np.exp(X @ beta)
        s_low = np.exp(-H[at_low] * risk)
        s_up = np.where(np.isfinite(up), np.exp(-H[np.minimum(at_up, len(grid))] * risk), 0.0)
        return -np.sum(np.log(np.maximum(s_low - s_up, 1e-300)))

    start = np.concatenate([np.zeros(X.shape[1]), np.full(len(grid), 1.0 / len(grid))])
    bounds = [(None, None)] * X.shape[1] + [(0, None)] * len(grid)
    best = None
    for _ in range(3):   # restart from the last optimum until it no longer moves
        result = optimize.minimize(negative, start if best is None else best.x, method="L-BFGS-B",
                                   bounds=bounds, options={"maxiter": 20000, "maxfun": 10**6,
                                                           "ftol": 1e-15, "gtol": 1e-10})
        best = result
    return best.x[:X.shape[1]], -best.fun


@pytest.mark.slow
def test_reaches_the_maximum_of_an_independent_direct_maximisation():
    data = interval_cohort(n=150, seed=7)
    fit = regen.fit_ph("~ x + age", data)
    beta, loglik = direct_maximum(data, ["x", "age"])
    assert fit.loglik >= loglik - 1e-9
    np.testing.assert_allclose(fit.params.to_numpy(), beta, atol=1e-4)


# ----------------------------------------------------------- derivatives --

def test_gradient_and_hessian_match_finite_differences():
    data = interval_cohort(n=120, seed=3)
    X = data[["x", "age"]].to_numpy(dtype=float)
    X[:, 1] -= 55
    likelihood, _, _, start = interval_problem(data["lower"].to_numpy(), data["upper"].to_numpy(),
                                               X, np.ones(len(data)))
    rng = np.random.default_rng(1)
    beta = np.array([0.3, 0.01])
    u = np.sort(start + rng.normal(0, 0.05, len(start)))
    d = likelihood.derivatives(beta, u)
    theta = np.concatenate([beta, u])

    def f(t):
        return likelihood.value(t[:2], t[2:])

    h = 1e-6
    numeric = np.array([(f(theta + h * e) - f(theta - h * e)) / (2 * h)
                        for e in np.eye(len(theta))])
    np.testing.assert_allclose(numeric, np.concatenate([d.g_beta, d.g_u]), rtol=1e-5, atol=1e-5)

    def grad(t):
        dd = likelihood.derivatives(t[:2], t[2:])
        return np.concatenate([dd.g_beta, dd.g_u])

    numeric_h = np.array([(grad(theta + h * e) - grad(theta - h * e)) / (2 * h)
                          for e in np.eye(len(theta))])
    analytic = np.block([[d.h_bb, d.h_ub.T], [d.h_ub, d.h_uu.toarray()]])
    np.testing.assert_allclose(numeric_h, analytic, rtol=1e-4, atol=1e-4)


def test_exact_times_are_read_as_just_before_to_at():
    data = right_censored("ties")
    as_exact = regen.fit_ph("~ x + age", data)
    spelled = data.assign(lower=np.where(np.isfinite(data["upper"]), data["time"] - 0.5,
                                         data["lower"]))
    as_interval = regen.fit_ph("~ x + age", spelled)
    np.testing.assert_allclose(as_exact.params, as_interval.params, atol=1e-8)
    assert as_exact.loglik == pytest.approx(as_interval.loglik, abs=1e-8)


def test_agrees_with_the_weibull_aft_when_the_truth_is_weibull():
    """A Weibull AFT is a PH model with log HR = -beta / sigma: the two fits agree."""
    data = interval_cohort(n=1500, seed=11, beta=(0.6, 0.02), shape=1.3)
    ph = regen.fit_ph("~ x + age", data)
    aft = regen.fit_recovery("~ x + age", data, dist="weibull")
    implied = -aft.params[["x", "age"]] / aft.scale
    assert abs(ph.params["x"] - implied["x"]) < 0.5 * ph.bse["x"]
    assert abs(ph.params["age"] - implied["age"]) < 0.5 * ph.bse["age"]
    assert ph.params["x"] == pytest.approx(0.6, abs=3 * ph.bse["x"])


# ---------------------------------------------------------- variances --

def test_numeric_profile_variance_is_close_to_the_analytic_one():
    data = interval_cohort(n=400, seed=5)
    analytic = regen.fit_ph("~ x + age", data)
    numeric = regen.fit_ph("~ x + age", data, variance="numeric")
    assert analytic.variance == "profile" and numeric.variance == "numeric"
    np.testing.assert_allclose(numeric.bse, analytic.bse, rtol=0.05)
    np.testing.assert_allclose(numeric.params, analytic.params)


def test_bootstrap_is_seeded_whatever_the_workers():
    data = interval_cohort(n=200, seed=2).assign(patient=lambda d: np.arange(len(d)) // 2)
    one = regen.fit_ph("~ x", data, n_bootstrap=30, seed=4, cluster="patient")
    two = regen.fit_ph("~ x", data, n_bootstrap=30, seed=4, cluster="patient", n_jobs=2)
    assert one.variance == "bootstrap"
    np.testing.assert_allclose(one.covariance, two.covariance, rtol=1e-12)
    model = regen.fit_ph("~ x", data)
    assert 0.5 < one.bse["x"] / model.bse["x"] < 2


# ---------------------------------------------------------- predictions --

def test_predictions_follow_the_baseline_and_agree_with_each_other():
    data = interval_cohort(n=300, seed=9)
    fit = regen.fit_ph("~ x + age", data)
    profiles = pd.DataFrame({"x": [0, 1], "age": [55.0, 55.0]})
    ends = fit.baseline["upper"].to_numpy()
    ends = ends[np.isfinite(ends)][:-1]
    survival = fit.predict_survival(profiles, ends)
    risk = np.exp(fit.params["age"] * 55 + np.array([0, fit.params["x"]]))
    expected = fit.baseline.set_index("upper").loc[ends, "survival"].to_numpy()
    for i, r in enumerate(risk):
        got = survival.loc[survival["x"] == i, "estimate"].to_numpy()
        np.testing.assert_allclose(got, expected ** r, rtol=1e-10)
    assert (survival["ci_lower"] <= survival["estimate"] + 1e-12).all()
    assert (survival["estimate"] <= survival["ci_upper"] + 1e-12).all()
    quantiles = fit.predict_quantile(profiles, q=[0.25, 0.5])
    assert (quantiles["ci_lower"] <= quantiles["estimate"]).all()
    assert (quantiles["estimate"] <= quantiles["ci_upper"]).all()
    for _, row in quantiles.iterrows():
        at = fit.predict_survival(profiles.iloc[[int(row["x"])]], [row["estimate"]])
        assert at["estimate"].iloc[0] == pytest.approx(1 - row["q"], abs=1e-9)
    # the higher hazard (x = 1, HR > 1) has its event sooner
    median = quantiles.query("q == 0.5").set_index("x")["estimate"]
    assert median[1] < median[0]


def test_saved_model_predicts_the_same(tmp_path):
    data = interval_cohort(n=200, seed=4)
    fit = regen.fit_ph("~ x + age + group", data)
    path = fit.save(tmp_path / "ph.json")
    loaded = regen.load_model(path)
    assert isinstance(loaded, regen.PHFit)
    profiles = pd.DataFrame({"x": [0, 1], "age": [40.0, 70.0], "group": ["a", "b"]})
    pd.testing.assert_frame_equal(loaded.predict_survival(profiles, [20, 50, 90]),
                                  fit.predict_survival(profiles, [20, 50, 90]))
    pd.testing.assert_frame_equal(loaded.summary, fit.summary)
    document = json.loads(path.read_text())
    document["baseline"]["log_cumulative_hazard"][1] = -50.0     # out of order
    path.write_text(json.dumps(document))
    with pytest.raises(regen.ModelFileError, match="out of order"):
        regen.load_model(path)


def test_overlays_the_npmle_in_a_figure():
    import matplotlib
    matplotlib.use("Agg")
    data = interval_cohort(n=200, seed=1)
    fit = regen.fit_ph("~ group", data)
    ax = regen.plot.recovery(regen.turnbull(data, by="group"), fit, at_risk=False)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "Proportional-hazards model" in labels
    assert len(ax.get_lines()) >= 4      # two NPMLE curves, two model curves


# ---------------------------------------------------------------- errors --

def test_clear_errors():
    data = interval_cohort(n=100, seed=6)
    with pytest.raises(ValueError, match="intercept"):
        regen.fit_ph("~ 0 + group", data)
    with pytest.raises(ValueError, match="no covariate"):
        regen.fit_ph("~ 1", data)
    with pytest.raises(ModelError, match="at least 2"):
        regen.fit_ph("~ x", data.assign(p=1), cluster="p")
    with pytest.raises(ValueError, match="no column 'upp'"):
        regen.fit_ph("~ x", data, upper="upp")
    with pytest.raises(ModelError, match="same single stretch"):
        regen.fit_ph("~ x", data.assign(lower=10.0, upper=np.inf))
    with pytest.raises(ValueError, match="variance"):
        regen.fit_ph("~ x", data, variance="sandwich")


def test_missing_covariates_are_counted_not_silent():
    data = interval_cohort(n=100, seed=8)
    data.loc[:4, "age"] = np.nan
    with pytest.warns(regen.DataWarning, match="5 episode"):
        fit = regen.fit_ph("~ x + age", data)
    assert fit.n == 95 and fit.n_dropped == 5


# --------------------------------------------------------------- log-rank --

def test_logrank_permutation_p_value_is_seeded_and_near_the_asymptotic_one():
    data = interval_cohort(n=200, seed=12)
    one = regen.logrank_test(data, by="x", n_permutations=400, seed=1)
    two = regen.logrank_test(data, by="x", n_permutations=400, seed=1, n_jobs=2)
    assert one.permutation_p_value == two.permutation_p_value
    assert one.permutation_p_value == pytest.approx(one.p_value, abs=0.05)
    assert 0 < one.permutation_p_value <= 1


def test_logrank_table_and_errors():
    data = interval_cohort(n=150, seed=13)
    data["three"] = np.array(["p", "q", "r"])[np.arange(len(data)) % 3]
    result = regen.logrank_test(data, by="three")
    assert result.df == 2
    assert result.table["observed_minus_expected"].sum() == pytest.approx(0, abs=1e-6)
    assert (result.table["n"].sum(), list(result.table.index)) == (150, ["p", "q", "r"])
    assert "chi-square" in result.to_text()
    data.loc[:2, "three"] = None
    with pytest.warns(regen.DataWarning, match="3 episode"):
        regen.logrank_test(data, by="three")
    with pytest.raises(ModelError, match="single group"):
        regen.logrank_test(data.assign(one="a"), by="one")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        regen.logrank_test(data.dropna(), by="three")


def test_cluster_sandwich_counts_a_duplicated_patient_once():
    """Robust over clusters: every episode twice, as one cluster, gives the standard errors
    of the data once; as two independent episodes, model-based ones shrink by sqrt(2)."""
    data = interval_cohort(n=400, seed=21).assign(patient=lambda d: np.arange(len(d)))
    once = regen.fit_ph("~ x + age", data, cluster="patient")
    twice = pd.concat([data, data], ignore_index=True)
    robust = regen.fit_ph("~ x + age", twice, cluster="patient")
    naive = regen.fit_ph("~ x + age", twice)
    np.testing.assert_allclose(robust.bse, once.bse, rtol=1e-8)
    np.testing.assert_allclose(naive.bse * np.sqrt(2), regen.fit_ph("~ x + age", data).bse,
                               rtol=1e-6)
    assert robust.variance == "robust" and robust.reference_df == 399
    model = regen.fit_ph("~ x + age", data)
    np.testing.assert_allclose(once.bse, model.bse, rtol=0.15)   # a right model: close


def test_robust_fit_saves_its_cluster_count(tmp_path):
    data = interval_cohort(n=200, seed=22).assign(patient=lambda d: np.arange(len(d)) // 2)
    fit = regen.fit_ph("~ x", data, cluster="patient")
    loaded = regen.load_model(fit.save(tmp_path / "m.json"))
    assert (loaded.variance, loaded.n_clusters, loaded.reference_df) == ("robust", 100, 99)
    pd.testing.assert_frame_equal(loaded.summary, fit.summary)


def test_robust_logrank_counts_a_duplicated_patient_once():
    data = interval_cohort(n=300, seed=23).assign(patient=lambda d: np.arange(len(d)))
    once = regen.logrank_test(data, by="x", cluster="patient")
    twice = pd.concat([data, data], ignore_index=True)
    robust = regen.logrank_test(twice, by="x", cluster="patient")
    naive = regen.logrank_test(twice, by="x")
    assert robust.statistic == pytest.approx(once.statistic, rel=1e-8)
    assert naive.statistic == pytest.approx(2 * regen.logrank_test(data, by="x").statistic,
                                            rel=1e-6)
    assert "robust over patient" in robust.to_text()
    with pytest.raises(ModelError, match="at least 2"):
        regen.logrank_test(data.assign(one=1), by="x", cluster="one")


def test_a_hazard_ratio_on_the_boundary_is_named_and_left_unbounded(tmp_path):
    """A group none of whose events is seen: its hazard ratio runs to 0. The fit says so,
    and its interval spans everything, robust or not (a sandwich of near-zero scores would
    otherwise give it a tiny one)."""
    data = interval_cohort(n=300, seed=24).assign(patient=lambda d: np.arange(len(d)) // 2)
    data["arm"] = np.where(np.arange(len(data)) % 5 == 0, "never", "usual")
    never = data["arm"] == "never"
    data.loc[never, "upper"] = np.inf
    data.loc[never, "lower"] = np.minimum(data.loc[never, "lower"].clip(lower=5.0), 40.0)
    for options in ({}, {"cluster": "patient"}):
        with pytest.warns(regen.DataWarning, match=r"arm\[T.usual\] runs to infinity"):
            fit = regen.fit_ph("~ arm + x", data, **options)
        row = fit.summary.loc["arm[T.usual]"]
        assert row["hazard_ratio_ci_lower"] < 1e-3 and row["hazard_ratio_ci_upper"] == np.inf
        assert row["p_value"] > 0.9
        assert fit.summary.loc["x", "hazard_ratio_ci_upper"] < 10     # the others are estimated
    loaded = regen.load_model(fit.save(tmp_path / "boundary.json"))
    assert loaded.bse["arm[T.usual]"] == pytest.approx(fit.bse["arm[T.usual]"])
