"""Rule 1 and 2: an input is never written over, a file regen did not write is never replaced
silently, two outputs never share a path, and every write is atomic.

Each refused case exits 2 (a usage error) naming both paths, and leaves every file of the
cohort and of the output folder byte for byte as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import regen
from regen._write import MANIFEST, Outputs, atomic_open

from .conftest import EXAMPLE, ROOT, digests


def _refused(result, *names: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for name in names:
        assert name in result.stderr, (name, result.stderr)


# ------------------------------------------------------- an input, never ---

@pytest.mark.parametrize("target", ["visits.csv", "../cohort/treatments.csv", "link.csv"])
def test_episodes_never_writes_over_an_input(cli, cohort_copy, target):
    (cohort_copy.parent / "link.csv").symlink_to(cohort_copy / "patients.csv")
    before = digests(cohort_copy)
    output = cohort_copy.parent / "link.csv" if target == "link.csv" else cohort_copy / target
    result = cli("episodes", cohort_copy, "-o", output)
    input_name = {"visits.csv": "visits.csv", "link.csv": "patients.csv"}.get(target,
                                                                           "treatments.csv")
    _refused(result, str(output), str(cohort_copy / input_name), "is an input of this command")
    assert digests(cohort_copy) == before


def test_the_exclusions_file_is_checked_too(cli, cohort_copy, tmp_path):
    before = digests(cohort_copy)
    result = cli("episodes", cohort_copy, "-o", tmp_path / "ep.csv", "--exclusions",
                 cohort_copy / "visits.csv")
    _refused(result, str(cohort_copy / "visits.csv"))
    assert digests(cohort_copy) == before and not (tmp_path / "ep.csv").exists()


def test_two_outputs_on_one_path_are_refused(cli, cohort_copy, tmp_path):
    result = cli("episodes", cohort_copy, "-o", tmp_path / "x.csv", "--exclusions",
                 tmp_path / "sub" / ".." / "x.csv")
    _refused(result, "are the same file", str(tmp_path / "x.csv"))
    assert not (tmp_path / "x.csv").exists()


def test_a_file_that_would_become_a_second_table_is_refused(cli, cohort_copy):
    before = digests(cohort_copy)
    result = cli("episodes", cohort_copy, "-o", cohort_copy / "Visits.parquet")
    _refused(result, "would be read as the cohort's visits table")
    assert digests(cohort_copy) == before
    regen.read_cohort(cohort_copy)  # still readable


def test_validate_problems_file_never_replaces_an_input(cli, cohort_copy):
    (cohort_copy / "visits.csv").write_text("treatment_id,day,pain\nT1,0,=2+3\n")
    before = digests(cohort_copy)
    result = cli("validate", cohort_copy, "--problems", cohort_copy / "visits.csv")
    _refused(result, str(cohort_copy / "visits.csv"))
    assert digests(cohort_copy) == before


def test_report_never_writes_over_an_input_through_a_link(cli, cohort_copy, tmp_path):
    link = tmp_path / "report.html"
    link.symlink_to(cohort_copy / "visits.csv")
    before = digests(cohort_copy)
    result = cli("report", cohort_copy, "-o", link, "--n-bootstrap", 20)
    _refused(result, str(link), str(cohort_copy / "visits.csv"))
    assert digests(cohort_copy) == before


def test_report_output_must_be_html(cli, cohort_copy):
    result = cli("report", cohort_copy, "-o", cohort_copy.parent / "report.json")
    _refused(result, "the report is an HTML file")


def test_fit_save_never_writes_over_an_input(cli, cohort_copy):
    hard = cohort_copy.parent / "model.json"
    os.link(cohort_copy / "treatments.csv", hard)  # another name for the same file
    before = digests(cohort_copy)
    result = cli("fit", "recovery", cohort_copy, "--save", hard)
    _refused(result, str(hard), str(cohort_copy / "treatments.csv"))
    assert digests(cohort_copy) == before


@pytest.mark.parametrize("command", ["demo", "analysis"])
def test_an_output_folder_is_never_the_input_folder(cli, cohort_copy, command):
    before = digests(cohort_copy)
    if command == "demo":
        result = cli("demo", "--data", cohort_copy, "--out", cohort_copy / "." )
        _refused(result, "is the folder holding the input tables", str(cohort_copy))
    else:
        completed = subprocess.run(
            [sys.executable, str(ROOT / "analyses" / "regeneration_kinetics.py"), "--data",
             str(cohort_copy), "--out", str(cohort_copy)], capture_output=True, text=True)
        assert completed.returncode == 2, completed.stderr
        assert "is the folder holding the input tables" in completed.stderr
    assert digests(cohort_copy) == before


# ------------------------------------- a file regen did not write, never ---

def test_an_analysis_refuses_a_users_file_in_its_output_folder(small_cohort, tmp_path):
    (tmp_path / "exclusions.csv").write_text("my,own\n")
    script = [sys.executable, str(ROOT / "analyses" / "episode_overview.py"), "--data",
              str(small_cohort), "--out", str(tmp_path)]
    completed = subprocess.run(script, capture_output=True, text=True)
    assert completed.returncode == 2, completed.stderr
    assert str(tmp_path / "exclusions.csv") in completed.stderr and "--force" in completed.stderr
    assert (tmp_path / "exclusions.csv").read_text() == "my,own\n"
    assert not (tmp_path / "episode_overview.csv").exists()  # checked before any write
    completed = subprocess.run([*script, "--force"], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert "reason" in (tmp_path / "exclusions.csv").read_text()


def test_report_refuses_a_users_file_beside_it_and_force_replaces_it(cli, small_cohort,
                                                                     tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "report.json"
    mine.write_text('{"my": "notes"}')
    result = cli("report", small_cohort, "-o", out / "report.html", "--n-bootstrap", 20)
    _refused(result, str(mine), "--force", "was not written by regen")
    assert mine.read_text() == '{"my": "notes"}' and not (out / "report.html").exists()
    result = cli("report", small_cohort, "-o", out / "report.html", "--n-bootstrap", 20,
                 "--force")
    assert result.exit_code == 0, result.output
    assert json.loads(mine.read_text())["regen_version"] == regen.__version__


def test_a_rerun_replaces_regens_own_files_but_not_edited_ones(cli, small_cohort, tmp_path):
    out = tmp_path / "episodes.csv"
    assert cli("episodes", small_cohort, "-o", out).exit_code == 0
    first = out.read_bytes()
    assert cli("episodes", small_cohort, "-o", out).exit_code == 0  # its own, unedited
    assert out.read_bytes() == first
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert set(manifest["files"]) == {"episodes.csv"}
    out.write_bytes(first + b"my note\n")  # edited by the user
    result = cli("episodes", small_cohort, "-o", out)
    _refused(result, str(out), "--force")
    assert out.read_bytes().endswith(b"my note\n")


def test_fit_save_refuses_a_users_file(cli, small_cohort, tmp_path):
    target = tmp_path / "model.json"
    target.write_text("{}")
    result = cli("fit", "recovery", small_cohort, "--save", target)
    _refused(result, str(target), "--force")
    assert target.read_text() == "{}"
    assert cli("fit", "recovery", small_cohort, "--save", target, "--force").exit_code == 0
    assert isinstance(regen.load_model(target), regen.RecoveryFit)
    assert cli("fit", "recovery", small_cohort, "--save", target).exit_code == 0  # now its own


def test_simulate_refuses_a_users_cohort_and_a_second_format(cli, tmp_path):
    folder = tmp_path / "sim"
    folder.mkdir()
    (folder / "patients.csv").write_text("patient_id\nreal\n")
    result = cli("simulate", "-n", 5, "-o", folder, "--seed", 1)
    _refused(result, str(folder / "patients.csv"), "--force")
    assert (folder / "patients.csv").read_text() == "patient_id\nreal\n"
    other = tmp_path / "sim2"
    assert cli("simulate", "-n", 5, "-o", other, "--seed", 1).exit_code == 0
    assert cli("simulate", "-n", 5, "-o", other, "--seed", 2).exit_code == 0  # own files
    before = digests(other)
    result = cli("simulate", "-n", 5, "-o", other, "--format", "parquet", "--force")
    _refused(result, "patients.csv", "two files")
    assert digests(other) == before


def test_demo_checks_every_output_before_any_work(cli, tmp_path):
    out = tmp_path / "demo"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "relief_forest.svg").write_text("<svg>mine</svg>")
    result = cli("demo", "--data", EXAMPLE, "--out", out)
    _refused(result, str(out / "figures" / "relief_forest.svg"), "--force")
    assert sorted(p.name for p in out.rglob("*")) == ["figures", "relief_forest.svg"]


def test_outputs_api_names_both_paths(tmp_path):
    folder = regen.simulate.cohort(5, seed=3).write(tmp_path / "c")
    outputs = Outputs(inputs=[folder])
    with pytest.raises(regen.OutputError, match="is an input of this command"):
        outputs.file(tmp_path / "c" / "x" / ".." / "visits.csv")
    with pytest.raises(regen.OutputError, match="is the folder holding the input tables"):
        outputs.file(folder)
    with pytest.raises(regen.OutputError, match="is a folder; give a file name"):
        outputs.file(tmp_path)
    outputs.file(tmp_path / "a.csv")
    with pytest.raises(regen.OutputError, match="are the same file"):
        outputs.file(tmp_path / "." / "a.csv")


# ------------------------------------------------------------- atomic ----

def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "table.csv"
    regen.Outputs().write_table(pd.DataFrame({"a": [1, 2]}), target)
    old = target.read_bytes()
    with pytest.raises(RuntimeError), atomic_open(target) as handle:
        handle.write("half a tab")
        raise RuntimeError("the disk is full")
    assert target.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST, "table.csv"]


def test_a_full_disk_leaves_the_previous_output_intact(small_cohort, tmp_path):
    """A file-size limit in a child process stands in for a full disk: the write fails half
    way, regen says so (exit 1) and the previous episodes file is still whole."""
    out = tmp_path / "episodes.csv"
    tiny = regen.simulate.cohort(3, seed=5).write(tmp_path / "tiny")
    script = textwrap.dedent("""
        import resource, signal, sys
        from regen.cli import main
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write, not the process
        limit = int(sys.argv[1])
        if limit:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        main(sys.argv[2:])
    """)
    first = subprocess.run([sys.executable, "-c", script, "0", "episodes", str(tiny), "-o",
                            str(out)], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    old = out.read_bytes()
    second = subprocess.run([sys.executable, "-c", script, str(len(old) + 200), "episodes",
                             str(small_cohort), "-o", str(out)], capture_output=True, text=True)
    assert second.returncode == 1, second.stderr
    assert second.stderr.startswith("error:") and "Traceback" not in second.stderr
    assert "File too large" in second.stderr
    assert out.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST, "episodes.csv", "tiny"]


def test_written_files_get_the_usual_permissions(tmp_path):
    target = regen.Outputs().write_text(tmp_path / "a.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_planted_temporary_name_is_never_followed(tmp_path, monkeypatch):
    """The temporary file is created exclusively (O_EXCL): a link planted where it would be
    created is not written through, and the target is left alone."""
    import secrets

    target, victim = tmp_path / "out.txt", tmp_path / "victim.txt"
    target.write_text("old")
    victim.write_text("keep")
    monkeypatch.setattr(secrets, "token_hex", lambda n: "feedbeef")
    (tmp_path / ".out.txt.feedbeef.tmp").symlink_to(victim)
    with pytest.raises(FileExistsError), atomic_open(target) as handle:
        handle.write("new")
    assert victim.read_text() == "keep" and target.read_text() == "old"


def test_manifest_names_every_file_with_its_hash(tmp_path):
    outputs = Outputs()
    outputs.write_json(tmp_path / "a.json", {"x": float("nan"), "y": float("inf")})
    outputs.write_text(tmp_path / "b.txt", "hello")
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["format"] == "regen-manifest"
    import hashlib
    for name in ("a.json", "b.txt"):
        assert manifest["files"][name] == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": None, "y": "inf"}


def test_episodes_still_writes_parquet_exactly(cli, small_cohort, tmp_path):
    out = tmp_path / "ep.parquet"
    assert cli("episodes", small_cohort, "-o", out).exit_code == 0
    episodes = regen.read_cohort(small_cohort).episodes("numbness")
    back = pd.read_parquet(out)
    assert list(back.columns) == list(episodes.columns) and len(back) == len(episodes)
    assert back["treatment_id"].tolist() == episodes["treatment_id"].tolist()


def test_an_output_path_given_as_a_folder_is_refused(cli, small_cohort, tmp_path):
    result = cli("episodes", small_cohort, "-o", Path(tmp_path))
    _refused(result, str(tmp_path), "is a folder; give a file name")


# ------------------------------------------------ found by a review as a user ---

def test_an_analysis_refuses_before_it_analyses(small_cohort, tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "kinetics_script", ROOT / "analyses" / "regeneration_kinetics.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    (tmp_path / "kinetics_estimates.csv").write_text("mine\n")

    def never(*args, **kwargs):
        raise AssertionError("the analysis ran before the outputs were checked")

    monkeypatch.setattr(script, "analyse", never)
    with pytest.raises(SystemExit) as stopped:
        script.main(["--data", str(small_cohort), "--out", str(tmp_path)])
    assert stopped.value.code == 2


def test_demo_never_writes_its_figures_into_the_input_folder(cli, small_cohort, tmp_path):
    nest = tmp_path / "nest"
    shutil.copytree(small_cohort, nest / "figures")
    before = digests(nest / "figures")
    result = cli("demo", "--data", nest / "figures", "--out", nest)
    _refused(result, "is the folder holding the input tables", str(nest / "figures"))
    assert digests(nest / "figures") == before


def test_the_manifest_is_never_an_output(cli, small_cohort, tmp_path):
    assert cli("episodes", small_cohort, "-o", tmp_path / "e.csv").exit_code == 0
    manifest = (tmp_path / MANIFEST).read_bytes()
    for force in ((), ("--force",)):
        result = cli("fit", "recovery", small_cohort, "--save", tmp_path / MANIFEST, *force)
        _refused(result, MANIFEST, "choose another name")
    assert (tmp_path / MANIFEST).read_bytes() == manifest


@pytest.mark.parametrize("command", ["report", "demo"])
def test_an_output_under_a_file_is_refused_before_the_work(cli, small_cohort, tmp_path, command):
    blocker = tmp_path / "plain"
    blocker.write_text("a file, not a folder")
    if command == "report":
        result = cli("report", small_cohort, "-o", blocker / "report.html", "--n-bootstrap", 20)
    else:
        (tmp_path / "out").mkdir()
        blocker = tmp_path / "out" / "figures"
        blocker.write_text("a file, not a folder")
        result = cli("demo", "--data", small_cohort, "--out", tmp_path / "out")
    _refused(result, f"{blocker} is a file")
    assert sorted(p.name for p in blocker.parent.iterdir()) == [blocker.name]


def test_a_write_error_names_the_file(tmp_path, monkeypatch):
    import errno

    target = tmp_path / "a.csv"
    target.write_text("old\n")

    def full(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match=f"cannot write {target} \\(No space left on device\\)"):
        with atomic_open(target) as handle:
            handle.write("new\n")
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]


def test_a_problems_file_from_an_earlier_run_is_not_left_behind(cli, small_cohort, tmp_path):
    problems = tmp_path / "problems.csv"
    broken = tmp_path / "broken"
    shutil.copytree(small_cohort, broken)
    (broken / "visits.csv").write_text("treatment_id,day,pain\nT1,0,=2+3\n")
    assert cli("validate", broken, "--problems", problems).exit_code == 1
    assert len(pd.read_csv(problems)) > 0
    result = cli("validate", small_cohort, "--problems", problems)
    assert result.exit_code == 0 and f"No problems: {problems} lists none." in result.stdout
    assert pd.read_csv(problems).empty and list(pd.read_csv(problems).columns)[:3] == [
        "file", "table", "row"]
