"""``regen compare``: hazard ratios, the log-rank test and the curves by group, from the
command line."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

import regen
from regen.cli import main


@pytest.fixture(scope="module")
def cohort_folder(tmp_path_factory):
    """A small simulated cohort (not the example), written as CSV files."""
    folder = tmp_path_factory.mktemp("compare") / "cohort"
    regen.simulate.cohort(80, seed=31).write(folder)
    return folder


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_compare_prints_hazard_ratios_and_the_test_and_writes_the_curves(cohort_folder, tmp_path):
    out = tmp_path / "out"
    result = run("compare", cohort_folder, "--by", "diabetes", "--adjust", "age", "--out", out)
    assert result.exit_code == 0, result.output
    assert "Hazard ratios (above 1: numbness fades sooner" in result.stdout
    assert "robust over patient_id" in result.stdout
    assert "Generalized log-rank test by diabetes, robust over patient_id" in result.stdout
    ratios = pd.read_csv(out / "hazard_ratios.csv")
    assert list(ratios["term"]) == ["diabetes[T.yes]", "age"]
    episodes = regen.read_cohort(cohort_folder).episodes("numbness")
    direct = regen.fit_ph("~ diabetes + age", episodes.assign(
        diabetes=episodes["diabetes"].map({False: "no", True: "yes"})), cluster="patient_id")
    assert ratios["hazard_ratio"].tolist() == pytest.approx(
        direct.summary["hazard_ratio"].tolist(), rel=1e-10)
    test = pd.read_csv(out / "logrank.csv")
    assert test["statistic"].iloc[0] == pytest.approx(
        regen.logrank_test(episodes, by="diabetes", cluster="patient_id").statistic, rel=1e-10)
    curves = pd.read_csv(out / "curves.csv")
    assert set(curves["curve"]) == {"npmle", "proportional_hazards"}
    assert set(curves["group"]) == {"no", "yes"}
    assert (out / "curves.png").stat().st_size > 1000
    assert isinstance(regen.load_model(out / "ph_model.json"), regen.PHFit)
    # a second run does not replace its own files silently... it may: regen wrote them
    assert run("compare", cohort_folder, "--by", "diabetes", "--out", out).exit_code == 0


def test_compare_bootstrap_and_relief(cohort_folder, tmp_path):
    result = run("compare", cohort_folder, "--outcome", "relief", "--by", "nerve",
                 "--n-bootstrap", "20", "--seed", "3", "--permutations", "20",
                 "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert "bootstrap over patient_id" in result.stdout
    assert "relief ends sooner" in result.stdout and "permutation p" in result.stdout


@pytest.mark.parametrize("args, message", [
    (("--by", "agee"), "--by agee: no such column"),
    (("--by", "age"), "compare at most 12 groups"),
    (("--cluster", "clinic"), "--cluster clinic: no such column"),
    (("--strata", "site"), "--strata site: no such column"),
])
def test_compare_usage_errors_name_the_option(cohort_folder, tmp_path, args, message):
    result = run("compare", cohort_folder, *args, "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_compare_never_writes_into_its_input(cohort_folder):
    before = {p.name: p.read_bytes() for p in cohort_folder.iterdir()}
    result = run("compare", cohort_folder, "--out", cohort_folder)
    assert result.exit_code == 2 and "input" in result.output
    assert {p.name: p.read_bytes() for p in cohort_folder.iterdir()} == before
