"""The practice report: content, small-group suppression, no identifiers, and a real browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest

import regen
from regen.report import relief_report


class _Parser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.sources, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        for key in ("src", "href"):
            if key in attrs:
                self.sources.append(attrs[key])

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def cohort():
    return regen.read_cohort("data/example")


@pytest.fixture(scope="module")
def report(cohort, tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    content = relief_report(cohort, folder / "report.html", n_bootstrap=40, min_group=20)
    return folder, content


def test_report_structure_and_content(cohort, report):
    folder, content = report
    html = (folder / "report.html").read_text(encoding="utf-8")
    parser = _Parser()
    parser.feed(html)
    text = " ".join(parser.text)
    # Self-contained: figures are data URIs, nothing is fetched.
    assert parser.sources and all(s.startswith("data:image/png;base64,") for s in parser.sources)
    assert not re.search(r"https?://", html)
    assert parser.tags.count("img") == 2 and "table" in parser.tags
    counts = cohort.treatments.groupby("nerve").size()
    for nerve, n in counts.items():
        assert nerve.replace("_", " ") in text
        row = next(r for r in content["by_nerve"] if r["nerve"] == nerve)
        assert row["suppressed"] == (n < 20)
    assert "third occipital" in " ".join(content["suppressed"]).replace("_", " ")
    assert "After half of the treatments of the greater occipital nerve that gave relief" in text
    assert "patients treated" not in text          # durations count treatments, not patients
    assert "Relief lasts, weeks" in text and "Week 16" in text and ", days" not in text
    assert "95% CI (95% confidence interval)" in re.sub(r"\s+", " ", text)
    assert "Methods and provenance" in text and regen.__version__ in text
    for source in cohort.sources:
        assert source.sha256 in text


def test_no_identifier_anywhere(cohort, report):
    folder, _ = report
    ids = set(cohort.treatments["patient_id"]) | set(cohort.treatments["treatment_id"])
    for path in folder.rglob("*.*"):                      # the leaflets too
        words = set(re.findall(r"[A-Za-z0-9_.\-]+", path.read_text(encoding="utf-8")))
        assert not ids & words, path.name


def test_json_and_csv_hold_the_same_numbers(report):
    folder, content = report
    document = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    table = pd.read_csv(folder / "report_by_nerve.csv")
    shown = table.loc[~table["suppressed"]].set_index("nerve")
    for row in document["by_nerve"]:
        if row["suppressed"]:
            assert row["relief_median_days"] is None if "relief_median_days" in row else True
            continue
        assert row["relief_median_days"] == pytest.approx(shown.loc[row["nerve"],
                                                                   "relief_median_days"])
        assert row["responder_rate_ci_lower"] < row["responder_rate"] < row["responder_rate_ci_upper"]
    weeks = pd.read_csv(folder / "report_still_relieved.csv")
    assert sorted(weeks["week"].unique()) == [4, 8, 12, 16]
    assert set(weeks["nerve"]) == set(shown.index)


def test_every_group_too_small_still_gives_a_report(cohort, tmp_path):
    content = relief_report(cohort, tmp_path / "r.html", min_group=10_000, n_bootstrap=20)
    assert all(r["suppressed"] for r in content["by_nerve"])
    assert "No nerve has enough treatments" in (tmp_path / "r.html").read_text(encoding="utf-8")


def _browser() -> str | None:
    return next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)


@pytest.mark.skipif(_browser() is None, reason="no headless Chromium installed")
def test_renders_in_a_real_browser(report, tmp_path):
    folder, _ = report
    shot = tmp_path / "shot.png"
    subprocess.run([_browser(), "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", "--window-size=1100,2400", f"--screenshot={shot}",
                    (folder / "report.html").as_uri()], check=True, timeout=120,
                   capture_output=True)
    from matplotlib import image

    pixels = image.imread(shot)
    assert pixels.shape[0] == 2400 and pixels.shape[1] == 1100
    # Not a blank page: text and figures make a good share of the pixels non-white.
    ink = (pixels[..., :3].mean(axis=2) < 0.9).mean()
    assert ink > 0.02, ink


def test_a_leaflet_per_nerve_shown_in_the_reports_numbers(report):
    folder, content = report
    shown = [row for row in content["by_nerve"] if not row["suppressed"]]
    leaflets = sorted((folder / "leaflets").glob("*.html"))
    assert [p.stem for p in leaflets] == sorted(row["nerve"] for row in shown)
    assert set(content["files"]) >= set(leaflets)
    row = next(r for r in shown if r["nerve"] == "greater_occipital")
    parser = _Parser()
    parser.feed((folder / "leaflets" / "greater_occipital.html").read_text(encoding="utf-8"))
    text = " ".join(parser.text)
    assert f"{row['responder_rate']:.0%} of the treatments of the greater occipital nerve" in text
    assert f"{row['responders']} of {row['assessed']}" in text
    assert f"it lasted {row['relief_median_days'] / 7:.0f} weeks or more" in text
    assert "@page" in (folder / "leaflets" / "greater_occipital.html").read_text()
    assert "95% range" in text and "counts treatments, not patients" in text
    assert not (folder / "leaflets" / "third_occipital.html").exists()   # suppressed, no leaflet


def test_a_leaflet_escapes_the_title(cohort, tmp_path):
    content = relief_report(cohort, tmp_path / "r" / "report.html", n_bootstrap=20,
                            title="<b>Clinic</b>", min_group=30)
    leaflet = (tmp_path / "r" / "leaflets" / "greater_occipital.html").read_text()
    assert "&lt;b&gt;Clinic&lt;/b&gt;" in leaflet and "<b>Clinic" not in leaflet
    assert all(p.parent.name == "leaflets" for p in content["files"] if "leaflets" in str(p))


def test_counts_are_whole_numbers_when_a_nerve_is_hidden(tmp_path):
    """regen simulate -n 60 --seed 4 hides a small nerve; its empty counts once made the
    others print as 28.0 and 29.0 | 20.0."""
    cohort_folder = regen.simulate.cohort(60, seed=4).write(tmp_path / "cohort")
    content = relief_report(regen.read_cohort(cohort_folder), tmp_path / "r" / "report.html",
                            n_bootstrap=20)
    assert any(row["suppressed"] for row in content["by_nerve"])
    parser = _Parser()
    parser.feed((tmp_path / "r" / "report.html").read_text(encoding="utf-8"))
    text = " ".join(parser.text)
    assert not re.search(r"\b\d+\.0 (treatments|patients|\|)", text)
    for row in content["by_nerve"]:
        for count in ("treatments", "patients", "assessed", "responders"):
            assert row.get(count) is None or isinstance(row[count], int), (row["nerve"], count)
    table = pd.read_csv(tmp_path / "r" / "report_by_nerve.csv", dtype=str, keep_default_na=False)
    assert not table["treatments"].str.contains(".", regex=False).any()


def test_a_foreign_file_where_a_leaflet_goes_stops_the_report_before_any_write(cohort, tmp_path):
    (tmp_path / "leaflets").mkdir()
    (tmp_path / "leaflets" / "greater_occipital.html").write_text("the practice's own page")
    with pytest.raises(regen.OutputError, match="greater_occipital.html"):
        relief_report(cohort, tmp_path / "report.html", n_bootstrap=20)
    assert not (tmp_path / "report.html").exists()
    assert (tmp_path / "leaflets" / "greater_occipital.html").read_text() == "the practice's own page"
