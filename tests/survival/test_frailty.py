"""The shared-frailty AFT: its likelihood (quadrature, derivatives, the tau = 0 case), the
fit (against an independent R reference, the boundary, refusals), saving, and the marginal
and patient predictions."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

import regen
from regen.exceptions import DataWarning, ModelError
from regen.survival.frailty import QUADRATURE_TOL, FrailtyFit
from regen.survival.frailtylik import FrailtyLikelihood
from regen.survival.likelihood import DISTRIBUTIONS, IntervalLikelihood, row_terms

VISITS = np.array([7, 14, 28, 42, 56, 84, 112, 168])
REFERENCE = Path(__file__).resolve().parents[1] / "reference"


def episodes(n_patients=150, tau=0.5, sigma=0.4, dist="lognormal", seed=0, most=5):
    """Patients with 1..most episodes: log T = 3.5 + 0.2 x - 0.3 [group b] + b_i + sigma eps,
    seen at VISITS (interval-, left- and right-censored)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, most + 1, n_patients)
    patient = np.repeat(np.arange(n_patients), sizes)
    n = len(patient)
    x = rng.normal(size=n)
    group = rng.random(n) < 0.4
    eps = rng.normal(size=n) if dist == "lognormal" else np.log(rng.exponential(size=n))
    t = np.exp(3.5 + 0.2 * x - 0.3 * group + tau * rng.normal(size=n_patients)[patient]
               + sigma * eps)
    at = np.searchsorted(VISITS, t)
    lower = np.where(at > 0, VISITS[np.maximum(at - 1, 0)], 0).astype(float)
    upper = np.where(at < len(VISITS), VISITS[np.minimum(at, len(VISITS) - 1)], np.inf)
    return pd.DataFrame({"patient_id": [f"P{i:04d}" for i in patient], "x": x,
                         "group": np.where(group, "b", "a"), "lower": lower, "upper": upper})


def design(data):
    return np.column_stack([np.ones(len(data)), data["x"], data["group"] == "b"]).astype(float)


def likelihood(data, dist="lognormal", n_nodes=7):
    return FrailtyLikelihood(DISTRIBUTIONS[dist], design(data), data["lower"].to_numpy(),
                             data["upper"].to_numpy(), np.ones(len(data)),
                             data["patient_id"].to_numpy(), n_nodes)


@pytest.fixture(scope="module")
def data():
    return episodes()


@pytest.fixture(scope="module")
def fit(data):
    return regen.fit_recovery("~ x + group", data, dist="lognormal", frailty="patient_id")


# ----------------------------------------------------------------- likelihood --

