"""Kinetics intervals with an estimated lag (its bound 0 included), and CR2 + t(G - 1)
cluster inference for the AFT and the kinetics model (issue 12, items 2 and 3).

The coverage these give is checked in test_small_sample_coverage.py (slow).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.linalg import sqrtm

import regen
from regen.survival.covariance import cluster_sandwich
from regen.survival.kinetics import Kinetics

FORMULA = "~ I((age - 50) / 10) + diabetes"
REFERENCE = Path(__file__).parents[1] / "reference"


def numbness(n_patients: int, seed: int, **truth) -> pd.DataFrame:
    sim = regen.simulate.cohort(n_patients, seed=seed, velocity_mm_per_day=1.5, lag_days=8.0,
                                diabetes_velocity_ratio=0.7, **truth)
    with tempfile.TemporaryDirectory() as folder:
        sim.write(folder)
        return regen.read_cohort(folder).episodes("numbness")


@pytest.fixture(scope="module")
def episodes() -> pd.DataFrame:
    return numbness(120, seed=21)


@pytest.fixture(scope="module")
def robust(episodes):
    return regen.fit_regeneration(episodes, formula=FORMULA, cluster="patient_id")


def slow_cr2(covariance, scores, hessians, cluster):
    """Bell & McCaffrey's CR2, written out cluster by cluster with a general matrix root."""
    information = np.linalg.inv(covariance)
    meat = np.zeros_like(covariance)
    for g in pd.unique(cluster):
        rows = np.asarray(cluster == g)
        s_g = scores[rows].sum(axis=0)
        b_g = -hessians[rows].sum(axis=0)
        root = np.real(sqrtm(np.eye(len(s_g)) - b_g @ np.linalg.inv(information)))
        adjusted = np.linalg.solve(root, s_g)
        meat += np.outer(adjusted, adjusted)
    return covariance @ meat @ covariance


# ------------------------------------------------------------------- CR2 --

def linear_model(seed: int = 3, clusters: int = 12):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 6, clusters)
    cluster = np.repeat(np.arange(clusters), sizes)
    n = len(cluster)
    X = np.column_stack([np.ones(n), rng.normal(size=n), (rng.random(n) < 0.3).astype(float)])
    y = X @ [1.0, 0.5, -0.3] + rng.normal(size=clusters)[cluster] + rng.normal(size=n)
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    return X, y - X @ beta, cluster


def test_cr2_is_bell_mccaffrey_for_a_linear_model():
    # OLS as an M-estimator: scores x_i e_i, Hessians -x_i x_i'; CR2 must be
    # (X'X)^-1 sum_g X_g' (I - H_gg)^-1/2 e_g e_g' (I - H_gg)^-1/2 X_g (X'X)^-1.
    X, e, cluster = linear_model()
    bread = np.linalg.inv(X.T @ X)
    meat = np.zeros((3, 3))
    for g in np.unique(cluster):
        rows = cluster == g
        h_gg = X[rows] @ bread @ X[rows].T
        root = np.real(sqrtm(np.eye(rows.sum()) - h_gg))
        u = X[rows].T @ np.linalg.solve(root, e[rows])
        meat += np.outer(u, u)
    expected = bread @ meat @ bread
    got = cluster_sandwich(bread, X * e[:, None], -np.einsum("ij,ik->ijk", X, X),
                           pd.Series(cluster, name="cluster"))
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    # and it is larger than the plain (CR0) sandwich, which ignores leverage
    per = np.zeros((len(np.unique(cluster)), 3))
    np.add.at(per, cluster, X * e[:, None])
    assert (np.diag(got) > np.diag(bread @ per.T @ per @ bread)).all()


def test_cr2_matches_clubsandwich():
    """R's clubSandwich::vcovCR(type = "CR2") and coef_test(test = "naive-t") on a linear
    model with 12 unequal clusters (tests/reference/clubsandwich.R)."""
    data = pd.read_csv(REFERENCE / "clubsandwich_input.csv")
    reference = pd.read_csv(REFERENCE / "clubsandwich_values.csv", keep_default_na=False)
    value = reference.set_index(["quantity", "term"])["value"].astype(float)
    X = np.column_stack([np.ones(len(data)), data["x"], data["z"]])
    beta = np.linalg.lstsq(X, data["y"], rcond=None)[0]
    e = data["y"].to_numpy() - X @ beta
    got = cluster_sandwich(np.linalg.inv(X.T @ X), X * e[:, None],
                           -np.einsum("ij,ik->ijk", X, X), data["cluster"].astype(str))
    np.testing.assert_allclose(value["vcov_cr2"].to_numpy().reshape(3, 3), got, rtol=1e-10)
    np.testing.assert_allclose(value["coef"].to_numpy(), beta, rtol=1e-12)
    g = int(value["n_clusters", ""])
    assert (value["df_naive_t"] == g - 1).all()
    p = 2 * stats.t.sf(np.abs(beta / np.sqrt(np.diag(got))), g - 1)
    np.testing.assert_allclose(value["p_naive_t"].to_numpy(), p, rtol=1e-8)


