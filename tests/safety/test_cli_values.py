"""Rule 9: no nonsense from the command line.

A yes/no covariate takes only the one yes/no vocabulary, a number must be finite, and no
command prints "nan" or "inf" where a number of days is expected: it says in words why
there is none.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import regen
from regen._terminal import days, format_fit, format_medians
from regen.validation import BOOLEAN_WORDS


@pytest.mark.parametrize("setting, message", [
    ("diabetes=2", "write yes or no"),
    ("diabetes=maybe", "write yes or no"),
    ("age=inf", "needs a finite number"),
    ("age=nan", "needs a finite number"),
    ("age=-Infinity", "needs a finite number"),
    ("age=sixty", "needs a number"),
])
def test_fit_refuses_a_value_a_covariate_cannot_take(cli, small_cohort, setting, message):
    result = cli("fit", "recovery", small_cohort, "--formula", "~ nerve + age + diabetes",
                 "--at", setting)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and setting in result.stderr


@pytest.mark.parametrize("word", sorted(BOOLEAN_WORDS))
def test_fit_takes_every_word_of_the_one_vocabulary(cli, small_cohort, word):
    result = cli("fit", "recovery", small_cohort, "--formula", "~ nerve + diabetes", "--at",
                 f"diabetes={word.upper()}")
    assert result.exit_code == 0, result.output
    assert f"diabetes {'yes' if BOOLEAN_WORDS[word] else 'no'}" in result.stdout


NUMBER_WORDS = re.compile(r"\b(nan|inf|-inf)\b", re.IGNORECASE)


def test_medians_without_a_number_are_words():
    quantiles = pd.DataFrame({
        "outcome": "relief", "nerve": ["a", "a", "a", "b", "b", "b"],
        "q": [0.25, 0.5, 0.75] * 2,
        "time": [20.0, 40.0, np.inf, 30.0, np.inf, np.inf],
        "ci_lower": [np.nan, 35.0, np.nan, np.nan, 50.0, np.nan],
        "ci_upper": [np.nan, np.inf, np.nan, np.nan, np.nan, np.nan],
        "episodes": 12})
    text = format_medians(quantiles)
    assert not NUMBER_WORDS.search(text), text
    assert "40  (35–not reached)" in text
    assert "not reached  (50–not estimable)" in text


def test_predicted_days_without_a_number_are_words(small_cohort):
    cohort = regen.read_cohort(small_cohort)
    episodes = cohort.episodes("numbness")
    model = regen.fit_recovery("~ 1", episodes)
    profiles = pd.DataFrame(index=[0])
    predicted = model.predict_quantile(profiles, q=[0.25, 0.5, 0.75])
    predicted.loc[predicted["q"] == 0.5, ["ci_upper"]] = np.inf
    predicted.loc[predicted["q"] == 0.75, ["estimate"]] = np.nan
    text = format_fit(model, "numbness", profiles, predicted)
    assert not NUMBER_WORDS.search(text), text
    assert "too long for the model to estimate" in text and "not estimable" in text


def test_days_formatter():
    assert days(41.6) == "42" and days(3.14, digits=1) == "3.1"
    assert days(np.inf) == "not reached" and days(np.nan) == "not estimable"
    assert days(np.inf, infinite="no upper bound") == "no upper bound"


def test_the_read_limits_are_options_and_named_in_refusals(cli, tmp_path):
    folder = tmp_path / "cohort"
    regen.simulate.cohort(40, seed=3).write(folder)
    visits = pd.read_csv(folder / "visits.csv", dtype=str)
    visits["note"] = ""
    visits.loc[:29, "note"] = "x" * 50_000   # 30 cells of 50 kB, within the cell limit: 1.5 MB
    visits.to_csv(folder / "visits.csv", index=False)
    result = cli("validate", folder, "--max-file-mb", 1)
    assert result.exit_code == 1
    assert "visits.csv" in result.stderr and "--max-file-mb" in result.stderr
    assert cli("validate", folder, "--max-file-mb", 2).exit_code == 0
    result = cli("validate", folder, "--max-cell-kb", 40)
    assert result.exit_code == 1 and "--max-cell-kb" in result.stderr
    assert "value of 50,000 bytes, more than the limit of 40,000 bytes" in result.stderr
    result = cli("validate", folder, "--max-rows", 50)
    assert result.exit_code == 1 and "--max-rows" in result.stderr
    assert "ReadLimits(max_rows=...)" in result.stderr
    assert cli("validate", folder, "--max-rows", 100_000).exit_code == 0


@pytest.mark.parametrize("threshold", ["-1", "0", "nan", "inf"])
def test_a_trajectory_threshold_must_be_a_level(cli, small_cohort, threshold):
    result = cli("fit", "trajectory", small_cohort, "--score", "pain",
                 "--threshold", threshold)
    assert result.exit_code == 2, result.output
    assert "is not a level" in result.stderr and "--threshold" in result.stderr
