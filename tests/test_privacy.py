"""Privacy: no identifier or free text in any report output, small cells suppressed, and
CSV exports that a spreadsheet cannot run as formulas."""

from __future__ import annotations

import re
import shutil

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest

import regen
from regen._write import neutralise as spreadsheet_safe
from regen.report import relief_report

NOTE = "Seen by Dr Jane Roe, lives at 12 Elm Street"
RARE = "jane_roe_special_block"
FORMULA = "=HYPERLINK(\"http://example.invalid\",\"x\")"


@pytest.fixture(scope="module")
def marked(tmp_path_factory):
    """data/example with a free-text note on every treatment and two rare free-text nerves."""
    folder = tmp_path_factory.mktemp("cohort")
    for name in ("patients", "treatments", "visits"):
        shutil.copy(f"data/example/{name}.csv", folder / f"{name}.csv")
    treatments = pd.read_csv(folder / "treatments.csv", dtype=str)
    treatments["notes"] = NOTE
    treatments.loc[treatments.index[:2], "nerve"] = RARE
    treatments.loc[treatments.index[2], "nerve"] = FORMULA
    treatments.to_csv(folder / "treatments.csv", index=False)
    with pytest.warns(regen.DataWarning):
        return folder, regen.read_cohort(folder)


def test_report_holds_no_identifier_and_no_free_text(marked, tmp_path):
    _, cohort = marked
    content = relief_report(cohort, tmp_path / "report.html", n_bootstrap=20)
    ids = set(cohort.treatments["patient_id"]) | set(cohort.treatments["treatment_id"])
    for path in (p for p in tmp_path.rglob("*") if p.is_file()):   # leaflets too
        # Figures are base64 data: random letters, not text anyone reads.
        text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", path.read_text(encoding="utf-8"))
        assert not ids & set(re.findall(r"[A-Za-z0-9_.\-]+", text)), path.name
        for secret in ("jane", "roe", "elm street", "hyperlink", RARE):
            assert secret not in text.lower(), (path.name, secret)
    other = [row for row in content["by_nerve"] if row["nerve"] == "other nerves"]
    assert other and other[0]["suppressed"] and "2 other nerve name(s)" in other[0]["note"]


def test_csv_exports_cannot_run_formulas(marked, tmp_path):
    folder, _ = marked
    from click.testing import CliRunner

    from regen.cli import main

    out = tmp_path / "episodes.csv"
    result = CliRunner().invoke(main, ["episodes", str(folder), "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert any("'=hyperlink" in line.lower() for line in lines)
    assert not any(re.search(r"(^|,)\"?=", line) for line in lines)


def test_spreadsheet_safe_leaves_numbers_alone():
    frame = pd.DataFrame({"text": ["=1+1", "+x", "-y", "@z", "ok", None], "n": [-1.5, 2, 3, 4, 5, 6]})
    safe = spreadsheet_safe(frame)
    assert safe["text"].tolist()[:5] == ["'=1+1", "'+x", "'-y", "'@z", "ok"]
    assert safe["text"].isna().iloc[5]
    assert safe["n"].tolist() == frame["n"].tolist()


def test_problems_file_is_escaped(tmp_path):
    from click.testing import CliRunner

    from regen.cli import main
    from tests.conftest import write_cohort

    folder = write_cohort(tmp_path / "bad", visits="treatment_id,day,pain\nT1,0,=2+3\n")
    problems = tmp_path / "problems.csv"
    result = CliRunner().invoke(main, ["validate", str(folder), "--problems", str(problems)])
    assert result.exit_code == 1
    text = problems.read_text(encoding="utf-8")
    assert "'=2+3" in text and ",=2+3" not in text
