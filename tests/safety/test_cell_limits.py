"""One cell, and the cohort as a whole, are bounded: long cells and budgets are refused exactly.

A. A cell longer than ``ReadLimits.max_cell_bytes`` is a problem naming file, row and
   column (or sheet and cell), in every format: an unquoted CSV field (found by the line
   scan before pandas reads the file), a quoted one holding line breaks or delimiters
   (found after parsing), an .xlsx inline string and shared string (found while the XML
   streams by), Parquet text written plain or dictionary-encoded (measured before the
   dictionary is decoded). A cell of exactly the limit loads, as written.
B. A huge cell is never copied into a message, and reading stops at it.
C. The cells, the files' bytes and the unpacked bytes are budgets for the three tables
   together, read in the order patients, treatments, visits.
D. The problems ledger lists the first :data:`~regen.ledger.MAX_LISTED_PROBLEMS`
   problems (and :data:`~regen.ledger.MAX_LISTED_CHARACTERS` of their values) and
   counts the rest, one row per file, column and fix.
E. Parquet files that no table's cell can hold (nested columns), or whose footer is
   implausibly large, are refused before their data are read; a footer that understates
   the data stops the read at the first batch beyond the budget.

Peak memory of ``read_cohort`` with the default limits on crafted cohorts that stay within
them (each alone in a fresh process, VmHWM; ``import regen`` takes 183 MB; seconds are wall
time on a loaded two-core machine, processor seconds in brackets):

==========================================================  =======  ========  =========
input                                                        seconds  peak MB   outcome
==========================================================  =======  ========  =========
visits.csv 100 MB: 10M rows × 5 of ``1`` (50M cells)         144 (46)    5,076  refused
visits.csv 100 MB: 49,999 rows × 1,000 columns of ``1``       73 (28)    2,221  refused
1M patients, 1M treatments, 10M visits (exactly 50M cells)   102 (59)    4,453  loaded
Parquet 210 kB: 10M × 5 int64                                 77 (43)    5,471  refused
xlsx 5.6 MB (850 MB of XML): 49,998 × 1,000 cells            1,209       4,817  refused
visits.csv 999 MB: 9,990 visits with 99,950-byte notes        66 (31)    5,034  loaded
1,000 MB with one quote left open                             55 (25)    1,163  refused
one quoted field of 999,999,592 bytes                         71 (29)    3,073  refused
xlsx 205 kB: a 99 kB shared string in 10,000 cells            23 (11)    4,948  loaded
Parquet 25 kB: a 99 kB dictionary value on 10,000 rows        18 (9)     5,123  loaded
``simulate.cohort(437500, seed=1)``: 5,009,835 visits         96 (40)    2,478  loaded
==========================================================  =======  ========  =========
"""

from __future__ import annotations

import re
import struct
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import regen
from regen._scan import _BLOCK_BYTES
from regen.exceptions import CohortValidationError
from regen.io import RawTable, ReadLimits
from regen.ledger import MAX_LISTED_PROBLEMS, Problems
from tests.conftest import VISITS, write_cohort
from tests.safety.test_reading import frames, problem_of, rewrite_part, workbook

#: Seconds ``read_cohort`` may take to refuse a file holding a huge cell.
SECONDS = 3.0
#: Characters a message may take, whatever the size of the cell it reports.
MESSAGE_CHARACTERS = 2_000
LONG_FIX = ("if cells really hold this much text, raise the limit with --max-cell-kb "
            "(ReadLimits(max_cell_bytes=...) in Python)")
CSV_FIX = ("check the quotes (a quote left open makes one value of many lines) and the "
           "delimiter; " + LONG_FIX)
SHEET_FIX = ("shorten that text (a follow-up table's cells hold ids, dates, numbers and short "
             "notes); " + LONG_FIX)
#: The visits with a free-text column, ``note``, whose values are valid at any length.
NOTED = "treatment_id,day,numb,pain,note\n" + "".join(
    f"{line},n{i}\n" for i, line in enumerate(VISITS.splitlines()[1:]))


def refused(path: Path, **limits) -> tuple[pd.DataFrame, str, float]:
    """The problems, the message and the seconds of a read that must fail."""
    start = time.perf_counter()
    with pytest.raises(CohortValidationError) as caught, warnings.catch_warnings():
        warnings.simplefilter("ignore", regen.DataWarning)
        regen.read_cohort(path, limits=ReadLimits(**limits) if limits else None)
    seconds = time.perf_counter() - start
    problems = caught.value.problems
    return problems.astype(object).where(problems.notna(), None), str(caught.value), seconds


def starts(text: str) -> str:
    """How a rule quotes the start of a long value: its first 80 characters, then …."""
    return f"it starts '{text[:80]}…'"


