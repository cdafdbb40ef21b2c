"""The report and its leaflets as a browser draws and prints them (headless Chromium).

Skipped where no Chromium or Chrome is installed (``apt-get install chromium``); the
pages are drawn by ``docs/report/screenshots.py``, whose images are committed in docs/report.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import regen
from regen.report import relief_report

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("screenshots", ROOT / "docs/report/screenshots.py")
shots = importlib.util.module_from_spec(spec)
spec.loader.exec_module(shots)

pytestmark = pytest.mark.skipif(shots.browser() is None, reason="no headless Chromium here")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    relief_report(regen.read_cohort(ROOT / "data" / "example"), folder / "report.html",
                  n_bootstrap=20, progress=False)
    return folder


def test_each_leaflet_prints_on_one_page(report, tmp_path):
    for leaflet in sorted((report / "leaflets").glob("*.html")):
        printed = shots.pdf(leaflet, tmp_path / f"{leaflet.stem}.pdf")
        assert shots.pages(printed) == 1, leaflet.name


def test_the_report_prints_and_fits_a_phone(report, tmp_path):
    from PIL import Image

    assert shots.pages(shots.pdf(report / "report.html", tmp_path / "report.pdf")) >= 2
    phone = shots.screenshot(report / "report.html", tmp_path / "phone.png", 390, 2600)
    pixels = np.asarray(Image.open(phone).convert("L"))
    assert pixels.shape[1] == 390
    assert pixels[:, -6:].min() > 240      # nothing runs off the right edge: tables scroll
    desktop = shots.screenshot(report / "report.html", tmp_path / "desktop.png", 1280, 1600)
    assert np.asarray(Image.open(desktop).convert("L")).std() > 10   # a drawn page, not blank
