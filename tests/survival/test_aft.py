"""AFT likelihood: analytic gradients, sandwich, predictions, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import regen
from regen.survival.likelihood import DISTRIBUTIONS, IntervalLikelihood

REFERENCE = Path(__file__).resolve().parents[1] / "reference"


@pytest.mark.parametrize("dist", list(DISTRIBUTIONS))
def test_gradient_matches_finite_differences(dist, rng):
    n = 200
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n)])
    lower = rng.choice([0.0, 7, 14, 30, 60], size=n)
    upper = lower + rng.choice([7.0, 16, 30, np.inf], size=n)
    upper[lower == 0] = rng.choice([7.0, 14], size=int((lower == 0).sum()))
    exact = rng.random(n) < 0.1
    upper[exact] = lower[exact] = rng.uniform(5, 90, size=int(exact.sum()))
    likelihood = IntervalLikelihood(DISTRIBUTIONS[dist], X, lower, upper, rng.uniform(0.5, 2, n))
    theta = np.array([3.2, 0.3, -0.2, np.log(0.7)])
    numeric = np.array([(likelihood.value(theta + h) - likelihood.value(theta - h)) / 2e-6
                        for h in np.eye(4) * 1e-6])
    assert likelihood.gradient(theta) == pytest.approx(numeric, rel=1e-6, abs=1e-6)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    frame = pd.read_csv(REFERENCE / "aft_input_a.csv")
    return frame.assign(patient_id=[f"P{i // 2}" for i in range(len(frame))])


def test_fit_does_not_change_its_input(data):
    before = data.copy()
    regen.fit_recovery("~ nerve + age", data)
    pd.testing.assert_frame_equal(data, before)


def test_summary_has_stable_columns_and_time_ratios(data):
    summary = regen.fit_recovery("~ nerve + age + diabetes", data).summary
    assert list(summary.columns) == ["estimate", "std_err", "ci_lower", "ci_upper", "p_value",
                                     "time_ratio", "time_ratio_ci_lower", "time_ratio_ci_upper"]
    row = summary.loc["diabetes"]
    assert row["time_ratio"] == pytest.approx(np.exp(row["estimate"]))
    assert row["time_ratio_ci_lower"] < row["time_ratio"] < row["time_ratio_ci_upper"]


def test_cluster_sandwich_changes_only_the_standard_errors(data):
    plain = regen.fit_recovery("~ nerve + age + diabetes", data)
    robust = regen.fit_recovery("~ nerve + age + diabetes", data, cluster="patient_id")
    pd.testing.assert_series_equal(plain.params, robust.params)
    assert not np.allclose(plain.bse, robust.bse)
    assert robust.bse.between(0.5 * plain.bse, 2 * plain.bse).all()


def test_one_row_per_cluster_is_the_hc2_sandwich(data):
    """With every row its own cluster, CR2 is the HC2-type sandwich
    A^-1 (sum_i s~_i s~_i') A^-1, s~_i = (I - B_i A^-1)^(-1/2) s_i (B_i the row's information),
    and the intervals use t on n - 1 degrees of freedom."""
    from scipy.linalg import sqrtm

    frame = data.assign(row=np.arange(len(data)))
    plain = regen.fit_recovery("~ nerve + age", frame)
    robust = regen.fit_recovery("~ nerve + age", frame, cluster="row")
    X = np.asarray(plain.model_spec.get_model_matrix(frame), dtype="float64")
    likelihood = IntervalLikelihood(DISTRIBUTIONS["weibull"], X, frame["lower"].to_numpy(float),
                             frame["upper"].to_numpy(float), np.ones(len(frame)))
    theta = plain.params.to_numpy()
    scores, hessians = likelihood.scores(theta), likelihood.row_hessians(theta)
    bread = plain.covariance.to_numpy()
    eye = np.eye(len(theta))
    adjusted = np.array([np.real(np.linalg.solve(sqrtm(eye + h @ bread), s))
                         for s, h in zip(scores, hessians, strict=True)])
    expected = bread @ adjusted.T @ adjusted @ bread
    np.testing.assert_allclose(robust.covariance.to_numpy(), expected, rtol=1e-7)
    assert robust.reference_df == len(frame) - 1


def test_missing_or_single_cluster_is_an_error(data):
    with pytest.raises(ValueError, match=r"1 episode\(s\) have no patient_id.*cluster="):
        regen.fit_recovery("~ age", data.assign(patient_id=data["patient_id"].mask(data.index == 3)),
                           cluster="patient_id")
    with pytest.raises(regen.ModelError, match="at least 2"):
        regen.fit_recovery("~ age", data.assign(site="A"), cluster="site")


def test_predicted_median_is_where_survival_is_one_half(data):
    fit = regen.fit_recovery("~ nerve + age + diabetes", data, dist="lognormal")
    profile = pd.DataFrame({"nerve": ["greater_occipital"], "age": [60], "diabetes": [1]})
    median = fit.predict_quantile(profile, q=[0.5])
    assert list(median.columns[-5:]) == ["q", "estimate", "ci_lower", "ci_upper", "std_err_log"]
    at = fit.predict_survival(profile, times=median["estimate"])
    assert at["estimate"].iloc[0] == pytest.approx(0.5)
    assert at["ci_lower"].iloc[0] < 0.5 < at["ci_upper"].iloc[0]


def test_missing_covariates_are_counted_not_hidden(data):
    holed = data.copy()
    holed.loc[:4, "age"] = np.nan
    with pytest.warns(regen.DataWarning, match="5 episode\\(s\\) have a missing value"):
        fit = regen.fit_recovery("~ age", holed)
    assert (fit.n, fit.n_dropped) == (len(data) - 5, 5)


def test_models_that_cannot_be_fitted_say_why(data):
    censored = data.assign(upper=np.inf)
    with pytest.raises(regen.ModelError, match="every episode is right-censored"):
        regen.fit_recovery("~ age", censored)
    with pytest.raises(regen.ModelError, match="every episode is left-censored"):
        regen.fit_recovery("~ age", data.assign(lower=0.0))
    with pytest.raises(regen.ModelError, match="rank deficient"):
        regen.fit_recovery("~ age + older", data.assign(older=data["age"] + 1))
    with pytest.raises(ValueError, match="upper < lower; first at data row 3"):
        regen.fit_recovery("~ age", data.assign(upper=data["upper"].where(data.index != 3, 1.0)))
    with pytest.raises(ValueError, match="dist must be one of"):
        regen.fit_recovery("~ age", data, dist="gamma")
    fit = regen.fit_recovery("~ nerve", data)
    with pytest.raises(ValueError, match="give every covariate a value"):
        fit.predict_quantile(pd.DataFrame({"age": [50]}))


def test_save_and_load_round_trip_through_json(data, tmp_path):
    fit = regen.fit_recovery("~ nerve + bs(age, df=3) + diabetes", data, dist="loglogistic",
                             cluster="patient_id")
    path = fit.save(tmp_path / "model.json")
    text = path.read_text()
    assert text.lstrip().startswith("{") and '"format": "regen-model"' in text
    loaded = regen.load_model(path)
    pd.testing.assert_series_equal(loaded.params, fit.params)
    pd.testing.assert_frame_equal(loaded.covariance, fit.covariance)
    profiles = pd.DataFrame({"nerve": ["intercostal", "greater_occipital"], "age": [33, 71],
                             "diabetes": [0, 1]})
    pd.testing.assert_frame_equal(loaded.predict_quantile(profiles), fit.predict_quantile(profiles))
    assert (loaded.dist, loaded.formula, loaded.cluster) == (fit.dist, fit.formula, "patient_id")


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not valid JSON"),
    ('{"format": "something-else"}', "not a regen model file"),
    ('{"format": "regen-model", "schema_version": 99, "kind": "RecoveryFit"}',
     "schema version 99"),
    ('{"format": "regen-model", "schema_version": 1, "kind": "os.system"}', "unknown model kind"),
    ('{"format": "regen-model", "schema_version": 1, "kind": "RecoveryFit", "dist": "weibull"}',
     "is damaged"),
])
def test_bad_model_files_are_refused_clearly(tmp_path, content, message):
    path = tmp_path / "model.json"
    path.write_text(content)
    with pytest.raises(regen.ModelFileError, match=message):
        regen.load_model(path)


def test_fits_cohort_episodes_with_text_and_yes_no_columns(tmp_path):
    sim = regen.simulate.cohort(400, seed=8)
    sim.write(tmp_path)
    episodes = regen.read_cohort(tmp_path).episodes("numbness")
    fit = regen.fit_recovery("~ nerve + age + diabetes", episodes, cluster="patient_id")
    assert "diabetes" in fit.params.index
    assert any(name.startswith("nerve[") for name in fit.params.index)
    # Diabetes slows regrowth in the simulation: recovery takes longer (time ratio > 1).
    assert fit.summary.loc["diabetes", "time_ratio"] > 1
    profile = pd.DataFrame({"nerve": ["greater_occipital"], "age": [60], "diabetes": [True]})
    median = fit.predict_quantile(profile, q=[0.5]).iloc[0]
    assert median["ci_lower"] < median["estimate"] < median["ci_upper"]


def test_compare_distributions_ranks_by_aic_and_gives_overlay_curves(data):
    table, curves = regen.compare_distributions("~ nerve + age", data, times=[0, 30, 60, 120])
    assert list(table.columns) == ["dist", "loglik", "n_params", "aic", "delta_aic"]
    assert table["aic"].is_monotonic_increasing and table["delta_aic"].iloc[0] == 0
    assert set(curves["curve"]) == {"npmle", "weibull", "lognormal", "loglogistic"}
    assert set(curves["group"]) == set(data["nerve"])
    assert (curves.loc[curves["time"] == 0, "survival"] == 1).all()
    assert curves["survival"].between(0, 1).all()
    best = table["dist"].iloc[0]
    fit = regen.fit_recovery("~ nerve + age", data, dist=best)
    assert table["loglik"].iloc[0] == pytest.approx(fit.loglik)


@pytest.mark.parametrize("dist", list(DISTRIBUTIONS))
def test_hessian_matches_finite_differences_of_the_gradient(dist, rng):
    n = 200
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    lower = rng.choice([0.0, 7, 14, 30, 60], size=n)
    upper = lower + rng.choice([7.0, 16, 30, np.inf], size=n)
    upper[lower == 0] = 10.0
    exact = rng.random(n) < 0.1
    upper[exact] = lower[exact] = rng.uniform(5, 90, size=int(exact.sum()))
    likelihood = IntervalLikelihood(DISTRIBUTIONS[dist], X, lower, upper, np.ones(n))
    theta = np.array([3.3, 0.2, np.log(0.8)])
    numeric = np.column_stack([(likelihood.gradient(theta + h) - likelihood.gradient(theta - h))
                               / 2e-6 for h in np.eye(3) * 1e-6])
    assert likelihood.hessian(theta) == pytest.approx(numeric, rel=1e-5, abs=1e-5)


def test_weights_equal_repeated_rows(data):
    weighted = regen.fit_recovery("~ age", data.assign(w=np.where(data.index < 50, 2.0, 1.0)),
                                  weights="w")
    repeated = regen.fit_recovery("~ age", pd.concat([data, data.iloc[:50]], ignore_index=True))
    assert weighted.params.to_numpy() == pytest.approx(repeated.params.to_numpy(), rel=1e-6)
    assert weighted.loglik == pytest.approx(repeated.loglik)


def test_a_covariate_in_tiny_units_is_not_taken_for_separation(data):
    """Large standard errors that go with a large coefficient are fine; only unbounded ones
    (separation) are refused."""
    plain = regen.fit_recovery("~ age", data)
    tiny = regen.fit_recovery("~ tiny", data.assign(tiny=data["age"] * 1e-7))
    assert tiny.params["tiny"] == pytest.approx(plain.params["age"] * 1e7, rel=1e-6)
    assert tiny.bse["tiny"] > 1e4


def test_choose_distribution_keeps_the_lowest_aic(data):
    fit, table = regen.choose_distribution("~ nerve + age", data)
    assert list(table.columns) == ["dist", "loglik", "n_params", "aic", "delta_aic"]
    assert sorted(table["dist"]) == sorted(DISTRIBUTIONS) and table["aic"].is_monotonic_increasing
    assert fit.dist == table["dist"].iloc[0] and table["delta_aic"].iloc[0] == 0
    for row in table.itertuples():
        assert regen.fit_recovery("~ nerve + age", data, dist=row.dist).aic == pytest.approx(row.aic)
    assert {"Weibull", "log-normal", "log-logistic"} == {
        regen.fit_recovery("~ age", data, dist=d).dist_label for d in DISTRIBUTIONS}
    with pytest.raises(TypeError, match="fits every dist"):
        regen.choose_distribution("~ age", data, dist="weibull")


def test_the_command_lines_names_of_the_laws_are_the_models():
    from regen.defaults import DISTRIBUTION_NAMES

    assert tuple(DISTRIBUTIONS) == DISTRIBUTION_NAMES