def never_parse_visits(monkeypatch) -> None:
    """Make pandas fail the test if it is asked to parse ``visits.csv``."""
    read_csv = pd.read_csv

    def parse(handle, *args, **kwargs):
        assert not str(getattr(handle, "name", handle)).endswith("visits.csv"), "visits parsed"
        return read_csv(handle, *args, **kwargs)

    monkeypatch.setattr(pd, "read_csv", parse)


def share_strings(path: Path) -> Path:
    """Rewrite an openpyxl workbook (which writes every text as an inline string) as Excel
    writes one: each text once in ``xl/sharedStrings.xml``, the cells holding its index."""
    inline = re.compile(rb'<c ([^>]*?)t="inlineStr"([^>]*)><is><t(?: [^>]*)?>(.*?)</t></is></c>',
                        re.S)
    with zipfile.ZipFile(path) as archive:
        parts = {info.filename: archive.read(info) for info in archive.infolist()}
    strings: dict[bytes, int] = {}

    def shared(match: re.Match) -> bytes:
        index = strings.setdefault(match.group(3), len(strings))
        return b'<c %st="s"%s><v>%d</v></c>' % (match.group(1), match.group(2), index)

    uses = 0
    for name in [name for name in parts if name.startswith("xl/worksheets/")]:
        parts[name], n = inline.subn(shared, parts[name])
        uses += n
    parts["xl/sharedStrings.xml"] = (
        b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="%d" '
        b'uniqueCount="%d">' % (uses, len(strings))
        + b"".join(b'<si><t xml:space="preserve">%s</t></si>' % text for text in strings)
        + b"</sst>")
    parts["xl/_rels/workbook.xml.rels"] = parts["xl/_rels/workbook.xml.rels"].replace(
        b"</Relationships>", b'<Relationship Type="http://schemas.openxmlformats.org/'
        b'officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml" '
        b'Id="rIdStrings" /></Relationships>')
    parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(
        b"</Types>", b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
        b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml" /></Types>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return path


def noted_book(path: Path, note: str, *, shared: bool = False) -> Path:
    """The tiny cohort as a workbook whose visits sheet has a ``note`` column, with ``note``
    in cell E4 (the third visit). openpyxl stops a cell at 32,767 characters, Excel's
    limit, so the text is put into the XML afterwards."""
    def edit(book):
        book["visits"]["E1"] = "note"
        book["visits"]["E4"] = "NOTE-HERE"

    book = workbook(path, edit=edit)
    if shared:
        share_strings(book)
        part = "xl/sharedStrings.xml"
    else:
        part = "xl/worksheets/sheet3.xml"
    rewrite_part(book, part, lambda xml: xml.replace(b"NOTE-HERE", note.encode()))
    return book


def parquet_cohort(folder: Path, visits: pa.Table | None = None, **options) -> Path:
    """The tiny cohort as Parquet files; ``visits`` replaces the visits table."""
    folder.mkdir(parents=True)
    for name, frame in frames().items():
        if name == "visits" and visits is not None:
            pq.write_table(visits, folder / "visits.parquet", **options)
        else:
            frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def noted_visits(note: str) -> pa.Table:
    """The visits with a text column ``note``, ``note`` on the third row."""
    notes = [f"n{i}" for i in range(7)]
    notes[2] = note
    return pa.Table.from_pandas(frames()["visits"], preserve_index=False).append_column(
        "note", pa.array(notes, pa.string()))


# ------------------------------------------------------------------- A: CSV ---

@pytest.mark.parametrize("old, new, row, column", [
    ("T1,30,yes,3", "T1,30,yes," + "9" * 200, 4, "pain"),             # last field
    ("T1,30,yes,3", "9" * 200 + ",30,yes,3", 4, "treatment_id"),       # first field
    ("T2,7,yes,2", "T2,7," + "9" * 200 + ",2", 7, "numb"),             # a middle one
    ("treatment_id,day", "9" * 200 + ",day", 1, None),                 # the header
])
def test_a_long_unquoted_csv_field_names_file_row_and_column(tmp_path, old, new, row, column):
    folder = write_cohort(tmp_path / "cohort", visits=VISITS.replace(old, new))
    assert problem_of(folder, max_cell_bytes=100) == {
        "file": "visits.csv", "table": "visits", "row": row, "column": column, "value": None,
        "rule": "value of 200 bytes, more than the limit of 100 bytes for one cell "
                f"({starts('9' * 200)})",
        "fix": CSV_FIX}


@pytest.mark.parametrize("sep, newline", [(";", "\n"), (",", "\r\n"), (",", "\r")])
def test_the_line_scan_finds_a_long_field_whatever_the_delimiter_and_line_ends(
        tmp_path, sep, newline):
    visits = VISITS.replace("T1,30,yes,3", "T1,30,yes," + "é" * 60)   # 120 bytes of UTF-8
    folder = write_cohort(tmp_path / "cohort", visits=visits.replace(",", sep).replace(
        "\n", newline))
    problem = problem_of(folder, max_cell_bytes=100)
    assert (problem["row"], problem["column"], problem["rule"]) == (
        4, "pain", f"value of 120 bytes, more than the limit of 100 bytes for one cell "
                   f"({starts('é' * 60)})")


def test_a_field_of_exactly_the_limit_loads_as_written(tmp_path):
    note = "ü" + "x" * 98   # 100 bytes
    folder = write_cohort(tmp_path / "cohort", visits=NOTED.replace("n2", note))
    cohort = regen.read_cohort(folder, limits=ReadLimits(max_cell_bytes=100))
    assert cohort.visits["note"].tolist()[2] == note
    assert problem_of(folder, max_cell_bytes=99)["rule"].startswith(
        "value of 100 bytes, more than the limit of 99 bytes for one cell")


def test_a_field_across_two_blocks_of_the_scan_is_measured_whole(tmp_path):
    """The scan reads the file in blocks of 2 MB: a 150 kB field begun 60 kB before the end
    of the first block is one field of 150 kB; a 5 MB field, longer than a block, is
    refused where it starts, without being read to its end."""
    head = "treatment_id,day,numb,pain\n"
    lines = (_BLOCK_BYTES - 60_000) // 10
    across = head + "T1,0,no,8\n" * lines + "T2,0,no," + "7" * 150_000 + "\nT2,7,yes,2\n"
    start = across.index("7777")
    assert start < _BLOCK_BYTES < start + 150_000
    problem = problem_of(write_cohort(tmp_path / "across", visits=across))
    assert (problem["row"], problem["column"], problem["rule"]) == (
        lines + 2, "pain", "value of 150,000 bytes, more than the limit of 100,000 bytes for "
                           f"one cell ({starts('7' * 100)})")
    longer = head + "T1,0,no,8\n" * 1000 + "T2,0," + "7" * 5_000_000 + ",3\nT2,7,yes,2\n"
    problem = problem_of(write_cohort(tmp_path / "longer", visits=longer))
    assert (problem["row"], problem["column"], problem["rule"]) == (
        1002, "numb", "value longer than the limit of 100,000 bytes for one cell "
                      f"({starts('7' * 100)})")


@pytest.mark.parametrize("inside", ["ab\n", "ab,", "a\r\n"])
def test_a_quoted_field_holding_line_breaks_or_delimiters_is_measured_after_parsing(
        tmp_path, inside):
    """No stretch between two delimiters or line ends is long, so the line scan cannot
    see the field; it is measured once pandas has read it (without its quotes)."""
    value = inside * 50 + "z"   # a text value loads stripped: no line break at its end
    visits = NOTED.replace(",n2\n", f',"{value}"\n')
    folder = write_cohort(tmp_path / "cohort", visits=visits)
    shown = value[:80] + f"… ({len(value):,} characters)"
    assert problem_of(folder, max_cell_bytes=len(value) - 1) == {
        "file": "visits.csv", "table": "visits", "row": 4, "column": "note", "value": None,
        "rule": f"value of {len(value)} bytes, more than the limit of {len(value) - 1} bytes "
                f"for one cell (it starts '{shown}')",
        "fix": CSV_FIX}
    cohort = regen.read_cohort(folder, limits=ReadLimits(max_cell_bytes=len(value)))
    assert cohort.visits["note"].tolist()[2] == value


def test_a_long_quoted_field_without_line_breaks_is_found_by_the_scan(tmp_path, monkeypatch):
    visits = NOTED.replace(",n2\n", ',"' + "q" * 200 + '"\n')
    folder = write_cohort(tmp_path / "cohort", visits=visits)
    never_parse_visits(monkeypatch)
    problem = problem_of(folder, max_cell_bytes=100)
    written = '"' + "q" * 200 + '"'   # measured as written, with its quotes
    assert (problem["row"], problem["column"], problem["rule"]) == (
        4, "note", "value of 202 bytes, more than the limit of 100 bytes for one cell "
                   f"({starts(written)})")


# ---------------------------------------------------------------- A: workbook ---

def test_a_long_inline_string_names_sheet_row_and_cell(tmp_path):
    book = noted_book(tmp_path / "cohort.xlsx", "x" * 200)
    assert b'<c r="E4" t="inlineStr"><is><t>xxx' in zipfile.ZipFile(book).read(
        "xl/worksheets/sheet3.xml")
    assert problem_of(book, max_cell_bytes=100) == {
        "file": "cohort.xlsx, sheet visits", "table": "visits", "row": 4, "column": None,
        "value": None,
        "rule": f"cell E4 holds more than the limit of 100 bytes for one cell ({starts('x' * 200)})",
        "fix": SHEET_FIX}


def test_a_long_shared_string_is_refused_before_any_sheet_is_read(tmp_path):
    book = noted_book(tmp_path / "cohort.xlsx", "x" * 200, shared=True)
    with zipfile.ZipFile(book) as archive:
        assert b't="inlineStr"' not in archive.read("xl/worksheets/sheet3.xml")
        strings = archive.read("xl/sharedStrings.xml")
    number = strings.split(b"<si>").index(next(s for s in strings.split(b"<si>") if b"xxx" in s))
    assert problem_of(book, max_cell_bytes=100) == {
        "file": "cohort.xlsx", "table": None, "row": None, "column": None, "value": None,
        "rule": f"shared string {number} of xl/sharedStrings.xml (the text of cells) holds more "
                f"than the limit of 100 bytes for one cell ({starts('x' * 200)})",
        "fix": SHEET_FIX}


@pytest.mark.parametrize("shared", [False, True], ids=["inline", "shared"])
def test_a_workbook_cell_of_exactly_the_limit_loads_as_written(tmp_path, shared):
    note = "ü" + "x" * 98   # 100 bytes
    book = noted_book(tmp_path / "cohort.xlsx", note, shared=shared)
    expected = pd.read_excel(book, sheet_name="visits")["note"].tolist()
    cohort = regen.read_cohort(book, limits=ReadLimits(max_cell_bytes=100))
    assert cohort.visits["note"].tolist()[2] == expected[2] == note
    assert problem_of(book, max_cell_bytes=99)["rule"].endswith(
        f"holds more than the limit of 99 bytes for one cell ({starts(note)})")


# ----------------------------------------------------------------- A: Parquet ---

@pytest.mark.parametrize("dictionary", [False, True], ids=["plain", "dictionary"])
def test_long_parquet_text_is_refused_plain_or_dictionary_encoded(tmp_path, dictionary):
    folder = parquet_cohort(tmp_path / "pq", noted_visits("x" * 200), use_dictionary=dictionary)
    chunk = pq.ParquetFile(folder / "visits.parquet").metadata.row_group(0).column(4)
    assert (chunk.path_in_schema, chunk.has_dictionary_page) == ("note", dictionary)
    assert problem_of(folder, max_cell_bytes=100) == {
        "file": "visits.parquet", "table": "visits", "row": 3, "column": "note",
        "value": None,
        "rule": "value of 200 bytes, more than the limit of 100 bytes for one cell",
        "fix": LONG_FIX}
    note = "ü" + "x" * 98   # 100 bytes
    folder = parquet_cohort(tmp_path / "exact", noted_visits(note), use_dictionary=dictionary)
    cohort = regen.read_cohort(folder, limits=ReadLimits(max_cell_bytes=100))
    assert cohort.visits["note"].tolist()[2] == note


@pytest.mark.parametrize("kind", [pa.large_string(), pa.binary()], ids=str)
def test_long_parquet_text_of_other_types_is_refused(tmp_path, kind):
    visits = pa.Table.from_pandas(frames()["visits"], preserve_index=False).append_column(
        "note", pa.array([b"x" * 200] * 7, kind))
    problem = problem_of(parquet_cohort(tmp_path / "pq", visits), max_cell_bytes=100)
    assert (problem["column"], problem["rule"]) == (
        "note", "value of 200 bytes, more than the limit of 100 bytes for one cell")


def test_a_dictionary_value_on_every_row_is_measured_before_it_is_decoded(tmp_path,
                                                                          monkeypatch):
    """A 99 kB note stored once for 20,000 rows: 123 kB on disk, 2 GB once decoded. The file
    declares its column as plain text (no Arrow schema), so only reading it
    dictionary-encoded keeps it small."""
    rows = 20_000
    visits = pa.table({
        "treatment_id": pa.array(["T1"] * rows), "day": pa.array(np.arange(rows)),
        "numb": pa.array(["no"] * rows),
        "note": pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int32)),
                                               pa.array(["n" * 99_000]))})
    folder = parquet_cohort(tmp_path / "pq", visits, store_schema=False)
    parquet = pq.ParquetFile(folder / "visits.parquet")
    assert parquet.schema_arrow.field("note").type == pa.string()
    assert parquet.metadata.row_group(0).column(3).has_dictionary_page
    assert (folder / "visits.parquet").stat().st_size < 200_000
    held, batches = [], pq.ParquetFile.iter_batches

    def reading(self, *args, **kwargs):   # the memory Arrow holds as each batch is read
        for batch in batches(self, *args, **kwargs):
            held.append(pa.total_allocated_bytes())
            yield batch

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", reading)
    problems, _, seconds = refused(folder)
    assert problems.to_dict("records") == [{
        "file": "visits.parquet", "table": "visits", "row": None, "column": None, "value": None,
        "rule": "columns that take more than 1,980.5 MB once read (each dictionary-encoded "
                "value counted at every row; reading stopped there), more than the limit of "
                "1,000.0 MB for the tables together "
                "(patients.parquet and treatments.parquet take 179 bytes)",
        "fix": "check that this is the right file; if it is, raise the limit with "
               "--max-uncompressed-mb (ReadLimits(max_uncompressed_bytes=...) in Python)"}]
    assert len(held) == 3 and max(held) < 100_000_000, held
    assert seconds < SECONDS


