"""Reading is bounded and exact: crafted or huge inputs fail fast, values arrive as written.

A. Crafted or oversized inputs are refused with a problem naming file, row or cell, and
   the way to raise the limit, before they are loaded. The crafted files are read in
   one fresh Python process (:func:`crafted`), which reports for each the problems, the
   seconds ``read_cohort`` took and its peak resident memory (``VmHWM``, a high-water
   mark, so the figure after a case bounds that case's peak). Each must stay under
   :data:`PEAK_MB` (``import regen`` alone takes about 230 MB, the reads add at most
   about 70 MB; before these checks the XFD1048576 workbook took 7.5 GB and 32 s, and
   the line of 10 million commas more than 8 GB) and :data:`SECONDS`.
B. What is read is what was in the file: exact integer ids from Parquet and xlsx,
   Parquet index columns, names that differ only in case, formula cells without a
   stored value, near-miss headers, ids that differ only in case.
C. Messages show data literally: control characters and escape sequences are escaped.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import warnings
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import regen
from regen.exceptions import CohortValidationError
from regen.io import LIMIT_OPTIONS, ReadLimits, input_files
from tests.conftest import PATIENTS, TREATMENTS, VISITS, write_cohort

ROOT = Path(__file__).resolve().parents[2]
#: Peak resident memory allowed for the process that reads every crafted input (MB).
PEAK_MB = 450
#: Seconds ``read_cohort`` may take to refuse (or read) one crafted input.
SECONDS = 3.0
TABLE_TEXTS = {"patients": PATIENTS, "treatments": TREATMENTS, "visits": VISITS}


def problem_of(path: Path, **limits) -> dict:
    """The one problem reading ``path`` reports (warnings ignored)."""
    with pytest.raises(CohortValidationError) as caught, warnings.catch_warnings():
        warnings.simplefilter("ignore", regen.DataWarning)
        regen.read_cohort(path, limits=ReadLimits(**limits) if limits else None)
    problems = caught.value.problems
    assert len(problems) == 1, problems.to_string()
    return problems.astype(object).where(problems.notna(), None).iloc[0].to_dict()


def frames() -> dict[str, pd.DataFrame]:
    return {name: pd.read_csv(io.StringIO(textwrap.dedent(text)))
            for name, text in TABLE_TEXTS.items()}


def workbook(path: Path, tables: dict[str, pd.DataFrame] | None = None, edit=None) -> Path:
    """The tiny cohort as one workbook written by openpyxl; ``edit(book)`` changes it."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, frame in (tables or frames()).items():
        sheet = book.create_sheet(name)
        sheet.append(list(frame.columns))
        for row in frame.itertuples(index=False):
            sheet.append([None if pd.isna(v) else v.item() if hasattr(v, "item") else v
                          for v in row])
    if edit is not None:
        edit(book)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path


def rewrite_part(path: Path, part: str, change) -> None:
    """Replace one part of a zip file by ``change(its bytes)``."""
    with zipfile.ZipFile(path) as archive:
        contents = {info: archive.read(info) for info in archive.infolist()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in contents.items():
            archive.writestr(info.filename, change(data) if info.filename == part else data)


def declare_size(path: Path, part: str, size: int) -> None:
    """Make the zip's directory (and the part's local header) declare ``size`` unpacked bytes."""
    data = bytearray(path.read_bytes())
    name = part.encode()
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46: at + 46 + length] == name:
            struct.pack_into("<I", data, at + 24, size)
            local = struct.unpack_from("<I", data, at + 42)[0]
            struct.pack_into("<I", data, local + 22, size)
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))


# ------------------------------------------------------------------ A: limits ---

def test_read_limits_defaults_and_checks():
    limits = ReadLimits()
    assert (limits.max_file_bytes, limits.max_rows, limits.max_columns, limits.max_cells,
            limits.max_uncompressed_bytes, limits.max_cell_bytes) == (
        10**9, 10**7, 1000, 5 * 10**7, 10**9, 10**5)
    with pytest.raises(AttributeError):
        limits.max_rows = 5  # frozen
    with pytest.raises(TypeError, match="max_rows must be a whole number"):
        ReadLimits(max_rows=1.5)
    with pytest.raises(TypeError, match="max_columns must be a whole number"):
        ReadLimits(max_columns=True)
    with pytest.raises(ValueError, match=r"max_cells must be at least 1, not 0"):
        ReadLimits(max_cells=0)
    with pytest.raises(TypeError, match="limits must be a regen.io.ReadLimits, not dict"):
        regen.read_cohort(ROOT / "data" / "example", limits={"max_rows": 5})
    assert set(LIMIT_OPTIONS) == {"max_file_bytes", "max_rows", "max_columns", "max_cells",
                                  "max_uncompressed_bytes", "max_cell_bytes"}


