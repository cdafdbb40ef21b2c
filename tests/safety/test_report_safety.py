"""Rules 3 and 6: the report carries no markup from the data, and no published group
identifies a patient.

Text from the data (nerve and procedure names, file names, the title) that holds
``<script>``, ``"><img src=x onerror=...>`` or ``<svg/onload=...>`` is shown as text: the
parsed HTML holds only the template's own elements and attributes. A group is shown only
with ``min_group`` treatments and ``min_patients`` different patients, and the totals
printed cannot give a hidden group's size by subtraction.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import regen
import regen.tables
from regen.report import relief_report

from .conftest import ROOT

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
SVG = "<svg/onload=alert(1)>"


class _Elements(HTMLParser):
    """Every element, attribute and text node of a page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.sources: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for name, value in attrs:
            self.attributes.add(name)
            if name in ("src", "href"):
                self.sources.append(value)

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser


#: What the template itself uses; anything else came from the data.
TEMPLATE_TAGS = {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3",
                 "p", "section", "div", "table", "thead", "tbody", "tr", "th", "td", "figure",
                 "img", "figcaption", "strong", "ul", "li", "code"}
TEMPLATE_ATTRIBUTES = {"id", "lang", "charset", "http-equiv", "content", "name", "class", "colspan",
                       "style", "alt", "src"}