# ---------------------------------------------------------- B: a huge cell ---

BIG = 5_000_000


def _huge_csv(folder: Path) -> Path:
    # 200,000 rows follow the cell (which pandas must never parse: see below).
    return write_cohort(folder, visits=NOTED.replace(",n2\n", "," + "x" * BIG + "\n")
                        + "T2,60,no,1,n\n" * 200_000)


def _huge_quoted_csv(folder: Path) -> Path:
    return write_cohort(folder, visits=NOTED.replace(",n2\n", ',"' + "x\n" * (BIG // 2) + '"\n'))


def _huge_parquet(folder: Path, dictionary: bool) -> Path:
    return parquet_cohort(folder, noted_visits("x" * BIG), use_dictionary=dictionary)


HUGE = {
    "csv": _huge_csv,
    "csv-quoted-lines": _huge_quoted_csv,
    "xlsx-inline": lambda folder: noted_book(folder / "cohort.xlsx", "x" * BIG),
    "xlsx-shared": lambda folder: noted_book(folder / "cohort.xlsx", "x" * BIG, shared=True),
    "parquet-plain": lambda folder: _huge_parquet(folder, False),
    "parquet-dictionary": lambda folder: _huge_parquet(folder, True),
}


@pytest.mark.parametrize("case", HUGE)
def test_a_five_megabyte_cell_is_refused_fast_and_never_copied_into_a_message(tmp_path, case):
    problems, message, seconds = refused(HUGE[case](tmp_path / case))
    assert len(problems) == 1
    assert "limit of 100,000 bytes for one cell" in problems["rule"].iloc[0]
    assert len(message) < MESSAGE_CHARACTERS, message[:MESSAGE_CHARACTERS]
    longest = problems.map(lambda v: len(str(v)) if v is not None else 0).to_numpy().max()
    assert longest < MESSAGE_CHARACTERS
    assert seconds < SECONDS, seconds


def test_an_unquoted_huge_cell_stops_the_read_before_pandas_parses_anything(tmp_path,
                                                                              monkeypatch):
    folder = _huge_csv(tmp_path / "csv")
    never_parse_visits(monkeypatch)
    problem = problem_of(folder)
    assert (problem["file"], problem["row"], problem["column"], problem["rule"]) == (
        "visits.csv", 4, "note", "value longer than the limit of 100,000 bytes for one cell "
                                 f"({starts('x' * 100)})")


def test_a_long_value_or_column_name_is_shortened_in_the_message_kept_in_the_problems(tmp_path):
    folder = write_cohort(tmp_path / "value",
                          visits=VISITS.replace("T1,30,yes,3", "T1,30,yes," + "x" * 5000))
    problems, message, _ = refused(folder)
    assert problems["value"].tolist() == ["x" * 5000]
    assert message.splitlines()[3] == (
        f"  row 4, column pain, value '{'x' * 80}… (5,000 characters)'")
    name = "c" * 3000
    visits = "".join(line + (f",{name},{name}\n" if i == 0 else ",1,2\n")
                     for i, line in enumerate(VISITS.splitlines()))
    problems, message, _ = refused(write_cohort(tmp_path / "name", visits=visits))
    assert problems["column"].tolist() == [name]
    assert message.splitlines()[3] == f"  row 1, column {'c' * 80}… (3,000 characters)"


# ----------------------------------------------------- C: budgets for the cohort ---

# The tiny cohort's tables hold 2 × 4, 2 × 6 and 7 × 4 cells below their headers: 48.
CELLS = {"patients": 8, "treatments": 12, "visits": 28}


def _csv_cohort(folder: Path) -> Path:
    return write_cohort(folder)


def _parquet_cohort(folder: Path) -> Path:
    return parquet_cohort(folder)


@pytest.mark.parametrize("make, suffix", [(_csv_cohort, ".csv"), (_parquet_cohort, ".parquet")],
                         ids=["csv", "parquet"])
def test_the_cell_limit_is_for_the_three_tables_together(tmp_path, make, suffix):
    folder = make(tmp_path / "cohort")
    total = sum(CELLS.values())
    assert len(regen.read_cohort(folder, limits=ReadLimits(max_cells=total)).visits) == 7
    fix = ("delete empty or unused columns; if the tables really are this large, raise the "
           "limit with --max-cells (ReadLimits(max_cells=...) in Python)")
    problems, _, _ = refused(folder, max_cells=total - 1)
    assert problems.to_dict("records") == [{
        "file": f"visits{suffix}", "table": "visits", "row": None, "column": None,
        "value": None,
        "rule": f"7 rows × 4 columns, more cells than the limit of {total - 1} for the three "
                f"tables together (patients{suffix} and treatments{suffix} take 20)",
        "fix": fix}]
    # Each table may use what the ones before it left: with 19, patients take 8 of them.
    problems, _, _ = refused(folder, max_cells=19)
    assert problems[["file", "rule"]].values.tolist() == [
        [f"treatments{suffix}", "2 rows × 6 columns, more cells than the limit of 19 for the "
                                f"three tables together (patients{suffix} take 8)"],
        [f"visits{suffix}", "7 rows × 4 columns, more cells than the limit of 19 for the three "
                            f"tables together (patients{suffix} take 8)"]]
    # Each table alone fits a limit of 28: together they do not.
    assert max(CELLS.values()) == 28
    assert problem_of(folder, max_cells=28)["file"] == f"visits{suffix}"


def test_the_cell_limit_is_for_the_three_sheets_of_a_workbook_together(tmp_path):
    book = workbook(tmp_path / "cohort.xlsx")
    problem = problem_of(book, max_cells=40)   # the visits sheet alone has 7 × 4 = 28
    assert (problem["file"], problem["row"]) == ("cohort.xlsx, sheet visits", 7)
    assert problem["rule"] == (
        "values spread over 6 rows × 4 columns below the header (to cell A7), more cells than "
        "the limit of 40 for the three tables together (sheet patients and sheet treatments "
        "take 20) (the sheet declares its range as A1:D8)")


def test_a_workbook_needs_the_same_cell_limit_as_the_same_tables_in_csv(tmp_path):
    book = workbook(tmp_path / "cohort.xlsx")
    limits = ReadLimits(max_cells=sum(CELLS.values()))
    assert len(regen.read_cohort(book, limits=limits).visits) == 7
    assert problem_of(book, max_cells=sum(CELLS.values()) - 1)["file"] == (
        "cohort.xlsx, sheet visits")


def test_the_file_size_limit_is_for_the_tables_files_together(tmp_path):
    folder = write_cohort(tmp_path / "cohort")
    sizes = {p.name: p.stat().st_size for p in folder.iterdir()}
    assert sizes == {"patients.csv": 62, "treatments.csv": 144, "visits.csv": 103}
    assert len(regen.read_cohort(folder, limits=ReadLimits(max_file_bytes=309)).visits) == 7
    assert problem_of(folder, max_file_bytes=308) == {
        "file": "treatments.csv", "table": "treatments", "row": None, "column": None,
        "value": "309 bytes",
        "rule": "files larger together than the limit of 308 bytes for the tables' files "
                "(treatments.csv 144 bytes, visits.csv 103 bytes, patients.csv 62 bytes)",
        "fix": "check that this is the right file; if it is, raise the limit with "
               "--max-file-mb (ReadLimits(max_file_bytes=...) in Python)"}


def test_the_unpacked_limit_is_for_the_parquet_files_together(tmp_path):
    folder = parquet_cohort(tmp_path / "pq")
    declared = {name: sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
                for name in ("patients", "treatments", "visits")
                for meta in [pq.ParquetFile(folder / f"{name}.parquet").metadata]}
    limit = declared["treatments"] + 10   # treatments alone fit; after patients they do not
    problem = problem_of(folder, max_uncompressed_bytes=limit)
    assert (problem["file"], problem["column"]) == ("treatments.parquet", None)
    assert re.fullmatch(
        rf"data that unpack to {declared['treatments']:,} bytes, more than the limit of "
        rf"{limit:,} bytes for the tables together \(patients\.parquet take \d+ bytes\)",
        problem["rule"]), problem["rule"]


def test_a_shared_string_counts_at_every_cell_that_uses_it(tmp_path):
    """One 5,000-byte shared string in seven cells: 35 kB of cells from 27 kB of parts."""
    def notes(book):
        book["visits"]["E1"] = "note"
        for row in range(2, 9):
            book["visits"][f"E{row}"] = "w" * 5000

    book = share_strings(workbook(tmp_path / "cohort.xlsx", edit=notes))
    with zipfile.ZipFile(book) as archive:
        assert archive.read("xl/sharedStrings.xml").count(b"w" * 5000) == 1
        assert sum(part.file_size for part in archive.infolist()) < 30_000
    assert len(regen.read_cohort(book, limits=ReadLimits(max_uncompressed_bytes=40_000)).visits) == 7
    assert problem_of(book, max_uncompressed_bytes=30_000) == {
        "file": "cohort.xlsx, sheet visits", "table": "visits", "row": 7, "column": None,
        "value": None,
        "rule": "cells whose text comes to 30,068 bytes (to cell E7; a shared string counts at "
                "every cell), more than the limit of 30,000 bytes for the tables together "
                "(sheet patients and sheet treatments take 176 bytes)",
        "fix": "check that this is the right file; if it is, raise the limit with "
               "--max-uncompressed-mb (ReadLimits(max_uncompressed_bytes=...) in Python)"}


# ----------------------------------------------------------- D: problems ledger ---

@pytest.fixture(scope="module")
def many_problems(tmp_path_factory) -> tuple[pd.DataFrame, str]:
    """150,000 visits whose day is "x": the problems and the message."""
    folder = write_cohort(tmp_path_factory.mktemp("many") / "cohort",
                          visits="treatment_id,day,numb,pain\n" + "T1,x,no,5\n" * 150_000)
    problems, message, _ = refused(folder)
    return problems, message


def test_problems_beyond_the_first_hundred_thousand_are_counted_in_one_row(many_problems):
    problems, message = many_problems
    assert MAX_LISTED_PROBLEMS == 100_000
    assert len(problems) == MAX_LISTED_PROBLEMS + 1
    listed, counted = problems.iloc[:-1], problems.iloc[-1].to_dict()
    assert listed["row"].tolist() == list(range(2, MAX_LISTED_PROBLEMS + 2))
    assert set(listed["rule"]) == {"not a whole number"} and set(listed["value"]) == {"x"}
    assert counted == {
        "file": "visits.csv", "table": "visits", "row": None, "column": "day", "value": None,
        "rule": "50,000 more problems not listed (the list stops at 100,000); the first: not a "
                "whole number",
        "fix": "write a whole number such as 30, or leave the cell empty"}
    assert len(message) < MESSAGE_CHARACTERS


def test_the_message_counts_every_problem_including_those_not_listed(many_problems):
    message = many_problems[1]
    assert message.splitlines()[0].endswith(": 150,000 problems; nothing was analysed. Fix them "
                                            "and run again.")
    assert "... and 149,980 more:" in message
    assert "  99,980 × visits.csv, column day: not a whole number" in message
    assert ("  50,000 × visits.csv, column day: 50,000 more problems not listed (the list stops "
            "at 100,000)") in message
    assert "lists the first 100,000 one by one and counts the rest" in message
    assert "lists every one" not in message


def _raw(rows: int, file: str = "visits.csv") -> RawTable:
    frame = pd.DataFrame({"day": ["x"] * rows})
    return RawTable(name="visits", file=file, frame=frame, rows=np.arange(rows) + 2)


def test_the_ledger_lists_up_to_its_limit_and_counts_the_rest_by_file_column_and_fix():
    problems = Problems(limit=5)
    raw = _raw(10)
    problems.add_rows(raw, np.ones(10, bool), "day", raw.frame["day"], "not a whole number",
                      "fix the day")
    problems.add_rows(raw, np.arange(10) < 3, "pain", raw.frame["day"], "not a number",
                      "fix the pain")
    problems.add("patients.csv", "patients", 3, "sex", "Q", "not F, M or other", "fix the sex")
    problems.add("patients.csv", "patients", 4, "sex", "R", "not F, M or other", "fix the sex")
    frame = problems.frame()
    assert frame["row"].iloc[:5].tolist() == [2, 3, 4, 5, 6]
    assert frame.iloc[5:].astype(object).where(frame.iloc[5:].notna(), None).values.tolist() == [
        ["visits.csv", "visits", None, "day", None,
         "5 more problems not listed (the list stops at 5); the first: not a whole number",
         "fix the day"],
        ["visits.csv", "visits", None, "pain", None,
         "3 more problems not listed (the list stops at 5); the first: not a number",
         "fix the pain"],
        ["patients.csv", "patients", None, "sex", None,
         "2 more problems not listed (the list stops at 5); the first: not F, M or other",
         "fix the sex"]]
    # Which rows have a problem is kept for all of them, listed or not.
    assert problems.flagged("visits", "day").tolist() == list(range(2, 12))
    assert problems.flagged("patients", "sex").tolist() == [3, 4]


def test_the_ledger_stops_listing_values_at_its_character_budget(monkeypatch):
    monkeypatch.setattr(regen.ledger, "MAX_LISTED_CHARACTERS", 10)
    problems = Problems()
    raw = RawTable(name="visits", file="visits.csv", frame=pd.DataFrame({"pain": ["abcd"] * 5}),
                   rows=np.arange(5) + 2)
    problems.add_rows(raw, np.ones(5, bool), "pain", raw.frame["pain"], "not a number", "fix")
    frame = problems.frame()
    assert frame["value"].tolist() == ["abcd", "abcd", None]   # 8 characters of the 10
    assert frame["rule"].iloc[-1] == ("3 more problems not listed (the list stops at 2); the "
                                      "first: not a number")


@pytest.mark.slow
def test_long_bad_values_are_listed_up_to_fifty_million_characters(tmp_path):
    """600 values of 99 kB, each a problem: 505 listed (49,995,000 characters), 95 counted."""
    folder = write_cohort(tmp_path / "cohort", visits="treatment_id,day,numb,pain\n"
                          + ("T1,1,no," + "x" * 99_000 + "\n") * 600)
    problems, message, _ = refused(folder)
    assert len(problems) == 506
    assert problems["value"].iloc[:-1].str.len().sum() == 505 * 99_000 <= 50_000_000
    assert problems["rule"].iloc[-1] == ("95 more problems not listed (the list stops at 505); "
                                         "the first: not a number")
    assert len(message) < 4_000   # 20 values shown, 80 characters each


# ----------------------------------------------------------- E: Parquet shapes ---

@pytest.mark.parametrize("column, values, kind", [
    ("Tags", pa.array([[1, 2]] * 7), "list<element: int64>"),
    ("Extra Info", pa.array([{"a": 1}] * 7), "struct<a: int64>"),
    ("m", pa.array([[("a", 1)]] * 7, pa.map_(pa.string(), pa.int64())),
     "map<string, int64 ('m')>"),
])
def test_a_nested_parquet_column_is_refused_naming_the_column(tmp_path, column, values, kind):
    visits = pa.Table.from_pandas(frames()["visits"], preserve_index=False).append_column(
        column, values)
    assert problem_of(parquet_cohort(tmp_path / "pq", visits)) == {
        "file": "visits.parquet", "table": "visits", "row": None,
        "column": column.lower().replace(" ", "_"), "value": None,
        "rule": f"column of {kind}, which a table's cell cannot hold",
        "fix": "write the column as text, numbers or dates"}


def test_a_parquet_footer_over_32_mb_is_refused_before_it_is_read(tmp_path):
    folder = write_cohort(tmp_path / "cohort", visits=None)
    (folder / "visits.parquet").write_bytes(
        b"PAR1" + b"\0" * 100 + struct.pack("<I", 40_000_000) + b"PAR1")
    assert problem_of(folder) == {
        "file": "visits.parquet", "table": "visits", "row": None, "column": None, "value": None,
        "rule": "not a readable Parquet file (ValueError: its footer takes 40.0 MB; a table's "
                "takes a few KB)",
        "fix": "write the table again, or export it as CSV"}



def _varint(n: int, length: int | None = None) -> bytes:
    """``n`` as a Thrift varint, padded to ``length`` bytes with continuation bytes of 0."""
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n >> 7 else 0))
        n >>= 7
        if not n:
            break
    while length is not None and len(out) < length:
        out[-1] |= 0x80
        out.append(0)
    return bytes(out)


def test_a_footer_that_understates_the_data_stops_the_read_at_the_first_batch_beyond(
        tmp_path, monkeypatch):
    """The footer's sizes can lie: 200,000 notes of 100 bytes (20 MB once read) whose row
    groups declare 1,000 bytes each. The read stops at the first batch beyond the limit,
    not after the whole file (a 294 kB file made so took 5.6 GB before)."""
    folder = parquet_cohort(tmp_path / "pq", pa.Table.from_pandas(frames()["visits"],
                                                                  preserve_index=False))
    path, rows = folder / "visits.parquet", 200_000
    schema = pa.schema([("treatment_id", pa.string()), ("day", pa.int64()), ("note", pa.string())])
    with pq.ParquetWriter(path, schema, compression="zstd", use_dictionary=False,
                          store_schema=False) as writer:
        writer.write_table(pa.table({"treatment_id": ["T1"] * rows,
                                     "day": np.arange(rows) % 1800,
                                     "note": [f"{k:010d}" + "z" * 90 for k in range(rows)]},
                                    schema=schema), row_group_size=1_000)
    meta = pq.ParquetFile(path).metadata
    sizes = {meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)}
    sizes |= {meta.row_group(i).column(j).total_uncompressed_size
              for i in range(meta.num_row_groups) for j in range(3)}
    data = bytearray(path.read_bytes())
    length = struct.unpack("<I", data[-8:-4])[0]
    footer = bytes(data[-8 - length:-8])
    for size in sorted(s for s in sizes if s >= 50_000):
        encoded = _varint(size << 1)   # zigzag of a positive number
        footer = footer.replace(encoded, _varint(1_000 << 1, len(encoded)))
    data[-8 - length:-8] = footer
    path.write_bytes(bytes(data))
    meta = pq.ParquetFile(path).metadata
    assert sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)) < 1_000_000
    read, batches = [], pq.ParquetFile.iter_batches

    def counting(self, *args, **kwargs):
        for batch in batches(self, *args, **kwargs):
            read.append(len(batch))
            yield batch

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", counting)
    problem = problem_of(folder, max_uncompressed_bytes=5_000_000)
    assert problem["file"] == "visits.parquet"
    assert problem["rule"].startswith("columns that take more than 7.7 MB once read")
    assert "reading stopped there" in problem["rule"]
    assert read[2:] == [65_536]   # patients, treatments, then one batch of visits only
