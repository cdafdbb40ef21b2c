"""Linear mixed models: the engine's algebra, statsmodels agreement, boundaries, time_to."""

from __future__ import annotations

import tempfile
import warnings

import numpy as np
import pandas as pd
import pytest

import regen
from regen.mixed.engine import GroupStatistics, backward, cholesky, evaluate, forward


def simulated(n_groups=150, seed=0, slope_sd=0.01, intercept_sd=1.5, visits=(7, 30, 60, 90, 120,
                                                                             180)):
    """y = 6 - 0.02 day + b0 + b1 day + e, visits with jitter, one row per visit."""
    rng = np.random.default_rng(seed)
    m = len(visits)
    g = np.repeat(np.arange(n_groups), m)
    day = np.tile(visits, n_groups) + rng.integers(-3, 4, n_groups * m)
    b0 = rng.normal(0, intercept_sd, n_groups)
    b1 = rng.normal(0, slope_sd, n_groups)
    x = rng.normal(size=n_groups)[g]
    y = 6 - 0.02 * day + 0.5 * x + b0[g] + b1[g] * day + rng.normal(0, 1, n_groups * m)
    return pd.DataFrame({"patient_id": [f"P{i:04d}" for i in g], "day": day.astype(float),
                         "x": x, "pain": y})


@pytest.fixture(scope="module")
def data():
    return simulated()


@pytest.fixture(scope="module")
def fit(data):
    return regen.fit_trajectory("pain ~ day + x", data)


@pytest.mark.parametrize("reml", [True, False])
def test_gradient_matches_finite_differences(reml):
    rng = np.random.default_rng(2)
    G, m = 40, 5
    g = np.repeat(np.arange(G), m)
    t = rng.uniform(0, 10, G * m)
    X = np.column_stack([np.ones(G * m), t, rng.normal(size=G * m)])
    Z = np.column_stack([np.ones(G * m), t, t ** 2 / 10])
    y = X @ [1, 2, 3] + np.einsum("ij,ij->i", Z, rng.normal(size=(G, 3))[g]) + rng.normal(size=G * m)
    stats = GroupStatistics(y, X, Z, g)
    theta = np.array([0.8, 0.3, 0.5, -0.2, 0.1, 0.4])
    _, gradient = evaluate(stats, theta, reml, gradient=True)
    numeric = [(evaluate(stats, theta + h, reml) - evaluate(stats, theta - h, reml)) / 2e-6
               for h in np.eye(6) * 1e-6]
    np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("q", [1, 2, 3])
def test_criterion_equals_the_dense_reml_likelihood(q):
    """The per-group algebra (entry by entry over the groups, for q = 1, 2, 3) against the
    textbook formula with the full V matrix."""
    rng = np.random.default_rng(5)
    G, m = 12, 4
    g = np.repeat(np.arange(G), m)
    t = rng.uniform(0, 5, G * m)
    X = np.column_stack([np.ones(G * m), t])
    Z = np.column_stack([np.ones(G * m), t, t**2 / 5])[:, :q]
    y = 2 + t + rng.normal(size=(G, 2))[g][:, 0] + rng.normal(size=G * m)
    Lambda = np.array([[0.9, 0.0, 0.0], [0.2, 0.4, 0.0], [-0.1, 0.3, 0.2]])[:q, :q]
    stats = GroupStatistics(y, X, Z, g)
    for reml in (True, False):
        deviance = evaluate(stats, Lambda[np.tril_indices(q)], reml)
        V = np.eye(G * m)
        for k in range(G):
            rows = g == k
            V[np.ix_(rows, rows)] += Z[rows] @ Lambda @ Lambda.T @ Z[rows].T
        Vi = np.linalg.inv(V)
        beta = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ y)
        r2 = (y - X @ beta) @ Vi @ (y - X @ beta)
        n, p = X.shape
        if reml:
            expected = (np.linalg.slogdet(V)[1] + np.linalg.slogdet(X.T @ Vi @ X)[1]
                        + (n - p) * (1 + np.log(2 * np.pi * r2 / (n - p))))
        else:
            expected = np.linalg.slogdet(V)[1] + n * (1 + np.log(2 * np.pi * r2 / n))
        assert deviance == pytest.approx(expected, rel=1e-12)


