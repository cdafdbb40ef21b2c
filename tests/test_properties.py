"""Properties over generated cohorts, valid and corrupted: regen works or says why, never
crashes; every treatment is accounted for; episodes survive a round trip through CSV."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import regen
from tests.conftest import write_cohort
from tests.test_episodes import cohorts

NASTY = ["", "NaN", "=1+1", "-5", "1e309", "2023-02-30", "\x00", "ü", "  ", "yes", "99999999999",
         "12,5", "T0", "P1", "greater_occipital", "left", "2021-01-01", "0", "-0", "None", "#N/A"]


@st.composite
def corrupted(draw):
    """A generated cohort with cells replaced, a column dropped, or a row duplicated."""
    tables = list(draw(cohorts()))
    for _ in range(draw(st.integers(1, 4))):
        which = draw(st.integers(0, 2))
        lines = tables[which].splitlines()
        action = draw(st.sampled_from(["cell", "cell", "drop_column", "duplicate_row",
                                       "truncate"]))
        if action == "cell" and len(lines) > 1:
            row = draw(st.integers(1, len(lines) - 1))
            cells = lines[row].split(",")
            cells[draw(st.integers(0, len(cells) - 1))] = draw(st.sampled_from(NASTY))
            lines[row] = ",".join(cells)
        elif action == "drop_column":
            width = len(lines[0].split(","))
            column = draw(st.integers(0, width - 1))
            lines = [",".join(c for i, c in enumerate(line.split(",")) if i != column)
                     for line in lines]
        elif action == "duplicate_row" and len(lines) > 1:
            lines.append(lines[draw(st.integers(1, len(lines) - 1))])
        elif action == "truncate":
            lines = lines[:draw(st.integers(0, len(lines)))]
        tables[which] = "\n".join(lines) + "\n"
    return tuple(tables)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=corrupted())
def test_corrupted_cohorts_load_or_fail_with_a_validation_error(data):
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore", regen.RegenWarning)
        try:
            cohort = regen.read_cohort(write_cohort(Path(folder), *data))
        except regen.CohortValidationError as error:
            assert len(error.problems) >= 1
            assert error.problems[["file", "rule", "fix"]].notna().all().all()
            return
        treatments = set(cohort.treatments["treatment_id"])
        for outcome in ("numbness", "relief"):
            episodes, excluded = cohort.episodes(outcome, with_exclusions=True)
            assert set(episodes["treatment_id"]) | set(excluded["id"]) == treatments
            assert ((episodes["lower"] >= 0) & (episodes["lower"] < episodes["upper"])).all()
        for score in ("pain", "numb"):
            if score in cohort.visits.columns and cohort.visits[score].notna().any():
                cohort.measurements(score)
            elif score in cohort.visits.columns:   # a score no visit records is said, not modelled
                with pytest.raises(ValueError, match=f"no visit records a {score} score"):
                    cohort.measurements(score)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=cohorts())
def test_episodes_round_trip_through_csv(data):
    from click.testing import CliRunner

    from regen.cli import main

    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore", regen.RegenWarning)
        path = write_cohort(Path(folder) / "cohort", *data)
        for outcome in ("numbness", "relief"):
            target = Path(folder) / f"{outcome}.csv"
            result = CliRunner().invoke(main, ["episodes", str(path), "--outcome", outcome,
                                               "-o", str(target)])
            assert result.exit_code == 0, result.output
            expected = regen.read_cohort(path).episodes(outcome)
            back = pd.read_csv(target, dtype={"treatment_id": str, "patient_id": str})
            assert back["treatment_id"].tolist() == expected["treatment_id"].tolist()
            for column in ("lower", "upper"):
                np.testing.assert_array_equal(back[column].to_numpy(float),
                                              expected[column].to_numpy(float))
            assert back["status"].tolist() == expected["status"].astype(str).tolist()