def _assert_inert(html: str) -> _Elements:
    page = _parse(html)
    assert page.tags <= TEMPLATE_TAGS, page.tags - TEMPLATE_TAGS
    assert page.attributes <= TEMPLATE_ATTRIBUTES, page.attributes - TEMPLATE_ATTRIBUTES
    assert all(s.startswith("data:image/png;base64,") for s in page.sources)
    return page


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A simulated cohort whose nerve and procedure names are markup, as a workbook whose
    file name is markup too."""
    sim = regen.simulate.cohort(150, seed=21)
    treatments = sim.treatments.copy()
    names = {"greater_occipital": SCRIPT, "infrapatellar_saphenous": IMG,
             "anterior_femoral_cutaneous": SVG}
    treatments["nerve"] = treatments["nerve"].replace(names)
    gon = treatments.index[treatments["nerve"] == SCRIPT]
    treatments.loc[gon[: len(gon) // 2], "procedure"] = "<b onmouseover=alert(2)>x</b>"
    treatments.loc[gon[len(gon) // 2:], "procedure"] = "cryo"
    folder = tmp_path_factory.mktemp("hostile")
    dataclasses.replace(sim, treatments=treatments).write(folder, format="xlsx")
    workbook = folder / f"{SVG.replace('/', '')}.xlsx"
    (folder / "cohort.xlsx").rename(workbook)
    with pytest.warns(regen.DataWarning):  # unknown nerve names
        cohort = regen.read_cohort(workbook)
    return cohort


def test_markup_in_the_data_is_shown_as_text(hostile, tmp_path):
    content = relief_report(hostile, tmp_path / "report.html", n_bootstrap=20,
                            title=f"Relief {SCRIPT}")
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    page = _assert_inert(html)
    text = " ".join(page.text)
    assert SCRIPT in text and f"Relief {SCRIPT}" in text  # the nerve name and the title
    assert "onerror=alert(1)>" in text and "onload=alert(1)>" in text
    assert "<b onmouseover=alert(2)>x</b>" in text  # the procedure table
    assert content["by_procedure"], "the hostile procedure names are in a table"
    assert "&lt;script&gt;" in html and "<script" not in html


def test_the_report_forbids_scripts_and_requests(hostile, tmp_path):
    relief_report(hostile, tmp_path / "report.html", n_bootstrap=20)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    policies = [line for line in html.splitlines() if "Content-Security-Policy" in line]
    assert len(policies) == 1
    policy = policies[0]
    assert "default-src 'none'" in policy and "img-src data:" in policy
    assert "script-src" not in policy and "unsafe-eval" not in policy
    head = html[: html.index("</head>")]
    assert head.index("Content-Security-Policy") < head.index("<title>")


TEXT = st.text(alphabet=st.sampled_from(list("<>\"'&/=` ;:(){}!abcx-_") + ["\u202e", "\x1b"]),
               min_size=1, max_size=24).filter(lambda s: s.strip(" -_"))


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(nerve=TEXT, procedure=TEXT, title=TEXT)
def test_no_element_or_attribute_ever_comes_from_the_data(nerve, procedure, title,
                                                          tmp_path_factory):
    """Random strings of HTML metacharacters as a nerve, a procedure and the title."""
    sim = regen.simulate.cohort(40, seed=4)
    treatments = sim.treatments.copy()
    rows = treatments.index[treatments["nerve"] == treatments["nerve"].value_counts().index[0]]
    treatments.loc[rows, "nerve"] = nerve
    treatments.loc[rows[::2], "procedure"] = procedure
    treatments.loc[rows[1::2], "procedure"] = "cryo"
    folder = tmp_path_factory.mktemp("property")
    dataclasses.replace(sim, treatments=treatments).write(folder / "cohort")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", regen.DataWarning)  # an unknown nerve name
        cohort = regen.read_cohort(folder / "cohort")
    content = relief_report(cohort, folder / "r.html", n_bootstrap=0, min_group=5,
                            min_patients=2, title=title, progress=False)
    page = _assert_inert((folder / "r.html").read_text(encoding="utf-8"))
    assert title in " ".join(page.text)
    assert any(not row["suppressed"] and row["nerve"] != "other nerves"
               and row["nerve"] not in regen.tables.KNOWN_NERVES for row in content["by_nerve"])


# ----------------------------------------------------------------- privacy --

@pytest.fixture(scope="module")
def concentrated(tmp_path_factory):
    """Intercostal: 19 treatments of ONE patient. Greater occipital: 12 treatments with
    decompression, all from 3 patients, beside many plain ones."""
    sim = regen.simulate.cohort(150, seed=21)
    treatments = sim.treatments.copy()
    intercostal = treatments["nerve"] == "intercostal"
    treatments.loc[intercostal, "patient_id"] = treatments.loc[intercostal, "patient_id"].iloc[0]
    gon = treatments.index[treatments["nerve"] == "greater_occipital"]
    treatments.loc[gon, "procedure"] = "cryo"
    few = sorted(treatments.loc[gon, "patient_id"].unique())[:3]
    chosen = gon[:12]
    treatments.loc[chosen, "procedure"] = "cryo_with_decompression"
    treatments.loc[chosen, "patient_id"] = [few[i % 3] for i in range(12)]
    folder = tmp_path_factory.mktemp("concentrated")
    dataclasses.replace(sim, treatments=treatments).write(folder)
    with warnings.catch_warnings():  # patients left without a treatment, visits censored
        warnings.simplefilter("ignore", regen.DataWarning)
        return regen.read_cohort(folder)


def test_one_patient_treated_many_times_is_one_patient(concentrated, tmp_path):
    content = relief_report(concentrated, tmp_path / "report.html", n_bootstrap=20)
    rows = {row["nerve"]: row for row in content["by_nerve"]}
    assert rows["intercostal"]["suppressed"]
    assert rows["intercostal"]["note"] == "fewer than 5 patients"
    assert rows["intercostal"]["treatments"] is None and rows["intercostal"]["patients"] is None
    assert not any(r["nerve"] == "intercostal" for r in content["still_relieved"])
    assert not [sentence for sentence in content["sentences"] if "intercostal" in sentence]
    assert not any(r["nerve"] == "intercostal" for r in content["by_procedure"])


def test_totals_count_only_the_groups_shown(concentrated, tmp_path):
    content = relief_report(concentrated, tmp_path / "report.html", n_bootstrap=20)
    shown = [r for r in content["by_nerve"] if not r["suppressed"]]
    treatments = concentrated.treatments
    published = treatments.loc[treatments["nerve"].isin([r["nerve"] for r in shown])]
    assert content["data"]["treatments"] == sum(r["treatments"] for r in shown) == len(published)
    assert content["data"]["patients"] == published["patient_id"].nunique()
    assert content["data"]["treatments"] < len(treatments)  # the hidden 19 are not in it
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert f"{len(published)} treated nerves" in html and f"{len(treatments)} treated" not in html
    document = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert document["privacy"] == {"min_group": 10, "min_patients": 5,
                                   "rule": content["privacy"]["rule"]}
    assert "at least 10 treatments and at least 5 different patients" in html


def test_a_procedure_of_few_patients_hides_the_whole_split(concentrated, tmp_path):
    """12 decompressions from 3 patients: not shown, and so neither is the plain procedure
    of that nerve (its count would give the other's by subtraction)."""
    strict = relief_report(concentrated, tmp_path / "a" / "report.html", n_bootstrap=20)
    assert not [r for r in strict["by_procedure"] if r["nerve"] == "greater_occipital"]
    loose = relief_report(concentrated, tmp_path / "b" / "report.html", n_bootstrap=20,
                          min_patients=3)
    split = [r for r in loose["by_procedure"] if r["nerve"] == "greater_occipital"]
    assert sorted(r["procedure"] for r in split) == ["cryo", "cryo_with_decompression"]


def test_the_command_line_takes_min_patients(cli, tmp_path):
    folder = tmp_path / "c"
    regen.simulate.cohort(60, seed=8).write(folder)
    result = cli("report", folder, "-o", tmp_path / "out" / "report.html", "--n-bootstrap", 20,
                 "--min-patients", 1000)
    assert result.exit_code == 0, result.output
    assert "not shown (fewer than 1000 patients)" in result.stdout
    document = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert document["settings"]["min_patients"] == 1000
    assert all(row["suppressed"] for row in document["by_nerve"])


# -------------------------------------- the groups behind each number, too ---

@pytest.fixture(scope="module")
def example():
    return regen.read_cohort(ROOT / "data" / "example")


def test_durations_are_shown_only_for_enough_responders(example, tmp_path):
    """At threshold 0.8 (pain down by 80%) few treatments respond: a nerve shown for its
    treatments (38 of anterior femoral cutaneous) has 8 responders, too few to publish how
    long their relief lasted; greater occipital (36 responders, 31 patients) has enough."""
    content = relief_report(example, tmp_path / "report.html", n_bootstrap=20, threshold=0.8)
    rows = {row["nerve"]: row for row in content["by_nerve"]}
    relief = example.episodes("relief", threshold=0.8)
    sizes = relief.groupby("nerve")["patient_id"].agg(["size", "nunique"])
    for nerve, row in rows.items():
        enough = sizes.loc[nerve, "size"] >= 10 and sizes.loc[nerve, "nunique"] >= 5
        assert (row["relief_note"] == "") == enough, nerve
        assert (row["relief_median_days"] is not None) == enough, nerve
        assert any(cell["nerve"] == nerve for cell in content["still_relieved"]) == enough
    assert not rows["anterior_femoral_cutaneous"]["relief_median_days"]
    assert rows["greater_occipital"]["relief_median_days"] is not None
    sentence = next(s for s in content["sentences"] if "anterior femoral" in s)
    assert "Too few treatments of the anterior femoral cutaneous nerve gave relief" in sentence


def test_counts_are_whole_numbers_when_a_nerve_is_hidden(example, tmp_path):
    content = relief_report(example, tmp_path / "report.html", n_bootstrap=20, min_group=20)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "third_occipital" in content["suppressed"]
    assert "Of 37 treatments" in html and ".0 treatments" not in html
    assert "<td>38</td><td>24</td>" in html
    table = (tmp_path / "report_by_nerve.csv").read_text(encoding="utf-8")
    assert ",38,24," in table and ",38.0," not in table
    document = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert isinstance(document["by_nerve"][0]["treatments"], int)


def test_small_at_risk_counts_are_not_printed(example):
    import matplotlib.pyplot as plt

    curves = regen.turnbull(example.episodes("relief"), by="nerve")
    for smallest in (None, 5):
        ax = regen.plot.recovery(curves, at_risk_below=smallest)
        table = ax.child_axes[0]
        cells = [t.get_text() for t in table.texts]
        plt.close(ax.figure)
        small = [c for c in cells if c in ("1", "2", "3", "4")]
        if smallest is None:
            assert small, "the example has small counts late in follow-up"
        else:
            assert small == [] and "<5" in cells


def test_an_id_in_a_published_name_stops_the_report(tmp_path):
    sim = regen.simulate.cohort(60, seed=5)
    treatments = sim.treatments.copy()
    leaked = treatments["patient_id"].iloc[0]
    treatments["nerve"] = treatments["nerve"].replace({"greater_occipital": leaked})
    folder = tmp_path / "cohort"
    dataclasses.replace(sim, treatments=treatments).write(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", regen.DataWarning)
        cohort = regen.read_cohort(folder)
    with pytest.raises(regen.CohortValidationError, match="would be published") as refused:
        relief_report(cohort, tmp_path / "out" / "report.html", n_bootstrap=20, min_group=5,
                      min_patients=2)
    problem = refused.value.problems.iloc[0]
    assert problem["column"] == "nerve" and problem["value"] == leaked.lower()
    assert not (tmp_path / "out" / "report.html").exists()


def test_an_id_that_is_an_ordinary_word_does_not_stop_the_report(tmp_path, cli):
    sim = regen.simulate.cohort(60, seed=5)
    renamed = {sim.patients["patient_id"].iloc[0]: "nerve", sim.patients["patient_id"].iloc[1]: "CI"}
    tables = {name: getattr(sim, name).replace({"patient_id": renamed})
              for name in ("patients", "treatments")}
    folder = tmp_path / "cohort"
    dataclasses.replace(sim, **tables).write(folder)
    result = cli("report", folder, "-o", tmp_path / "out" / "report.html", "--n-bootstrap", 20)
    assert result.exit_code == 0, result.output
