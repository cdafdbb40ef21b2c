"""SimulatedCohort.episodes: the episodes read_cohort gives of the written cohort, exactly,
without the files; and a clear error wherever reading would refuse or warn instead."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

import regen
from regen.exceptions import CohortValidationError, DataWarning
from regen.simulate import SimulatedCohort, cohort

#: Simulator settings that reach different corners of the tables and of the episodes.
SETTINGS = {
    "defaults": {},
    "relief_end_retreatment_frailty": {"retreat": "on_relief_end", "patient_sd_log": 0.4,
                                       "max_treatments": 4},
    "day_column_only": {"time_columns": ("day",)},
    "day_and_date_columns": {"time_columns": ("day", "visit_date"), "p_retreat": 0.6},
    "bilateral_heavy": {"p_bilateral": 0.95},
    "many_missed_visits": {"p_missed": 0.6},
    "heavy_dropout": {"dropout_per_year": 0.95},
    "noisy_pain": {"pain_noise_crosses": True, "pain_noise_sd": 2.0},
    "short_schedule": {"schedule": (14, 28, 56, 84), "jitter_days": 0},
    "few_responders_one_nerve": {"p_response": 0.3, "nerves": {"intercostal": 1.0}},
}
#: Outcomes and their options, as Cohort.episodes takes them.
OUTCOMES = {
    "numbness": ("numbness", {}),
    "relief": ("relief", {}),
    "relief_plain_rule": ("relief", {"confirm": 1, "threshold": 0.3}),
    "relief_short_window": ("relief", {"response_window": (1, 14), "confirm": 2}),
}


def _read(sim: SimulatedCohort, folder, fmt: str = "csv") -> regen.Cohort:
    return regen.read_cohort(sim.write(folder, format=fmt))


@pytest.fixture(scope="module", params=list(SETTINGS), ids=list(SETTINGS))
def simulated(request, tmp_path_factory):
    """A simulated cohort and the cohort read back from its CSV files."""
    sim = cohort(120, seed=20261202, **SETTINGS[request.param])
    return sim, _read(sim, tmp_path_factory.mktemp(request.param))


@pytest.mark.parametrize("outcome", list(OUTCOMES))
def test_episodes_equal_those_of_the_written_and_read_cohort(simulated, outcome):
    sim, read = simulated
    name, options = OUTCOMES[outcome]
    episodes, excluded = sim.episodes(name, with_exclusions=True, **options)
    expected, expected_excluded = read.episodes(name, with_exclusions=True, **options)
    assert len(episodes) > 0
    pd.testing.assert_frame_equal(episodes, expected, check_exact=True)
    pd.testing.assert_frame_equal(excluded, expected_excluded, check_exact=True)
    pd.testing.assert_frame_equal(sim.episodes(name, **options), expected, check_exact=True)


def _procedures_bilateral(sim: SimulatedCohort) -> float:
    return float((sim.treatments.groupby(["patient_id", "treated_on"]).size() == 2).mean())


#: What each setting's cohort must hold for its test to be worth having.
REACHES = {
    "defaults": lambda sim, read: True,
    "relief_end_retreatment_frailty":
        lambda sim, read: (read.treatments["treatment_number"] > 2).sum() >= 10,
    "day_column_only":
        lambda sim, read: "visit_date" not in sim.visits and read.visits["visit_date"].isna().all(),
    "day_and_date_columns": lambda sim, read: (
        read.episodes("numbness")["reason"] == "censored_at_retreatment").any(),
    "bilateral_heavy": lambda sim, read: _procedures_bilateral(sim) > 0.8,
    "many_missed_visits": lambda sim, read: len(sim.visits) < 6 * len(sim.treatments),
    "heavy_dropout": lambda sim, read: (
        read.episodes("numbness")["status"] == "right_censored").mean() > 0.2,
    "noisy_pain": lambda sim, read: (
        read.episodes("relief")["reason"] == "relief_ended_unconfirmed").any(),
    "short_schedule": lambda sim, read: read.visits["day"].max() == 84,
    "few_responders_one_nerve": lambda sim, read: (
        set(sim.treatments["nerve"]) == {"intercostal"}
        and len(read.episodes("relief")) < 0.5 * len(sim.treatments)),
}


def test_each_setting_reaches_what_it_stands_for(simulated, request):
    sim, read = simulated
    setting = request.node.callspec.id
    assert REACHES[setting](sim, read), setting
    assert set(read.episodes("numbness")["status"]) >= {"interval_censored", "right_censored"}


def test_a_warning_of_the_episodes_is_raised_on_both_ways(tmp_path):
    # Misclassified numb flags make numbness come back after a recovery: a DataWarning
    # from building the episodes, whichever way the tables came.
    sim = cohort(120, seed=4, p_misclassified=0.15)
    read = _read(sim, tmp_path)
    with pytest.warns(DataWarning, match="numbness came back"):
        episodes = sim.episodes("numbness")
    with pytest.warns(DataWarning, match="numbness came back"):
        expected = read.episodes("numbness")
    pd.testing.assert_frame_equal(episodes, expected, check_exact=True)


@pytest.mark.parametrize("fmt", ["parquet", "xlsx"])
def test_the_episodes_do_not_depend_on_the_written_format(fmt, tmp_path):
    sim = cohort(40, seed=9, time_columns=("day", "visit_date"))
    read = _read(sim, tmp_path, fmt)
    for name, options in OUTCOMES.values():
        pd.testing.assert_frame_equal(sim.episodes(name, **options),
                                      read.episodes(name, **options), check_exact=True)


def test_the_simulated_tables_are_left_unchanged():
    sim = cohort(60, seed=5, time_columns=("visit_date",))
    before = {name: getattr(sim, name).copy(deep=True)
              for name in ("patients", "treatments", "visits")}
    episodes = sim.episodes("relief")
    episodes["age"] = -1.0
    episodes.loc[:, "lower"] = -1.0
    for name, frame in before.items():
        pd.testing.assert_frame_equal(getattr(sim, name), frame)
    assert list(sim.visits.columns) == list(before["visits"].columns)


@pytest.mark.parametrize(("options", "error", "match"), [
    ({"outcome": "pain"}, ValueError, "outcome must be 'numbness' or 'relief'"),
    ({"outcome": "relief", "threshold": 1.5}, ValueError, "threshold must be between 0 and 1"),
    ({"outcome": "relief", "confirm": 0}, ValueError, "confirm must be at least 1"),
    ({"outcome": "relief", "response_window": (0, 30)}, ValueError, "response_window"),
    ({"outcome": "relief", "confirm": 1.5}, TypeError, "confirm must be a whole number"),
])
def test_options_are_checked_as_by_cohort_episodes(options, error, match):
    sim = cohort(10, seed=1)
    with pytest.raises(error, match=match):
        sim.episodes(**options)


# ------------------------------------------- what reading refuses or warns about --

def _refused(sim: SimulatedCohort, match: str, tmp_path, *, read_error=CohortValidationError):
    """sim.episodes raises a ValueError naming the problem and the way out, and reading the
    written cohort does refuse (or warn about) it: the two never differ silently."""
    with pytest.raises(ValueError, match=match) as raised:
        sim.episodes("numbness")
    assert "sim.write(folder)" in str(raised.value)
    assert "regen.read_cohort(folder)" in str(raised.value)
    folder = sim.write(tmp_path / "written")
    if read_error is DataWarning:
        with pytest.warns(DataWarning):
            regen.read_cohort(folder)
    else:
        with pytest.raises(read_error):
            regen.read_cohort(folder)


def test_dates_after_today_are_refused(tmp_path):
    today = pd.Timestamp.today().normalize()
    sim = cohort(20, seed=2, start_date=str((today - pd.Timedelta(days=100)).date()),
                 end_date=str((today + pd.Timedelta(days=400)).date()))
    _refused(sim, "after today", tmp_path)


def test_visits_after_the_follow_up_horizon_are_refused(tmp_path):
    sim = cohort(20, seed=2, schedule=(30, 1900), p_missed=0.0, dropout_per_year=0.0,
                 start_date="2015-01-01", end_date="2016-12-31", time_columns=("day",))
    _refused(sim, "1825 days after", tmp_path)


def test_dates_before_1900_are_refused(tmp_path):
    sim = cohort(20, seed=2, start_date="1880-01-01", end_date="1882-12-31")
    _refused(sim, "before 1900", tmp_path)


def _edited(sim: SimulatedCohort, **tables) -> SimulatedCohort:
    return dataclasses.replace(sim, **tables)


def test_an_unknown_nerve_is_refused_as_reading_warns(tmp_path):
    sim = cohort(20, seed=2)
    treatments = sim.treatments.assign(nerve=sim.treatments["nerve"].where(
        sim.treatments.index > 0, "sciatic"))
    _refused(_edited(sim, treatments=treatments), "sciatic", tmp_path, read_error=DataWarning)


def test_text_that_reading_would_change_is_refused(tmp_path):
    sim = cohort(20, seed=2)
    treatments = sim.treatments.assign(procedure="Cryo With Decompression")
    with pytest.raises(ValueError, match="treatments.procedure .*'Cryo With Decompression'"):
        _edited(sim, treatments=treatments).episodes("numbness")


@pytest.mark.parametrize("edit", ["extra_column", "unknown_treatment", "duplicate_visit",
                                  "pain_out_of_range", "patient_without_treatment"])
def test_tables_edited_after_the_simulation_are_refused(edit):
    sim = cohort(20, seed=2)
    visits, patients = sim.visits, sim.patients
    if edit == "extra_column":
        visits = visits.assign(site="clinic")
        match = r"columns the simulator does not write \(site\)"
    elif edit == "unknown_treatment":
        visits = visits.assign(treatment_id=visits["treatment_id"].where(visits.index > 0, "T9"))
        match = "treatment_id are not in the treatments table"
    elif edit == "duplicate_visit":
        visits = pd.concat([visits, visits.iloc[[3]]], ignore_index=True)
        match = "two visits on one day"
    elif edit == "pain_out_of_range":
        visits = visits.assign(pain=visits["pain"].where(visits.index > 0, 11))
        match = "visits.pain has values that are not between 0 and 10"
    else:
        patients = pd.concat([patients, patients.iloc[[0]].assign(patient_id="P99999")],
                             ignore_index=True)
        match = "patients have no treatment"
    with pytest.raises(ValueError, match=match):
        _edited(sim, visits=visits, patients=patients).episodes("numbness")
