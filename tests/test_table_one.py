"""Table 1 (Cohort.table_one): counts, statistics and missing values with known answers,
the reverse Kaplan–Meier follow-up, groups, small-cell suppression, and safe HTML and CSV."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from markupsafe import escape

import regen
from regen.baseline import MIN_COUNT, OVERALL, reverse_km, table_one_html, write_table_one
from regen.exceptions import OutputError
from tests.conftest import write_cohort

# Six patients, one treatment each. The numbness episode of T1, T3, T4 and T6 is still
# going on at the last visit (numb), that of T2 and T5 ended (not numb at the last visit).
HAND_PATIENTS = """\
patient_id,sex,birth_year,diabetes
P1,F,1960,yes
P2,F,1970,no
P3,M,1980,
P4,M,,no
P5,F,1950,
P6,M,1990,yes
"""
HAND_TREATMENTS = """\
treatment_id,patient_id,nerve,side,treated_on,distance_mm
T1,P1,greater_occipital,left,2024-01-10,40
T2,P2,greater_occipital,right,2024-01-10,50
T3,P3,greater_occipital,left,2024-01-10,
T4,P4,intercostal,left,2024-01-10,200
T5,P5,intercostal,right,2024-01-10,
T6,P6,intercostal,left,2024-01-10,220
"""
LAST = {"T1": (30, "yes"), "T2": (60, "no"), "T3": (90, "yes"), "T4": (120, "yes"),
        "T5": (150, "no"), "T6": (180, "yes")}
BASELINE_PAIN = {"T1": "8", "T2": "6", "T3": "", "T4": "7", "T5": "", "T6": "5"}


def hand_visits() -> str:
    rows = ["treatment_id,day,numb,pain"]
    for treatment, (last, numb) in LAST.items():
        rows += [f"{treatment},0,no,{BASELINE_PAIN[treatment]}", f"{treatment},7,yes,2",
                 f"{treatment},{last},{numb},3"]
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    folder = write_cohort(tmp_path_factory.mktemp("hand") / "cohort", HAND_PATIENTS,
                          HAND_TREATMENTS, hand_visits())
    return regen.read_cohort(folder)


@pytest.fixture(scope="module")
def example():
    return regen.read_cohort("data/example")


@pytest.fixture(scope="module")
def short(tmp_path_factory):
    """A simulated cohort followed for two months only: many episodes still going on at
    the last visit, so that the reverse Kaplan–Meier median is reached."""
    sim = regen.simulate.cohort(200, seed=5, schedule=(7, 30, 60))
    return regen.read_cohort(sim.write(tmp_path_factory.mktemp("short") / "cohort"))


def cell(table: pd.DataFrame, variable: str, level: str = "", statistic: str | None = None,
         column: str = OVERALL) -> str:
    rows = table.loc[(table["variable"] == variable) & (table["level"] == level)]
    if statistic is not None:
        rows = rows.loc[rows["statistic"] == statistic]
    assert len(rows) == 1, (variable, level, statistic, rows)
    return rows[column].item()


def count(text: str) -> int:
    return int(text.split(" ")[0])


# ------------------------------------------------------------- known answers --

def test_reverse_km_by_hand():
    # Ongoing episodes end follow-up (events) at 30, 90, 120 and 180; 60 and 150 are censored.
    # S(30) = 5/6, S(90) = 5/6 · 3/4 = 0.625, S(120) = 0.625 · 2/3 = 0.417, S(180) = 0:
    # the curve first falls below 0.5 at 120, below 0.75 at 90 and below 0.25 at 180.
    fit = reverse_km([30, 60, 90, 120, 150, 180], [True, False, True, True, False, True])
    assert (fit["n"], fit["events"]) == (6, 4)
    assert (fit["median"], fit["q25"], fit["q75"]) == (120.0, 90.0, 180.0)
    assert fit["ci_lower"] <= 120 <= fit["ci_upper"]
    never = reverse_km([30, 60], [False, False])                      # nothing ends follow-up
    assert np.isnan(never["median"]) and never["events"] == 0
    with pytest.raises(ValueError, match="same length"):
        reverse_km([1, 2], [True])


def test_hand_cohort_counts_statistics_and_missing_values(hand):
    table = hand.table_one(outcome="numbness", min_count=1)
    assert list(table.columns) == ["variable", "level", "statistic", "counted", OVERALL]
    assert cell(table, "patients") == "6" and cell(table, "treatments") == "6"
    # age at treatment (2024): 64, 54, 44, missing, 74, 34
    assert cell(table, "age", statistic="mean (SD)") == f"54.0 ({np.std([64, 54, 44, 74, 34], ddof=1):.1f})"
    assert cell(table, "age", statistic="median [IQR]") == "54.0 [44.0, 64.0]"
    assert cell(table, "age", "missing") == "1 (16.7%)"
    assert cell(table, "sex", "F") == "3 (50.0%)" and cell(table, "sex", "missing") == "0 (0.0%)"
    assert cell(table, "diabetes", "yes") == "2 (33.3%)"
    assert cell(table, "diabetes", "no") == "2 (33.3%)"
    assert cell(table, "diabetes", "missing") == "2 (33.3%)"
    assert cell(table, "distance_mm", "missing") == "2 (33.3%)"
    assert cell(table, "distance_mm", statistic="median [IQR]") == "125.0 [47.5, 205.0]"
    assert cell(table, "baseline_pain", statistic="mean (SD)").startswith("6.5 (")
    assert cell(table, "baseline_pain", "missing") == "2 (33.3%)"
    assert cell(table, "nerve", "greater_occipital") == "3 (50.0%)"
    # follow-up to the last visit: 30, 60, ..., 180 days
    assert cell(table, "follow_up_days", statistic="median [IQR]") == "105.0 [67.5, 142.5]"
    assert cell(table, "follow_up_days", "missing") == "0 (0.0%)"
    assert cell(table, "follow_up_reverse_km", "numbness episodes") == "6"
    assert cell(table, "follow_up_reverse_km", "ongoing at last visit") == "4"
    assert re.fullmatch(r"120 \(\d+ to \d+\)",
                        cell(table, "follow_up_reverse_km", statistic="median (95% CI)"))
    assert cell(table, "follow_up_reverse_km", statistic="IQR") == "[90, 180]"
    # never recorded: no rows, and a note says so
    assert not table["variable"].isin(["smoker", "bmi"]).any()
    assert any("smoker, bmi" in note for note in table.attrs["notes"])
    # which unit each row counts
    counted = table.drop_duplicates("variable").set_index("variable")["counted"]
    assert counted[["age", "sex", "diabetes"]].eq("patients").all()
    assert counted[["nerve", "side", "procedure", "follow_up_days"]].eq("treatments").all()


def test_hand_cohort_by_group(hand):
    table = hand.table_one(by="nerve", outcome="numbness", min_count=1)
    assert list(table.columns[4:]) == ["greater_occipital", "intercostal", OVERALL]
    assert "nerve" not in set(table["variable"])                   # the groups are the nerves
    assert cell(table, "patients", column="greater_occipital") == "3"
    assert cell(table, "sex", "M", column="intercostal") == "2 (66.7%)"
    # greater occipital: follow-up 30 (event), 60 (censored), 90 (event):
    # S(30) = 2/3, S(90) = 0 -> median 90; intercostal: 120 (event), 150, 180 (event) -> 180
    assert cell(table, "follow_up_reverse_km", statistic="median (95% CI)",
                column="greater_occipital").startswith("90 (")
    assert cell(table, "follow_up_reverse_km", statistic="median (95% CI)",
                column="intercostal").startswith("180 (")
    boolean = hand.table_one(by="diabetes", outcome="numbness", min_count=1)
    assert list(boolean.columns[4:]) == ["yes", "no", "missing", OVERALL]
    assert cell(boolean, "patients", column="missing") == "2"


def test_no_p_values():
    table = regen.read_cohort("data/example").table_one(by="diabetes")
    words = " ".join(table.columns) + " " + " ".join(table["statistic"])
    assert not re.search(r"\bp[ _-]?value|\bp\b", words, flags=re.I)


# ------------------------------------------------------------ simulated data --

def test_example_overall_agrees_with_the_tables(example):
    table = example.table_one(min_count=1)
    treatments, patients = example.treatments, example.patients
    assert count(cell(table, "treatments")) == len(treatments)
    assert count(cell(table, "patients")) == treatments["patient_id"].nunique()
    nerves = table.loc[(table["variable"] == "nerve"), OVERALL].map(count)
    assert nerves.sum() == len(treatments)
    first = treatments.sort_values("treated_on").drop_duplicates("patient_id")
    assert cell(table, "age", statistic="mean (SD)") == \
        f"{first['age'].mean():.1f} ({first['age'].std():.1f})"
    smokers = patients["smoker"].sum()
    assert count(cell(table, "smoker", "yes")) == smokers
    last = example.visits.query("day > 0").groupby("treatment_id")["day"].max()
    assert count(cell(table, "follow_up_days", "missing")) == len(treatments) - len(last)


def test_groups_add_up_to_overall(example):
    table = example.table_one(by="diabetes", min_count=1)
    counts = table.loc[table["statistic"].isin(["n", "n (%)"])].set_index(
        ["variable", "level"])[["yes", "no", OVERALL]].map(count)
    assert (counts["yes"] + counts["no"] == counts[OVERALL]).all()
    patients = example.patients.set_index("patient_id")["diabetes"]
    assert counts.loc[("patients", ""), "yes"] == int(patients.sum())


def test_reverse_km_matches_lifelines_and_each_group(short):
    lifelines = pytest.importorskip("lifelines")
    for outcome in ("numbness", "relief"):
        episodes = short.episodes(outcome)
        ongoing = episodes["status"] == "right_censored"
        fit = reverse_km(episodes["last_visit_day"], ongoing)
        peer = lifelines.KaplanMeierFitter().fit(episodes["last_visit_day"], ongoing)
        assert fit["median"] == peer.median_survival_time_
        table = short.table_one(by="diabetes", outcome=outcome, min_count=1)
        for group, flag in (("yes", True), ("no", False)):
            mine = episodes.loc[episodes["diabetes"].eq(flag).fillna(False).to_numpy(bool)]
            ended = mine["status"] != "right_censored"    # censored at the visit that saw it
            days = mine["upper"].where(ended, mine["last_visit_day"])
            median = reverse_km(days, ~ended)
            text = cell(table, "follow_up_reverse_km", statistic="median (95% CI)", column=group)
            assert text.startswith(f"{median['median']:.0f} (")


# ------------------------------------------------------------------ privacy --

def unknown_cells(table: pd.DataFrame) -> set:
    return {(i, c) for c in table.columns[4:] for i in table.index
            if table.at[i, c] == f"<{MIN_COUNT}" or table.at[i, c] == "suppressed"}


def test_small_counts_are_suppressed_and_cannot_be_worked_out(example):
    table = example.table_one(by="nerve")
    counts = table.loc[table["statistic"].isin(["n", "n (%)"])]
    shown = counts[table.columns[4:]].map(lambda t: None if not t[0].isdigit() else count(t))
    assert not ((shown > 0) & (shown < MIN_COUNT)).any().any()      # no count 1-4 printed
    hidden = unknown_cells(table)
    assert hidden, "the example has small cells by nerve"
    # every sum a reader knows has zero or at least two unknown counts
    for column in table.columns[4:]:                 # a characteristic's levels add up to n
        for variable, rows in counts.groupby("variable"):
            if variable in ("patients", "treatments", "follow_up_reverse_km") or \
                    list(rows["level"]) == ["missing"]:     # a number: its n is not shown
                continue
            unknown = [(i, column) in hidden for i in rows.index]
            assert sum(unknown) != 1, (variable, column)
    for i in counts.index:                           # the nerves add up to Overall
        if table.at[i, "counted"] == "treatments":
            assert sum((i, c) in hidden for c in table.columns[4:]) != 1, table.loc[i]


def test_a_small_level_takes_another_count_with_it(tmp_path):
    patients = "patient_id,sex,diabetes,bmi\n" + "".join(
        f"P{i},{'M' if i < 2 else 'F'},no,{25 if i in (3, 4) else ''}\n" for i in range(10))
    treatments = "treatment_id,patient_id,nerve\n" + "".join(
        f"T{i},P{i},greater_occipital\n" for i in range(10))
    visits = "treatment_id,day,numb\n" + "".join(f"T{i},0,no\nT{i},7,yes\nT{i},60,no\n"
                                                 for i in range(10))
    cohort = regen.read_cohort(write_cohort(tmp_path / "c", patients, treatments, visits))
    table = cohort.table_one(outcome="numbness")
    # M = 2 is small; F = 8 with missing = 0 would give it away, so missing (0) goes too
    assert cell(table, "sex", "M") == "<5" and cell(table, "sex", "missing") == "<5"
    assert cell(table, "sex", "F") == "8 (80.0%)"
    # BMI of 2 patients: no statistic, and its missing count would give the 2 away
    assert cell(table, "bmi", statistic="mean (SD)") == "fewer than 5 values"
    assert cell(table, "bmi", "missing") == "suppressed"
    open_table = cohort.table_one(outcome="numbness", min_count=1)
    assert cell(open_table, "sex", "M") == "2 (20.0%)"
    assert cell(open_table, "bmi", "missing") == "8 (80.0%)"
    assert cell(open_table, "bmi", statistic="mean (SD)") == "25.0 (0.0)"


def test_small_groups_are_pooled_or_left_out_of_overall(example):
    sizes = example.treatments.groupby("nerve")["patient_id"].nunique()
    assert sizes["third_occipital"] < 20 <= sizes.drop("third_occipital").min()
    # one nerve below 20 patients, alone in its pool: left out, and out of Overall too
    table = example.table_one(by="nerve", min_count=20)
    groups = list(table.columns[4:-1])
    assert groups == sorted(sizes.index[sizes >= 20])
    treatments = table.loc[table["variable"] == "treatments", groups + [OVERALL]].map(count)
    assert treatments[groups].sum(axis=1).item() == treatments[OVERALL].item() \
        == (example.treatments["nerve"] != "third_occipital").sum()
    assert any("not shown" in note for note in table.attrs["notes"])
    # one nerve passes, the others pool into a column large enough to be shown
    few = example.table_one(by="nerve", min_count=61)
    assert list(few.columns[4:]) == ["greater_occipital", "other (fewer than 61 patients each)",
                                     OVERALL]
    assert cell(few, "treatments") == str(len(example.treatments))
    with pytest.raises(ValueError, match="no group of nerve has 301 or more patients"):
        example.table_one(by="nerve", min_count=301)


def test_groups_of_the_hand_cohort(hand):
    assert list(hand.table_one(by="diabetes", outcome="numbness", min_count=2).columns[4:]) \
        == ["yes", "no", "missing", OVERALL]                     # 2 patients each
    assert list(hand.table_one(by="sex", outcome="numbness", min_count=3).columns[4:]) \
        == ["F", "M", OVERALL]                                    # 3 each
    pooled = hand.table_one(by="diabetes", outcome="numbness", min_count=3)
    assert list(pooled.columns[4:]) == ["other (fewer than 3 patients each)", OVERALL]


def test_a_cohort_too_small_to_publish_is_refused(hand):
    with pytest.raises(ValueError, match="fewer than 7 treated patients"):
        hand.table_one(min_count=7)
    with pytest.raises(ValueError, match="no group of nerve has 7 or more"):
        hand.table_one(by="nerve", min_count=7)
    with pytest.raises(ValueError, match="min_count must be a whole number"):
        hand.table_one(min_count=0)
    with pytest.raises(ValueError, match="choose one of"):
        hand.table_one(by="no_such_column")
    with pytest.raises(ValueError, match="needs a column of categories"):
        regen.read_cohort("data/example").table_one(by="bmi")
    with pytest.raises(ValueError, match="outcome must be"):
        hand.table_one(outcome="pain")


# --------------------------------------------------------------- free text --

NAMES = ("<b>x</b>", "=cmd()")


@pytest.fixture(scope="module")
def named(tmp_path_factory):
    """The example, with two nerves renamed to markup and a spreadsheet formula."""
    folder = tmp_path_factory.mktemp("named")
    for name in ("patients", "visits"):
        (folder / f"{name}.csv").write_bytes(open(f"data/example/{name}.csv", "rb").read())
    treatments = pd.read_csv("data/example/treatments.csv", dtype=str)
    treatments["nerve"] = treatments["nerve"].replace(
        {"third_occipital": NAMES[0], "supraorbital": NAMES[1]})
    rare = treatments.index[treatments["nerve"] == "lesser_occipital"][:2]
    treatments.loc[rare, "nerve"] = "=rare_note()"
    treatments.to_csv(folder / "treatments.csv", index=False)
    with pytest.warns(regen.DataWarning, match="does not know"):
        return regen.read_cohort(folder)


def test_rare_free_text_is_never_named(named):
    table = named.table_one()
    levels = set(table.loc[table["variable"] == "nerve", "level"])
    assert "=rare_note()" not in levels and "other (fewer than 5 each)" in levels
    assert set(NAMES) <= levels                                 # common enough to be named
    assert cell(table, "nerve", "other (fewer than 5 each)") == "<5"


def test_html_escapes_and_csv_neutralises_text_from_the_data(named, tmp_path):
    table = named.table_one(by="nerve")
    assert set(NAMES) <= set(table.columns)
    html = write_table_one(table, tmp_path / "table1.html").read_text(encoding="utf-8")
    assert "<b>x</b>" not in html and html.count("&lt;b&gt;x&lt;/b&gt;") >= 1
    assert "Content-Security-Policy" in html and "<script" not in html.lower()
    assert html == table_one_html(table)
    for note in table.attrs["notes"]:
        assert str(escape(note)) in html
    csv = write_table_one(table, tmp_path / "table1.csv").read_text(encoding="utf-8")
    header = csv.splitlines()[0].split(",")
    assert "'=cmd()" in header and "=cmd()" not in header
    assert not any(field.startswith(("=", "+", "@")) for line in csv.splitlines()
                   for field in line.split(","))
    back = pd.read_csv(tmp_path / "table1.csv", dtype=str, keep_default_na=False)
    assert back["<b>x</b>"].tolist() == table["<b>x</b>"].tolist()
    long = named.table_one()                        # a level, not a header
    text = write_table_one(long, tmp_path / "long.csv").read_text(encoding="utf-8")
    assert ",'=cmd()," in text


def test_the_writer_never_replaces_a_file_it_did_not_write(example, tmp_path):
    mine = tmp_path / "table1.csv"
    mine.write_text("my notes\n")
    with pytest.raises(OutputError, match="not written by regen"):
        write_table_one(example.table_one(), mine)
    assert mine.read_text() == "my notes\n"
    write_table_one(example.table_one(), mine, force=True)
    assert mine.read_text().startswith("variable,level,statistic,counted,Overall")
