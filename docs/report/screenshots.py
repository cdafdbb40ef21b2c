"""Screenshots of the practice report (desktop and phone widths) and its leaflets printed to
PDF, by headless Chromium: how the report looks to the people who read it.

Run:  python docs/report/screenshots.py [--data data/example] [--out docs/report]

It writes ``report_desktop.png`` (1280 px wide), ``report_phone.png`` (390 px),
``report.pdf`` and ``leaflet_greater_occipital.pdf`` (the first nerve's leaflet, printed).
``tests/test_report_browser.py`` runs the same functions and checks the pages.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def browser() -> str | None:
    """The headless browser on this machine, or None."""
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def _run(arguments: list[str], page: Path) -> None:
    command = [browser(), "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
               "--no-first-run", *arguments, page.resolve().as_uri()]
    subprocess.run(command, check=True, capture_output=True, timeout=120,
                   env={**os.environ, "HOME": tempfile.gettempdir()})


def screenshot(page: Path, target: Path, width: int, height: int) -> Path:
    """``page`` drawn ``width`` px wide into a PNG of ``height`` px."""
    _run([f"--screenshot={target.resolve()}", f"--window-size={width},{height}"], page)
    return target


def pdf(page: Path, target: Path) -> Path:
    """``page`` printed to PDF as the browser prints it (the page's print styles apply)."""
    _run([f"--print-to-pdf={target.resolve()}", "--no-pdf-header-footer"], page)
    return target


def pages(document: Path) -> int:
    """How many pages a PDF has."""
    return len(re.findall(rb"/Type\s*/Page(?!s)", document.read_bytes()))


def main(argv: list[str] | None = None) -> None:
    import regen
    from regen.report import relief_report

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/example")
    parser.add_argument("--out", default="docs/report", type=Path)
    args = parser.parse_args(argv)
    if browser() is None:
        raise SystemExit("no Chromium or Chrome found: install chromium to draw the pages")
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.html"
        relief_report(regen.read_cohort(args.data), report, progress=False)
        args.out.mkdir(parents=True, exist_ok=True)
        screenshot(report, args.out / "report_desktop.png", 1280, 3000)
        screenshot(report, args.out / "report_phone.png", 390, 5200)
        pdf(report, args.out / "report.pdf")
        leaflet = sorted((Path(folder) / "leaflets").glob("greater_occipital.html"))[0]
        pdf(leaflet, args.out / "leaflet_greater_occipital.pdf")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
