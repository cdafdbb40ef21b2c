"""A catalogue of malformed cohorts: each must be refused with a message a user can act on.

Every error case writes a small cohort with one thing broken and checks, through the API
and through ``regen validate``:

- :class:`regen.CohortValidationError` is raised, and nothing else;
- a problem row names the file, the row (as a spreadsheet shows it), the column and the
  value that was broken, with the rule broken and a fix;
- the message names the same file, row, column and value;
- ``regen validate`` exits 1 with that message on stderr, never a traceback or an
  "internal error" (exit 3).

A case regen is known to get wrong can carry ``xfail_api``/``xfail_cli`` (a strict xfail
saying what happens instead); none does now. Suspicious but usable input (an unknown nerve,
Excel serials among ISO dates) is a warning, not an error: those cases are in
``WARNING_CASES`` and must load.

The catalogue is self-contained: it writes its own base tables.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner

import regen
from regen.cli import main

# --------------------------------------------------------------- base tables ---
# Row numbers as a spreadsheet shows them: the header is row 1.

PATIENTS = """\
patient_id,sex,birth_year,diabetes,bmi
P1,F,1970,no,24.5
P2,M,1960,yes,31
P3,F,1985,no,22
"""

TREATMENTS = """\
treatment_id,patient_id,nerve,side,treated_on,distance_mm
T1,P1,greater_occipital,left,2024-01-10,80
T2,P2,lesser_occipital,right,2024-02-01,60
T3,P3,infrapatellar_saphenous,left,2024-03-05,120
"""

VISITS = """\
treatment_id,day,numb,numbness,pain
T1,0,no,0,8
T1,7,yes,6,2
T1,30,yes,3,3
T1,60,no,0,7
T2,0,no,0,6
T2,7,yes,5,2
T2,30,no,1,5
T3,0,no,0,7
T3,7,yes,7,1
T3,90,no,0,4
"""

#: Visits dated instead of numbered by day (T1 treated 2024-01-10, T2 2024-02-01, T3 2024-03-05).
DATED_VISITS = """\
treatment_id,visit_date,numb,pain
T1,2024-01-10,no,8
T1,2024-01-17,yes,2
T2,2024-02-08,yes,3
T3,2024-03-12,yes,1
"""

BASE = {"patients": PATIENTS, "treatments": TREATMENTS, "visits": VISITS}
Writer = Callable[[Path], Path]


def _edit(text: str, old: str, new: str) -> str:
    """Replace ``old`` (which must occur exactly once) by ``new``."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def _texts(**changes: str | list[tuple[str, str]] | None) -> dict[str, str | None]:
    """The base tables with changes: a whole new text, a list of (old, new) edits, or None."""
    texts: dict[str, str | None] = dict(BASE)
    for name, change in changes.items():
        if isinstance(change, list):
            text = texts[name]
            for old, new in change:
                text = _edit(text, old, new)
            texts[name] = text
        else:
            texts[name] = change
    return texts


