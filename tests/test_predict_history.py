"""regen predict --history / --cohort --patient-id: a patient's next treatment, learned from
their earlier episodes with a frailty model, said honestly as the intervals they are."""

from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest
from click.testing import CliRunner

import regen
from regen.cli import main
from regen.predict import expected_duration, heading, read_history, sentence

FORMULA = "~ nerve + treatment_number"
#: Two nerves: few parameters, so that each prediction's delta method is quick.
NERVES = {"greater_occipital": 0.6, "supraorbital": 0.4}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A simulated cohort with patient effects, its relief episodes, and two saved models:
    with frailty, and without."""
    folder = tmp_path_factory.mktemp("history")
    sim = regen.simulate.cohort(120, seed=3, retreat="on_relief_end", patient_sd_log=0.4,
                                nerves=NERVES)
    cohort_path = sim.write(folder / "cohort")
    episodes = regen.read_cohort(cohort_path).episodes("relief")
    frailty = folder / "frailty.json"
    regen.fit_recovery(FORMULA, episodes, dist="lognormal", frailty="patient_id").save(
        frailty, outcome="relief")
    plain = folder / "plain.json"
    regen.fit_recovery(FORMULA, episodes, dist="lognormal").save(plain, outcome="relief")
    return {"cohort": cohort_path, "episodes": episodes, "model": frailty, "plain": plain,
            "folder": folder}


@pytest.fixture
def run():
    def invoke(*args):
        return CliRunner().invoke(main, ["predict", *map(str, args)], catch_exceptions=False)
    return invoke


def _a_patient(episodes: pd.DataFrame, n: int = 3) -> str:
    """The first patient with exactly ``n`` relief episodes, all of one nerve."""
    counts = episodes.groupby("patient_id")["nerve"].agg(["size", "nunique"])
    return str(counts.index[(counts["size"] == n) & (counts["nunique"] == 1)][0])


def _history_file(setup, patient: str):
    path = setup["folder"] / f"{patient}.csv"
    setup["episodes"].loc[setup["episodes"]["patient_id"] == patient].to_csv(path, index=False)
    return path


def _own_quantiles(model, patient: str, history: pd.DataFrame, **profile) -> pd.DataFrame:
    table = model.predict_quantile(pd.DataFrame({"patient_id": [patient], **{
        name: [value] for name, value in profile.items()}}), q=[0.5], history=history)
    return table.iloc[0]


HAND_MADE = """\
lower,upper,nerve,treatment_number
45,inf,greater_occipital,6
50,,greater_occipital,5
30,30,greater_occipital,4
0,20,greater_occipital,3
60,75,greater_occipital,2
10,200,greater_occipital,1
"""


def test_prediction_is_the_patients_own_and_the_sentence_says_its_numbers(setup, run):
    episodes, model = setup["episodes"], regen.load_model(setup["model"])
    patient = _a_patient(episodes)
    mine = episodes.loc[episodes["patient_id"] == patient]
    latest = mine.sort_values("treated_on").iloc[-1]
    profile = {"nerve": latest["nerve"], "treatment_number": float(latest["treatment_number"] + 1)}
    own = _own_quantiles(model, patient, mine, **profile)
    marginal = model.predict_quantile(pd.DataFrame({k: [v] for k, v in profile.items()}),
                                      q=[0.5]).iloc[0]
    assert own["prediction"] == "patient"
    assert abs(own["estimate"] / marginal["estimate"] - 1) > 0.01   # learned from the history

    data = json.loads(run("--model", setup["model"], "--history", _history_file(setup, patient),
                          "--json").stdout)
    assert data["prediction"] == "patient" and data["patient_id"] == patient
    assert data["median"] == pytest.approx(own["estimate"], rel=1e-9)
    assert data["median_ci_lower"] == pytest.approx(own["ci_lower"], rel=1e-9)
    assert data["median_ci_upper"] == pytest.approx(own["ci_upper"], rel=1e-9)
    assert [e["treatment_id"] for e in data["history"]["episodes"]] == \
        list(mine.sort_values("treated_on")["treatment_id"])

    text = run("--model", setup["model"], "--cohort", setup["cohort"], "--patient-id", patient)
    assert text.exit_code == 0, text.output
    found = re.search(r"about (\d+) weeks \(95% CI (\d+)–(\d+) weeks\)", text.stdout)
    assert found, text.stdout
    weeks = [math.floor(own[name] / 7 + 0.5) for name in ("estimate", "ci_lower", "ci_upper")]
    assert [int(g) for g in found.groups()] == weeks
    assert f"For {patient}'s next treatment (nerve {latest['nerve']}, treatment number " \
           f"{latest['treatment_number'] + 1}):" in text.stdout
    assert f"based on your 3 earlier treatments and the model's {model.n_patients} patients" \
        in text.stdout


def test_profile_filled_from_the_latest_episode_and_options_win(setup, run, tmp_path):
    path = tmp_path / "history.csv"
    path.write_text(HAND_MADE)   # rows newest first: the latest is the highest number
    model = regen.load_model(setup["model"])
    data = json.loads(run("--model", setup["model"], "--history", path, "--json").stdout)
    assert data["profile"] == {"nerve": "greater_occipital", "treatment_number": "7"}
    assert data["filled"] == {"nerve": "as in the latest", "treatment_number": "the latest + 1"}

    given = json.loads(run("--model", setup["model"], "--history", path, "--json",
                           "--treatment-number", "9", "--nerve", "supraorbital").stdout)
    assert given["profile"] == {"nerve": "supraorbital", "treatment_number": "9"}
    assert given["filled"] == {}
    history = read_history(path, model).assign(patient_id="p")
    own = _own_quantiles(model, "p", history, nerve="supraorbital", treatment_number=9.0)
    assert given["median"] == pytest.approx(own["estimate"], rel=1e-9)

    other_nerve = json.loads(run("--model", setup["model"], "--history", path, "--json",
                                 "--nerve", "supraorbital").stdout)
    assert other_nerve["profile"] == {"nerve": "supraorbital", "treatment_number": "1"}
    assert other_nerve["filled"] == {"treatment_number": "1, as no earlier treatment was of "
                                                         "this nerve"}


def test_earlier_episodes_are_said_as_intervals_and_json_lists_them(setup, run, tmp_path):
    path = tmp_path / "history.csv"
    path.write_text(HAND_MADE)
    data = json.loads(run("--model", setup["model"], "--history", path, "--json").stdout)
    text = sentence(data)   # what the command prints below heading(data)
    assert ("Of your 6 earlier treatments, the last 5 (oldest first) gave relief that ended "
            "between weeks 8 and 11; had ended by week 3; ended on day 30; was still going at "
            "the last visit, week 7; and was still going at the last visit, week 6.") in text
    assert "based on your 6 earlier treatments" in text
    assert heading(data).startswith("For this patient's next treatment (nerve greater_occipital, "
                                    "treatment number 7):\nNot given, so from the earlier "
                                    "treatments: nerve as in the latest; treatment number the "
                                    "latest + 1.")
    assert data["patient_id"] is None and data["history"]["n_episodes"] == 6
    listed = data["history"]["episodes"]
    assert [e["treatment_number"] for e in listed] == [1, 2, 3, 4, 5, 6]
    assert [e["status"] for e in listed] == ["interval_censored", "interval_censored",
                                             "left_censored", "exact", "right_censored",
                                             "right_censored"]
    assert listed[-1] == {"lower": 45.0, "upper": None, "status": "right_censored",
                          "treatment_number": 6, "nerve": "greater_occipital"}
    assert data["model_patients"] == regen.load_model(setup["model"]).n_patients


def test_prediction_follows_the_patients_history(setup):
    model = regen.load_model(setup["model"])
    marginal = expected_duration(model, {"nerve": "greater_occipital", "treatment_number": "2"})
    assert "history" not in marginal   # without a history: the result as before

    def history(lower, upper):
        return pd.DataFrame({"lower": [lower] * 3, "upper": [upper] * 3,
                             "nerve": ["greater_occipital"] * 3, "treatment_number": [1, 1, 1]})

    long = expected_duration(model, {}, history=history(120.0, 150.0))
    short = expected_duration(model, {}, history=history(10.0, 20.0))
    assert long["median"] > marginal["median"] > short["median"]
    assert long["profile"] == {"nerve": "greater_occipital", "treatment_number": "2"}


def test_sentence_words_numbness_days_and_what_cannot_be_estimated():
    result = {"outcome": "numbness", "median": 77.0, "median_ci_lower": 75.0,
              "median_ci_upper": 79.0, "prediction": "patient", "model_patients": 40,
              "history": {"n_episodes": 2, "episodes": [
                  {"lower": 62.0, "upper": 65.0}, {"lower": 5.0, "upper": 30.0}]}}
    text = sentence(result)
    assert ("Your last 2 treatments (oldest first) gave numbness that faded between days 62 "
            "and 65; and faded between days 5 and 30.") in text
    assert "expect the numbness to fade after about 11 weeks (95% CI 75–79 days)" in text
    assert "11–11" not in text
    wide = sentence({**result, "median_ci_upper": None,
                     "not_estimated": {"median_ci_upper": "beyond what this model can estimate"}})
    assert "(95% CI from 11 weeks to beyond what this model can estimate)" in wide
    one = sentence({**result, "outcome": "relief", "history": {"n_episodes": 1, "episodes": [
        {"lower": 42.0, "upper": None}]}})
    assert "Your last treatment gave relief that was still going at the last visit, week 6." \
        in one and "based on your 1 earlier treatment and" in one


def test_several_patients_in_the_file_are_named_and_one_can_be_chosen(setup, run):
    episodes = setup["episodes"]
    first, second = _a_patient(episodes, 2), _a_patient(episodes, 3)
    path = setup["folder"] / "two.csv"
    episodes.loc[episodes["patient_id"].isin([first, second])].to_csv(path, index=False)
    refused = run("--model", setup["model"], "--history", path)
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert "rows of 2 patients" in refused.stderr
    assert repr(first) in refused.stderr and repr(second) in refused.stderr
    assert "--patient-id" in refused.stderr
    chosen = json.loads(run("--model", setup["model"], "--history", path, "--patient-id", second,
                            "--json").stdout)
    assert chosen["patient_id"] == second and chosen["history"]["n_episodes"] == 3
    absent = run("--model", setup["model"], "--history", path, "--patient-id", "P99999")
    assert absent.exit_code == 2 and "no row of patient 'P99999'" in absent.stderr


def test_bad_lower_and_upper_are_named_by_row_and_column(setup, run, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("lower,upper,nerve,treatment_number\n"
                    "30,20,greater_occipital,1\n"
                    "-3,40,greater_occipital,2\n"
                    "abc,,greater_occipital,3\n"
                    "0,0,greater_occipital,4\n"
                    "10,50,occipital,5\n")
    result = run("--model", setup["model"], "--history", path)
    assert result.exit_code == 1 and "Traceback" not in result.output
    err = result.stderr
    assert "5 problems; nothing was analysed" in err
    assert "upper is less than lower (30)" in err and "row 2, column upper, value '20'" in err
    assert "row 3, column lower, value '-3'" in err
    assert "row 4, column lower, value 'abc'" in err
    assert "row 5, column upper, value '0'" in err
    assert "row 6, column nerve, value 'occipital'" in err
    assert err.count("fix:") == 5


def test_history_file_is_read_within_the_limits(setup, run, tmp_path):
    path = tmp_path / "history.csv"
    path.write_text(HAND_MADE)
    result = run("--model", setup["model"], "--history", path, "--max-rows", "3")
    assert result.exit_code == 1 and "--max-rows" in result.stderr
    (tmp_path / "history.xlsx").write_bytes(b"PK")
    with pytest.raises(regen.CohortValidationError, match="not a .csv file"):
        read_history(tmp_path / "history.xlsx", regen.load_model(setup["model"]))


def test_unknown_patient_is_a_usage_error_that_names_no_other_patient(setup, run):
    result = run("--model", setup["model"], "--cohort", setup["cohort"], "--patient-id", "P99999")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "no patient 'P99999' in the cohort" in result.stderr
    assert not re.search(r"P\d{5}", result.stderr.replace("P99999", ""))
    episodes = setup["episodes"]
    patients = regen.read_cohort(setup["cohort"]).patients["patient_id"]
    without = str(patients[~patients.isin(episodes["patient_id"])].iloc[0])
    none = run("--model", setup["model"], "--cohort", setup["cohort"], "--patient-id", without)
    assert none.exit_code == 2 and f"'{without}' has no relief episode" in none.stderr


def test_model_without_frailty_cannot_learn_from_a_history(setup, run, tmp_path):
    path = tmp_path / "history.csv"
    path.write_text(HAND_MADE)
    result = run("--model", setup["plain"], "--history", path)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "fitted without frailty" in result.stderr
    assert "regen fit recovery PATH --frailty patient_id --save FILE" in result.stderr
    with pytest.raises(regen.ModelError, match="frailty"):
        expected_duration(regen.load_model(setup["plain"]), {},
                          history=pd.DataFrame({"lower": [1.0], "upper": [9.0]}))


def test_a_model_file_without_its_outcome_needs_outcome_with_cohort(setup, run, tmp_path):
    document = json.loads(setup["model"].read_text())
    document["outcome"] = None
    path = tmp_path / "no_outcome.json"
    path.write_text(json.dumps(document))
    patient = _a_patient(setup["episodes"])
    refused = run("--model", path, "--cohort", setup["cohort"], "--patient-id", patient)
    assert refused.exit_code == 2 and "give --outcome relief or --outcome numbness" \
        in refused.stderr
    given = run("--model", path, "--cohort", setup["cohort"], "--patient-id", patient,
                "--outcome", "relief")
    assert given.exit_code == 0 and "gave relief that" in given.stdout
    wrong = run("--model", setup["model"], "--history", _history_file(setup, patient),
                "--outcome", "numbness")
    assert wrong.exit_code == 2 and "fitted on relief, not numbness" in wrong.stderr


def test_option_conflicts_are_usage_errors(setup, run, tmp_path):
    path = tmp_path / "history.csv"
    path.write_text(HAND_MADE)
    both = run("--model", setup["model"], "--history", path, "--cohort", setup["cohort"],
               "--patient-id", "P1")
    assert both.exit_code == 2 and "not both" in both.stderr
    alone = run("--model", setup["model"], "--cohort", setup["cohort"])
    assert alone.exit_code == 2 and "--cohort needs --patient-id" in alone.stderr


def test_data_text_is_shown_literally(setup, run, tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("patient_id,lower,upper,nerve,treatment_number\n"
                    "P\x1b[2J1,40,60,greater_occipital,1\n"
                    "P\x1b[2J1,50,70,greater_occipital,2\n")
    result = run("--model", setup["model"], "--history", path)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout
    assert "For P\\x1b[2J1's next treatment" in result.stdout
