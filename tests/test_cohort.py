"""The Cohort: flow, summary, exclusions, derived columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import regen

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "example"


def test_flow_adds_up():
    cohort = regen.read_cohort(EXAMPLE)
    flow = cohort.flow()
    assert list(flow.columns) == ["step", "outcome", "reason", "count"]
    count = flow.groupby(["step", "outcome"])["count"].sum()
    n = len(cohort.treatments)
    for outcome in ("numbness", "relief"):
        excluded = count.get(("treatments_excluded", outcome), 0)
        assert count[("episodes_total", outcome)] + excluded == n
        assert count[("episodes", outcome)] == count[("episodes_total", outcome)]
    assert count[("responders", "relief")] <= count[("assessed_for_response", "relief")]
    assert count[("visits", "")] == len(cohort.visits)


def test_exclusions_account_for_every_missing_episode():
    cohort = regen.read_cohort(EXAMPLE)
    exclusions = cohort.exclusions
    assert list(exclusions.columns) == ["table", "row", "id", "reason", "detail", "outcome"]
    for outcome in ("numbness", "relief"):
        episodes = cohort.episodes(outcome)
        mine = exclusions[exclusions["outcome"] == outcome]
        assert len(mine) + len(episodes) == len(cohort.treatments)
        rows = cohort.treatments.set_index("treatment_id").loc[mine["id"], "source_row"]
        assert rows.tolist() == mine["row"].tolist()


def test_summary_by_nerve():
    cohort = regen.read_cohort(EXAMPLE)
    summary = cohort.summary()
    treatments = cohort.treatments
    assert summary["treatments"].sum() == len(treatments)
    assert summary["visits"].sum() == len(cohort.visits)
    assert summary["retreatments"].sum() == int((treatments["treatment_number"] > 1).sum())
    assert (summary["bilateral_procedures"] > 0).any()
    assert summary.loc["intercostal", "median_distance_mm"] > summary.loc[
        "greater_occipital", "median_distance_mm"]
    assert not any("id" in column for column in summary.columns)


def test_age_and_day_are_derived():
    cohort = regen.read_cohort(EXAMPLE)
    treatments = cohort.treatments.merge(cohort.patients, on="patient_id")
    expected = treatments["treated_on"].dt.year - treatments["birth_year"]
    assert (treatments["age"] == expected).all()
    visits = cohort.visits.merge(cohort.treatments[["treatment_id", "treated_on"]], on="treatment_id")
    assert ((visits["visit_date"] - visits["treated_on"]).dt.days == visits["day"]).all()
    assert pd.api.types.is_integer_dtype(cohort.visits["day"])


def test_repr_has_counts_and_no_ids():
    text = repr(regen.read_cohort(EXAMPLE))
    assert "300 patients" in text and "P0" not in text
