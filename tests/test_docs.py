"""Every example in the documentation runs: a README that drifts from the code fails here.

The ```python blocks of README.md, data/README.md, analyses/README.md and docs/*.md run
as written, in a folder holding a copy of the example cohort at ``data/example``. Each
command of a ```sh block runs too, with ``path/to/cohort`` read as that copy and usage
brackets (``[--out DIR]``) dropped (``[--bootstrap N]`` run with 20, ``[--n-sim N]`` with
2); ``make`` lines are what CI itself runs. The studies docs/ quotes (hundreds of simulated
cohorts) run in the slow suite, with two cohorts.
```text blocks are drawings and pseudo-code, not run.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "data" / "README.md", ROOT / "analyses" / "README.md",
        *sorted((ROOT / "docs").glob("*.md"))]
#: Usage options that are run with a small value rather than dropped: the command shows the
#: option works, without the full bootstrap the script's own tests already run.
QUICK_OPTIONS = {"[--bootstrap N]": "--bootstrap 20", "[--n-sim N]": "--n-sim 2"}
#: Options of the studies docs/ quotes, and what the slow suite runs them with.
STUDY_SIZES = {"--cohorts": "2", "--bootstrap": "19", "--replicates": "3", "--n-sim": "2"}


def blocks(language: str) -> list[tuple[str, str]]:
    """(where, text) of every fenced block of ``language`` in the documentation."""
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(rf"^```{language}\n(.*?)^```$", text, flags=re.M | re.S):
            line = text[:match.start()].count("\n") + 1
            found.append((f"{path.relative_to(ROOT)}:{line}", match.group(1)))
    return found


def commands() -> list[tuple[str, str]]:
    """(where, command) of every shell line to run; comments and make lines left out."""
    found = []
    for where, text in blocks("sh"):
        for line in text.splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith(("#", "make ")):
                found.append((where, line))
    return found


@pytest.fixture
def folder(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "data" / "example", tmp_path / "data" / "example")
    shutil.copytree(ROOT / "data" / "plans", tmp_path / "data" / "plans")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_there_are_examples_to_run():
    assert len(blocks("python")) >= 2 and len(commands()) >= 8


@pytest.mark.parametrize(("where", "code"), blocks("python"), ids=[w for w, _ in blocks("python")])
def test_python_blocks_run(where, code, folder):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        exec(compile(code, where, "exec"), {"__name__": "__docs__"})
    finally:
        plt.close("all")


def argv(command: str) -> list[str]:
    """The command as run here: regen and the scripts by this Python, placeholders filled."""
    for usage, small in QUICK_OPTIONS.items():
        command = command.replace(usage, small)
    command = re.sub(r"\s*\[[^\]]*\]", "", command).replace("path/to/cohort", "data/example")
    words = shlex.split(command)
    if words[0] in (".venv/bin/regen", "regen"):
        return [sys.executable, "-m", "regen.cli", *words[1:]]
    if words[0] == ".venv/bin/python":
        script = ROOT / words[1]
        return [sys.executable, str(script), *words[2:]]
    raise AssertionError(f"no rule to run {command!r}")


def run(command: str, folder: Path) -> None:
    result = subprocess.run(argv(command), cwd=folder, capture_output=True, text=True,
                            timeout=600, env={**__import__("os").environ, "MPLBACKEND": "Agg"})
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"


QUICK = [(w, c) for w, c in commands() if not w.startswith("docs/")]
#: The commands of each block of docs/, run in order in one folder: a later one may read
#: what an earlier one wrote (a saved model).
STUDIES: dict[str, list[str]] = {}
for _where, _command in commands():
    if _where.startswith("docs/"):
        STUDIES.setdefault(_where, []).append(_command)


@pytest.mark.parametrize(("where", "command"), QUICK, ids=[c for _, c in QUICK])
def test_shell_commands_run(where, command, folder):
    run(command, folder)


@pytest.mark.slow
@pytest.mark.parametrize("where", list(STUDIES))
def test_the_studies_docs_quote_run(where, folder):
    for command in STUDIES[where]:
        words = shlex.split(command)
        for option, small in STUDY_SIZES.items():
            if option in words:
                words[words.index(option) + 1] = small
        run(shlex.join(words), folder)


def test_the_example_regenerates_as_data_readme_says(folder):
    """data/README.md's command writes the example cohort byte for byte."""
    (command,) = [c for w, c in QUICK if w.startswith("data/")]
    run(command, folder)
    for table in ("patients", "treatments", "visits"):
        assert (folder / "data" / "example" / f"{table}.csv").read_bytes() == \
            (ROOT / "data" / "example" / f"{table}.csv").read_bytes()


def test_the_gallery_shows_every_figure_the_demo_draws():
    from regen.cli import DEMO_FIGURES, GALLERY

    gallery = (ROOT / "docs" / "figures.md").read_text(encoding="utf-8")
    assert gallery == GALLERY.format(where="figures/"), "docs/figures.md is the demo's gallery"
    for stem in DEMO_FIGURES:
        assert f"](figures/{stem}.png)" in gallery
        assert (ROOT / "docs" / "figures" / f"{stem}.png").stat().st_size > 10_000