def test_agrees_with_statsmodels(data, fit):
    from statsmodels.regression.mixed_linear_model import MixedLM

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = MixedLM.from_formula("pain ~ day + x", data, groups="patient_id",
                                         re_formula="~ day").fit(reml=True, method="bfgs")
    # Its default (lbfgs) stops 200 log-likelihood units short here, with a warning.
    assert reference.converged
    np.testing.assert_allclose(fit.params.to_numpy(), reference.fe_params.to_numpy(), rtol=1e-5)
    # statsmodels' standard errors come from the joint information of the fixed effects and
    # the variance parameters; regen's (as lme4's vcov) from sigma^2 (X'V^-1 X)^-1.
    np.testing.assert_allclose(fit.bse.to_numpy(), reference.bse_fe.to_numpy(), rtol=1e-2)
    np.testing.assert_allclose(fit.random_cov.to_numpy(), np.asarray(reference.cov_re),
                               rtol=1e-3, atol=1e-9)
    assert fit.residual_sd == pytest.approx(np.sqrt(reference.scale), rel=1e-4)
    assert fit.loglik == pytest.approx(reference.llf, rel=1e-7)
    blups = pd.DataFrame(reference.random_effects).T.to_numpy()
    np.testing.assert_allclose(fit.random_effects.loc[list(reference.random_effects)].to_numpy(),
                               blups, rtol=1e-3, atol=1e-4)


def test_statsmodels_engine_gives_the_same_fit(data, fit):
    other = regen.fit_trajectory("pain ~ day + x", data, engine="statsmodels")
    assert other.engine == "statsmodels"
    np.testing.assert_allclose(other.params, fit.params, rtol=1e-4)
    assert other.loglik == pytest.approx(fit.loglik, rel=1e-6)


def test_days_or_years_give_the_same_fit(data, fit):
    years = data.assign(years=data["day"] / 365.25)
    other = regen.fit_trajectory("pain ~ years + x", years, re_formula="~ years")
    assert other.params["years"] == pytest.approx(fit.params["day"] * 365.25, rel=1e-5)
    assert other.random_sd["years"] == pytest.approx(fit.random_sd["day"] * 365.25, rel=1e-4)
    assert other.random_corr.iloc[0, 1] == pytest.approx(fit.random_corr.iloc[0, 1], abs=1e-4)
    # REML's log|X'V^-1 X| moves by 2 log(365.25) when one column is divided by 365.25.
    assert other.loglik - fit.loglik == pytest.approx(np.log(365.25), abs=1e-6)


def test_results_shape(fit, data):
    assert list(fit.summary.columns) == ["estimate", "std_err", "ci_lower", "ci_upper", "p_value"]
    assert list(fit.variance_components.columns) == ["component", "term", "estimate"]
    assert fit.variance_components["term"].tolist() == ["Intercept", "day", "Intercept, day",
                                                        "residual"]
    assert fit.random_sd["Intercept"] == pytest.approx(1.5, rel=0.2)
    assert fit.residual_sd == pytest.approx(1.0, rel=0.1)
    assert len(fit.random_effects) == data["patient_id"].nunique()
    assert np.isfinite(fit.aic) and fit.n == len(data) and fit.n_dropped == 0
    residuals = fit.residuals()
    assert residuals.index.equals(data.index)
    assert abs(residuals["residual"].mean()) < 0.05
    assert residuals["standardized"].std() == pytest.approx(0.9, abs=0.15)


def test_predictions(fit, data):
    profiles = pd.DataFrame({"day": [30.0, 90.0], "x": [0.0, 0.0]})
    mean = fit.predict(profiles)
    assert list(mean.columns) == ["day", "x", "estimate", "std_err", "ci_lower", "ci_upper"]
    assert mean["estimate"].tolist() == pytest.approx(
        [fit.params["Intercept"] + fit.params["day"] * d for d in (30, 90)])
    rows = data.head(3)
    own = fit.predict_subject(rows)
    b = fit.random_effects.loc[rows["patient_id"]].to_numpy()
    expected = fit.predict(rows, ci=False)["estimate"].to_numpy() + b[:, 0] + b[:, 1] * rows["day"]
    assert own["estimate"].to_numpy() == pytest.approx(expected.to_numpy())
    stranger = fit.predict_subject(rows.assign(patient_id="new"))
    assert not stranger["known_group"].any()
    assert stranger["estimate"].to_numpy() == pytest.approx(
        fit.predict(rows, ci=False)["estimate"].to_numpy())