@pytest.mark.parametrize("dist", ["lognormal", "weibull", "loglogistic"])
def test_gradient_and_hessian_match_finite_differences(dist):
    data = episodes(60, dist=dist, seed=1)
    lik = likelihood(data, dist, n_nodes=20)
    theta = np.array([3.4, 0.1, -0.2, np.log(0.45), 0.35])
    h = 1e-5
    steps = np.eye(len(theta)) * h
    numeric = np.array([(lik.value(theta + e) - lik.value(theta - e)) / (2 * h) for e in steps])
    hessian = np.array([(lik.gradient(theta + e) - lik.gradient(theta - e)) / (2 * h)
                        for e in steps])
    assert np.allclose(lik.gradient(theta), numeric, rtol=1e-5, atol=1e-5)
    assert np.allclose(lik.hessian(theta), hessian, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dist", ["lognormal", "weibull", "loglogistic"])
def test_tau_zero_is_the_model_without_frailty(dist):
    data = episodes(80, dist=dist, seed=2)
    theta = np.array([3.3, 0.15, -0.25, np.log(0.5)])
    plain = IntervalLikelihood(DISTRIBUTIONS[dist], design(data), data["lower"].to_numpy(),
                               data["upper"].to_numpy(), np.ones(len(data)))
    assert likelihood(data, dist).value(np.append(theta, 0.0)) == pytest.approx(
        plain.value(theta), abs=1e-8)


@pytest.mark.parametrize("dist", ["lognormal", "weibull"])
def test_each_patient_integral_matches_direct_integration(dist):
    data = episodes(12, tau=0.8, dist=dist, seed=3)
    theta = np.array([3.5, 0.2, -0.3, np.log(0.4), 0.8])
    lik = likelihood(data, dist, n_nodes=40)
    posterior = lik.posterior(theta)
    X, law = lik.X, DISTRIBUTIONS[dist]
    for g in range(lik.n_groups):
        rows = np.flatnonzero(lik.codes == g)

        def integrand(u, rows=rows):
            ll = row_terms(law, X[rows] @ theta[:3] + theta[-1] * u, theta[3],
                           lik.rows.log_l[rows], lik.rows.log_u[rows], lik.rows.kind[rows])[0]
            return np.exp(ll.sum()) * stats.norm.pdf(u)

        direct = integrate.quad(integrand, -12, 12, epsabs=0, epsrel=1e-12, limit=400)[0]
        assert posterior.loglik[g] == pytest.approx(np.log(direct), abs=1e-7)


def test_fit_uses_enough_nodes_that_doubling_them_changes_nothing(fit, data):
    theta = fit.params.to_numpy()
    here = likelihood(data, n_nodes=fit.n_nodes).value(theta)
    assert here == pytest.approx(fit.loglik, abs=1e-9)
    assert abs(likelihood(data, n_nodes=2 * fit.n_nodes).value(theta) - here) < QUADRATURE_TOL


def test_a_skewed_weibull_posterior_gets_more_nodes():
    # A Weibull patient effect larger than the spread within a patient skews each
    # patient's posterior: 7 nodes are not within 1e-6 of 14, so the fit doubles them.
    data = episodes(150, tau=0.5, sigma=0.4, dist="weibull", seed=4)
    fit = regen.fit_recovery("~ x + group", data, dist="weibull", frailty="patient_id")
    assert fit.n_nodes > 7
    theta = fit.params.to_numpy()
    assert abs(likelihood(data, "weibull", 2 * fit.n_nodes).value(theta) - fit.loglik) \
        < QUADRATURE_TOL


def test_a_quadrature_that_cannot_reach_its_tolerance_warns():
    # tau / sigma = 3 with the Weibull law: no node count up to MAX_NODES is exact to 1e-6.
    data = episodes(40, tau=0.9, sigma=0.3, dist="weibull", seed=4)
    with pytest.warns(DataWarning, match="not exact to 1e-06 even with 112 nodes"):
        regen.fit_recovery("~ x + group", data, dist="weibull", frailty="patient_id")


# ------------------------------------------------------------------------ fit --

def test_the_fit_is_a_maximum_with_the_model_without_frailty_nested(fit, data):
    plain = regen.fit_recovery("~ x + group", data, dist="lognormal")
    assert fit.frailty_test["loglik_without_frailty"] == pytest.approx(plain.loglik, abs=1e-8)
    assert fit.loglik > plain.loglik
    lik = likelihood(data, n_nodes=fit.n_nodes)
    assert np.abs(lik.gradient(fit.params.to_numpy())).max() < 1e-4
    statistic = 2 * (fit.loglik - plain.loglik)
    assert fit.frailty_test["statistic"] == pytest.approx(statistic)
    assert fit.frailty_test["p_value"] == pytest.approx(0.5 * stats.chi2.sf(statistic, 1))
    assert fit.summary.loc["frailty_sd", "p_value"] == fit.frailty_test["p_value"]


def test_frailty_interval_is_where_the_profile_likelihood_drops_by_the_chi_square_cut(fit, data):
    lik = likelihood(data, n_nodes=fit.n_nodes)
    cut = fit.loglik - stats.chi2.ppf(0.95, 1) / 2
    for end in fit.frailty_ci:
        assert 0 < end
        start = np.append(fit.params.to_numpy()[:-1], end)
        free = np.r_[np.ones(len(start) - 1, bool), False]
        theta, _ = lik.maximise(start, 1e-10, 100, free=free)
        assert lik.value(theta) == pytest.approx(cut, abs=2e-3)
    low, high = fit.frailty_ci
    assert low < fit.frailty_sd < high
    table = fit.conf_int()
    assert tuple(table.loc["frailty_sd"]) == fit.frailty_ci


def test_parameters_are_recovered(fit):
    assert fit.params["x"] == pytest.approx(0.2, abs=0.05)
    assert fit.params["group[T.b]"] == pytest.approx(-0.3, abs=0.1)
    assert fit.scale == pytest.approx(0.4, abs=0.06)
    assert fit.frailty_sd == pytest.approx(0.5, abs=0.12)
    assert set(fit.summary.columns) >= {"estimate", "std_err", "ci_lower", "ci_upper",
                                        "p_value", "time_ratio"}
    assert np.isnan(fit.summary.loc["frailty_sd", "time_ratio"])


def test_no_frailty_in_the_data_puts_tau_on_its_bound_and_warns():
    data = episodes(40, tau=0.0, sigma=0.5, seed=11, most=3)
    with pytest.warns(DataWarning, match="estimated at 0"):
        fit = regen.fit_recovery("~ x + group", data, dist="lognormal", frailty="patient_id")
    plain = regen.fit_recovery("~ x + group", data, dist="lognormal")
    assert fit.frailty_sd == 0
    assert fit.frailty_ci[0] == 0 and 0 < fit.frailty_ci[1] < 1
    # the upper end is where the profile falls by the chi-square cut from the maximum
    lik = likelihood(data, n_nodes=fit.n_nodes)
    start = np.append(fit.params.to_numpy()[:-1], fit.frailty_ci[1])
    free = np.r_[np.ones(len(start) - 1, bool), False]
    theta, _ = lik.maximise(start, 1e-10, 100, free=free)
    assert lik.value(theta) == pytest.approx(fit.loglik - stats.chi2.ppf(0.95, 1) / 2, abs=2e-2)
    assert fit.frailty_test["p_value"] == 1.0
    assert fit.loglik == plain.loglik
    assert np.allclose(fit.params.iloc[:-1], plain.params, atol=1e-12)
    assert np.allclose(fit.bse.iloc[:-1], plain.bse, rtol=1e-6)


def test_refusals():
    data = episodes(30)
    single = data.drop_duplicates("patient_id")
    with pytest.raises(ModelError, match="two or more episodes"):
        regen.fit_recovery("~ x", single, dist="lognormal", frailty="patient_id")
    with pytest.raises(ValueError, match="not both"):
        regen.fit_recovery("~ x", data, frailty="patient_id", cluster="patient_id")
    with pytest.raises(ValueError, match="no column 'patient'"):
        regen.fit_recovery("~ x", data, frailty="patient")
    holes = data.assign(patient_id=data["patient_id"].where(data.index != 3))
    with pytest.raises(ValueError, match="have no patient_id"):
        regen.fit_recovery("~ x", holes, frailty="patient_id")


def test_fit_does_not_change_its_input(data):
    before = data.copy()
    regen.fit_recovery("~ x + group", data, dist="weibull", frailty="patient_id")
    pd.testing.assert_frame_equal(data, before)


# -------------------------------------------------------------------- reference --

def reference_values():
    values = pd.read_csv(REFERENCE / "frailty_values.csv", keep_default_na=False)
    return values


@pytest.mark.skipif(not (REFERENCE / "frailty_values.csv").exists(), reason="no R reference")
@pytest.mark.parametrize("dataset, dist", [("right", "lognormal"), ("right", "weibull"),
                                           ("interval", "lognormal"), ("interval", "weibull"),
                                           ("exact", "lognormal")])
def test_fit_agrees_with_direct_integration_in_r(dataset, dist):
    values = reference_values()
    mine = values[(values["dataset"] == dataset) & (values["dist"] == dist)]
    data = pd.read_csv(REFERENCE / f"frailty_input_{dataset}.csv", dtype={"patient_id": str})
    data["upper"] = data["upper"].replace("inf", np.inf).astype(float)
    fit = regen.fit_recovery("~ x + group", data, dist=dist, frailty="patient_id")

    def value(quantity, term=""):
        row = mine[(mine["quantity"] == quantity) & (mine["term"] == term)]
        return float(row["value"].iloc[0])

    assert fit.loglik == pytest.approx(value("loglik_max"), abs=1e-4)
    assert fit.frailty_test["loglik_without_frailty"] == pytest.approx(
        value("loglik_tau0"), abs=1e-6)
    for term in ("Intercept", "x", "group[T.b]", "log_scale", "frailty_sd"):
        assert fit.params[term] == pytest.approx(value("estimate", term), abs=2e-3)
        if not mine[(mine["quantity"] == "se") & (mine["term"] == term)].empty:
            assert fit.bse[term] == pytest.approx(value("se", term), rel=0.02)
    fixed = mine[mine["quantity"] == "fixed_parameter"].set_index("term")["value"].astype(float)
    theta = fixed[["Intercept", "x", "group[T.b]", "log_scale", "frailty_sd"]].to_numpy()
    X = design(data)
    lik = FrailtyLikelihood(DISTRIBUTIONS[dist], X, data["lower"].to_numpy(float),
                            data["upper"].to_numpy(float), np.ones(len(data)),
                            data["patient_id"].to_numpy(), 60)
    assert lik.value(theta) == pytest.approx(value("loglik_fixed"), abs=1e-6)


# -------------------------------------------------------------------- saving --

def test_save_and_load_give_the_same_model_and_predictions(fit, data, tmp_path):
    path = fit.save(tmp_path / "frailty.json", outcome="relief")
    loaded = regen.load_model(path)
    assert isinstance(loaded, FrailtyFit)
    assert loaded.frailty == "patient_id" and loaded.outcome == "relief"
    assert loaded.frailty_ci == fit.frailty_ci and loaded.n_nodes == fit.n_nodes
    pd.testing.assert_frame_equal(loaded.summary, fit.summary)
    profiles = pd.DataFrame({"x": [0.0], "group": ["b"], "patient_id": ["P0001"]})
    pd.testing.assert_frame_equal(
        loaded.predict_quantile(profiles, history=data),
        fit.predict_quantile(profiles, history=data))
    document = json.loads(path.read_text())
    assert document["kind"] == "FrailtyFit"
    document["frailty_ci"] = [0.5, 0.1]
    path.write_text(json.dumps(document))
    with pytest.raises(regen.ModelFileError, match="frailty_ci"):
        regen.load_model(path)


# --------------------------------------------------------------- predictions --

def test_marginal_lognormal_predictions_have_the_closed_form(fit):
    profiles = pd.DataFrame({"x": [0.0, 1.0], "group": ["a", "b"]})
    mean = fit.params["Intercept"] + fit.params["x"] * profiles["x"] \
        + fit.params["group[T.b]"] * (profiles["group"] == "b")
    spread = np.sqrt(fit.scale**2 + fit.frailty_sd**2)
    quantiles = fit.predict_quantile(profiles, q=[0.25, 0.5])
    expected = np.exp(np.concatenate([mean + spread * stats.norm.ppf(0.25), mean]))
    assert np.allclose(quantiles["estimate"], expected, rtol=1e-9)
    assert (quantiles["prediction"] == "marginal").all()
    assert (quantiles["ci_lower"] < quantiles["estimate"]).all()
    survival = fit.predict_survival(profiles, [30.0])
    assert np.allclose(survival["estimate"], stats.norm.sf((np.log(30) - mean) / spread),
                       rtol=1e-9)


def test_patient_prediction_follows_the_posterior_of_their_effect(fit, data):
    # The posterior mean of u for a patient, by direct integration.
    patient = data["patient_id"].value_counts().index[0]
    history = data[data["patient_id"] == patient]
    theta = fit.params.to_numpy()
    law = DISTRIBUTIONS["lognormal"]
    X = design(history)
    low, up = np.log(history["lower"].to_numpy()), np.log(history["upper"].to_numpy())
    kinds = IntervalLikelihood(law, X, history["lower"].to_numpy(), history["upper"].to_numpy(),
                               np.ones(len(history))).kind

    def density(u):
        with np.errstate(divide="ignore"):
            ll = row_terms(law, X @ theta[:3] + theta[-1] * u, theta[3], low, up, kinds)[0]
        return np.exp(ll.sum()) * stats.norm.pdf(u)

    mass = integrate.quad(density, -10, 10, epsabs=0, epsrel=1e-12)[0]
    mean = integrate.quad(lambda u: u * density(u), -10, 10, epsabs=0, epsrel=1e-12)[0] / mass
    second = integrate.quad(lambda u: u * u * density(u), -10, 10, epsabs=0,
                            epsrel=1e-12)[0] / mass
    profile = pd.DataFrame({"x": [0.3], "group": ["a"], "patient_id": [patient]})
    own = fit.predict_quantile(profile, q=[0.5], history=data).iloc[0]
    log_median = theta[0] + theta[1] * 0.3 + theta[-1] * mean
    assert own["prediction"] == "patient" and own["history_episodes"] == len(history)
    assert np.log(own["estimate"]) == pytest.approx(log_median, abs=1e-6)
    # the interval: the parameters' variance plus the posterior variance of b
    posterior_var = theta[-1]**2 * (second - mean**2)
    assert own["std_err_log"]**2 > posterior_var
    assert own["std_err_log"]**2 < posterior_var + 0.05


def test_history_moves_predictions_towards_the_patients_own_episodes(fit, data):
    profile = pd.DataFrame({"x": [0.0, 0.0], "group": ["a", "a"],
                            "patient_id": ["long", "short"]})
    history = pd.DataFrame({"patient_id": ["long"] * 3 + ["short"] * 3, "x": 0.0,
                            "group": "a", "lower": [84.0] * 3 + [7.0] * 3,
                            "upper": [112.0] * 3 + [14.0] * 3})
    marginal = fit.predict_quantile(profile.drop(columns="patient_id"), q=[0.5])["estimate"]
    own = fit.predict_quantile(profile, q=[0.5], history=history)["estimate"]
    assert own[0] > marginal[0] * 1.2 and own[1] < marginal[1] / 1.2
    survival = fit.predict_survival(profile, [56.0], history=history)
    assert survival["estimate"][0] > survival["estimate"][1]
    assert (survival["ci_lower"] < survival["estimate"]).all()
    assert (survival["estimate"] < survival["ci_upper"]).all()


def test_a_profile_without_history_gets_the_marginal_prediction(fit, data):
    profile = pd.DataFrame({"x": [0.0], "group": ["a"], "patient_id": ["nobody"]})
    with_history = fit.predict_quantile(profile, history=data)
    without = fit.predict_quantile(profile[["x", "group"]])
    assert (with_history["prediction"] == "marginal").all()
    assert np.allclose(with_history["estimate"], without["estimate"])


def test_history_needs_the_patient_column(fit, data):
    with pytest.raises(ValueError, match="needs its 'patient_id'"):
        fit.predict_quantile(pd.DataFrame({"x": [0.0], "group": ["a"]}), history=data)
    with pytest.raises(ValueError, match="history has no column 'upper'"):
        fit.predict_quantile(pd.DataFrame({"x": [0.0], "group": ["a"], "patient_id": ["P0001"]}),
                             history=data.drop(columns="upper"))


def test_boundary_fit_predicts_like_the_model_without_frailty():
    data = episodes(40, tau=0.0, sigma=0.5, seed=11, most=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        fit = regen.fit_recovery("~ x + group", data, dist="lognormal", frailty="patient_id")
    plain = regen.fit_recovery("~ x + group", data, dist="lognormal")
    profiles = pd.DataFrame({"x": [0.5], "group": ["b"]})
    assert np.allclose(fit.predict_quantile(profiles)["estimate"],
                       plain.predict_quantile(profiles)["estimate"], rtol=1e-9)