def test_aft_cr2_equals_the_slow_implementation_and_uses_t():
    data = numbness(40, seed=5)
    fit = regen.fit_recovery("~ diabetes + age", data, cluster="patient_id")
    plain = regen.fit_recovery("~ diabetes + age", data)
    from regen.survival.likelihood import DISTRIBUTIONS, IntervalLikelihood
    X = np.asarray(plain.model_spec.get_model_matrix(data.assign(
        diabetes=data["diabetes"].astype(float))), dtype="float64")
    likelihood = IntervalLikelihood(DISTRIBUTIONS["weibull"], X, data["lower"].to_numpy(float),
                             data["upper"].to_numpy(float), np.ones(len(data)))
    theta = plain.params.to_numpy()
    expected = slow_cr2(plain.covariance.to_numpy(), likelihood.scores(theta),
                        likelihood.row_hessians(theta), data["patient_id"])
    np.testing.assert_allclose(fit.covariance.to_numpy(), expected, rtol=1e-8)
    g = data["patient_id"].nunique()
    assert fit.n_clusters == g and fit.reference_df == g - 1
    t = stats.t.ppf(0.975, g - 1)
    np.testing.assert_allclose(fit.summary["ci_upper"] - fit.summary["estimate"], t * fit.bse)
    np.testing.assert_allclose(fit.summary["p_value"],
                               2 * stats.t.sf(np.abs(fit.params / fit.bse), g - 1))
    # without cluster=, normal quantiles as before
    np.testing.assert_allclose(plain.summary["ci_upper"] - plain.summary["estimate"],
                               stats.norm.ppf(0.975) * plain.bse)


def test_row_hessians_sum_to_the_hessian(rng):
    data = numbness(30, seed=6)
    fit = regen.fit_recovery("~ age", data)
    from regen.survival.likelihood import DISTRIBUTIONS, IntervalLikelihood
    X = np.column_stack([np.ones(len(data)), data["age"]])
    likelihood = IntervalLikelihood(DISTRIBUTIONS["lognormal"], X, data["lower"].to_numpy(float),
                             data["upper"].to_numpy(float), rng.uniform(0.5, 2, len(data)))
    theta = fit.params.to_numpy()
    np.testing.assert_allclose(likelihood.row_hessians(theta).sum(axis=0),
                               likelihood.hessian(theta), rtol=1e-12)


# ------------------------------------------------------ kinetics: the lag --

def test_joint_rows_match_finite_differences_of_each_row(episodes):
    fit = regen.fit_regeneration(episodes, formula=FORMULA)
    X = np.asarray(fit.model_spec.get_model_matrix(episodes.assign(
        diabetes=episodes["diabetes"].astype(float))), dtype="float64")
    kinetics = Kinetics(X, episodes["lower"].to_numpy(float), episodes["upper"].to_numpy(float),
                         episodes["distance_mm"].to_numpy(float), np.ones(len(episodes)))
    params = fit.params.to_numpy()
    scores, hessians = kinetics.joint_rows(params)

    def rows(p):
        return kinetics.aft(p[-1]).terms(p[:-1])[0]

    h = 1e-4
    numeric = np.column_stack([(rows(params + h * e) - rows(params - h * e)) / (2 * h)
                               for e in np.eye(len(params))])
    np.testing.assert_allclose(scores, numeric, atol=1e-5)
    # the summed Hessian is the numeric Hessian of the joint log-likelihood
    total = np.empty((len(params), len(params)))
    for i, ei in enumerate(np.eye(len(params)) * 1e-3):
        for j, ej in enumerate(np.eye(len(params)) * 1e-3):
            total[i, j] = (kinetics.loglik(params + ei + ej) - kinetics.loglik(params + ei - ej)
                           - kinetics.loglik(params - ei + ej)
                           + kinetics.loglik(params - ei - ej)) / 4e-6
    np.testing.assert_allclose(hessians.sum(axis=0), total, rtol=2e-3, atol=1e-2)


def with_an_early_recovery(episodes) -> pd.DataFrame:
    early = episodes.iloc[[0]].assign(treatment_id="EARLY-1", lower=0.0, upper=3.0)
    return pd.concat([episodes, early], ignore_index=True)


