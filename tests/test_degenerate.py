"""Degenerate data: every model refuses with a regen error that says what is wrong, or fits.

The contract, for each of turnbull, fit_recovery, fit_regeneration, fit_trajectory and
fit_probability, on data with no events, only right- or left-censored episodes, one patient,
one nerve, a covariate with a single value, collinear covariates, perfectly separated groups,
time in years, and missing covariates:

- either a :class:`regen.RegenError` / ``ValueError`` whose message says what is wrong (never
  an exception from inside numpy, scipy, statsmodels or formulaic, nor its bare text),
- or a fit, with a :class:`regen.RegenWarning` where the data are degenerate, that is usable:
  no NaN in its estimates, standard errors or intervals, and no absurd standard errors;
- and in both cases no warning other than regen's own.

The pytest configuration turns regen's warnings into errors, so every fit here runs under
``warnings.catch_warnings(record=True)`` with ``simplefilter("always")`` and the test checks
what was recorded.
"""

from __future__ import annotations

import re
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import regen

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "example"
YEAR = 365.25
DAYS = np.array([0.0, 3, 7, 14, 30, 60, 90, 180, 365])
#: A standard error above this (on a log-time, logit or score scale) means "not identified".
MAX_STD_ERR = 1e6
#: Text that shows a library's internals leaking through a regen error.
LIBRARY_TEXT = re.compile(r"LinAlgError|Singular matrix|FactorEvaluationError|PatsyError|Traceback|"
                          r"not positive definite|could not broadcast|out of bounds|"
                          r"\b(numpy|scipy|statsmodels|formulaic)\.", re.IGNORECASE)

AFT = "~ age + diabetes"
KINETICS = "~ I(age - 50) + diabetes"
TRAJECTORY = "pain ~ day + baseline_pain"
PROBABILITY = "numb ~ day + diabetes"



# ------------------------------------------------------------------ recording --

@dataclass
class Outcome:
    """What a fit did: its result or error, the numbers it reports, and every warning."""

    fit: object = None
    error: Exception | None = None
    numbers: dict[str, np.ndarray] = field(default_factory=dict)
    caught: list = field(default_factory=list)
    shown: str = ""        # repr(fit), taken while recording: it may compute (and warn) too

    @property
    def messages(self) -> list[str]:
        return [str(w.message) for w in self.caught]

    def __str__(self) -> str:
        error = f"{type(self.error).__module__}.{type(self.error).__name__}: {self.error}" \
            if self.error is not None else None
        warned = [f"{w.category.__name__}: {w.message}" for w in self.caught]
        return f"fit={self.shown} error={error} warnings={warned}"

    # pytest's assertion messages repr the outcome; a fit's own repr may compute and warn.
    __repr__ = __str__


