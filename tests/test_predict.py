"""regen predict: one patient's expected duration, and clear messages for a bad profile."""

from __future__ import annotations

import json

import pytest

import regen
from regen.predict import expected_duration, model_inputs, sentence


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