def test_time_to_a_threshold(fit, data):
    profile = {"x": 0.0}
    # Mean 6 - 0.02 day: below 3 from about day 150.
    below = fit.time_to(3.0, profile, direction="below")
    truth = (fit.params["Intercept"] - 3.0) / -fit.params["day"]
    assert below["estimate"] == pytest.approx(truth, rel=1e-6)
    assert below["ci_lower"] < below["estimate"] < below["ci_upper"]
    assert below["ci_lower"] < 150 < below["ci_upper"]
    # Never crosses upwards, nor below a level it never reaches within the data's days.
    with pytest.warns(regen.RegenWarning, match="does not go above 3"):
        assert np.isnan(fit.time_to(3.0, profile, direction="above")["estimate"])
    with pytest.warns(regen.RegenWarning, match="does not go below -5"):
        assert np.isnan(fit.time_to(-5.0, profile, direction="below")["estimate"])
    with pytest.warns(regen.RegenWarning, match="already below 10"):
        assert np.isnan(fit.time_to(10.0, profile, direction="below")["estimate"])
    with pytest.raises(ValueError, match="give an absolute threshold"):
        fit.time_to(0.8, {"x": 0.0, "b": 0.0}, relative_to="b")
    with pytest.raises(ValueError, match="'z' was not in the data"):
        regen.fit_trajectory("pain ~ day + g", data.assign(g=np.where(data["x"] > 0, "a", "b"))
                             ).predict(pd.DataFrame({"day": [1.0], "g": ["z"]}))
    boot = fit.time_to(3.0, profile, method="bootstrap", n_bootstrap=40, seed=3)
    again = fit.time_to(3.0, profile, method="bootstrap", n_bootstrap=40, seed=3)
    pd.testing.assert_series_equal(boot, again)
    assert boot["ci_lower"] < boot["estimate"] < boot["ci_upper"]
    assert boot["ci_upper"] - boot["ci_lower"] == pytest.approx(
        below["ci_upper"] - below["ci_lower"], rel=0.5)
    relative = fit.time_to(0.5, {"x": 0.0, "baseline": 6.0}, relative_to="baseline")
    assert relative["threshold"] == 3.0 and relative["estimate"] == pytest.approx(truth)