def _crafted_inputs(base: Path) -> dict[str, tuple[Path, dict]]:
    """Each crafted input, with the limits it is read with ({}: the defaults)."""
    cases: dict[str, tuple[Path, dict]] = {}

    # A file over the size limit: a sparse file (no disk used) of 2 GiB.
    folder = write_cohort(base / "huge")
    with (folder / "visits.csv").open("r+b") as handle:
        handle.truncate(2**31)
    cases["huge-file"] = (folder, {})
    # A binary file under the size limit: only its first 64 KB are read.
    folder = write_cohort(base / "binary")
    with (folder / "visits.csv").open("r+b") as handle:
        handle.write(b"\x00\x01\x02binary")
        handle.truncate(500 * 10**6)
    cases["binary-file"] = (folder, {})
    # A data line of 10 million commas, and a header of 10 million commas.
    folder = write_cohort(base / "commas", visits=None)
    (folder / "visits.csv").write_text("treatment_id,day,numb,pain\nT1,0," + "," * 10**7 + "\n")
    cases["comma-line"] = (folder, {})
    folder = write_cohort(base / "comma-header", visits=None)
    (folder / "visits.csv").write_text("treatment_id,day" + "," * 10**7 + "\nT1,0\n")
    cases["comma-header"] = (folder, {})
    # Two million rows against a limit of 1,000: refused from the line count, or (a quoted
    # field may span lines) after pandas read 1,001 rows.
    rows = "T1,7,yes,3\n" * 2_000_000
    folder = write_cohort(base / "long", visits=None)
    (folder / "visits.csv").write_text("treatment_id,day,numb,pain\n" + rows)
    cases["long-csv"] = (folder, {"max_rows": 1000})
    folder = write_cohort(base / "long-quoted", visits=None)
    (folder / "visits.csv").write_text('"treatment_id",day,numb,pain\n' + rows)
    cases["long-quoted-csv"] = (folder, {"max_rows": 1000})
    # 20 million rows in a Parquet file of 80 KB: refused from its footer.
    folder = write_cohort(base / "parquet-rows", visits=None)
    pq.write_table(pa.table({"treatment_id": pa.nulls(20_000_000, pa.string()),
                             "day": pa.nulls(20_000_000, pa.int64())}),
                   folder / "visits.parquet")
    cases["parquet-rows"] = (folder, {})
    # A 6 KB workbook with one value at XFD1048576.
    cases["xfd-value"] = (workbook(base / "xfd" / "cohort.xlsx", edit=lambda book: book[
        "visits"].__setitem__("XFD1048576", "stray")), {})
    # The same with the column limit raised: read sparsely, the stray value is reported.
    cases["xfd-value-raised"] = (cases["xfd-value"][0], {"max_columns": 20_000})

    # Far-away cells that are formatted but empty: the workbook loads.
    def formatted(book):
        book["visits"]["XFD1048576"].number_format = "0.00"
        book["visits"]["A1048000"].fill = openpyxl.styles.PatternFill("solid", fgColor="FFFF00")

    cases["formatted-far"] = (workbook(base / "formatted" / "cohort.xlsx", edit=formatted), {})
    # A part declaring that it unpacks to 4 GB; and one unpacking to more than it declares.
    book = workbook(base / "bomb" / "cohort.xlsx")
    declare_size(book, "xl/worksheets/sheet3.xml", 0xFFFFFFF0)
    cases["declared-bomb"] = (book, {})
    book = workbook(base / "liar" / "cohort.xlsx")
    rewrite_part(book, "xl/worksheets/sheet3.xml",
                 lambda xml: xml.replace(b"</sheetData>", b"</sheetData>" + b" " * 20_000_000))
    declare_size(book, "xl/worksheets/sheet3.xml", 4096)
    cases["understated-part"] = (book, {})
    return cases


CHILD = """
import json, resource, sys, time, warnings
from pathlib import Path
import regen
from regen.io import ReadLimits

def peak_mb():
    # VmHWM is this process's own peak: ru_maxrss also counts the parent's memory, which
    # a child inherits at fork and Linux carries across exec.
    try:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (
            2**20 if sys.platform == "darwin" else 1024)

print(json.dumps({"case": "import regen", "peak_mb": peak_mb()}), flush=True)
for case, path, limits in json.loads(sys.argv[1]):
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    try:
        cohort = regen.read_cohort(path, limits=ReadLimits(**limits))
        result = {"visits": len(cohort.visits), "problems": []}
    except regen.CohortValidationError as error:
        problems = error.problems.astype(object)
        result = {"message": str(error),
                  "problems": problems.where(problems.notna(), None).to_dict("records")}
    result.update(case=case, seconds=time.perf_counter() - start, peak_mb=peak_mb())
    print(json.dumps(result, default=int), flush=True)
"""