def attempt(fit) -> Outcome:
    """Call ``fit()`` recording every warning; read the result's numbers while still recording
    (standard errors, intervals and velocities are computed on access and may warn too)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = fit()
        except Exception as error:  # the test checks its type and message
            return Outcome(error=error, caught=list(caught))
        values = {name: np.asarray(value, dtype="float64").ravel()
                  for name, value in reported_numbers(result).items()}
        shown = repr(result)
    return Outcome(fit=result, numbers=values, caught=list(caught), shown=shown)


def reported_numbers(fit) -> dict:
    """Every number a user reads off a fit."""
    if isinstance(fit, regen.TurnbullFit):
        return {"mass": fit.intervals["mass"], "survival": fit.survival_at(DAYS)["survival"],
                "quantiles": fit.quantile([0.25, 0.5, 0.75])["time"]}
    out = {"params": fit.params, "bse": fit.bse, "conf_int": fit.conf_int()}
    summary = fit.summary
    if isinstance(fit, regen.RecoveryFit):
        ratios = ["time_ratio", "time_ratio_ci_lower", "time_ratio_ci_upper"]
        out["time_ratio"] = summary.drop(index="log_scale")[ratios]   # NaN for log_scale by design
        out["p_value"] = summary["p_value"]
    elif isinstance(fit, regen.RegenerationFit):
        out["p_value"] = summary["p_value"].drop(index="lag", errors="ignore")  # lag: profile CI
        out["velocity_ratios"] = fit.velocity_ratios
        out["lag"] = fit.lag
        if "Intercept" in fit.params.index:
            out["velocity"] = fit.velocity
    elif isinstance(fit, regen.TrajectoryFit):
        out["p_value"] = summary["p_value"]
        out["random_sd"] = fit.random_sd
        out["residual_sd"] = [fit.residual_sd]
    elif isinstance(fit, regen.ProbabilityFit):
        out["p_value"] = summary["p_value"]
        out["odds_ratio"] = summary[["odds_ratio", "odds_ratio_ci_lower", "odds_ratio_ci_upper"]]
    return out


# ----------------------------------------------------------------- assertions --

def assert_only_regen_warnings(outcome: Outcome) -> None:
    foreign = [f"{w.category.__module__}.{w.category.__name__}: {w.message} "
               f"({Path(w.filename).name}:{w.lineno})"
               for w in outcome.caught if not issubclass(w.category, regen.RegenWarning)]
    assert not foreign, f"warnings that are not regen's leaked: {foreign}"


def assert_refused(outcome: Outcome, pattern: str) -> None:
    """A regen error (or ValueError) whose own message matches ``pattern``."""
    error = outcome.error
    assert error is not None, f"expected an error that says what is wrong; got {outcome}"
    assert isinstance(error, regen.RegenError | ValueError), \
        f"not a regen error: {type(error).__module__}.{type(error).__name__}: {error}"
    message = str(error)
    assert not LIBRARY_TEXT.search(message), f"a library's message, not regen's: {message!r}"
    assert re.search(pattern, message), f"{message!r} does not say /{pattern}/"
    assert_only_regen_warnings(outcome)


def assert_usable(outcome: Outcome, warning: str | None = None, *, quiet: bool = False) -> None:
    """A fit with no NaN in what it reports, only regen's warnings, one matching ``warning``
    (when given), none at all when ``quiet``."""
    assert outcome.error is None, f"expected a fit; got {outcome}"
    assert_only_regen_warnings(outcome)
    if warning is not None:
        assert any(re.search(warning, m) for m in outcome.messages), \
            f"no regen warning saying /{warning}/: {outcome.messages}"
    if quiet:
        assert not outcome.caught, f"unexpected warnings: {outcome.messages}"
    for name, values in outcome.numbers.items():
        assert not np.isnan(values).any(), f"NaN in {name}: {values}"
    for name in ("params", "bse", "conf_int"):
        if name in outcome.numbers:
            assert np.isfinite(outcome.numbers[name]).all(), \
                f"infinite {name}: {outcome.numbers[name]}"
    if "bse" in outcome.numbers:
        assert (outcome.numbers["bse"] < MAX_STD_ERR).all(), \
            f"standard errors of a fit that is not identified: {outcome.numbers['bse']}"


def assert_error_or_warning(outcome: Outcome, topic: str = ".") -> None:
    """The contract where either answer is right: refuse saying /topic/, or warn so and fit."""
    if outcome.error is not None:
        assert_refused(outcome, topic)
    else:
        assert_usable(outcome, warning=topic)


# ------------------------------------------------------------------------ data --

def example_copy(folder: Path, numb: str) -> Path:
    """The example cohort with ``numb`` ("yes"/"no") at every visit after the treatment."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("patients", "treatments"):
        shutil.copy(EXAMPLE / f"{name}.csv", folder / f"{name}.csv")
    visits = pd.read_csv(EXAMPLE / "visits.csv", dtype=str, keep_default_na=False)
    treated_on = pd.read_csv(EXAMPLE / "treatments.csv", dtype=str).set_index("treatment_id")
    after = visits["visit_date"] > visits["treatment_id"].map(treated_on["treated_on"])
    visits.loc[after, "numb"] = numb
    visits.to_csv(folder / "visits.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def cohort() -> regen.Cohort:
    return regen.read_cohort(EXAMPLE)


@pytest.fixture(scope="module")
def episodes(cohort) -> pd.DataFrame:
    return cohort.episodes("numbness")


@pytest.fixture(scope="module")
def pain(cohort) -> pd.DataFrame:
    return cohort.measurements("pain").query("day >= 1")


@pytest.fixture(scope="module")
def numb(cohort) -> pd.DataFrame:
    return cohort.measurements("numb").query("day >= 1")


@pytest.fixture(scope="module")
def never_recovered(tmp_path_factory) -> regen.Cohort:
    """Numb at every follow-up visit: no recovery at all (every episode right-censored)."""
    return regen.read_cohort(example_copy(tmp_path_factory.mktemp("never_recovered"), "yes"))


@pytest.fixture(scope="module")
def never_numb(tmp_path_factory) -> regen.Cohort:
    """Never numb after the treatment: every episode left-censored, P(numb) = 0."""
    return regen.read_cohort(example_copy(tmp_path_factory.mktemp("never_numb"), "no"))


def one_patient(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of the patient with the most rows (ties: the first id, on any pandas)."""
    counts = frame["patient_id"].value_counts()
    return frame.loc[frame["patient_id"] == sorted(counts.index[counts == counts.max()])[0]]


def one_nerve(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.loc[frame["nerve"] == "greater_occipital"]


def separated(episodes: pd.DataFrame) -> pd.DataFrame:
    """Every diabetic recovers in (0, 7], every other patient in (60, 90]."""
    diabetic = episodes["diabetes"].to_numpy(dtype=bool)
    return episodes.assign(lower=np.where(diabetic, 0.0, 60.0), upper=np.where(diabetic, 7.0, 90.0))


def in_years(episodes: pd.DataFrame) -> pd.DataFrame:
    return episodes.assign(lower=episodes["lower"] / YEAR, upper=episodes["upper"] / YEAR)


def holes(frame: pd.DataFrame, column: str, n: int) -> pd.DataFrame:
    """``frame`` with ``column`` missing in its first ``n`` rows."""
    return frame.assign(**{column: frame[column].mask(np.arange(len(frame)) < n)})


def test_the_altered_cohorts_are_what_they_claim(never_recovered, never_numb):
    assert set(never_recovered.episodes("numbness")["status"]) == {"right_censored"}
    assert set(never_numb.episodes("numbness")["status"]) == {"left_censored"}
    assert never_recovered.measurements("numb").query("day >= 1")["numb"].all()
    assert not never_numb.measurements("numb").query("day >= 1")["numb"].any()


# ===================================================================== turnbull ==

class TestTurnbull:
    """The NPMLE has no covariates: "one nerve", "single value", "collinear" and "separated"
    are groups of ``by=``; a well-defined curve is the right answer for each."""

    @pytest.mark.parametrize("source", ["no_events_cohort", "all_right_censored"])
    def test_no_events_is_a_flat_curve(self, source, episodes, never_recovered):
        data = never_recovered.episodes("numbness") if source == "no_events_cohort" \
            else episodes.assign(upper=np.inf)
        outcome = attempt(lambda: regen.turnbull(data))
        assert_usable(outcome, quiet=True)
        fit = outcome.fit
        assert fit.survival_at([0, 30, data["lower"].max()])["survival"].tolist() == [1.0, 1.0, 1.0]
        assert fit.median == np.inf

    @pytest.mark.parametrize("source", ["never_numb_cohort", "all_left_censored"])
    def test_all_left_censored_puts_the_mass_before_the_first_visit(self, source, episodes,
                                                                    never_numb):
        data = never_numb.episodes("numbness") if source == "never_numb_cohort" \
            else episodes.assign(lower=0.0)
        outcome = attempt(lambda: regen.turnbull(data))
        assert_usable(outcome, quiet=True)
        first = data["upper"].min()
        assert outcome.fit.intervals[["lower", "upper", "mass"]].values.tolist() == [[0, first, 1]]
        assert outcome.fit.survival_at(first)["survival"].item() == 0.0

    def test_one_patient(self, episodes):
        data = one_patient(episodes)
        outcome = attempt(lambda: regen.turnbull(data))
        assert_usable(outcome, quiet=True)
        assert outcome.fit.n == len(data)

    def test_one_patient_cluster_bootstrap(self, episodes):
        data = one_patient(episodes)
        outcome = attempt(lambda: regen.turnbull(data, n_bootstrap=50, cluster="patient_id",
                                                 seed=1))
        assert_error_or_warning(outcome, "patient_id|cluster")

    @pytest.mark.parametrize("by", ["nerve", "constant"])
    def test_one_group(self, by, episodes):
        """One nerve, or a by= column with a single value: one curve, the ungrouped one."""
        data = one_nerve(episodes).assign(constant=1)
        outcome = attempt(lambda: regen.turnbull(data, by=by))
        assert_usable(outcome, quiet=True)
        alone = regen.turnbull(data)
        assert len(outcome.fit.groups) == 1
        np.testing.assert_allclose(outcome.fit.survival_at(DAYS)["survival"],
                                   alone.survival_at(DAYS)["survival"])

    def test_collinear_groups_are_the_same_groups(self, episodes):
        data = episodes.assign(age2=2 * episodes["age"])
        outcome = attempt(lambda: regen.turnbull(data, by=["age", "age2"]))
        assert_usable(outcome, quiet=True)
        np.testing.assert_allclose(outcome.fit.median.to_numpy(),
                                   regen.turnbull(data, by="age").median.to_numpy())

    def test_separated_groups(self, episodes):
        outcome = attempt(lambda: regen.turnbull(separated(episodes), by="diabetes"))
        assert_usable(outcome, quiet=True)
        assert outcome.fit.median.to_dict() == {False: 75.0, True: 3.5}
        at = outcome.fit.survival_at([7, 60]).pivot(index="time", columns="diabetes",
                                                    values="survival")
        assert at.loc[7, True] == 0 and at.loc[60, False] == 1

    def test_years_are_days_rescaled(self, episodes):
        days = regen.turnbull(episodes)
        outcome = attempt(lambda: regen.turnbull(in_years(episodes)))
        assert_usable(outcome, quiet=True)
        years = outcome.fit
        assert years.median == pytest.approx(days.median / YEAR, rel=1e-12)
        np.testing.assert_allclose(years.survival_at(DAYS / YEAR)["survival"],
                                   days.survival_at(DAYS)["survival"], atol=1e-12)
        np.testing.assert_allclose(years.intervals["mass"], days.intervals["mass"])
        assert years.loglik == pytest.approx(days.loglik, rel=1e-12)

    def test_missing_interval_ends_name_the_rows(self, episodes):
        outcome = attempt(lambda: regen.turnbull(holes(episodes, "lower", 5)))
        assert_refused(outcome, r"5 row\(s\) with missing or non-numeric lower/upper; first at "
                                r"data row 0")

    def test_missing_group_values_are_dropped_with_a_count(self, episodes):
        data = holes(episodes, "diabetes", 5)
        outcome = attempt(lambda: regen.turnbull(data, by="diabetes"))
        assert_usable(outcome, warning=r"\b5 ")
        assert getattr(outcome.fit, "n_dropped", None) == 5
        assert outcome.fit.n.sum() == len(data) - 5


# ================================================================ fit_recovery ==

class TestRecovery:

    @pytest.mark.parametrize("source", ["no_events_cohort", "all_right_censored"])
    def test_no_events(self, source, episodes, never_recovered):
        data = never_recovered.episodes("numbness") if source == "no_events_cohort" \
            else episodes.assign(upper=np.inf)
        outcome = attempt(lambda: regen.fit_recovery(AFT, data))
        assert_refused(outcome, "every episode is right-censored: no recovery was observed")

    @pytest.mark.parametrize("source", ["never_numb_cohort", "all_left_censored"])
    def test_all_left_censored(self, source, episodes, never_numb):
        data = never_numb.episodes("numbness") if source == "never_numb_cohort" \
            else episodes.assign(lower=0.0)
        outcome = attempt(lambda: regen.fit_recovery(AFT, data))
        assert_refused(outcome, "every episode is left-censored")

    def test_one_patient_with_clustered_errors(self, episodes):
        outcome = attempt(lambda: regen.fit_recovery("~ 1", one_patient(episodes),
                                                     cluster="patient_id"))
        assert_refused(outcome, "need at least 2 values of patient_id; found 1")

    @pytest.mark.parametrize("rows", ["one_patient", "one_episode"])
    def test_one_patient(self, rows, episodes):
        """One episode cannot be fitted; one patient's several episodes may well be."""
        data = one_patient(episodes) if rows == "one_patient" else episodes.iloc[[0]]
        outcome = attempt(lambda: regen.fit_recovery("~ 1", data))
        if rows == "one_episode" or outcome.error is not None:
            assert_refused(outcome, "cannot estimate|exactly|standard error")
        else:
            assert_usable(outcome)

    def test_one_nerve(self, episodes):
        outcome = attempt(lambda: regen.fit_recovery("~ nerve + age", one_nerve(episodes)))
        assert_error_or_warning(outcome, "nerve")

    @pytest.mark.parametrize("column, value", [("k", 3.0), ("diabetes", False)])
    def test_single_value(self, column, value, episodes):
        outcome = attempt(lambda: regen.fit_recovery(f"~ age + {column}",
                                                     episodes.assign(**{column: value})))
        assert_refused(outcome, r"rank deficient: .* repeat\(s\) the other columns \(a covariate "
                                r"with a single value, or collinear covariates\)")

    def test_collinear(self, episodes):
        outcome = attempt(lambda: regen.fit_recovery("~ age + age2",
                                                     episodes.assign(age2=2 * episodes["age"])))
        assert_refused(outcome, r"rank deficient: .* repeat\(s\) the other columns")

    @pytest.mark.parametrize("dist", ["weibull", "lognormal", "loglogistic"])
    def test_separated(self, dist, episodes):
        outcome = attempt(lambda: regen.fit_recovery("~ diabetes", separated(episodes), dist=dist))
        assert_error_or_warning(outcome)

    @pytest.mark.parametrize("dist", ["weibull", "lognormal", "loglogistic"])
    def test_years_are_days_rescaled(self, dist, episodes):
        formula = "~ nerve + age + diabetes"
        days = regen.fit_recovery(formula, episodes, dist=dist)
        outcome = attempt(lambda: regen.fit_recovery(formula, in_years(episodes), dist=dist))
        assert_usable(outcome, quiet=True)
        years = outcome.fit
        covariates = days.params.index.drop(["Intercept", "log_scale"])
        np.testing.assert_allclose(years.summary.loc[covariates, "time_ratio"],
                                   days.summary.loc[covariates, "time_ratio"], rtol=1e-9)
        assert years.params["Intercept"] == pytest.approx(days.params["Intercept"] - np.log(YEAR))
        assert years.scale == pytest.approx(days.scale, rel=1e-9)
        np.testing.assert_allclose(years.bse, days.bse, rtol=1e-7)
        profile = pd.DataFrame({"nerve": ["greater_occipital", "intercostal"], "age": [50.0, 70.0],
                                "diabetes": [False, True]})
        np.testing.assert_allclose(years.predict_quantile(profile)["estimate"],
                                   days.predict_quantile(profile)["estimate"] / YEAR, rtol=1e-9)

    @pytest.mark.parametrize("column, formula", [("age", AFT), ("diabetes", AFT),
                                                 ("nerve", "~ nerve")])
    def test_missing_covariates_are_dropped_with_a_count(self, column, formula, episodes):
        outcome = attempt(lambda: regen.fit_recovery(formula, holes(episodes, column, 5)))
        assert_usable(outcome, r"^5 episode\(s\) have a missing value in a covariate")
        assert (outcome.fit.n, outcome.fit.n_dropped) == (len(episodes) - 5, 5)

    def test_every_covariate_missing(self, episodes):
        outcome = attempt(lambda: regen.fit_recovery(AFT, episodes.assign(age=np.nan)))
        assert_refused(outcome, "no episode left to fit")


# ============================================================= fit_regeneration ==

#: The lag: fixed (fast), or estimated from its profile (slow where noted).
FIXED = 5.0


class TestRegeneration:

    @pytest.mark.parametrize("source", ["no_events_cohort", "all_right_censored"])
    def test_no_events(self, source, episodes, never_recovered):
        data = never_recovered.episodes("numbness") if source == "no_events_cohort" \
            else episodes.assign(upper=np.inf)
        outcome = attempt(lambda: regen.fit_regeneration(data, formula=KINETICS, lag=FIXED))
        assert_refused(outcome, "every episode is right-censored: no recovery observed")

    @pytest.mark.parametrize("source, lag", [("all_left_censored", FIXED),
                                             ("all_left_censored", None),
                                             ("never_numb_cohort", None)])
    def test_all_left_censored(self, source, lag, episodes, never_numb):
        data = never_numb.episodes("numbness") if source == "never_numb_cohort" \
            else episodes.assign(lower=0.0)
        outcome = attempt(lambda: regen.fit_regeneration(data, formula=KINETICS, lag=lag))
        assert_error_or_warning(outcome, "left-censored")

    @pytest.mark.parametrize("lag", [FIXED, None])
    def test_one_patient(self, lag, episodes):
        outcome = attempt(lambda: regen.fit_regeneration(one_patient(episodes), formula=KINETICS,
                                                         lag=lag))
        assert_refused(outcome, r"only 4 episode\(s\) with an observed recovery; velocity and "
                                "lag need at least 10")

    def test_one_nerve(self, episodes):
        outcome = attempt(lambda: regen.fit_regeneration(
            one_nerve(episodes), formula="~ nerve + I(age - 50)", lag=FIXED))
        assert_error_or_warning(outcome, "nerve")

    @pytest.mark.parametrize("lag", [FIXED, pytest.param(None, marks=pytest.mark.slow)])
    def test_single_value(self, lag, episodes):
        outcome = attempt(lambda: regen.fit_regeneration(
            episodes.assign(k=3.0), formula="~ I(age - 50) + k", lag=lag))
        assert_error_or_warning(outcome, "rank deficient|single value")

    @pytest.mark.parametrize("lag", [FIXED, pytest.param(None, marks=pytest.mark.slow)])
    def test_collinear(self, lag, episodes):
        outcome = attempt(lambda: regen.fit_regeneration(
            episodes.assign(age2=2 * episodes["age"]), formula="~ age + age2", lag=lag))
        assert_error_or_warning(outcome, "rank deficient|collinear")

    @pytest.mark.parametrize("lag", [FIXED, pytest.param(None, marks=pytest.mark.slow)])
    def test_separated(self, lag, episodes):
        outcome = attempt(lambda: regen.fit_regeneration(separated(episodes), formula=KINETICS,
                                                         lag=lag))
        assert_error_or_warning(outcome)

    @pytest.mark.parametrize("lag", [FIXED, None])
    def test_years_are_days_rescaled(self, lag, episodes):
        days = regen.fit_regeneration(episodes, formula=KINETICS, lag=lag)
        outcome = attempt(lambda: regen.fit_regeneration(
            in_years(episodes), formula=KINETICS, lag=None if lag is None else lag / YEAR))
        assert_usable(outcome, quiet=True)
        years = outcome.fit
        # The profile's optimiser stops at xatol=1e-4 in the time unit: 0.04 days in years.
        rel = 1e-9 if lag is not None else 1e-3
        assert (years.lag * YEAR).to_numpy() == pytest.approx(days.lag.to_numpy(), rel=rel)
        assert (years.velocity / YEAR).to_numpy() == pytest.approx(days.velocity.to_numpy(),
                                                                   rel=rel)
        np.testing.assert_allclose(years.velocity_ratios, days.velocity_ratios, rtol=rel)
        assert years.scale == pytest.approx(days.scale, rel=rel)
        profile = pd.DataFrame({"age": [50.0, 70.0], "diabetes": [False, True],
                                "distance_mm": [40.0, 120.0]})
        np.testing.assert_allclose(years.predict_quantile(profile)["estimate"] * YEAR,
                                   days.predict_quantile(profile)["estimate"], rtol=rel)

    @pytest.mark.parametrize("column, message", [
        ("age", r"^5 episode\(s\) have a missing value in a covariate"),
        ("distance_mm", r"^5 episode\(s\) have no distance_mm")])
    def test_missing_values_are_dropped_with_a_count(self, column, message, episodes):
        outcome = attempt(lambda: regen.fit_regeneration(holes(episodes, column, 5),
                                                         formula=KINETICS, lag=FIXED))
        assert_usable(outcome, message)
        assert (outcome.fit.n, outcome.fit.n_dropped) == (len(episodes) - 5, 5)

    def test_every_covariate_missing(self, episodes):
        outcome = attempt(lambda: regen.fit_regeneration(episodes.assign(age=np.nan),
                                                         formula=KINETICS, lag=FIXED))
        assert_refused(outcome, "no episode with a distance and complete covariates")


# =============================================================== fit_trajectory ==

class TestTrajectory:
    """No censoring here: "no events" is a response that never varies."""

    def test_constant_response(self, pain):
        outcome = attempt(lambda: regen.fit_trajectory(TRAJECTORY, pain.assign(pain=0.0),
                                                       re_formula="~ 1"))
        assert_refused(outcome, r"(?i)pain|response|constant|vary|same value|every row")

    def test_one_patient(self, pain):
        outcome = attempt(lambda: regen.fit_trajectory(TRAJECTORY, one_patient(pain)))
        assert_refused(outcome, "a mixed model needs at least 2 values of patient_id; found 1")

    def test_one_nerve(self, pain):
        outcome = attempt(lambda: regen.fit_trajectory("pain ~ day + nerve", one_nerve(pain),
                                                       re_formula="~ 1"))
        assert_error_or_warning(outcome, "nerve")

    @pytest.mark.parametrize("column, value", [("k", 2.0), ("diabetes", True)])
    def test_single_value(self, column, value, pain):
        outcome = attempt(lambda: regen.fit_trajectory(f"pain ~ day + {column}",
                                                       pain.assign(**{column: value}),
                                                       re_formula="~ 1"))
        assert_refused(outcome, r"fixed effects of .* are rank deficient: \w+ repeat\(s\) the "
                                "other columns. Drop a covariate with a single value")

    def test_collinear(self, pain):
        outcome = attempt(lambda: regen.fit_trajectory("pain ~ day + age + age2",
                                                       pain.assign(age2=2 * pain["age"]),
                                                       re_formula="~ 1"))
        assert_refused(outcome, r"rank deficient: age repeat\(s\) the other columns")

    def test_collinear_random_effects(self, pain):
        outcome = attempt(lambda: regen.fit_trajectory("pain ~ day", pain.assign(
            day2=2 * pain["day"]), re_formula="~ day + day2"))
        assert_refused(outcome, "random effects of '~ day \\+ day2' are rank deficient")

    def test_separated(self, pain):
        """diabetes predicts pain exactly (0 or 10): the exact answer, with a boundary warning."""
        data = pain.assign(pain=np.where(pain["diabetes"].to_numpy(dtype=bool), 0.0, 10.0))
        outcome = attempt(lambda: regen.fit_trajectory("pain ~ day + diabetes", data,
                                                       re_formula="~ 1"))
        assert_usable(outcome, "on a boundary: the variance of Intercept is estimated at 0")
        params = outcome.fit.params
        assert params[["Intercept", "day", "diabetes"]].tolist() == pytest.approx([10, 0, -10],
                                                                                 abs=1e-8)

    def test_years_are_days_rescaled(self, pain):
        formula = "pain ~ day + baseline_pain"
        days = attempt(lambda: regen.fit_trajectory(formula, pain))
        years_data = pain.assign(years=pain["day"] / YEAR)
        outcome = attempt(lambda: regen.fit_trajectory(formula.replace("day", "years"), years_data,
                                                       re_formula="~ years"))
        assert_usable(days)       # both warn that the random effects' correlation is -1
        assert_usable(outcome)
        d, y = days.fit, outcome.fit
        assert y.params["years"] == pytest.approx(d.params["day"] * YEAR, rel=1e-6)
        assert y.bse["years"] == pytest.approx(d.bse["day"] * YEAR, rel=1e-6)
        assert y.random_sd["years"] == pytest.approx(d.random_sd["day"] * YEAR, rel=1e-5)
        for name in ("Intercept", "baseline_pain"):
            assert y.params[name] == pytest.approx(d.params[name], rel=1e-6)
            assert y.bse[name] == pytest.approx(d.bse[name], rel=1e-6)
        assert y.residual_sd == pytest.approx(d.residual_sd, rel=1e-6)
        assert y.loglik - d.loglik == pytest.approx(np.log(YEAR), abs=1e-5)  # REML's constant

    def test_missing_covariates_are_dropped_with_a_count(self, pain):
        outcome = attempt(lambda: regen.fit_trajectory(TRAJECTORY, holes(pain, "baseline_pain", 7),
                                                       re_formula="~ 1"))
        assert_usable(outcome, r"^7 row\(s\) have a missing value in")
        assert (outcome.fit.n, outcome.fit.n_dropped) == (len(pain) - 7, 7)


# ============================================================== fit_probability ==

class TestProbability:
    """No censoring here: "no events" is a response that is 0 (or 1) in every row."""

    @pytest.mark.parametrize("source, value", [("never_numb_cohort", 0), ("all_zero", 0),
                                               ("never_recovered_cohort", 1), ("all_one", 1)])
    def test_response_never_varies(self, source, value, numb, never_numb, never_recovered):
        data = {"never_numb_cohort": lambda: never_numb.measurements("numb").query("day >= 1"),
                "never_recovered_cohort":
                    lambda: never_recovered.measurements("numb").query("day >= 1"),
                "all_zero": lambda: numb.assign(numb=False),
                "all_one": lambda: numb.assign(numb=True)}[source]()
        outcome = attempt(lambda: regen.fit_probability(PROBABILITY, data))
        assert_refused(outcome, f"the response is {value} in every row: no probability to model")

    @pytest.mark.parametrize("formula, message", [
        ("numb ~ day", "GEE needs at least 2 values of patient_id"),
        (PROBABILITY, r"rank deficient: diabetes repeat\(s\)")])  # one patient: one diabetes
    def test_one_patient(self, formula, message, numb):
        outcome = attempt(lambda: regen.fit_probability(formula, one_patient(numb)))
        assert_refused(outcome, message)

    def test_one_nerve(self, numb):
        outcome = attempt(lambda: regen.fit_probability("numb ~ day + nerve", one_nerve(numb)))
        assert_error_or_warning(outcome, "nerve")

    @pytest.mark.parametrize("column, value", [("k", 1.0), ("diabetes", False)])
    def test_single_value(self, column, value, numb):
        outcome = attempt(lambda: regen.fit_probability(f"numb ~ day + {column}",
                                                        numb.assign(**{column: value})))
        assert_refused(outcome, rf"rank deficient: {column} repeat\(s\) the other columns")

    def test_collinear(self, numb):
        outcome = attempt(lambda: regen.fit_probability("numb ~ day + age + age2",
                                                        numb.assign(age2=2 * numb["age"])))
        assert_refused(outcome, r"rank deficient: age repeat\(s\) the other columns")

    @pytest.mark.parametrize("correlation", ["exchangeable", "independence", "ar1"])
    def test_separated(self, correlation, numb):
        data = numb.assign(marker=numb["numb"].astype("float64"))
        outcome = attempt(lambda: regen.fit_probability("numb ~ day + marker", data,
                                                        correlation=correlation))
        assert_error_or_warning(outcome)

    @pytest.mark.parametrize("correlation", ["exchangeable", "independence", "ar1"])
    def test_years_are_days_rescaled(self, correlation, numb):
        days = regen.fit_probability(PROBABILITY, numb, correlation=correlation)
        outcome = attempt(lambda: regen.fit_probability(
            "numb ~ years + diabetes", numb.assign(years=numb["day"] / YEAR),
            correlation=correlation))
        assert_usable(outcome, quiet=True)
        years = outcome.fit
        assert years.params["years"] == pytest.approx(days.params["day"] * YEAR, rel=1e-6)
        assert years.bse["years"] == pytest.approx(days.bse["day"] * YEAR, rel=1e-6)
        for name in ("Intercept", "diabetes"):
            assert years.params[name] == pytest.approx(days.params[name], rel=1e-6)
            assert years.bse[name] == pytest.approx(days.bse[name], rel=1e-6)
        assert years.working_correlation == pytest.approx(days.working_correlation, rel=1e-6,
                                                          abs=1e-12)

    def test_missing_covariates_are_dropped_with_a_count(self, numb):
        outcome = attempt(lambda: regen.fit_probability("numb ~ day + age", holes(numb, "age", 6)))
        assert_usable(outcome, r"^6 row\(s\) have a missing value in")
        assert (outcome.fit.n, outcome.fit.n_dropped) == (len(numb) - 6, 6)
