"""`regen fit recovery --frailty`: the shared patient effect from the command line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import regen
from regen.cli import main
from regen.simulate import cohort


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("frailty_cli") / "cohort"
    cohort(150, seed=21, retreat="on_relief_end", patient_sd_log=0.5, max_treatments=4).write(path)
    return path


def test_frailty_fit_prints_the_patient_effect_and_saves_a_model_that_learns(folder, tmp_path):
    model_file = tmp_path / "relief.json"
    result = CliRunner().invoke(main, [
        "fit", "recovery", str(folder), "--outcome", "relief", "--dist", "lognormal",
        "--formula", "~ treatment_number", "--frailty", "patient_id", "--save", str(model_file)])
    assert result.exit_code == 0, result.output
    model = regen.load_model(model_file)
    assert isinstance(model, regen.FrailtyFit) and model.outcome == "relief"
    direct = regen.fit_recovery("~ treatment_number",
                                regen.read_cohort(folder).episodes("relief"),
                                dist="lognormal", frailty="patient_id")
    assert model.frailty_sd == pytest.approx(direct.frailty_sd, rel=1e-9)
    low, high = direct.frailty_ci
    assert f"{direct.frailty_sd:.3f} (95% CI {low:.3f}–{high:.3f})" in result.output
    assert "over patients" in result.output


def test_frailty_json_and_refusals(folder):
    runner = CliRunner()
    result = runner.invoke(main, ["fit", "recovery", str(folder), "--outcome", "relief",
                                  "--dist", "lognormal", "--formula", "~ 1",
                                  "--frailty", "patient_id", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)["frailty"]
    assert shown["column"] == "patient_id" and shown["p_value"] < 0.05
    both = runner.invoke(main, ["fit", "recovery", str(folder), "--frailty", "patient_id",
                                "--cluster", "patient_id"])
    assert both.exit_code != 0 and "without --cluster" in both.output
    unknown = runner.invoke(main, ["fit", "recovery", str(folder), "--frailty", "patient"])
    assert unknown.exit_code != 0 and "not a column of the episodes" in unknown.output
    assert "Traceback" not in unknown.output
