"""Reading: CSV dialects, Parquet, Excel workbooks, encodings, and row numbers."""

from __future__ import annotations

import pandas as pd
import pytest

import regen
from regen.exceptions import CohortValidationError
from tests.conftest import PATIENTS, TREATMENTS, VISITS, write_cohort


def frames(folder):
    cohort = regen.read_cohort(folder)
    return cohort, cohort.episodes("numbness"), cohort.episodes("relief")


def assert_same_cohort(a, b):
    for name in ("patients", "treatments"):
        left = getattr(a, name).drop(columns="source_row")
        right = getattr(b, name).drop(columns="source_row")
        pd.testing.assert_frame_equal(left, right, check_dtype=False)
    columns = ["treatment_id", "day", "numb", "pain"]
    pd.testing.assert_frame_equal(a.visits[columns], b.visits[columns], check_dtype=False)
    for outcome in ("numbness", "relief"):
        pd.testing.assert_frame_equal(a.episodes(outcome), b.episodes(outcome), check_dtype=False)


@pytest.fixture
def reference(tiny):
    return regen.read_cohort(tiny)


def test_reference_reads(reference):
    assert len(reference.patients) == 2
    assert reference.patients["diabetes"].tolist() == [False, True]
    assert reference.treatments["age"].tolist() == [54, 64]


