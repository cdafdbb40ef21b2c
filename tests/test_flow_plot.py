"""The flow diagram (regen.plot.flow): its boxes say cohort.flow()'s numbers, each exclusion
has a side box with its reasons, and text from the data is drawn literally."""

from __future__ import annotations

import io
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest

import regen
from regen import plot
from tests.conftest import PATIENTS, VISITS, write_cohort


@pytest.fixture(scope="module")
def example():
    return regen.read_cohort("data/example")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def boxes(ax) -> list:
    """The boxes' texts (not the arrows), top to bottom (the order they are drawn)."""
    return [t for t in ax.texts if not isinstance(t, matplotlib.text.Annotation)]


def drawn(ax) -> list[str]:
    return [t.get_text() for t in boxes(ax)]


def numbers(flow: pd.DataFrame, step: str, outcome: str = "") -> dict[str, int]:
    rows = flow.loc[(flow["step"] == step) & (flow["outcome"] == outcome)]
    return dict(zip(rows["reason"], rows["count"].astype(int), strict=True))


@pytest.mark.parametrize("outcome", ["relief", "numbness"])
def test_the_boxes_say_the_flow_numbers(example, outcome):
    flow = example.flow()
    ax = plot.flow(example, outcome=outcome)
    texts = drawn(ax)
    assert texts == ax.flow_boxes["text"].tolist()
    one = {step: sum(numbers(flow, step).values())
           for step in ("patients", "patients_with_treatment", "treatments", "visits",
                        "visits_analysed")}
    assert texts[0] == f"Patients\nn = {one['patients']}"
    assert texts[1] == (f"Treatments (treated nerves)\nn = {one['treatments']} in "
                        f"{one['patients_with_treatment']} patients")
    assert texts[2] == f"Visits analysed\nn = {one['visits_analysed']} of {one['visits']} recorded"
    excluded = numbers(flow, "treatments_excluded", outcome)
    episodes = numbers(flow, "episodes", outcome)
    total = numbers(flow, "episodes_total", outcome)[""]
    last = texts[-1].splitlines()
    assert last[1] == f"n = {total}" and sum(episodes.values()) == total
    assert [int(line.rsplit(": ", 1)[1]) for line in last[2:]] == list(episodes.values())
    sides = ax.flow_boxes.query("column == 'side'")
    if outcome == "relief":
        assessed = numbers(flow, "assessed_for_response", outcome)[""]
        assert f"Treatments assessed for response\nn = {assessed}" in texts
        no_response = sides.set_index("box").loc["no_response", "text"]
        assert no_response == f"No response\nn = {excluded.pop('no_response')}"
        assert "relief ended between two visits" in texts[-1]
    side = sides.loc[sides["box"].isin(["not_assessed", "treatments_excluded"])]
    lines = side["text"].item().splitlines()
    assert lines[1] == f"n = {sum(excluded.values())}"
    assert {line.rsplit(": ", 1)[0]: int(line.rsplit(": ", 1)[1]) for line in lines[2:]} == \
        {reason.replace("_", " "): n for reason, n in excluded.items()}
    # one arrow into each main box but the first, one into each side box
    arrows = [child for child in ax.get_children()
              if isinstance(child, matplotlib.text.Annotation)]
    main = (ax.flow_boxes["column"] == "main").sum()
    assert len(arrows) == main - 1 + len(sides)


def test_the_main_column_adds_up(example):
    boxes = plot.flow(example, outcome="relief").flow_boxes.set_index("box")["count"]
    assert boxes["treatments"] - boxes["not_assessed"] == boxes["assessed_for_response"]
    assert boxes["assessed_for_response"] - boxes["no_response"] == boxes["episodes"]


def test_visits_and_patients_left_out_have_side_boxes(tmp_path):
    folder = write_cohort(tmp_path / "c", patients=PATIENTS + "P3,F,1980,no\n",
                          visits=VISITS + "T1,7,yes,2\n")
    with pytest.warns(regen.DataWarning):
        cohort = regen.read_cohort(folder)
    boxes = plot.flow(cohort, outcome="numbness").flow_boxes.set_index("box")
    assert boxes.loc["patients_without_treatment", "text"] == "No treatment recorded\nn = 1"
    assert boxes.loc["visits_excluded", "text"] == "Visits excluded\nn = 1\nduplicate visit: 1"
    assert boxes.loc["visits_analysed", "text"] == "Visits analysed\nn = 7 of 8 recorded"
    assert "treatments_excluded" not in boxes.index             # nothing left out: no box
    assert boxes.loc["episodes", "text"].endswith("numbness faded between two visits: 2")


def test_text_from_the_data_is_drawn_literally(example):
    flow = example.flow()
    odd = pd.DataFrame([("treatments_excluded", "numbness", r"a$\x$_b", 2),
                        ("treatments_excluded", "numbness", "\x1b[31mred", 1)],
                       columns=flow.columns)
    ax = plot.flow(pd.concat([flow, odd], ignore_index=True), outcome="numbness")
    side = ax.flow_boxes.set_index("box").loc["treatments_excluded", "text"]
    assert r"a$\x$ b: 2" in side.splitlines() and "\\x1b[31mred: 1" in side.splitlines()
    assert all(not t.get_parse_math() for t in ax.texts)
    buffer = io.BytesIO()
    ax.figure.savefig(buffer, format="png")       # outside regen's writer: "$\x$" is no math
    assert len(buffer.getvalue()) > 1000
    assert re.search(r"n = \d+", side)


def test_options_reach_the_boxes_and_the_axes_is_returned(example):
    _, given = plt.subplots()
    ax = plot.flow(example, outcome="numbness", ax=given, fontsize=9, color="navy")
    assert ax is given
    assert {t.get_fontsize() for t in boxes(ax)} == {9}
    assert {t.get_color() for t in boxes(ax)} == {"navy"}
    before = dict(matplotlib.rcParams)
    plot.flow(example.flow())                                   # the table itself works too
    assert {k for k, v in matplotlib.rcParams.items() if before.get(k) != v} == set()


def test_bad_input_is_refused_in_words(example):
    with pytest.raises(ValueError, match="outcome must be"):
        plot.flow(example, outcome="pain")
    with pytest.raises(ValueError, match="Cohort.flow"):
        plot.flow(pd.DataFrame({"step": ["patients"]}))