def test_boundary_is_one_warning_naming_the_term():
    data = simulated(slope_sd=0.0, intercept_sd=0.0, seed=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = regen.fit_trajectory("pain ~ day + x", data)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and issubclass(caught[0].category, regen.ConvergenceWarning)
    assert "correlation of Intercept and day is estimated at -1.00" in messages[0]
    assert "re_formula='~ 1'" in messages[0]
    assert fit.random_corr.iloc[0, 1] == pytest.approx(-1.0, abs=1e-6)
    no_groups = simulated(intercept_sd=0.0, slope_sd=0.0, seed=5)
    with pytest.warns(regen.ConvergenceWarning, match="variance of Intercept is estimated at 0"):
        fit = regen.fit_trajectory("pain ~ day + x", no_groups, re_formula="~ 1")
    assert fit.random_sd["Intercept"] < 1e-8


def test_missing_values_are_counted_not_lost(data):
    holes = data.copy()
    holes.loc[holes.index[:5], "pain"] = np.nan
    holes.loc[holes.index[10], "x"] = np.nan
    with pytest.warns(regen.DataWarning, match="6 row"):
        fit = regen.fit_trajectory("pain ~ day + x", holes)
    assert fit.n_dropped == 6 and fit.n == len(data) - 6


def test_errors_say_what_to_do(data):
    with pytest.raises(regen.ModelError, match="constraints='center'"):
        regen.fit_trajectory("pain ~ cr(day, df=4)", data)
    with pytest.raises(ValueError, match="needs a response"):
        regen.fit_trajectory("~ day", data)
    with pytest.raises(ValueError, match="no column 'site'"):
        regen.fit_trajectory("pain ~ day", data, groups="site")
    with pytest.raises(ValueError, match="1 row.*no patient_id"):
        regen.fit_trajectory("pain ~ day", data.assign(
            patient_id=data["patient_id"].mask(data.index == 0)))
    with pytest.raises(regen.ModelError, match="single measurement"):
        regen.fit_trajectory("pain ~ day", data.drop_duplicates("patient_id"))
    with pytest.raises(regen.ModelError, match="random effects of '~ w' are rank deficient"):
        regen.fit_trajectory("pain ~ day", data.assign(w=1.0), re_formula="~ w")
    with pytest.raises(ValueError, match="engine must be"):
        regen.fit_trajectory("pain ~ day", data, engine="lme4")


def test_more_than_four_random_terms_fall_back_with_the_reason():
    rng = np.random.default_rng(7)
    data = simulated(n_groups=60, seed=7, visits=(7, 14, 30, 45, 60, 90, 120, 150, 180, 240))
    data = data.assign(u=rng.normal(size=len(data)), v=rng.normal(size=len(data)),
                       w=rng.normal(size=len(data)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = regen.fit_trajectory("pain ~ day", data, re_formula="~ day + u + v + w")
    assert fit.engine == "statsmodels"
    assert any("statsmodels' MixedLM" in str(w.message) for w in caught)


def test_save_and_load(fit, tmp_path):
    loaded = regen.load_model(fit.save(tmp_path / "trajectory.json"))
    profiles = pd.DataFrame({"day": [30.0, 90.0], "x": [0.0, 1.0]})
    pd.testing.assert_frame_equal(loaded.predict(profiles), fit.predict(profiles))
    pd.testing.assert_series_equal(loaded.time_to(3.0, {"x": 0.0}), fit.time_to(3.0, {"x": 0.0}))
    pd.testing.assert_frame_equal(loaded.variance_components, fit.variance_components)
    with pytest.raises(regen.ModelError, match="no data"):
        loaded.residuals()


def test_example_cohort_pain_returns_to_80_percent_of_baseline():
    cohort = regen.read_cohort("data/example")
    pain = cohort.measurements("pain").query("day >= 1")
    fit = regen.fit_trajectory("pain ~ cr(day, df=4, constraints='center') + baseline_pain", pain)
    profile = {"baseline_pain": float(pain["baseline_pain"].median())}
    back = fit.time_to(0.8, profile, direction="above", relative_to="baseline_pain")
    assert 30 < back["ci_lower"] < back["estimate"] < back["ci_upper"] < 365


def test_simulated_cohort_runs_end_to_end():
    sim = regen.simulate.cohort(120, seed=9)
    with tempfile.TemporaryDirectory() as folder:
        sim.write(folder)
        numbness = regen.read_cohort(folder).measurements("numbness").query("day >= 1")
    fit = regen.fit_trajectory("numbness ~ bs(day, df=4) + diabetes", numbness, re_formula="~ 1")
    crossing = fit.time_to(1.0, {"diabetes": False}, direction="below")
    # Numbness fades with the recovery (median about 60 days in the simulation).
    assert 20 < crossing["estimate"] < 250


@pytest.mark.parametrize("q", [1, 2, 3, 4])
def test_group_algebra_equals_lapack_matrix_by_matrix(q):
    """Cholesky and the two triangular solves, written entry by entry over a stack of
    groups (group last), against numpy's per-matrix LAPACK calls."""
    rng = np.random.default_rng(q)
    M = rng.normal(size=(50, q, q))
    A = M @ np.swapaxes(M, 1, 2) + 0.1 * np.eye(q)                  # (G, q, q)
    b = rng.normal(size=(50, q, 3))
    L = cholesky(np.moveaxis(A, 0, -1))
    np.testing.assert_allclose(np.moveaxis(L, -1, 0), np.linalg.cholesky(A), rtol=1e-10,
                               atol=1e-12)
    x = backward(L, forward(L, np.moveaxis(b, 0, -1)))
    np.testing.assert_allclose(np.moveaxis(x, -1, 0), np.linalg.solve(A, b), rtol=1e-8,
                               atol=1e-10)
    A[7] = -np.eye(q)                                                # one not positive definite
    assert cholesky(np.moveaxis(A, 0, -1)) is None