@pytest.fixture(scope="module")
def crafted(tmp_path_factory) -> dict[str, dict]:
    """Read every crafted input in one fresh process; its report per case."""
    cases = _crafted_inputs(tmp_path_factory.mktemp("crafted"))
    run = subprocess.run(
        [sys.executable, "-c", CHILD,
         json.dumps([[case, str(path), limits] for case, (path, limits) in cases.items()])],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
        env={**os.environ, "MPLBACKEND": "Agg"})
    assert run.returncode == 0, run.stderr
    reports = {line["case"]: line for line in map(json.loads, run.stdout.splitlines())}
    assert set(reports) == {"import regen", *cases}
    return reports


def only_problem(report: dict) -> dict:
    assert len(report["problems"]) == 1, report["problems"]
    return report["problems"][0]


def assert_bounded(report: dict) -> None:
    assert report["peak_mb"] < PEAK_MB, report
    assert report["seconds"] < SECONDS, report


def test_a_file_over_the_size_limit_is_refused_from_its_size(crafted):
    report = crafted["huge-file"]
    assert only_problem(report) == {
        "file": "visits.csv", "table": "visits", "row": None, "column": None,
        "value": "2,147,483,648 bytes",
        "rule": "file larger than the limit of 1,000.0 MB (2,147.5 MB)",
        "fix": "check that this is the right file; if it is, raise the limit with --max-file-mb "
               "(ReadLimits(max_file_bytes=...) in Python)"}
    assert_bounded(report)


def test_a_binary_file_is_refused_from_its_first_bytes(crafted):
    report = crafted["binary-file"]
    assert only_problem(report) == {
        "file": "visits.csv", "table": None, "row": None, "column": None, "value": None,
        "rule": "binary data, not a text table",
        "fix": "export the table from your spreadsheet as CSV (UTF-8)"}
    assert_bounded(report)


@pytest.mark.parametrize("case, row, fields", [("comma-line", 2, 10_000_003),
                                               ("comma-header", 1, 10_000_002)])
def test_a_line_of_ten_million_commas_is_refused_before_parsing(crafted, case, row, fields):
    report = crafted[case]
    assert only_problem(report) == {
        "file": "visits.csv", "table": "visits", "row": row, "column": None, "value": None,
        "rule": f"line with {fields:,} fields, more than the limit of 1,000 columns",
        "fix": "check the delimiter and the quotes on that line; if the table really has so many "
               "columns, raise the limit with --max-columns (ReadLimits(max_columns=...) in "
               "Python)"}
    assert f"visits.csv: line with {fields:,} fields" in report["message"]
    assert_bounded(report)


@pytest.mark.parametrize("case, rule", [("long-csv", "2,000,000 rows, more than the limit of 1,000"),
                                        ("long-quoted-csv", "more rows than the limit of 1,000")])
def test_a_csv_over_the_row_limit_is_refused_without_reading_it_all(crafted, case, rule):
    report = crafted[case]
    assert only_problem(report) == {
        "file": "visits.csv", "table": "visits", "row": None, "column": None, "value": None,
        "rule": rule,
        "fix": "check that this is the right file (an export of several tables, or a log?); if it "
               "is, raise the limit with --max-rows (ReadLimits(max_rows=...) in Python)"}
    assert_bounded(report)


def test_a_parquet_file_over_the_row_limit_is_refused_from_its_footer(crafted):
    report = crafted["parquet-rows"]
    assert only_problem(report) == {
        "file": "visits.parquet", "table": "visits", "row": None, "column": None, "value": None,
        "rule": "20,000,000 rows, more than the limit of 10,000,000",
        "fix": "check that this is the right file (an export of several tables, or a log?); if it "
               "is, raise the limit with --max-rows (ReadLimits(max_rows=...) in Python)"}
    assert_bounded(report)


def test_a_stray_value_at_xfd1048576_fails_fast_naming_sheet_and_cell(crafted):
    assert crafted["xfd-value"]["problems"] == [{
        "file": "cohort.xlsx, sheet visits", "table": "visits", "row": 1048576, "column": None,
        "value": "stray",
        "rule": "cell XFD1048576 holds a value beyond the table: column 16,384 is past the limit "
                "of 1,000 columns (the sheet declares its range as A1:XFD1048576)",
        "fix": "delete the stray cells beyond the data (select the columns right of the table and "
               "the rows below it, delete them, and save); if the table really is that wide, "
               "raise the limit with --max-columns (ReadLimits(max_columns=...) in Python)"}]
    assert_bounded(crafted["xfd-value"])
    # With the limit raised, the value is read where it is, without the empty grid before it.
    assert crafted["xfd-value-raised"]["problems"] == [{
        "file": "cohort.xlsx, sheet visits", "table": "visits", "row": 1048576, "column": None,
        "value": "stray", "rule": "value in a column that has no header",
        "fix": "give the column a header, or delete the stray values"}]
    assert_bounded(crafted["xfd-value-raised"])


