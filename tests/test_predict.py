"""regen predict: one patient's expected duration, and clear messages for a bad profile."""

from __future__ import annotations

import copy
import json
import math
import re

import pytest

import regen
from regen.predict import BEYOND, YES_NO, expected_duration, model_inputs, sentence


@pytest.fixture(scope="module")
def relief_model(tmp_path_factory):
    episodes = regen.read_cohort("data/example").episodes("relief")
    path = tmp_path_factory.mktemp("m") / "relief.json"
    regen.fit_recovery("~ nerve + age + diabetes", episodes).save(path, outcome="relief")
    return regen.load_model(path)


def test_prediction_matches_predict_quantile(relief_model):
    import pandas as pd

    result = expected_duration(relief_model, {"nerve": "greater_occipital", "age": "52",
                                              "diabetes": "no"})
    table = relief_model.predict_quantile(pd.DataFrame({
        "nerve": ["greater_occipital"], "age": [52.0], "diabetes": [0.0]}), q=[0.5])
    assert result["median"] == pytest.approx(table["estimate"].item())
    assert result["q1"] < result["median_ci_lower"] < result["median"] < result["median_ci_upper"] \
        < result["q3"]
    assert result["outcome"] == "relief"
    assert "until relief wears off" in sentence(result)


def test_profile_errors_list_what_the_model_needs(relief_model):
    assert model_inputs(relief_model)["age"] is None
    assert "greater_occipital" in model_inputs(relief_model)["nerve"]
    with pytest.raises(ValueError, match=r"(?s)missing: diabetes.*--nerve  one of"):
        expected_duration(relief_model, {"nerve": "greater_occipital", "age": "52"})
    with pytest.raises(ValueError, match="not used by this model: bmi"):
        expected_duration(relief_model, {"nerve": "greater_occipital", "age": "52",
                                         "diabetes": "no", "bmi": "30"})
    with pytest.raises(ValueError, match="'occipital' is not one the model knows"):
        expected_duration(relief_model, {"nerve": "occipital", "age": "52", "diabetes": "no"})
    with pytest.raises(ValueError, match="age must be a number"):
        expected_duration(relief_model, {"nerve": "greater_occipital", "age": "old",
                                         "diabetes": "no"})


def test_cli_predict_sentence_json_and_usage_errors(relief_model, tmp_path):
    from click.testing import CliRunner

    from regen.cli import main

    path = tmp_path / "relief.json"
    relief_model.save(path)
    runner = CliRunner()
    ok = runner.invoke(main, ["predict", "--model", str(path), "--nerve", "greater_occipital",
                              "--age", "52", "--diabetes", "no"])
    assert ok.exit_code == 0 and "Expected time until relief wears off" in ok.stdout
    data = json.loads(runner.invoke(main, ["predict", "--model", str(path), "--json",
                                           "--nerve=greater_occipital", "--age=52",
                                           "--diabetes=yes"]).stdout)
    assert data["median_ci_lower"] < data["median"] < data["median_ci_upper"]
    bad = runner.invoke(main, ["predict", "--model", str(path), "--age", "52"])
    assert bad.exit_code == 2 and "--nerve  one of" in bad.stderr
    dangling = runner.invoke(main, ["predict", "--model", str(path), "--age"])
    assert dangling.exit_code == 2 and "--age needs a value" in dangling.stderr


def test_kinetics_model_needs_the_distance(tmp_path):
    episodes = regen.read_cohort("data/example").episodes("numbness")
    path = tmp_path / "kin.json"
    regen.fit_regeneration(episodes, formula="~ diabetes", lag=10).save(path)
    model = regen.load_model(path)
    with pytest.raises(ValueError, match="--distance-mm"):
        expected_duration(model, {"diabetes": "no"})
    result = expected_duration(model, {"diabetes": "no", "distance_mm": "80"})
    velocity = model.velocity["estimate"]
    assert result["median"] == pytest.approx(10 + 80 / velocity, rel=1e-6)
    assert result["outcome"] == "numbness"


# ------------------------------------------------------------- yes/no ---

PROFILE = {"nerve": "greater_occipital", "age": "52"}


def test_a_yes_no_covariate_takes_only_yes_no_words(relief_model):
    assert relief_model.yes_no == ("diabetes",)
    assert model_inputs(relief_model)["diabetes"] == YES_NO == "yes or no"
    yes = expected_duration(relief_model, {**PROFILE, "diabetes": "yes"})
    no = expected_duration(relief_model, {**PROFILE, "diabetes": "no"})
    assert yes["median"] != no["median"]
    for word, same in (("Yes", yes), ("TRUE", yes), ("1", yes), ("y", yes), ("n", no),
                       ("0", no), ("False", no)):
        assert expected_duration(relief_model, {**PROFILE, "diabetes": word})["median"] == \
            same["median"], word
    for bad in ("2", "0.5", "-1", "maybe", "nan", ""):
        with pytest.raises(ValueError, match=r"diabetes must be yes or no \(one of 1, 1\.0, "
                                             r"true, t, yes, y, 0, 0\.0, false, f, no, n\)"):
            expected_duration(relief_model, {**PROFILE, "diabetes": bad})
    # A number is a number: the yes/no words are for the yes/no covariates only.
    with pytest.raises(ValueError, match=r"age must be a number, not 'yes'"):
        expected_duration(relief_model, {**PROFILE, "age": "yes", "diabetes": "no"})
    with pytest.raises(ValueError, match=r"(?s)missing: diabetes.*--age  a number\n"
                                         r"  --diabetes  yes or no\n"):
        expected_duration(relief_model, PROFILE)


