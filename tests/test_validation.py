"""Each validation rule on a tiny table: the problem names file, row, column, value."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

import regen
from regen.exceptions import CohortValidationError
from tests.conftest import PATIENTS, TREATMENTS, VISITS, write_cohort


def problems_of(folder, **kwargs) -> pd.DataFrame:
    with pytest.raises(CohortValidationError) as caught, warnings.catch_warnings():
        warnings.simplefilter("ignore", regen.DataWarning)  # tested on their own
        regen.read_cohort(folder, **kwargs)
    assert isinstance(caught.value, ValueError)
    assert list(caught.value.problems.columns) == ["file", "table", "row", "column", "value",
                                                   "rule", "fix"]
    return caught.value.problems


def only(problems: pd.DataFrame) -> pd.Series:
    assert len(problems) == 1, problems.to_string()
    return problems.iloc[0]


CASES = [
    # (name, table to edit, old text, new text, file, row, column, value, words in rule)
    ("unparseable number", "treatments", "2024-01-10,80", "2024-01-10,eighty",
     "treatments.csv", 2, "distance_mm", "eighty", "not a number"),
    ("unparseable boolean", "patients", "1970,no", "1970,maybe",
     "patients.csv", 2, "diabetes", "maybe", "yes/no"),
    ("unparseable integer", "patients", "1970", "1970.5",
     "patients.csv", 2, "birth_year", "1970.5", "whole number"),
    ("unparseable date", "treatments", "2024-01-10", "2024-13-10",
     "treatments.csv", 2, "treated_on", "2024-13-10", "not a date"),
    ("ambiguous date format", "treatments", "2024-01-10", "10/01/2024",
     "treatments.csv", 2, "treated_on", "10/01/2024", "not a date"),
    ("date in the future", "treatments", "2024-01-10", "2094-01-10",
     "treatments.csv", 2, "treated_on", "2094-01-10", "after today"),
    ("category not allowed", "patients", "P1,F", "P1,woman",
     "patients.csv", 2, "sex", "woman", "one of F, M"),
    ("side not allowed", "treatments", "left", "up",
     "treatments.csv", 2, "side", "up", "one of left, right"),
    ("pain out of range", "visits", "T1,60,no,7", "T1,60,no,14",
     "visits.csv", 5, "pain", "14", "between 0 and 10"),
    ("negative pain", "visits", "T1,60,no,7", "T1,60,no,-1",
     "visits.csv", 5, "pain", "-1", "between 0 and 10"),
    ("zero distance", "treatments", "2024-01-10,80", "2024-01-10,0",
     "treatments.csv", 2, "distance_mm", "0", "> 0"),
    ("negative distance", "treatments", "2024-01-10,80", "2024-01-10,-5",
     "treatments.csv", 2, "distance_mm", "-5", "> 0"),
    ("missing required value", "treatments", "T1,P1,greater_occipital", "T1,P1,",
     "treatments.csv", 2, "nerve", "(empty)", "required value missing"),
    ("duplicate patient id", "patients", "P2,M,1960,yes\n", "P2,M,1960,yes\nP1,M,1980,no\n",
     "patients.csv", 4, "patient_id", "P1", "duplicate patient_id (first on row 2)"),
    ("duplicate treatment id", "treatments", "2024-02-01,60\n", "2024-02-01,60\nT1,P2,x,,,\n",
     "treatments.csv", 4, "treatment_id", "T1", "duplicate treatment_id (first on row 2)"),
    ("orphan treatment", "treatments", "T2,P2", "T2,P9",
     "treatments.csv", 3, "patient_id", "P9", "not in patients.csv"),
    ("orphan visit", "visits", "T2,30", "T7,30",
     "visits.csv", 8, "treatment_id", "T7", "not in treatments.csv"),
    ("visit before the baseline window", "visits", "T1,0,no,8", "T1,-90,no,8",
     "visits.csv", 2, "day", "-90", "baseline window"),
    ("visit after the follow-up horizon", "visits", "T1,60,no,7", "T1,6000,no,7",
     "visits.csv", 5, "day", "6000", "after the treatment"),
    ("contradictory duplicate visit", "visits", "T1,30,yes,3", "T1,7,no,5",
     "visits.csv", 4, None, "numb no here, yes on row 3; pain 5 here, 2 on row 3",
     "contradicts an earlier visit of the same treatment on the same day"),
    ("reserved column", "visits", "treatment_id,day,numb,pain", "treatment_id,day,numb,lower",
     "visits.csv", None, "lower", None, "reserved"),
]


@pytest.mark.parametrize(("name", "table", "old", "new", "file", "row", "column", "value", "rule"),
                         CASES, ids=[case[0] for case in CASES])
def test_each_rule_names_file_row_column_value(tmp_path, name, table, old, new, file, row, column,
                                                value, rule):
    texts = {"patients": PATIENTS, "treatments": TREATMENTS, "visits": VISITS}
    assert old in texts[table], name
    texts[table] = texts[table].replace(old, new, 1)
    problem = only(problems_of(write_cohort(tmp_path, **texts)))
    assert problem["file"] == file
    assert (pd.isna(problem["row"]) if row is None else problem["row"] == row)
    assert problem["column"] == column or (column is None and pd.isna(problem["column"]))
    assert (problem["value"] is None if value is None else problem["value"] == value)
    assert rule in problem["rule"]
    assert problem["fix"]


@pytest.mark.parametrize("table", ["patients", "treatments", "visits"])
def test_missing_file(tmp_path, table):
    problem = only(problems_of(write_cohort(tmp_path, **{table: None})))
    assert problem["file"] == f"{table}.csv"
    assert problem["rule"] == "file missing"
    assert f"{table}.csv or {table}.parquet" in problem["fix"]


def test_missing_required_column(tmp_path):
    treatments = TREATMENTS.replace("nerve,", "").replace("greater_occipital,", "").replace(
        "lesser_occipital,", "")
    problem = only(problems_of(write_cohort(tmp_path, treatments=treatments)))
    assert (problem["file"], problem["column"]) == ("treatments.csv", "nerve")
    assert problem["rule"] == "required column missing"


def test_visits_need_day_or_date(tmp_path):
    visits = "treatment_id,numb\nT1,yes\n"
    problem = only(problems_of(write_cohort(tmp_path, visits=visits)))
    assert problem["rule"] == "required column missing: day or visit_date"


def test_empty_visits_table(tmp_path):
    problem = only(problems_of(write_cohort(tmp_path, visits="treatment_id,day,numb\n")))
    assert (problem["file"], problem["rule"]) == ("visits.csv", "table has no rows")


def test_dates_needed_but_treatment_date_missing(tmp_path):
    treatments = TREATMENTS.replace("2024-01-10", "")
    visits = "treatment_id,visit_date,numb\nT1,2024-01-17,yes\nT1,2024-03-10,no\nT2,2024-02-08,yes\n"
    problem = only(problems_of(write_cohort(tmp_path, treatments=treatments, visits=visits)))
    assert (problem["file"], problem["row"], problem["column"]) == ("treatments.csv", 2, "treated_on")
    assert problem["rule"] == "treated_on missing, but the treatment's visits are dated"
    assert problem["value"] == "(empty); 2 dated visit(s), first on visits.csv row 2"


def test_day_and_date_disagree(tmp_path):
    visits = ("treatment_id,day,visit_date,numb\nT1,7,2024-01-17,yes\nT1,30,2024-02-10,no\n"
              "T2,7,2024-02-08,yes\n")
    problem = only(problems_of(write_cohort(tmp_path, visits=visits)))
    assert (problem["row"], problem["column"]) == (3, "day")
    assert problem["value"] == "day 30, but visit_date 2024-02-10 is day 31"


def test_every_problem_is_collected_before_raising(tmp_path):
    patients = PATIENTS.replace("P1,F,1970,no", "P1,X,19x0,maybe")
    visits = VISITS.replace("T1,60,no,7", "T1,60,no,14").replace("T2,30", "T9,30")
    problems = problems_of(write_cohort(tmp_path, patients=patients, visits=visits))
    assert set(problems["column"]) == {"sex", "birth_year", "diabetes", "pain", "treatment_id"}
    assert len(problems) == 5


def test_a_descriptive_covariate_out_of_range_is_set_missing_unless_strict(tmp_path):
    patients = "patient_id,sex,bmi\nP1,female,95\nP2,male,24\n"
    with pytest.warns(regen.DataWarning, match=r"patients.csv: 1 bmi value\(s\) not between 12 "
                                                r"and 80 were set missing \(row 2: 95\)"):
        cohort = regen.read_cohort(write_cohort(tmp_path, patients=patients))
    assert cohort.patients["bmi"].isna().tolist() == [True, False]
    assert any("bmi" in w for w in cohort.warnings)
    with pytest.raises(CohortValidationError, match="row 2, column bmi, value '95'"):
        regen.read_cohort(write_cohort(tmp_path, patients=patients), strict=True)
    pain = "treatment_id,day,numb,pain\nT1,0,no,14\nT2,0,no,3\n"       # an outcome stays refused
    with pytest.raises(CohortValidationError, match="column pain, value '14'"):
        regen.read_cohort(write_cohort(tmp_path, visits=pain))


def test_one_problem_is_spoken_of_in_the_singular(tmp_path):
    visits = "treatment_id,day,numb,pain\nT1,0,no,3\nT1,7,no,14\nT2,0,no,3\n"
    with pytest.raises(CohortValidationError) as caught:
        regen.read_cohort(write_cohort(tmp_path, visits=visits))
    assert str(caught.value).splitlines()[0].endswith(
        ": 1 problem; nothing was analysed. Fix it and run again.")


def test_message_lists_twenty_in_full_and_counts_the_rest(tmp_path):
    rows = "".join(f"T1,{day},no,{11 + day % 3}\n" for day in range(1, 31))
    visits = "treatment_id,day,numb,pain\n" + rows + "T2,0,no,3\n"
    with pytest.raises(CohortValidationError) as caught:
        regen.read_cohort(write_cohort(tmp_path, visits=visits))
    message = str(caught.value)
    assert "30 problems; nothing was analysed" in message
    assert message.count("  row ") == 20
    assert "row 2, column pain, value '12'" in message
    assert "... and 10 more:" in message
    assert "10 × visits.csv, column pain: out of range" in message


def test_identical_duplicate_visit_is_excluded_with_a_reason(tmp_path):
    visits = VISITS + "T1,30,yes,3\n"
    with pytest.warns(regen.DataWarning, match="repeat an earlier row exactly"):
        cohort = regen.read_cohort(write_cohort(tmp_path, visits=visits))
    excluded = cohort.exclusions.query("table == 'visits'")
    assert excluded[["row", "id"]].values.tolist() == [[9, "T1"]]
    assert excluded["reason"].iloc[0] == "duplicate_visit"
    assert excluded["detail"].iloc[0] == "same as row 4"
    assert len(cohort.visits) == 7


def test_unknown_nerve_is_a_warning_not_an_error(tmp_path):
    treatments = TREATMENTS.replace("lesser_occipital", "Genicular Nerve")
    with pytest.warns(regen.DataWarning, match="genicular_nerve"):
        cohort = regen.read_cohort(write_cohort(tmp_path, treatments=treatments))
    assert "genicular_nerve" in set(cohort.treatments["nerve"])
    assert any("genicular_nerve" in w for w in cohort.warnings)


def test_baseline_window_is_configurable(tmp_path):
    folder = write_cohort(tmp_path, visits=VISITS.replace("T1,0,no,8", "T1,-90,no,8"))
    cohort = regen.read_cohort(folder, baseline_window_days=120)
    assert cohort.visits["day"].min() == -90


def test_bad_settings_are_type_and_value_errors(tiny):
    with pytest.raises(TypeError, match="baseline_window_days"):
        regen.read_cohort(tiny, baseline_window_days="60")
    with pytest.raises(ValueError, match="max_follow_up_days"):
        regen.read_cohort(tiny, max_follow_up_days=-1)


def test_unreadable_treatment_date_is_reported_once(tmp_path):
    treatments = TREATMENTS.replace("2024-01-10", "2024-01-1O")
    visits = "treatment_id,visit_date,numb\nT1,2024-01-17,yes\nT2,2024-02-08,yes\n"
    problem = only(problems_of(write_cohort(tmp_path, treatments=treatments, visits=visits)))
    assert (problem["row"], problem["column"], problem["rule"]) == (2, "treated_on", "not a date")


def test_sex_accepts_words(tmp_path):
    patients = PATIENTS.replace("P1,F", "P1,Female").replace("P2,M", "P2,male")
    cohort = regen.read_cohort(write_cohort(tmp_path, patients=patients))
    assert cohort.patients["sex"].tolist() == ["F", "M"]


def test_visit_without_any_assessment_warns(tmp_path):
    visits = VISITS + "T2,60,,\n"
    with pytest.warns(regen.DataWarning, match="1 visit\\(s\\) record none of .* row 9"):
        regen.read_cohort(write_cohort(tmp_path, visits=visits))


def test_a_column_of_another_table_is_a_problem(tmp_path):
    patients = PATIENTS.replace("diabetes\n", "diabetes,age\n").replace("no\n", "no,54\n") \
        .replace("yes\n", "yes,64\n")
    problem = only(problems_of(write_cohort(tmp_path, patients=patients)))
    assert (problem["file"], problem["column"]) == ("patients.csv", "age")
    assert problem["rule"] == "column age belongs in treatments.csv"


def test_missing_key_column_is_one_problem_not_a_flood(tmp_path):
    treatments = TREATMENTS.replace("treatment_id,", "treatment,")
    problem = only(problems_of(write_cohort(tmp_path, treatments=treatments)))
    assert (problem["column"], problem["rule"]) == ("treatment_id", "required column missing")
    assert "is 'treatment' meant to be treatment_id?" in problem["fix"]


def test_missing_treated_on_column_with_dated_visits_is_one_problem(tmp_path):
    treatments = TREATMENTS.replace("treated_on", "treatment_date")
    visits = "treatment_id,visit_date,numb\nT1,2024-01-17,yes\nT1,2024-03-10,no\nT2,2024-02-08,yes\n"
    problem = only(problems_of(write_cohort(tmp_path, treatments=treatments, visits=visits)))
    assert (problem["column"], problem["row"] is pd.NA) == ("treated_on", True)
    assert "3 visits in visits.csv are dated" in problem["rule"]
    assert "is 'treatment_date' meant to be treated_on?" in problem["fix"]


@pytest.mark.parametrize("value", ["2024-01", "2024", "24-01-10", "2024-01-10x"])
def test_incomplete_dates_are_not_dates(tmp_path, value):
    treatments = TREATMENTS.replace("2024-01-10", value)
    problem = only(problems_of(write_cohort(tmp_path, treatments=treatments)))
    assert (problem["row"], problem["column"], problem["value"]) == (2, "treated_on", value)
    assert problem["rule"] == "not a date"


def test_visit_outside_window_names_the_date_it_came_from(tmp_path):
    visits = "treatment_id,visit_date,numb\nT1,2023-09-01,no\nT1,2024-01-17,yes\nT2,2024-02-08,yes\n"
    problem = only(problems_of(write_cohort(tmp_path, visits=visits)))
    assert (problem["row"], problem["column"]) == (2, "visit_date")
    assert problem["value"] == "2023-09-01 (day -131 from treated_on 2024-01-10)"


def test_visits_may_name_the_patient_but_it_must_match(tmp_path):
    visits = VISITS.replace("treatment_id,day", "treatment_id,patient_id,day") \
        .replace("T1,", "T1,P1,").replace("T2,", "T2,P2,")
    cohort = regen.read_cohort(write_cohort(tmp_path / "ok", visits=visits))
    assert cohort.visits.groupby("treatment_id")["patient_id"].first().to_dict() == {
        "T1": "P1", "T2": "P2"}
    wrong = visits.replace("T2,P2,30", "T2,P1,30")
    problem = only(problems_of(write_cohort(tmp_path / "wrong", visits=wrong)))
    assert (problem["row"], problem["column"], problem["value"]) == (8, "patient_id", "P1")
    assert problem["rule"] == "not the treatment's patient (P2 on treatments.csv row 3)"


def test_same_treatment_entered_twice_is_a_problem(tmp_path):
    treatments = TREATMENTS + "T3,P1,greater_occipital,left,2024-01-10,80\n"
    problem = only(problems_of(write_cohort(tmp_path, treatments=treatments)))
    assert (problem["row"], problem["column"]) == (4, "treated_on")
    assert problem["rule"] == "same patient, nerve, side and treated_on as row 2"


def test_same_day_without_side_is_bilateral_not_a_retreatment(tmp_path):
    treatments = ("treatment_id,patient_id,nerve,treated_on\n"
                  "T1,P1,greater_occipital,2024-01-10\nT2,P1,greater_occipital,2024-01-10\n"
                  "T3,P2,lesser_occipital,2024-02-01\n")
    visits = "treatment_id,day,numb\nT1,7,yes\nT1,60,no\nT2,7,yes\nT2,90,no\nT3,7,yes\n"
    with pytest.warns(regen.DataWarning, match="repeat a patient, nerve and treated_on without a side"):
        cohort = regen.read_cohort(write_cohort(tmp_path, treatments=treatments, visits=visits))
    assert cohort.treatments["retreated_day"].isna().all()
    assert cohort.treatments["treatment_number"].tolist() == [1, 1, 1]
    assert len(cohort.episodes("numbness")) == 3


@pytest.mark.parametrize("value", ["1e300", "-99999999999999999999"])
def test_huge_whole_numbers_are_problems_not_crashes(tmp_path, value):
    problem = only(problems_of(write_cohort(tmp_path, visits=VISITS.replace("T1,60", f"T1,{value}"))))
    assert (problem["row"], problem["column"], problem["value"]) == (5, "day", value)
    assert problem["rule"] == "number too large"


def test_retreatments_inferred_without_a_side_warn(tmp_path):
    treatments = ("treatment_id,patient_id,nerve,treated_on\n"
                  "T1,P1,greater_occipital,2024-01-10\nT2,P1,greater_occipital,2024-04-10\n"
                  "T3,P2,lesser_occipital,2024-02-01\n")
    visits = "treatment_id,day,numb\nT2,7,yes\nT3,7,yes\n"
    with pytest.warns(regen.DataWarning, match="1 treatment\\(s\\) without a side are taken as "
                                               "retreatments"):
        cohort = regen.read_cohort(write_cohort(tmp_path, treatments=treatments, visits=visits))
    _, excluded = cohort.episodes("numbness", with_exclusions=True)
    # T1 never had a visit: "no_visits", not "no_visits_before_retreatment".
    assert excluded.set_index("id").loc["T1", "reason"] == "no_visits"
