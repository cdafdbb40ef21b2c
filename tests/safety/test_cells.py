"""Rule 4: no cell regen writes is a live spreadsheet formula.

A cohort whose nerve names, extra column header and values start with ``= + - @`` (and the
full-width ``＝``) goes through every command that writes tables; every field of every CSV
(values, headers, index labels) either is a number or does not start like a formula, and
the xlsx writer stores no formula cell.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import warnings
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

import regen
from regen._write import FORMULA_STARTS, Outputs, neutralise

from .conftest import ROOT

HOSTILE_NERVE = '=HYPERLINK("http://example.invalid","x")'
HEADER = "=cmd"
VALUES = ["=1+1", "+1", "@SUM(A1)", "-x", "\uff1d1+1", "fine"]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def live_cells(path: Path) -> list[tuple[int, str]]:
    """Fields of a CSV file that a spreadsheet would run as a formula: (line, field)."""
    found = []
    with path.open(newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.reader(handle), start=1):
            found += [(line, field) for field in row
                      if field.startswith(FORMULA_STARTS) and not _is_number(field)]
    return found


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    sim = regen.simulate.cohort(60, seed=7)
    treatments = sim.treatments.copy()
    treatments["nerve"] = treatments["nerve"].replace({"greater_occipital": HOSTILE_NERVE})
    treatments[HEADER] = [VALUES[i % len(VALUES)] for i in range(len(treatments))]
    folder = tmp_path_factory.mktemp("hostile") / "cohort"
    folder.mkdir()
    # Written as a user's program would (regen's own writer would neutralise them).
    for name, table in (("patients", sim.patients), ("treatments", treatments),
                        ("visits", sim.visits)):
        table.to_csv(folder / f"{name}.csv", index=False)
    return folder


def _quiet(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True)


def test_the_hostile_cohort_really_is_hostile(hostile):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", regen.DataWarning)
        cohort = regen.read_cohort(hostile)
    assert HEADER in cohort.treatments.columns
    assert set(VALUES) <= set(cohort.treatments[HEADER])
    assert HOSTILE_NERVE.lower() in set(cohort.treatments["nerve"])


def test_every_table_of_the_demo_and_the_report_is_inert(hostile, tmp_path, cli):
    out = tmp_path / "demo"
    result = cli("demo", "--data", hostile, "--out", out)
    assert result.exit_code == 0, result.output
    tables = sorted(out.rglob("*.csv"))
    names = {p.name for p in tables}
    assert {"numbness_episodes.csv", "exclusions.csv", "summary_by_nerve.csv",
            "npmle_quantiles_by_nerve.csv", "aft_relief_predictions.csv",
            "report_by_nerve.csv", "report_still_relieved.csv"} <= names
    for path in tables:
        assert live_cells(path) == [], path.name
    episodes = pd.read_csv(out / "numbness_episodes.csv", dtype=str)
    assert "'" + HEADER in episodes.columns  # the header, neutralised
    assert {"'=1+1", "'+1", "'@SUM(A1)", "'-x", "'\uff1d1+1", "fine"} <= set(episodes["'" + HEADER])
    summary = (out / "summary_by_nerve.csv").read_text(encoding="utf-8")
    assert "'=hyperlink" in summary  # an index label
    report = (out / "report_by_nerve.csv").read_text(encoding="utf-8")
    assert "'=hyperlink" in report


def test_episodes_exclusions_and_problems_are_inert(hostile, tmp_path, cli):
    result = cli("episodes", hostile, "-o", tmp_path / "e.csv", "--exclusions",
                 tmp_path / "x.csv")
    assert result.exit_code == 0, result.output
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("patients", "treatments"):
        (broken / f"{name}.csv").write_bytes((hostile / f"{name}.csv").read_bytes())
    visits = pd.read_csv(hostile / "visits.csv", dtype=str)
    visits.loc[0, "pain"] = "=2+3"
    visits.loc[1, "numb"] = "@maybe"
    visits.to_csv(broken / "visits.csv", index=False)
    result = cli("validate", broken, "--problems", tmp_path / "p.csv")
    assert result.exit_code == 1
    problems = pd.read_csv(tmp_path / "p.csv", dtype=str)
    assert {"'=2+3", "'@maybe"} <= set(problems["value"])
    for name in ("e.csv", "x.csv", "p.csv"):
        assert live_cells(tmp_path / name) == [], name


def test_analysis_tables_are_inert(hostile, tmp_path):
    completed = _quiet([sys.executable, str(ROOT / "analyses" / "episode_overview.py"), "--data",
                        str(hostile), "--out", str(tmp_path)])
    assert completed.returncode == 0, completed.stderr
    overview = tmp_path / "episode_overview.csv"
    assert "'=hyperlink" in overview.read_text(encoding="utf-8")
    for path in tmp_path.glob("*.csv"):
        assert live_cells(path) == [], path.name


def test_the_workbook_writer_stores_no_formula(tmp_path):
    frame = pd.DataFrame({HEADER: VALUES, "n": range(len(VALUES))})
    path = Outputs().write_workbook({"sheet": frame}, tmp_path / "t.xlsx")
    sheet = openpyxl.load_workbook(path)["sheet"]
    cells = [cell for row in sheet.iter_rows() for cell in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    assert sheet["A1"].value == "'" + HEADER and sheet["A2"].value == "'=1+1"
    assert [sheet.cell(row=i + 2, column=2).value for i in range(len(VALUES))] == list(range(6))


def test_neutralise_leaves_numbers_booleans_and_dates_alone():
    frame = pd.DataFrame({
        "text": ["=1", "-2", "ok", None], "number": [-1.5, 2.0, -3.0, 4.0],
        "flag": [True, False, True, False], "when": pd.to_datetime(["2024-01-01"] * 4),
        "mixed": ["=x", -1.0, 3, None], "nerve": pd.Categorical(["@a", "b", "b", "b"]),
    }, index=pd.Index(["=i", "j", "k", "l"], name="+name"))
    safe = neutralise(frame)
    assert safe["text"].tolist()[:3] == ["'=1", "'-2", "ok"] and pd.isna(safe["text"].iloc[3])
    assert safe["number"].tolist() == frame["number"].tolist()
    assert safe["flag"].tolist() == frame["flag"].tolist()
    assert safe["when"].tolist() == frame["when"].tolist()
    assert safe["mixed"].tolist()[:3] == ["'=x", -1.0, 3]
    assert safe["nerve"].tolist() == ["'@a", "b", "b", "b"]
    assert safe.index.tolist() == ["'=i", "j", "k", "l"] and safe.index.name == "'+name"
    assert frame.loc["=i", "text"] == "=1"  # the input is not changed