def test_far_cells_that_are_only_formatted_do_not_count(crafted, tmp_path):
    book = workbook(tmp_path / "plain.xlsx")
    assert crafted["formatted-far"]["visits"] == len(regen.read_cohort(book).visits) == 7
    assert_bounded(crafted["formatted-far"])


def test_a_part_declaring_gigabytes_is_refused_before_unpacking(crafted):
    report = crafted["declared-bomb"]
    problem = only_problem(report)
    assert (problem["file"], problem["row"]) == ("cohort.xlsx", None)
    assert problem["rule"] == ("workbook that unpacks to 4,295.0 MB, more than the limit of "
                               "1,000.0 MB (largest part: xl/worksheets/sheet3.xml, 4,295.0 MB)")
    assert problem["fix"].endswith("raise the limit with --max-uncompressed-mb "
                                   "(ReadLimits(max_uncompressed_bytes=...) in Python)")
    assert_bounded(report)


def test_a_part_unpacking_to_more_than_it_declares_is_cut_there(crafted):
    report = crafted["understated-part"]
    problem = only_problem(report)
    assert problem["file"] == "cohort.xlsx"
    assert problem["rule"].startswith("not a readable .xlsx workbook (")
    assert_bounded(report)


def test_a_workbook_whose_zip_directory_is_huge_is_refused(tmp_path):
    book = tmp_path / "cohort.xlsx"
    book.write_bytes(b"\x00" * 64 + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1,
                                                0x10000000, 0, 0))
    assert problem_of(book)["rule"] == ("not a readable .xlsx workbook (its list of parts takes "
                                        "268.4 MB; a workbook's takes a few KB)")


def test_delimiters_inside_quotes_do_not_count_as_fields(tmp_path):
    note = "a" + ", b" * 5000
    visits = "treatment_id,day,numb,pain,note\n" + "".join(
        line + f',"{note}"\n' for line in VISITS.splitlines()[1:])
    cohort = regen.read_cohort(write_cohort(tmp_path / "cohort", visits=visits))
    assert cohort.visits["note"].str.count(",").tolist() == [5000] * 7
    wide = visits.replace(f',"{note}"\n', ',"a",' + "," * 1500 + "\n", 1)
    problem = problem_of(write_cohort(tmp_path / "wide", visits=wide))
    assert (problem["row"], problem["rule"]) == (
        2, "line with 1,506 fields, more than the limit of 1,000 columns")
    # After many wide quoted lines, an unquoted one is still found by the scan.
    last = visits + "T2,40,no,3," + "," * 1500 + "\n"
    problem = problem_of(write_cohort(tmp_path / "last", visits=last))
    assert (problem["row"], problem["rule"]) == (
        9, "line with 1,505 fields, more than the limit of 1,000 columns")


def test_csv_over_the_row_limit(tmp_path):
    folder = write_cohort(tmp_path / "plain")
    assert problem_of(folder, max_rows=5) == {
        "file": "visits.csv", "table": "visits", "row": None, "column": None, "value": None,
        "rule": "7 rows, more than the limit of 5",
        "fix": "check that this is the right file (an export of several tables, or a log?); if it "
               "is, raise the limit with --max-rows (ReadLimits(max_rows=...) in Python)"}
    # With quotes a row may span lines: pandas reads at most the limit + 1 rows.
    quoted = write_cohort(tmp_path / "quoted", visits=VISITS.replace("T1,7,", '"T1",7,'))
    assert problem_of(quoted, max_rows=5)["rule"] == "more rows than the limit of 5"
    # The cells are a budget for the three tables: patients and treatments take 20 here.
    assert problem_of(quoted, max_cells=40)["rule"] == (
        "more than 5 rows × 4 columns, more cells than the limit of 40 for the three tables "
        "together (patients.csv and treatments.csv take 20)")
    assert len(regen.read_cohort(quoted, limits=ReadLimits(max_rows=7)).visits) == 7