def test_a_lag_at_zero_warns_naming_the_episode_and_keeps_its_uncertainty(episodes):
    data = with_an_early_recovery(episodes)
    with pytest.warns(regen.DataWarning) as caught:
        fit = regen.fit_regeneration(data, formula=FORMULA, cluster="patient_id",
                                       failed_freeze="keep")
    near = [str(w.message) for w in caught if "lower bound 0" in str(w.message)]
    assert len(near) == 1 and "day 3" in near[0] and "EARLY-1" in near[0], near
    assert fit.lag["estimate"] < 1 and "lag" in fit.params.index
    # The lag stays in the covariance: the velocity is wider than with the lag known.
    with pytest.warns(regen.DataWarning, match="EARLY-1.*fitted as given"):
        known = regen.fit_regeneration(data, formula=FORMULA, cluster="patient_id",
                                       lag=float(fit.lag["estimate"]), failed_freeze="keep")
    width = np.log(fit.velocity["ci_upper"] / fit.velocity["ci_lower"])
    known_width = np.log(known.velocity["ci_upper"] / known.velocity["ci_lower"])
    assert width > 1.5 * known_width
    # Without a cluster column the row is named by its index label.
    with pytest.warns(regen.DataWarning, match=f"row {len(data) - 1}"):
        regen.fit_regeneration(data.drop(columns="treatment_id"), formula=FORMULA,
                               failed_freeze="keep")


def test_a_lag_well_above_zero_does_not_warn(robust):
    assert robust.lag["estimate"] > 3  # the fixture's fit ran under warnings-as-errors


def test_the_lag_interval_is_robust_with_cluster(episodes, robust):
    g = episodes["patient_id"].nunique()
    assert robust.n_clusters == g and robust.reference_df == g - 1
    plain = regen.fit_regeneration(episodes, formula=FORMULA)
    assert plain.reference_df is None
    # The robust interval: the profile drops by t^2(G-1) V_R / V_M / 2 at its ends.
    cut = stats.t.ppf(0.975, g - 1) ** 2 * robust.covariance.loc["lag", "lag"] \
        / plain.covariance.loc["lag", "lag"] / 2
    profile = regen.fit_regeneration(episodes, formula=FORMULA, lag=robust.lag["ci_upper"])
    assert robust.loglik - profile.loglik == pytest.approx(cut, abs=2e-3)
    assert robust.lag["ci_lower"] != pytest.approx(plain.lag["ci_lower"], abs=1e-3)


def test_velocity_and_ratios_use_t_on_clusters_minus_one(robust):
    t = stats.t.ppf(0.975, robust.reference_df)
    ratio = robust.velocity_ratios.loc["diabetes"]
    se = robust.bse["diabetes"]
    assert np.log(ratio["ci_upper"] / ratio["estimate"]) == pytest.approx(t * se)
    se = robust.bse["Intercept"]  # log-normal: log velocity is the intercept
    velocity = robust.velocity
    assert np.log(velocity["ci_upper"] / velocity["estimate"]) == pytest.approx(t * se)


def test_summary_honours_alpha(episodes):
    fit = regen.fit_regeneration(episodes, formula=FORMULA, alpha=0.1)
    z = stats.norm.ppf(0.95)
    summary = fit.summary
    beta = summary.drop(index="lag")
    np.testing.assert_allclose(beta["ci_upper"] - beta["estimate"], z * beta["std_err"])
    assert tuple(summary.loc["lag", ["ci_lower", "ci_upper"]]) == tuple(fit.lag[["ci_lower",
                                                                                  "ci_upper"]])
    # the 90% profile interval: the profile drops by chi2(0.9, 1) / 2 = 1.353 at its ends
    end = regen.fit_regeneration(episodes, formula=FORMULA, lag=fit.lag["ci_upper"])
    assert fit.loglik - end.loglik == pytest.approx(stats.chi2.ppf(0.9, 1) / 2, abs=2e-3)
    assert fit.velocity["ci_upper"] == pytest.approx(
        np.exp(summary.loc["Intercept", "ci_upper"]))
    with pytest.raises(ValueError, match="computed at alpha=0.1; refit"):
        fit.conf_int(0.05)


def test_save_and_load_keep_the_reference(robust, tmp_path):
    path = robust.save(tmp_path / "kinetics.json")
    loaded = regen.load_model(path)
    assert (loaded.cluster, loaded.n_clusters) == (robust.cluster, robust.n_clusters)
    pd.testing.assert_frame_equal(loaded.summary, robust.summary)
    # A file from before n_clusters existed still loads, with the normal reference it had.
    document = json.loads(path.read_text())
    del document["cluster"], document["n_clusters"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(document))
    assert regen.load_model(old).reference_df is None
    document["n_clusters"] = 1
    old.write_text(json.dumps(document))
    with pytest.raises(regen.serialize.ModelFileError, match="n_clusters"):
        regen.load_model(old)


def test_recovery_fit_save_and_load_keep_the_reference(tmp_path):
    data = numbness(30, seed=8)
    fit = regen.fit_recovery("~ diabetes", data, cluster="patient_id")
    path = fit.save(tmp_path / "recovery.json")
    loaded = regen.load_model(path)
    assert loaded.reference_df == fit.reference_df == data["patient_id"].nunique() - 1
    pd.testing.assert_frame_equal(loaded.summary, fit.summary)
    document = json.loads(path.read_text())
    del document["n_clusters"]  # a file from before: its G/(G-1) sandwich went with normals
    path.write_text(json.dumps(document))
    assert regen.load_model(path).reference_df is None