def test_semicolon_with_decimal_commas_and_bom(tmp_path, reference):
    def european(text):
        return text.replace(",", ";")
    treatments = european(TREATMENTS).replace(";80\n", ";80,0\n")
    patients = european(PATIENTS).replace("patient_id;sex;birth_year;diabetes",
                                          "patient_id;sex;birth_year;diabetes;bmi")
    patients = patients.replace("1970;no\n", "1970;no;24,5\n").replace("1960;yes\n", "1960;yes;\n")
    folder = write_cohort(tmp_path / "eu", patients, treatments, european(VISITS),
                          encoding="utf-8-sig")
    assert (folder / "visits.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    cohort = regen.read_cohort(folder)
    assert cohort.patients["bmi"].iloc[0] == 24.5
    assert cohort.treatments["distance_mm"].tolist() == [80.0, 60.0]
    pd.testing.assert_frame_equal(cohort.episodes("numbness").drop(columns="bmi"),
                                  reference.episodes("numbness").drop(columns="bmi"))


def test_boolean_spellings_any_case(tmp_path):
    visits = ("treatment_id,day,numb\nT1,1,YES\nT1,2,True\nT1,3,1\nT1,4,y\n"
              "T2,1,No\nT2,2,FALSE\nT2,3,0\nT2,4,n\n")
    cohort = regen.read_cohort(write_cohort(tmp_path, visits=visits))
    assert cohort.visits["numb"].tolist() == [True] * 4 + [False] * 4


def test_ids_with_spaces_are_stripped_with_a_warning(tmp_path, reference):
    visits = VISITS.replace("T2,7", " T2 ,7")
    with pytest.warns(regen.DataWarning, match=r"removed spaces around 1 id\(s\) \(first on row 7"):
        cohort = regen.read_cohort(write_cohort(tmp_path, visits=visits))
    assert_same_cohort(cohort, reference)


def test_headers_in_any_case_with_spaces(tmp_path, reference):
    visits = VISITS.replace("treatment_id,day,numb,pain", "Treatment ID, Day ,NUMB,Pain")
    assert_same_cohort(regen.read_cohort(write_cohort(tmp_path, visits=visits)), reference)


def test_blank_lines_do_not_shift_row_numbers(tmp_path):
    visits = VISITS.replace("T1,30,yes,3\n", "T1,30,yes,3\n\n,,,\n").replace("T1,60,no,7", "T1,60,no,17")
    with pytest.raises(CohortValidationError) as caught:
        regen.read_cohort(write_cohort(tmp_path, visits=visits))
    assert caught.value.problems["row"].tolist() == [7]


def test_parquet_folder_matches_csv(tmp_path, reference, tiny):
    folder = tmp_path / "pq"
    folder.mkdir()
    for name in ("patients", "treatments", "visits"):
        pd.read_csv(tiny / f"{name}.csv").to_parquet(folder / f"{name}.parquet")
    assert_same_cohort(regen.read_cohort(folder), reference)


def test_xlsx_workbook_matches_csv(tmp_path, reference, tiny):
    book = tmp_path / "cohort.xlsx"
    with pd.ExcelWriter(book) as writer:
        for name in ("patients", "treatments", "visits"):
            frame = pd.read_csv(tiny / f"{name}.csv")
            if name == "treatments":
                frame["treated_on"] = pd.to_datetime(frame["treated_on"])
            frame.to_excel(writer, sheet_name=name.capitalize(), index=False)
    assert_same_cohort(regen.read_cohort(book), reference)


def test_excel_date_serials_are_dates(tmp_path):
    treatments = TREATMENTS.replace("2024-01-10", "45301").replace("2024-02-01", "45323")
    cohort = regen.read_cohort(write_cohort(tmp_path, treatments=treatments))
    assert cohort.treatments["treated_on"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-01-10", "2024-02-01"]


def test_xlsx_missing_sheet(tmp_path, tiny):
    book = tmp_path / "cohort.xlsx"
    with pd.ExcelWriter(book) as writer:
        for name in ("patients", "treatments"):
            pd.read_csv(tiny / f"{name}.csv").to_excel(writer, sheet_name=name, index=False)
    with pytest.raises(CohortValidationError) as caught:
        regen.read_cohort(book)
    problem = caught.value.problems.iloc[0]
    assert (problem["file"], problem["rule"]) == ("cohort.xlsx", "sheet 'visits' missing")
    assert "found: patients, treatments" in problem["fix"]


@pytest.mark.parametrize("content", [b"\x00\x01\x02binary\xff" * 50, b"PK\x03\x04garbage"])
def test_binary_garbage_is_a_problem(tmp_path, content):
    folder = write_cohort(tmp_path)
    (folder / "visits.csv").write_bytes(content)
    with pytest.raises(CohortValidationError) as caught:
        regen.read_cohort(folder)
    assert caught.value.problems["file"].tolist() == ["visits.csv"]


def test_damaged_workbook_is_a_problem(tmp_path):
    book = tmp_path / "cohort.xlsx"
    book.write_bytes(b"not a zip file")
    with pytest.raises(CohortValidationError, match="not a readable .xlsx workbook"):
        regen.read_cohort(book)


def test_two_files_for_one_table(tmp_path, tiny):
    pd.read_csv(tiny / "visits.csv").to_parquet(tiny / "visits.parquet")
    with pytest.raises(CohortValidationError, match="two files for one table"):
        regen.read_cohort(tiny)


def test_path_that_does_not_exist(tmp_path):
    with pytest.raises(CohortValidationError, match="path does not exist"):
        regen.read_cohort(tmp_path / "nowhere")


def test_ragged_csv_row_names_its_line(tmp_path):
    folder = write_cohort(tmp_path, visits=VISITS.replace("T1,30,yes,3", "T1,30,yes,3,9,9"))
    with pytest.raises(CohortValidationError) as caught:
        regen.read_cohort(folder)
    problem = caught.value.problems.iloc[0]
    assert (problem["file"], problem["row"]) == ("visits.csv", 4)


def test_windows_1252_file_is_read_with_a_warning(tmp_path):
    patients = PATIENTS.replace("patient_id,sex,birth_year,diabetes",
                                "patient_id,sex,birth_year,diabetes,clinic") \
        .replace("1970,no", "1970,no,Zürich").replace("1960,yes", "1960,yes,Genève")
    folder = write_cohort(tmp_path, patients=patients, encoding="cp1252")
    with pytest.warns(regen.DataWarning, match="not UTF-8"):
        cohort = regen.read_cohort(folder)
    assert cohort.patients["clinic"].tolist() == ["Zürich", "Genève"]


def test_extra_columns_are_kept_as_numbers_or_text(tmp_path):
    patients = PATIENTS.replace("diabetes\n", "diabetes,weight_kg,site\n") \
        .replace("1970,no\n", "1970,no,70,north\n").replace("1960,yes\n", "1960,yes,81.5,south\n")
    cohort = regen.read_cohort(write_cohort(tmp_path, patients=patients))
    assert cohort.patients["weight_kg"].tolist() == [70.0, 81.5]
    assert cohort.patients["site"].tolist() == ["north", "south"]
    assert "site" in cohort.episodes("numbness").columns


def test_excel_sep_line_and_blank_lines_above_the_header(tmp_path):
    visits = "\n\nsep=;\n" + VISITS.replace(",", ";").replace("T1;60;no;7", "T1;60;no;17")
    with pytest.raises(CohortValidationError) as caught:
        regen.read_cohort(write_cohort(tmp_path, visits=visits))
    assert caught.value.problems[["row", "column"]].values.tolist() == [[8, "pain"]]


def test_data_lines_ending_in_a_delimiter_keep_their_columns(tmp_path, reference):
    lines = VISITS.splitlines()
    visits = "\n".join([lines[0]] + [line + "," for line in lines[1:]]) + "\n"
    assert_same_cohort(regen.read_cohort(write_cohort(tmp_path, visits=visits)), reference)


def test_a_value_beyond_the_last_header_is_reported_not_dropped(tmp_path):
    lines = VISITS.splitlines()
    visits = "\n".join([lines[0]] + [line + "," for line in lines[1:]]) + "\n"
    visits = visits.replace("T1,30,yes,3,", "T1,30,yes,3,9")
    with pytest.raises(CohortValidationError) as caught:
        regen.read_cohort(write_cohort(tmp_path, visits=visits))
    problem = caught.value.problems.iloc[0]
    assert (problem["row"], problem["value"]) == (4, "9")
    assert problem["rule"] == "value in a column that has no header"


def test_excel_missing_markers_are_missing(tmp_path):
    visits = VISITS.replace("T1,30,yes,3", "T1,30,#N/A,-")
    with pytest.warns(regen.DataWarning, match="record none of"):
        cohort = regen.read_cohort(write_cohort(tmp_path, visits=visits))
    row = cohort.visits.query("treatment_id == 'T1' and day == 30").iloc[0]
    assert pd.isna(row["numb"]) and pd.isna(row["pain"])


def test_data_lines_ending_in_two_delimiters_keep_their_columns(tmp_path, reference):
    lines = VISITS.splitlines()
    visits = "\n".join([lines[0]] + [line + ",," for line in lines[1:]]) + "\n"
    assert_same_cohort(regen.read_cohort(write_cohort(tmp_path, visits=visits)), reference)


def test_title_line_above_the_header_is_skipped_with_a_warning(tmp_path, reference):
    visits = "Visits export, 2024\n" + VISITS.replace("T1,60,no,7", "T1,60,no,17")
    with pytest.warns(regen.DataWarning, match=r"skipped 1 line\(s\) above the header"), \
            pytest.raises(CohortValidationError) as caught:
        regen.read_cohort(write_cohort(tmp_path, visits=visits))
    assert caught.value.problems[["row", "column"]].values.tolist() == [[6, "pain"]]


def test_a_header_repeated_exactly_is_a_problem(tmp_path):
    visits = VISITS.replace("treatment_id,day,numb,pain", "treatment_id,day,numb,pain,pain") \
        .replace("\n", ",0\n").replace("pain,0\n", "pain\n")
    with pytest.raises(CohortValidationError) as caught:
        regen.read_cohort(write_cohort(tmp_path, visits=visits))
    problem = caught.value.problems.iloc[0]
    assert (problem["row"], problem["column"]) == (1, "pain")
    assert problem["rule"] == "column appears more than once"


def test_xlsx_with_rows_above_the_header(tmp_path, reference, tiny):
    book = tmp_path / "cohort.xlsx"
    with pd.ExcelWriter(book) as writer:
        for name in ("patients", "treatments", "visits"):
            frame = pd.read_csv(tiny / f"{name}.csv")
            frame.to_excel(writer, sheet_name=name, index=False, startrow=2)
            if name == "visits":
                writer.sheets[name]["A1"] = "Follow-up visits, exported 2024-05-01"
    with pytest.warns(regen.DataWarning, match="skipped row"):
        cohort = regen.read_cohort(book)
    assert_same_cohort(cohort, reference)
    assert cohort.visits["source_row"].min() == 4   # header on row 3, first visit on row 4


def test_ids_that_lost_their_leading_zeros_get_a_hint(tmp_path):
    patients = PATIENTS.replace("P1,", "001,").replace("P2,", "002,")
    treatments = TREATMENTS.replace(",P1,", ",1,").replace(",P2,", ",2,")
    with pytest.raises(CohortValidationError) as caught:
        regen.read_cohort(write_cohort(tmp_path, patients=patients, treatments=treatments))
    problems = caught.value.problems
    assert len(problems) == 2
    assert "leading zeros" in problems["fix"].iloc[0]