def test_the_command_line_refuses_diabetes_2(relief_model, tmp_path):
    from click.testing import CliRunner

    from regen.cli import main

    path = relief_model.save(tmp_path / "relief.json")
    args = ["predict", "--model", str(path), "--nerve", "greater_occipital", "--age", "52"]
    bad = CliRunner().invoke(main, [*args, "--diabetes", "2"])
    assert bad.exit_code == 2 and "diabetes must be yes or no" in bad.stderr
    assert CliRunner().invoke(main, [*args, "--diabetes", "YES"]).exit_code == 0


def test_the_kinetics_model_records_yes_no_too(tmp_path):
    episodes = regen.read_cohort("data/example").episodes("numbness")
    fit = regen.fit_regeneration(episodes, formula="~ I(age - 50) + diabetes", lag=10)
    model = regen.load_model(fit.save(tmp_path / "kin.json"))
    assert model_inputs(model) == {"age": None, "diabetes": YES_NO, "distance_mm": None}
    with pytest.raises(ValueError, match="diabetes must be yes or no"):
        expected_duration(model, {"age": "50", "diabetes": "2", "distance_mm": "80"})
    assert expected_duration(model, {"age": "50", "diabetes": "yes", "distance_mm": "80"})[
        "median"] == expected_duration(model, {"age": "50", "diabetes": "1",
                                               "distance_mm": "80"})["median"]


def test_a_file_that_does_not_record_yes_no_behaves_as_before(relief_model, tmp_path):
    path = relief_model.save(tmp_path / "relief.json")
    document = json.loads(path.read_text(encoding="utf-8"))
    del document["design"]["yes_no"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(document), encoding="utf-8")
    model = regen.load_model(old)
    assert model.yes_no is None and model_inputs(model)["diabetes"] is None
    assert expected_duration(model, {**PROFILE, "diabetes": "yes"})["median"] == \
        expected_duration(relief_model, {**PROFILE, "diabetes": "yes"})["median"]
    assert expected_duration(model, {**PROFILE, "diabetes": "2"})["median"] > 0
    with pytest.raises(ValueError, match=r"--diabetes  a number \(yes/no for yes/no columns\)"):
        expected_duration(model, PROFILE)


# ------------------------------------------------- numbers as words ---

WORDS = re.compile(r"\b(nan|inf|infinity)\b", re.IGNORECASE)


def test_sentence_says_in_words_what_is_not_a_number():
    base = {"outcome": "relief", "median": 40.0, "median_ci_lower": 30.0,
            "median_ci_upper": 55.0, "q1": 20.0, "q3": 70.0}
    assert sentence(base).endswith("(median 40 days, 95% CI 30–55 days). Half of such "
                                   "patients fall between 20 and 70 days.")
    upper = sentence({**base, "median_ci_upper": math.inf, "q3": math.inf})
    assert "95% CI: lower bound 30 days, upper bound beyond what this model can estimate" in upper
    assert "the first 20 days, the third beyond what this model can estimate" in upper
    unknown = sentence({**base, "median": math.nan, "median_ci_lower": math.nan,
                        "median_ci_upper": math.inf, "q1": math.nan, "q3": math.nan})
    assert "the median is not available" in unknown and "lower bound not available" in unknown
    for text in (upper, unknown):
        assert not WORDS.search(text), text


def test_expected_duration_gives_none_and_why_for_what_it_cannot_estimate(relief_model):
    wide = copy.deepcopy(relief_model)
    wide.covariance = wide.covariance * 1e12         # a CI bound overflows to infinity
    result = expected_duration(wide, {**PROFILE, "diabetes": "no"})
    assert result["median_ci_upper"] is None and result["median"] > 0
    assert result["not_estimated"] == {"median_ci_upper": BEYOND}
    assert not WORDS.search(json.dumps(result)) and not WORDS.search(sentence(result))
    assert BEYOND in sentence(result)
    broken = copy.deepcopy(relief_model)
    broken.covariance = -broken.covariance           # no variance: the CI is NaN
    result = expected_duration(broken, {**PROFILE, "diabetes": "no"})
    assert result["median_ci_lower"] is None and result["median_ci_upper"] is None
    assert set(result["not_estimated"].values()) == {"not available"}
    assert "lower bound not available, upper bound not available" in sentence(result)
    assert expected_duration(relief_model, {**PROFILE, "diabetes": "no"})["not_estimated"] == {}
