"""Rule 5: the terminal and the figures show text from the data literally.

A nerve name holding an ANSI escape sequence is printed as the characters ``\\x1b[31m``,
never sent raw (it would recolour, clear or retitle the terminal); a nerve named
``a$\\x$b`` is drawn as written, not parsed as math (which stopped the report with a
ParseFatalException).
"""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

import regen
from regen._write import literal, printable

ESCAPE = "\x1b[2J\x1b[31mred"
MATH = "a$\\x$b"


def _cohort_with(tmp_path, name: str, *, nerve: str = "greater_occipital"):
    sim = regen.simulate.cohort(80, seed=17)
    treatments = sim.treatments.assign(nerve=sim.treatments["nerve"].replace({nerve: name}))
    folder = tmp_path / "cohort"
    # Written as a user's program would: regen's own writer would neutralise nothing here.
    folder.mkdir()
    for table, frame in (("patients", sim.patients), ("treatments", treatments),
                         ("visits", sim.visits)):
        frame.to_csv(folder / f"{table}.csv", index=False)
    return folder


def test_an_escape_sequence_in_a_nerve_name_is_printed_escaped(cli, tmp_path):
    folder = _cohort_with(tmp_path, ESCAPE)
    result = cli("fit", "recovery", folder, "--formula", "~ nerve")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    assert "\\x1b[2j\\x1b[31mred" in result.stdout  # the (lower-cased) name, literally
    assert "warning:" in result.stderr and "\\x1b[2j" in result.stderr  # unknown nerve warning


def test_an_escape_sequence_in_a_bad_value_is_printed_escaped(cli, tmp_path):
    folder = _cohort_with(tmp_path, "greater_occipital")
    visits = (folder / "visits.csv").read_text().splitlines()
    head = visits[0].split(",")
    fields = visits[1].split(",")
    fields[head.index("pain")] = f'"{ESCAPE}\nsecond line"'
    visits[1] = ",".join(fields)
    (folder / "visits.csv").write_text("\n".join(visits) + "\n")
    result = cli("validate", folder)
    assert result.exit_code == 1
    assert "\x1b" not in result.output
    assert "\\x1b[2J\\x1b[31mred\\nsecond line" in result.stderr


def test_literal_and_printable():
    assert literal("a\x1b[31mb\nc\td\u202ee") == "a\\x1b[31mb\\nc\\td\\u202ee"
    assert printable("line\nnext\tcol\x1b[2J\x07\x9b") == "line\nnext\tcol\\x1b[2J\\x07\\x9b"
    assert literal("ordinary text, é, 日本") == "ordinary text, é, 日本"


def test_math_text_in_a_nerve_name_is_drawn_as_written(tmp_path):
    folder = _cohort_with(tmp_path, MATH)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", regen.DataWarning)
        cohort = regen.read_cohort(folder)
    content = regen.report.relief_report(cohort, tmp_path / "out" / "report.html",
                                         n_bootstrap=20)
    assert any(row["nerve"] == MATH and not row["suppressed"] for row in content["by_nerve"])
    curves = regen.turnbull(cohort.episodes("numbness"), by="nerve")
    ax = regen.plot.recovery(curves)
    png, svg = regen.plot.save(ax, tmp_path / "curves")
    plt.close(ax.figure)
    assert f">{MATH}<" in svg.read_text(encoding="utf-8")  # drawn as text, not as math
    assert png.stat().st_size > 5000


def test_math_parsing_is_off_whoever_made_the_text(tmp_path):
    """A label added outside regen's style (an analysis script's title) is drawn literally
    too when regen saves the figure."""
    figure, ax = plt.subplots()
    ax.set_title(MATH)
    ax.set_yticks([0, 1], [MATH, "$\\frac{"])  # broken math: used to stop the drawing
    (svg,) = regen.plot.save(figure, tmp_path / "f", formats=("svg",))
    plt.close(figure)
    text = svg.read_text(encoding="utf-8")
    assert text.count(MATH) >= 1 and "$\\frac{" in text


@pytest.mark.parametrize("name", ["nerve\x1b]0;title\x07", "a\u202eb"])
def test_figure_labels_escape_control_characters(tmp_path, name):
    folder = _cohort_with(tmp_path, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", regen.DataWarning)
        cohort = regen.read_cohort(folder)
    fit = regen.fit_recovery("~ nerve", cohort.episodes("numbness"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph for a raw control character warns
        ax = regen.plot.forest(fit)
        (svg,) = regen.plot.save(ax, tmp_path / "forest", formats=("svg",))
    plt.close(ax.figure)
    shown = literal(name.lower().replace("_", " "))
    assert shown in svg.read_text(encoding="utf-8").replace("&#x27;", "'")


def test_a_model_files_text_is_printed_escaped_by_predict(cli, tmp_path):
    folder = _cohort_with(tmp_path, ESCAPE)
    model = tmp_path / "model.json"
    assert cli("fit", "recovery", folder, "--formula", "~ nerve",
               "--save", model).exit_code == 0
    result = cli("predict", "--model", model, "--nerve", "bogus")
    assert result.exit_code == 2
    assert "\x1b" not in result.output and "\\x1b[2j\\x1b[31mred" in result.stderr