def test_parquet_limits_come_from_the_footer_without_reading_data(tmp_path, monkeypatch):
    folder = tmp_path / "pq"
    folder.mkdir()
    for name, frame in frames().items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    batches, shapes = pq.ParquetFile.iter_batches, []

    def recording(self, *args, **kwargs):
        shapes.append((self.metadata.num_rows, self.metadata.num_columns))
        return batches(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", recording)
    assert problem_of(folder, max_rows=5)["rule"] == "7 rows, more than the limit of 5"
    assert problem_of(folder, max_columns=5)["rule"] == "6 columns, more than the limit of 5"
    assert shapes == [(2, 4), (2, 6), (2, 4), (7, 4)]   # the refused tables were never read
    with pytest.raises(CohortValidationError) as caught:
        regen.read_cohort(folder, limits=ReadLimits(max_uncompressed_bytes=100))
    problems = caught.value.problems
    assert problems["file"].tolist() == ["patients.parquet", "treatments.parquet", "visits.parquet"]
    assert problems["rule"].str.fullmatch(r"data that unpack to \d+ bytes, more than the limit of "
                                          r"100 bytes for the tables together").all()


def test_workbook_row_and_cell_limits(tmp_path):
    book = workbook(tmp_path / "cohort.xlsx")
    problem = problem_of(book, max_rows=5)
    assert (problem["file"], problem["row"], problem["value"]) == (
        "cohort.xlsx, sheet visits", 7, "T2")
    assert problem["rule"] == ("cell A7 holds a value beyond the table: row 7 is past the "
                               "limit of 5 rows (the sheet declares its range as A1:D8)")
    problem = problem_of(book, max_cells=40)   # patients and treatments take 20 of them
    assert problem["rule"] == ("values spread over 6 rows × 4 columns below the header (to cell "
                               "A7), more cells than the limit of 40 for the three tables "
                               "together (sheet patients and sheet treatments take 20) (the "
                               "sheet declares its range as A1:D8)")


@pytest.mark.slow
def test_five_million_visits_load_with_the_default_limits(tmp_path):
    """About 3.5 GB and a minute; benchmarks/bench_large.py --patients 437500 times it."""
    rng = np.random.default_rng(5)
    n_treatments, per = 500_000, 10
    folder = tmp_path / "large"
    folder.mkdir()
    ids = pd.Series(np.arange(n_treatments)).map("T{:07d}".format)
    pd.DataFrame({"patient_id": ids.str.replace("T", "P"), "birth_year": 1960}).to_csv(
        folder / "patients.csv", index=False)
    pd.DataFrame({"treatment_id": ids, "patient_id": ids.str.replace("T", "P"),
                  "nerve": "greater_occipital", "side": "left", "distance_mm": 80}).to_csv(
        folder / "treatments.csv", index=False)
    pd.DataFrame({"treatment_id": np.repeat(ids.to_numpy(), per),
                  "day": np.tile(np.arange(per) * 7, n_treatments),
                  "numb": rng.choice(["yes", "no"], n_treatments * per),
                  "pain": rng.integers(0, 11, n_treatments * per)}).to_csv(
        folder / "visits.csv", index=False)
    cohort = regen.read_cohort(folder)
    assert len(cohort.visits) == 5_000_000


# -------------------------------------------------------------- B: exactness ---

BIG = [9223372036854775807, 9223372036854775806, 1234567890123456789, 1234567890123456790]


def big_id_tables(ids) -> dict[str, pd.DataFrame]:
    patients = pd.DataFrame({"patient_id": pd.array(ids, dtype="Int64"), "birth_year": 1970})
    treatments = pd.DataFrame({"treatment_id": [f"T{i}" for i in range(len(ids))],
                               "patient_id": pd.array(ids, dtype="Int64"),
                               "nerve": "greater_occipital"})
    visits = pd.DataFrame({"treatment_id": [f"T{i}" for i in range(len(ids))], "day": 7,
                           "numb": "yes"})
    return {"patients": patients, "treatments": treatments, "visits": visits}


def test_parquet_integer_ids_are_exact_text(tmp_path):
    folder = tmp_path / "pq"
    folder.mkdir()
    for name, frame in big_id_tables(BIG).items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    cohort = regen.read_cohort(folder)
    assert cohort.patients["patient_id"].tolist() == [str(i) for i in BIG]
    assert cohort.treatments["patient_id"].tolist() == [str(i) for i in BIG]
    # An integer column with a gap stays exact too (not float64 with NaN).
    tables = big_id_tables(BIG)
    tables["patients"]["bmi_code"] = pd.array([2**62 + 1, None, 3, 4], dtype="Int64")
    tables["patients"].to_parquet(folder / "patients.parquet", index=False)
    cohort = regen.read_cohort(folder)
    assert cohort.patients["patient_id"].tolist() == [str(i) for i in BIG]
    assert int(cohort.patients["bmi_code"].iloc[0]) == 2**62 + 1


def test_xlsx_integer_ids_near_two_to_the_63_are_exact_text(tmp_path):
    # openpyxl (and so pandas) writes numbers with 16 digits, as Excel keeps them; a
    # workbook written otherwise stores the integer's digits: <v>9223372036854775807</v>.
    stand_ins = [111111, 222222, 333333, 444444]
    book = workbook(tmp_path / "cohort.xlsx", big_id_tables(stand_ins))

    def exact(xml: bytes) -> bytes:
        for stand_in, big in zip(stand_ins, BIG, strict=True):
            xml = xml.replace(f"<v>{stand_in}</v>".encode(), f"<v>{big}</v>".encode())
        return xml

    for part in ("xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml"):
        rewrite_part(book, part, exact)
    assert b"<v>9223372036854775807</v>" in zipfile.ZipFile(book).read("xl/worksheets/sheet1.xml")
    cohort = regen.read_cohort(book)
    assert cohort.patients["patient_id"].tolist() == [str(i) for i in BIG]
    assert cohort.treatments["patient_id"].tolist() == [str(i) for i in BIG]


@pytest.mark.parametrize("kind, shown", [("parquet", "1.2345678901234568e+18"),
                                         ("xlsx", "1.234567890123457e+18")])  # openpyxl: 16 digits
def test_a_float_id_beyond_two_to_the_53_is_a_problem(tmp_path, kind, shown):
    tables = big_id_tables([1, 2, 3, 4])
    for name in ("patients", "treatments"):
        tables[name]["patient_id"] = [1.0, 2.0, 3.0, 1.2345678901234568e18]
    if kind == "parquet":
        folder = tmp_path / "pq"
        folder.mkdir()
        for name, frame in tables.items():
            frame.to_parquet(folder / f"{name}.parquet", index=False)
        path, files = folder, ["patients.parquet", "treatments.parquet"]
    else:
        path = workbook(tmp_path / "cohort.xlsx", tables)
        files = ["cohort.xlsx, sheet patients", "cohort.xlsx, sheet treatments"]
    with pytest.raises(CohortValidationError) as caught:
        regen.read_cohort(path)
    problems = caught.value.problems
    assert problems[["file", "row", "column", "value"]].values.tolist() == [
        [files[0], 5 if kind == "xlsx" else 4, "patient_id", shown],
        [files[1], 5 if kind == "xlsx" else 4, "patient_id", shown]]
    assert set(problems["rule"]) == {"id stored as a floating-point number of 2**53 or more, which "
                                     "cannot hold every digit (two ids may have become one)"}
    assert problems["fix"].str.startswith("store ids as text").all()


def test_parquet_index_columns_are_restored(tmp_path, tiny):
    folder = tmp_path / "pq"
    folder.mkdir()
    tables = frames()
    tables["patients"].set_index("patient_id").to_parquet(folder / "patients.parquet")
    tables["treatments"].set_index(["treatment_id", "patient_id"]).to_parquet(
        folder / "treatments.parquet")
    visits = tables["visits"]
    visits.index = pd.Index(np.arange(7) * 3 + 5)   # row numbers, not data: stored, then dropped
    visits.to_parquet(folder / "visits.parquet")
    assert "__index_level_0__" in pq.ParquetFile(folder / "visits.parquet").schema_arrow.names
    cohort, reference = regen.read_cohort(folder), regen.read_cohort(tiny)
    for name in ("patients", "treatments", "visits"):
        assert sorted(getattr(cohort, name).columns) == sorted(getattr(reference, name).columns)
    assert cohort.patients["patient_id"].tolist() == ["P1", "P2"]
    assert cohort.treatments[["treatment_id", "patient_id"]].values.tolist() == [
        ["T1", "P1"], ["T2", "P2"]]


def test_a_named_index_clashing_with_a_column_is_reported(tmp_path):
    folder = tmp_path / "pq"
    folder.mkdir()
    for name, frame in frames().items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    patients = frames()["patients"]
    patients.index = pd.Index(["P1", "P2"], name="patient_id")
    patients.to_parquet(folder / "patients.parquet")
    problem = problem_of(folder)
    assert (problem["file"], problem["column"], problem["rule"]) == (
        "patients.parquet", "patient_id", "column appears more than once")


def test_two_files_whose_names_differ_only_in_case(tmp_path):
    folder = write_cohort(tmp_path / "cohort")
    (folder / "Visits.csv").write_text(textwrap.dedent(VISITS))
    if len({p.name for p in folder.iterdir()}) < 4:
        pytest.skip("a case-insensitive file system holds one of the two")
    assert [p.name for p in input_files(folder)] == ["Visits.csv", "patients.csv",
                                                     "treatments.csv", "visits.csv"]
    problem = problem_of(folder)
    assert (problem["file"], problem["table"]) == ("Visits.csv", "visits")
    assert problem["rule"] == ("two files for one table, named alike but for case (Visits.csv "
                               "and visits.csv)")
    assert problem["fix"] == "keep one of them and move the other out of the folder"


def test_two_sheets_whose_names_differ_only_in_case(tmp_path):
    book = workbook(tmp_path / "cohort.xlsx",
                    edit=lambda book: book.copy_worksheet(book["visits"]).__setattr__("title",
                                                                                        "Visits "))
    problem = problem_of(book)
    assert (problem["file"], problem["table"], problem["rule"]) == (
        "cohort.xlsx", "visits", "two sheets for one table (visits and Visits )")


def test_formula_cells_without_a_stored_value_are_named(tmp_path):
    def formulas(book):
        book["visits"]["D3"] = "=D2*2"
        book["visits"]["D4"] = '=IF(C4="yes",1,0)'

    with pytest.raises(CohortValidationError) as caught:
        regen.read_cohort(workbook(tmp_path / "cohort.xlsx", edit=formulas))
    problems = caught.value.problems
    assert problems[["file", "row", "column", "value", "rule"]].values.tolist() == [
        ["cohort.xlsx, sheet visits", 3, "pain", "=D2*2",
         "cell D3 holds a formula without a stored value, so its value is unknown"],
        ["cohort.xlsx, sheet visits", 4, "pain", '=IF(C4="yes",1,0)',
         "cell D4 holds a formula without a stored value, so its value is unknown"]]
    assert problems["fix"].str.startswith(
        "open the workbook in your spreadsheet program and save it, so that the values of its "
        "formulas are stored").all()


def test_formula_cells_with_a_stored_value_read_that_value(tmp_path):
    book = workbook(tmp_path / "cohort.xlsx",
                    edit=lambda book: book["visits"].__setitem__("D3", "=D2*2"))
    rewrite_part(book, "xl/worksheets/sheet3.xml",
                 lambda xml: xml.replace(b"<f>D2*2</f><v />", b"<f>D2*2</f><v>9</v>"))
    cohort = regen.read_cohort(book)
    assert cohort.visits.query("treatment_id == 'T1' and day == 7")["pain"].tolist() == [9]


@pytest.mark.parametrize("table, old, new, written, known", [
    ("visits", "treatment_id,day,numb,pain", "treatment_id,day,numb,Pain score", "Pain score",
     "pain"),
    ("treatments", "treated_on,distance_mm", "treated_on,distanse_mm", "distanse_mm",
     "distance_mm"),
    ("patients", "birth_year,diabetes", "birth_year,diabetis", "diabetis", "diabetes"),
])
def test_a_near_miss_header_names_the_known_column(tmp_path, table, old, new, written, known):
    folder = write_cohort(tmp_path / "cohort", **{table: TABLE_TEXTS[table].replace(old, new)})
    with pytest.warns(regen.DataWarning) as caught:
        cohort = regen.read_cohort(folder)
    assert [str(w.message) for w in caught] == [
        f"{table}.csv: column {written!r} is not one regen knows; is it {known}? rename it to "
        "use it"]
    assert known in getattr(cohort, table).columns   # absent, so empty
    assert getattr(cohort, table)[known].isna().all()


def test_ordinary_extra_columns_do_not_warn(tmp_path):
    patients = ("patient_id,sex,birth_year,diabetes,site,weight_kg,clinic\n"
                "P1,F,1970,no,north,70,A\nP2,M,1960,yes,south,80,B\n")
    treatments = ("treatment_id,patient_id,nerve,side,treated_on,distance_mm,side_effects,operator\n"
                  "T1,P1,greater_occipital,left,2024-01-10,80,none,X\n"
                  "T2,P2,lesser_occipital,right,2024-02-01,60,bruise,Y\n")
    visits = "treatment_id,day,numb,pain,number,pain_medication,visit\n" + "".join(
        line + f",{i},no,{i}\n" for i, line in enumerate(VISITS.splitlines()[1:]))
    folder = write_cohort(tmp_path / "cohort", patients, treatments, visits)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cohort = regen.read_cohort(folder)
    assert {"site", "side_effects", "number", "pain_medication", "visit"} <= set(
        cohort.patients.columns) | set(cohort.treatments.columns) | set(cohort.visits.columns)


def test_ids_that_differ_only_in_case_warn_with_the_first_pair_and_the_count(tmp_path):
    patients = PATIENTS + "hx0001,F,1980,no\nHX0001,M,1981,no\nP9,F,1990,no\np1,M,1991,no\n"
    treatments = TREATMENTS + "T3,HX0001,supraorbital,left,2024-03-01,40\n" \
        "t3,hx0001,supraorbital,right,2024-03-01,40\n"
    with pytest.warns(regen.DataWarning) as caught:
        regen.read_cohort(write_cohort(tmp_path / "cohort", patients, treatments))
    messages = [str(w.message) for w in caught]
    assert ("patients.csv: 2 patient_id(s) are written in two ways that differ only in case "
            "(first: 'P1' on row 2 and 'p1' on row 7); regen takes them for different patients. "
            "If they are one patient, write its id the same way everywhere.") in messages
    assert ("treatments.csv: 1 treatment_id(s) are written in two ways that differ only in case "
            "(first: 'T3' on row 4 and 't3' on row 5); regen takes them for different "
            "treatments. If they are one treatment, write its id the same way everywhere."
            ) in messages


def test_an_orphan_id_that_matches_but_for_case_gets_a_hint(tmp_path):
    treatments = TREATMENTS.replace(",P1,", ",p1,").replace(",P2,", ",p2,")
    with pytest.raises(CohortValidationError) as caught:
        regen.read_cohort(write_cohort(tmp_path / "cohort", treatments=treatments))
    assert set(caught.value.problems["fix"]) == {
        "the ids match patients.csv but for upper and lower case: write each id the same way in "
        "both files"}


# ---------------------------------------------------------- C: shown literally ---

def test_control_characters_in_values_are_escaped_in_messages(tmp_path):
    visits = VISITS.replace("T1,30,yes,3", 'T1,30,yes,"\x1b[31mred\nline"')
    with pytest.raises(CohortValidationError) as caught:
        regen.read_cohort(write_cohort(tmp_path / "cohort", visits=visits))
    error = caught.value
    assert error.problems["value"].tolist() == ["\x1b[31mred\nline"]   # kept as written
    message = str(error)
    assert "\x1b" not in message
    assert "column pain, value '\\x1b[31mred\\nline'" in message.splitlines()[3]
    assert len(message.splitlines()) == 5   # the newline in the value forged no line


def test_control_characters_in_names_and_warnings_are_escaped(tmp_path):
    treatments = TREATMENTS.replace("lesser_occipital", "\x1b[2Jsciatic\x07")
    with pytest.warns(regen.DataWarning) as caught:
        cohort = regen.read_cohort(write_cohort(tmp_path / "nerve", treatments=treatments))
    warned = "\n".join(str(w.message) for w in caught) + "\n".join(cohort.warnings)
    assert "\x1b" not in warned and "\x07" not in warned
    assert "nerve(s) regen does not know: \\x1b[2jsciatic\\x07 (1)" in warned  # lower case
    assert cohort.treatments["nerve"].iloc[1] == "\x1b[2jsciatic\x07"   # the data as written
    header = "a\x1b]8;;x\x07"
    visits = f"treatment_id,day,numb,pain,{header},{header}\n" + "".join(
        line + ",1,2\n" for line in VISITS.splitlines()[1:])
    with pytest.raises(CohortValidationError) as error:
        regen.read_cohort(write_cohort(tmp_path / "header", visits=visits))
    message = str(error.value)
    assert "\x1b" not in message and "\x07" not in message
    assert "column a\\x1b]8;;x\\x07" in message
    assert error.value.problems["column"].tolist() == ["a\x1b]8;;x\x07"]


# ------------------------------------------- the workbook reader against openpyxl ---

def test_workbook_cells_read_as_openpyxl_reads_them(tmp_path):
    """The streaming reader gives every cell the value pandas (with openpyxl) gives it: text
    shared and inline, rich text, whole and decimal numbers, yes/no, dates and times in
    both date systems, errors, and gaps; formatted but empty cells are not values."""
    import datetime as dt

    from openpyxl.cell.rich_text import CellRichText, TextBlock
    from openpyxl.cell.text import InlineFont

    from regen.ledger import Notes, Problems

    rows = [["patient_id", "sex", "birth_year", "bmi", "diabetes", "smoker", "seen", "note"],
            ["P1", "F", 1970, 24.25, True, False, dt.datetime(2024, 3, 15), "plain"],
            ["P2", "M", 1961, None, False, None, dt.datetime(2024, 3, 16, 10, 30), None],
            ["P3", None, 1980.0, 1e-3, None, True, dt.date(1999, 12, 31), "é ü 日本 <&>"],
            [12345678901234, "other", None, 31.0, True, True, None, "#N/A"]]  # an error cell
    for epoch in (1900, 1904):
        book = openpyxl.Workbook()
        book.remove(book.active)
        if epoch == 1904:
            book.epoch = openpyxl.utils.datetime.MAC_EPOCH
        for name in ("patients", "treatments", "visits"):
            sheet = book.create_sheet(name)
            for row in rows:
                sheet.append(row)
        sheet = book["patients"]
        sheet["H3"] = CellRichText(["bold", TextBlock(InlineFont(b=True), " part")])
        sheet["I9"].fill = openpyxl.styles.PatternFill("solid", fgColor="FFFF00")  # no value
        sheet["B5"].number_format = "@"
        path = tmp_path / f"book{epoch}.xlsx"
        book.save(path)
        tables, _ = regen.io.read_tables(path, Problems(), Notes())
        expected = pd.read_excel(path, sheet_name="patients", dtype=object, engine="openpyxl",
                                 keep_default_na=False, na_values=[""])  # "#N/A" is text
        got = tables["patients"].frame
        assert list(got.columns) == list(expected.columns)
        assert len(got) == len(expected) == 4
        for column in expected.columns:
            want = [None if pd.isna(v) else v for v in expected[column]]
            have = [None if v is None or v is pd.NaT or (isinstance(v, float) and np.isnan(v))
                    else v for v in got[column]]
            if column == "note":  # pandas empties an error cell; regen keeps its text, which
                assert have[3] == "#N/A"  # validation then reads as missing or reports
                have[3] = None
            assert [pd.Timestamp(v) if isinstance(v, dt.date) else v for v in have] == \
                [pd.Timestamp(v) if isinstance(v, dt.date) else v for v in want], (epoch, column)