def csv_cohort(**changes: str | list[tuple[str, str]] | None) -> Writer:
    """A folder of three CSV files, with ``changes`` applied (see :func:`_texts`)."""
    def write(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in _texts(**changes).items():
            if text is not None:
                (folder / f"{name}.csv").write_text(text, encoding="utf-8", newline="")
        return folder
    return write


def raw_file(name: str, data: bytes, **changes) -> Writer:
    """The CSV cohort with one file replaced by these exact bytes."""
    def write(folder: Path) -> Path:
        csv_cohort(**changes)(folder)
        (folder / f"{name}.csv").unlink(missing_ok=True)
        (folder / name).write_bytes(data)
        return folder
    return write


def _cell(text: str) -> object:
    """A CSV field as a spreadsheet would hold it: number, date, text or empty."""
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        return text


def xlsx_cohort(sheets: dict[str, str] | None = None, name: str = "cohort.xlsx", **changes) -> Writer:
    """One workbook; ``sheets`` maps sheet names to CSV text (default: the three tables)."""
    def write(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        book = openpyxl.Workbook()
        book.remove(book.active)
        content = sheets if sheets is not None else {
            n: t for n, t in _texts(**changes).items() if t is not None}
        for sheet, text in content.items():
            ws = book.create_sheet(sheet)
            for fields in csv.reader(io.StringIO(text)):
                ws.append([_cell(f) for f in fields])
        path = folder / name
        book.save(path)
        return path
    return write


def parquet_cohort(damaged: str | None = None, **frames: pd.DataFrame) -> Writer:
    """A folder of three Parquet files; ``frames`` replace tables, ``damaged`` names a broken one."""
    def write(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for table, text in BASE.items():
            frame = frames.get(table, pd.read_csv(io.StringIO(text)))
            frame.to_parquet(folder / f"{table}.parquet", index=False)
        if damaged:
            (folder / f"{damaged}.parquet").write_bytes(b"PAR1 the rest of this file was lost")
        return folder
    return write


def _treatments_frame(**columns) -> pd.DataFrame:
    frame = pd.read_csv(io.StringIO(TREATMENTS))
    return frame.assign(**columns)


# ----------------------------------------------------------------- the cases ---

@dataclass(frozen=True)
class Bad:
    """One malformed cohort and the problem regen must report.

    ``file``, ``row``, ``column`` and ``value`` are what a problem row must hold (None:
    the problem is about a whole file or column, so the row, column or value is empty);
    ``rule`` is a phrase of its rule. ``mentions`` are further words the message must
    contain (e.g. a renamed header). ``xfail_api``/``xfail_cli`` say how regen misbehaves.
    """

    id: str
    write: Writer
    file: str
    row: int | None
    column: str | None
    value: str | None
    rule: str
    mentions: tuple[str, ...] = ()
    xfail_api: str | None = None
    xfail_cli: str | None = None


CASES: list[Bad] = [
    # ---- missing and renamed columns
    Bad("missing-column-patient-id",
        csv_cohort(patients=[("patient_id,sex", "sex"), ("P1,F", "F"), ("P2,M", "M"), ("P3,F", "F")]),
        "patients.csv", None, "patient_id", None, "required column missing"),
    Bad("missing-column-visit-treatment-id",
        csv_cohort(visits="day,numb,pain\n0,no,8\n7,yes,2\n"),
        "visits.csv", None, "treatment_id", None, "required column missing"),
    Bad("renamed-column-patientid",
        csv_cohort(treatments=[("treatment_id,patient_id,", "treatment_id,patientid,")]),
        "treatments.csv", None, "patient_id", None, "required column missing",
        mentions=("is 'patientid' meant to be patient_id?",)),
    Bad("renamed-column-nerve-name",
        csv_cohort(treatments=[(",nerve,", ",nerve_name,")]),
        "treatments.csv", None, "nerve", None, "required column missing",
        mentions=("nerve_name",)),
    Bad("renamed-day-and-no-visit-date",
        csv_cohort(visits=[("treatment_id,day,", "treatment_id,days_since,")]),
        "visits.csv", None, "day", None, "day or visit_date"),
    Bad("column-of-another-table",
        csv_cohort(visits="treatment_id,treated_on,day,pain\nT1,2024-01-10,7,2\nT2,2024-02-01,7,3\n"),
        "visits.csv", None, "treated_on", None, "belongs in treatments.csv"),
    Bad("reserved-column-name",
        csv_cohort(visits=[("numbness,pain\n", "numbness,baseline_pain\n")]),
        "visits.csv", None, "baseline_pain", None, "reserved"),
    Bad("header-repeated-in-another-case",
        csv_cohort(visits=[("numb,numbness,pain\n", "numb,Pain,pain \n")]),
        "visits.csv", 1, "pain", None, "column appears more than once"),
    # ---- wrong types
    Bad("text-in-number-column",
        csv_cohort(visits=[("T2,30,no,1,5", "T2,30,no,1,severe")]),
        "visits.csv", 8, "pain", "severe", "not a number"),
    Bad("excel-error-in-number-column",
        csv_cohort(visits=[("T1,60,no,0,7", "T1,60,no,0,#VALUE!")]),
        "visits.csv", 5, "pain", "#VALUE!", "not a number"),
    Bad("decimal-comma-in-comma-file",
        csv_cohort(visits=[("T1,60,no,0,7", 'T1,60,no,0,"7,5"')]),
        "visits.csv", 5, "pain", "7,5", "not a number"),
    Bad("infinity-in-number-column",
        csv_cohort(visits=[("T3,90,no,0,4", "T3,90,no,0,inf")]),
        "visits.csv", 11, "pain", "inf", "not a number"),
    Bad("text-in-day-column",
        csv_cohort(visits=[("T1,30,yes", "T1,one month,yes")]),
        "visits.csv", 4, "day", "one month", "not a whole number"),
    Bad("fraction-in-day-column",
        csv_cohort(visits=[("T3,7,yes", "T3,7.5,yes")]),
        "visits.csv", 10, "day", "7.5", "not a whole number"),
    Bad("number-in-yes-no-column",
        csv_cohort(visits=[("T1,7,yes", "T1,7,2")]),
        "visits.csv", 3, "numb", "2", "not a yes/no value"),
    Bad("side-not-allowed",
        csv_cohort(treatments=[("lesser_occipital,right", "lesser_occipital,both")]),
        "treatments.csv", 3, "side", "both", "not one of left, right, midline"),
    Bad("number-in-date-column",
        csv_cohort(treatments=[("2024-01-10", "20240110")]),
        "treatments.csv", 2, "treated_on", "20240110", "not a date"),
    Bad("yymmdd-number-in-date-column",
        csv_cohort(treatments=[("2024-02-01", "240201")]),
        "treatments.csv", 3, "treated_on", "240201", "not a date"),
    # ---- impossible dates
    Bad("february-30",
        csv_cohort(treatments=[("2024-02-01", "2023-02-30")]),
        "treatments.csv", 3, "treated_on", "2023-02-30", "not a date"),
    Bad("date-in-1899",
        csv_cohort(treatments=[("2024-02-01", "1899-12-31")]),
        "treatments.csv", 3, "treated_on", "1899-12-31", "before 1900"),
    Bad("year-typo-1024",
        csv_cohort(treatments=[("2024-01-10", "1024-01-10")]),
        "treatments.csv", 2, "treated_on", "1024-01-10", "before 1900"),
    Bad("visit-date-in-the-future",
        csv_cohort(visits=DATED_VISITS.replace("T2,2024-02-08", "T2,2099-02-08")),
        "visits.csv", 4, "visit_date", "2099-02-08", "after today"),
    Bad("excel-serial-mixed-with-garbage",
        csv_cohort(treatments=[("2024-01-10", "45301"), ("2024-03-05", "5th March")]),
        "treatments.csv", 4, "treated_on", "5th March", "not a date"),
    Bad("excel-serial-before-1970",
        csv_cohort(treatments=[("2024-02-01", "20000")]),
        "treatments.csv", 3, "treated_on", "20000", "not a date"),
    Bad("treated-before-birth-year",
        csv_cohort(treatments=[("2024-01-10", "1965-05-01")]),
        "treatments.csv", 2, "treated_on", "1965-05-01, birth_year 1970: age -5", "outside 0–120"),
    # ---- ranges
    Bad("pain-11",
        csv_cohort(visits=[("T2,30,no,1,5", "T2,30,no,1,11")]),
        "visits.csv", 8, "pain", "11", "between 0 and 10"),
    Bad("numbness-minus-1",
        csv_cohort(visits=[("T1,30,yes,3,3", "T1,30,yes,-1,3")]),
        "visits.csv", 4, "numbness", "-1", "between 0 and 10"),
    Bad("distance-zero",
        csv_cohort(treatments=[("2024-02-01,60", "2024-02-01,0.0")]),
        "treatments.csv", 3, "distance_mm", "0.0", "> 0"),
    Bad("distance-negative",
        csv_cohort(treatments=[("2024-03-05,120", "2024-03-05,-12.5")]),
        "treatments.csv", 4, "distance_mm", "-12.5", "> 0"),
    Bad("birth-year-1850",
        csv_cohort(patients=[("P2,M,1960", "P2,M,1850")]),
        "patients.csv", 3, "birth_year", "1850", "between 1900 and 2100"),
    Bad("age-130",
        csv_cohort(treatments=[("distance_mm\n", "distance_mm,age\n"), (",80\n", ",80,130\n"),
                               (",60\n", ",60,64\n"), (",120\n", ",120,39\n")]),
        "treatments.csv", 2, "age", "130", "between 0 and 120"),
    Bad("visit-day-minus-4000",
        csv_cohort(visits=[("T2,7,yes", "T2,-4000,yes")]),
        "visits.csv", 7, "day", "-4000", "baseline window"),
    Bad("visit-day-40000",
        csv_cohort(visits=[("T3,90,", "T3,40000,")]),
        "visits.csv", 11, "day", "40000", "days after the treatment"),
    Bad("visit-date-in-1990",
        csv_cohort(visits=DATED_VISITS.replace("T1,2024-01-17", "T1,1990-01-17")),
        "visits.csv", 3, "visit_date", "1990-01-17 (day -12411 from treated_on 2024-01-10)",
        "baseline window"),
    # ---- ids and links between the tables
    Bad("duplicate-patient-id",
        csv_cohort(patients=PATIENTS + "P2,F,1991,no,27\n"),
        "patients.csv", 5, "patient_id", "P2", "duplicate patient_id (first on row 3)"),
    Bad("duplicate-treatment-id",
        csv_cohort(treatments=TREATMENTS + "T2,P1,supraorbital,right,2024-04-02,35\n"),
        "treatments.csv", 5, "treatment_id", "T2", "duplicate treatment_id (first on row 3)"),
    Bad("orphaned-treatment",
        csv_cohort(treatments=TREATMENTS + "T4,P4,supraorbital,right,2024-04-02,35\n"),
        "treatments.csv", 5, "patient_id", "P4", "not in patients.csv"),
    Bad("orphaned-visit",
        csv_cohort(visits=VISITS + "T9,7,yes,4,2\n"),
        "visits.csv", 12, "treatment_id", "T9", "not in treatments.csv"),
    Bad("visit-names-another-patient",
        csv_cohort(visits="treatment_id,patient_id,day,pain\nT1,P1,0,8\nT1,P2,7,2\nT2,P2,7,3\n"),
        "visits.csv", 3, "patient_id", "P2", "not the treatment's patient"),
    Bad("empty-treatment-id-in-visits",
        csv_cohort(visits=[("T2,7,yes", ",7,yes")]),
        "visits.csv", 7, "treatment_id", "(empty)", "required value missing"),
    Bad("contradictory-visits-same-day",
        csv_cohort(visits=VISITS + "T2,7,yes,5,9\n"),
        "visits.csv", 12, None, "pain 9 here, 2 on row 7", "contradicts an earlier visit",
        mentions=("pain",)),
    Bad("contradictory-dated-visits-same-day",
        csv_cohort(visits=DATED_VISITS + "T1,2024-01-17,no,6\n"),
        "visits.csv", 6, None, "numb no here, yes on row 3; pain 6 here, 2 on row 3",
        "contradicts an earlier visit", mentions=("numb", "pain")),
    Bad("retreatment-same-day-same-side",
        csv_cohort(treatments=TREATMENTS + "T4,P1,Greater Occipital,LEFT,2024-01-10,75\n"),
        "treatments.csv", 5, "treated_on", "2024-01-10",
        "same patient, nerve, side and treated_on as row 2"),
    # ---- empty, unreadable and mis-structured files
    Bad("header-only-table",
        csv_cohort(treatments="treatment_id,patient_id,nerve,side,treated_on,distance_mm\n"),
        "treatments.csv", None, None, None, "table has no rows"),
    Bad("zero-byte-file",
        raw_file("visits.csv", b""),
        "visits.csv", None, None, None, "file is empty"),
    Bad("whitespace-only-file",
        raw_file("patients.csv", b"  \n\n   \n"),
        "patients.csv", None, None, None, "table has no rows"),
    Bad("blank-lines-only-file",
        raw_file("treatments.csv", b"\n\n\n"),
        "treatments.csv", None, None, None, "cannot be read"),
    Bad("gzip-file-named-csv",
        raw_file("patients.csv", gzip.compress(PATIENTS.encode(), mtime=0)),
        "patients.csv", None, None, None, "binary data"),
    Bad("utf16-without-bom",
        raw_file("visits.csv", VISITS.encode("utf-16-le")),
        "visits.csv", None, None, None, "binary data"),
    Bad("binary-garbage-without-nul-bytes",
        raw_file("visits.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1,\xfe\xff\n\x8f,\x0b\x9c,\xb3,\xc4\n"),
        "visits.csv", None, None, None, ""),
    Bad("wrong-delimiter-pipe",
        csv_cohort(visits=VISITS.replace(",", "|")),
        "visits.csv", None, "treatment_id", None, "required column missing",
        mentions=("treatment_id|day|numb|numbness|pain",)),
    Bad("header-row-repeated-mid-file",
        csv_cohort(visits=[("T2,0,no,0,6\n", "treatment_id,day,numb,numbness,pain\nT2,0,no,0,6\n")]),
        "visits.csv", 6, "day", "day", "not a whole number"),
    Bad("header-row-repeated-at-top",
        csv_cohort(visits="treatment_id,day,numb,numbness,pain\n" + VISITS),
        "visits.csv", 2, "pain", "pain", "not a number"),
    Bad("unquoted-comma-shifts-columns",
        csv_cohort(treatments=[("T2,P2,lesser_occipital,", "T2,P2,lesser,occipital,")]),
        "treatments.csv", 3, "side", "occipital", "not one of left, right, midline"),
    Bad("short-row",
        csv_cohort(treatments=[("T2,P2,lesser_occipital,right,2024-02-01,60", "T2,P2")]),
        "treatments.csv", 3, "nerve", "(empty)", "required value missing"),
    Bad("unbalanced-quote",
        csv_cohort(visits=[("T1,30,yes,3,3", 'T1,30,"yes,3,3')]),
        "visits.csv", 4, None, None, "cannot be read"),
    Bad("blank-header-cell-with-values",
        csv_cohort(visits=[("treatment_id,day,numb,", "treatment_id,day,,")]),
        "visits.csv", 3, None, "yes", "no header"),
    Bad("two-blank-header-cells",
        csv_cohort(visits="treatment_id,day,,,pain\nT1,7,a,b,3\nT2,7,c,d,2\n"),
        "visits.csv", 2, None, "a", "no header"),
    Bad("vertical-tab-in-cell-and-stray-field",
        csv_cohort(patients=[("diabetes,bmi\n", "diabetes,bmi,note\n"),
                             ("1970,no,24.5\n", "1970,no,24.5,first line\x0bsecond line,extra\n")]),
        "patients.csv", 2, None, "extra", "no header"),
    # ---- workbooks and Parquet
    Bad("xlsx-missing-sheet",
        xlsx_cohort({"patients": PATIENTS, "Treatment": TREATMENTS, "visits": VISITS}),
        "cohort.xlsx", None, None, None, "sheet 'treatments' missing", mentions=("Treatment",)),
    Bad("xlsx-pain-out-of-range",
        xlsx_cohort(visits=[("T1,30,yes,3,3", "T1,30,yes,3,12")]),
        "cohort.xlsx, sheet visits", 4, "pain", "12", "between 0 and 10"),
    Bad("xlsx-impossible-date-as-text",
        xlsx_cohort(treatments=[("2024-02-01", "2024-02-30")]),
        "cohort.xlsx, sheet treatments", 3, "treated_on", "2024-02-30", "not a date"),
    Bad("xlsx-header-only-sheet",
        xlsx_cohort(visits="treatment_id,day,numb,numbness,pain\n"),
        "cohort.xlsx, sheet visits", None, None, None, "table has no rows"),
    Bad("xlsx-zero-byte",
        lambda folder: (folder.mkdir(parents=True), (folder / "cohort.xlsx").write_bytes(b""),
                        folder / "cohort.xlsx")[-1],
        "cohort.xlsx", None, None, None, "not a readable .xlsx workbook"),
    Bad("parquet-negative-distance",
        parquet_cohort(treatments=_treatments_frame(distance_mm=[80.0, -4.0, 120.0])),
        "treatments.parquet", 2, "distance_mm", "-4.0", "> 0"),
    Bad("parquet-dates-as-integers",
        parquet_cohort(treatments=_treatments_frame(treated_on=[20240110, 20240201, 20240305])),
        "treatments.parquet", 1, "treated_on", "20240110", "not a date"),
    Bad("parquet-damaged",
        parquet_cohort(damaged="visits"),
        "visits.parquet", None, None, None, "not a readable Parquet file"),
]


def _params(cases: list, which: str) -> list:
    params = []
    for case in cases:
        reason = getattr(case, f"xfail_{which}")
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


def _place(case: Bad) -> str:
    """The line of the message that locates the problem, as regen.ledger.format_problems writes it."""
    place = []
    if case.row is not None:
        place.append(f"row {case.row}")
    if case.column is not None:
        place.append(f"column {case.column}")
    if case.value is not None:
        place.append("value (empty)" if case.value == "(empty)" else f"value {case.value!r}")
    return "  " + ", ".join(place) if place else ""


def _read_expecting_error(path: Path) -> regen.CohortValidationError:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # warnings are checked in WARNING_CASES
        try:
            cohort = regen.read_cohort(path)
        except regen.CohortValidationError as error:
            return error
        except Exception as error:  # any other type is the failure reported
            pytest.fail(f"raised {type(error).__module__}.{type(error).__name__}: {error}")
    pytest.fail(f"read without error: {cohort!r}")


def _matches(problems: pd.DataFrame, case: Bad) -> pd.Series:
    def same(column: str, expected) -> pd.Series:
        if expected is None:
            return problems[column].isna()
        return (problems[column] == expected).fillna(False).astype(bool)
    return (same("file", case.file) & same("row", case.row) & same("column", case.column)
            & same("value", case.value) & problems["rule"].str.contains(case.rule, regex=False))


def test_the_catalogue_is_big_enough_and_the_base_cohort_is_valid(tmp_path):
    assert len({case.id for case in CASES}) == len(CASES)
    assert sum(case.xfail_api is None for case in CASES) >= 30
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cohort = regen.read_cohort(csv_cohort()(tmp_path / "csv"))
        for name, write in (("xlsx", xlsx_cohort()), ("parquet", parquet_cohort())):
            other = regen.read_cohort(write(tmp_path / name))
            assert len(other.visits) == len(cohort.visits)
    assert (len(cohort.patients), len(cohort.treatments), len(cohort.visits)) == (3, 3, 10)


@pytest.mark.parametrize("case", _params(CASES, "api"))
def test_read_cohort_names_what_is_broken(tmp_path, case: Bad):
    error = _read_expecting_error(case.write(tmp_path / "cohort"))
    problems = error.problems
    assert isinstance(error, ValueError)
    assert list(problems.columns) == ["file", "table", "row", "column", "value", "rule", "fix"]
    hits = problems.loc[_matches(problems, case)]
    assert len(hits), f"no problem matches {case}:\n{problems.to_string()}"
    assert hits["fix"].str.strip().str.len().gt(0).all()
    message = str(error)
    assert f"{case.file}: " in message
    assert _place(case) in message
    for word in (case.column, case.value, *case.mentions):
        if word is not None:
            assert word in message
    assert "  fix: " in message


@pytest.mark.parametrize("case", _params(CASES, "cli"))
def test_regen_validate_exits_1_with_the_message(tmp_path, case: Bad):
    path = case.write(tmp_path / "cohort")
    result = CliRunner(env={"REGEN_DEBUG": None}).invoke(main, ["validate", str(path)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not an escaped exception
    assert "Traceback" not in result.output
    assert "internal error" not in result.stderr
    assert case.file.split(",")[0] in result.stderr
    assert _place(case) in result.stderr


# --------------------------------------------------- usable, with a warning ---

@dataclass(frozen=True)
class Suspicious:
    """A cohort that must load, with a DataWarning matching ``warning``; ``check`` tests the result."""

    id: str
    write: Writer
    warning: str
    check: Callable[[regen.Cohort], bool]
    xfail: str | None = None


WARNING_CASES: list[Suspicious] = [
    Suspicious("unknown-nerve",
               csv_cohort(treatments=[("lesser_occipital", "Sciatic")]),
               r"treatments\.csv: nerve\(s\) regen does not know: sciatic \(1\)",
               lambda c: "sciatic" in set(c.treatments["nerve"])),
    Suspicious("excel-serials-among-iso-dates",
               csv_cohort(treatments=[("2024-01-10", "45301")]),
               r"treatments\.csv, column treated_on: 1 value\(s\) are Excel date serials",
               lambda c: c.treatments["treated_on"].iloc[0] == pd.Timestamp("2024-01-10")),
    Suspicious("identical-visit-twice",
               csv_cohort(visits=VISITS + "T3,7,yes,7,1\n"),
               r"visits\.csv: 1 visit\(s\) repeat an earlier row exactly",
               lambda c: c.exclusions.query("table == 'visits'")["row"].tolist() == [12]),
    Suspicious("bom-with-windows-1252-body",
               raw_file("patients.csv", b"\xef\xbb\xbf" + (
                   "patient_id,sex,birth_year,diabetes,bmi,clinic\n"
                   "P1,F,1970,no,24.5,Zürich\nP2,M,1960,yes,31,Genf\nP3,F,1985,no,22,Genf\n"
               ).encode("cp1252")),
               r"patients\.csv is not UTF-8",
               lambda c: c.patients["clinic"].iloc[0] == "Zürich"),
]


@pytest.mark.parametrize("case", [
    pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else [])
    for c in WARNING_CASES])
def test_suspicious_but_usable_input_warns_and_loads(tmp_path, case: Suspicious):
    path = case.write(tmp_path / "cohort")
    with pytest.warns(regen.DataWarning, match=case.warning):
        try:
            cohort = regen.read_cohort(path)
        except Exception as error:  # reported as the failure
            pytest.fail(f"raised {type(error).__name__}: {error}")
    assert case.check(cohort)
    result = CliRunner(env={"REGEN_DEBUG": None}).invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "The data are usable" in result.stdout
