"""Study planning (regen.plan): the spec's checks, the summary's arithmetic, reproducibility
whatever the workers, checkpoints, and the command line."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import regen
from regen.cli import main
from regen.planning import SERIAL, PlanSpec, read_spec
from regen.planning.analyses import null_effect, simulation_seed, truth

matplotlib.use("Agg")

KINETICS = {"n_patients": 40, "diabetes_velocity_ratio": 0.7, "p_retreat": 0.0,
            "schedule": [14, 28, 56, 84]}


def _compare(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Two runs' simulations, bit for bit (but the CPU seconds each took)."""
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"),
                                  check_exact=True)


# ------------------------------------------------------------------- the spec --

def test_an_unknown_design_key_is_named_with_the_closest_argument():
    with pytest.raises(ValueError, match=r"'diabetes_ratio'.*did you mean "
                                         r"'diabetes_velocity_ratio'"):
        PlanSpec.build({"n_patients": 50, "diabetes_ratio": 0.8}, "kinetics")


@pytest.mark.parametrize(("design", "analysis", "grid", "message"), [
    ({"n_patients": 50, "seed": 3}, "kinetics", None, "each simulated study gets its own seed"),
    ({"diabetes_velocity_ratio": 0.8}, "kinetics", None, "needs n_patients"),
    ({"n_patients": 50}, "kinetic", None, "did you mean 'kinetics'"),
    ({"n_patients": 50}, {"name": "kinetics", "outcome": "relief"}, None, "numbness"),
    ({"n_patients": 50}, "kinetics", {"n_patients": [50, 50]}, "lists a value twice"),
    ({"n_patients": 50}, "kinetics", {"n_patients": []}, "non-empty list"),
    ({"n_patients": 50}, "kinetics", {"schedule": [[30, 20]]}, "schedule"),
    ({"n_patients": 1}, "kinetics", None, "n_patients must be a whole number ≥ 2"),
    ({"n_patients": 50, "model": "rct"}, "kinetics", None, "model 'rct' is not one of"),
    ({"n_patients": 50}, {"name": "median", "cluster": "patient_id"}, None, "cluster is for"),
    ({"n_patients": 50}, {"name": "ph", "frailty": "patient_id"}, None,
     "frailty is for aft and kinetics"),
    ({"n_patients": 50}, {"name": "ph", "clustr": "patient_id"}, None, "did you mean 'cluster'"),
])
def test_a_bad_plan_says_what_and_where(design, analysis, grid, message):
    with pytest.raises(ValueError, match=message):
        PlanSpec.build(design, analysis, grid=grid, source="plan.toml")
    with pytest.raises(ValueError, match="intervals are at 95% only"):
        PlanSpec.build({"n_patients": 50}, {"name": "aft", "frailty": "patient_id"}, alpha=0.1)


def test_a_spec_file_is_read_and_checked(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('n_sim = 7\nseed = 3\n[design]\nn_patients = 30\n'
                    '[analysis]\nname = "ph"\n[grid]\ndiabetes_velocity_ratio = [0.8, 1.0]\n')
    spec = read_spec(good)
    assert (spec.n_sim, spec.seed, spec.analysis.name) == (7, 3, "ph")
    assert [p["diabetes_velocity_ratio"] for p in spec.points] == [0.8, 1.0]
    bad = tmp_path / "bad.toml"
    bad.write_text("n_sim = \n")
    with pytest.raises(ValueError, match="bad.toml: not a TOML file"):
        read_spec(bad)
    bad.write_text('nsim = 3\n[design]\nn_patients = 3\n[analysis]\nname = "ph"\n')
    with pytest.raises(ValueError, match="bad.toml: unknown key 'nsim' \\(did you mean 'n_sim'"):
        read_spec(bad)
    bad.write_bytes(b"#" * 1_000_001)
    with pytest.raises(ValueError, match="is not a plan"):
        read_spec(bad)


def test_the_truth_and_the_null_come_from_the_design():
    kinetics = PlanSpec.build({"n_patients": 9, "smoker_velocity_ratio": 0.9},
                              {"name": "kinetics", "term": "smoker"}).analysis
    assert truth({"smoker_velocity_ratio": 0.9}, kinetics) == pytest.approx(math.log(0.9))
    assert truth({}, kinetics) == pytest.approx(math.log(0.95))   # the simulator's default
    age = regen.planning.Analysis("kinetics", term="age")
    assert truth({"age_velocity_ratio_per_decade": 0.9}, age) == pytest.approx(math.log(0.9) / 10)
    ph = regen.planning.Analysis("ph")
    trial = {"model": "trial", "hazard_ratio": 2.0, "shape": 1.5}
    assert truth(trial, ph) == pytest.approx(math.log(2.0))
    assert truth(trial, regen.planning.Analysis("aft")) == pytest.approx(-math.log(2.0) / 1.5)
    assert math.isnan(truth(trial, regen.planning.Analysis("aft", dist="lognormal")))
    assert null_effect({"model": "trial", "hazard_ratio": 1.0}, ph)
    assert not null_effect(trial, ph)
    assert null_effect({}, regen.planning.Analysis("ph", term="procedure"))
    median = regen.planning.Analysis("median", level="treated")
    assert truth(trial, median) == pytest.approx(60 * 2.0 ** (-1 / 1.5))


def test_seeds_are_spawned_per_study_as_the_bootstrap_does():
    children = np.random.SeedSequence(42).spawn(3)
    assert [simulation_seed(42, i) for i in range(3)] == \
        [int(c.generate_state(1, dtype=np.uint64)[0]) for c in children]
    assert len({simulation_seed(0, i) for i in range(1000)}) == 1000


# ---------------------------------------------------------------- the summary --

@pytest.fixture(scope="module")
def small_plan():
    return regen.plan(KINETICS, "kinetics", n_sim=6, seed=5,
                      grid={"schedule": [[14, 28, 56, 84], [42, 84]]}, client=SERIAL)


def test_every_study_gives_one_row_and_the_table_is_their_summary(small_plan):
    sims, table = small_plan.simulations, small_plan.table
    assert list(zip(sims["point"], sims["sim"], strict=True)) == \
        [(p, s) for p in range(2) for s in range(6)]
    assert list(table["schedule"]) == ["14/28/56/84", "42/84"]
    truth_value = math.log(0.7)
    for point, row in table.iterrows():
        mine = sims[sims["point"] == point]
        fitted = mine[~mine["failed"]]
        error = fitted["estimate"] - truth_value
        assert row["truth"] == pytest.approx(truth_value)
        assert row["power"] == pytest.approx((mine["p_value"] < 0.05).mean())
        q = ((mine["p_value"] < 0.05).sum() + 0.5) / 7   # not 0 when every study rejects
        assert row["power_se"] == pytest.approx(math.sqrt(q * (1 - q) / 6)) and row["power_se"] > 0
        assert row["bias"] == pytest.approx(error.mean())
        assert row["rmse"] == pytest.approx(math.sqrt((error**2).mean()))
        inside = (fitted["ci_lower"] <= truth_value) & (truth_value <= fitted["ci_upper"])
        assert row["coverage"] == pytest.approx(inside.mean())
        assert row["median_ci_width"] == pytest.approx(
            (fitted["ci_upper"] - fitted["ci_lower"]).median())
        assert math.isnan(row["type_i_error"]) and not row["null"]
    # the estimate is the log velocity ratio: its interval holds the estimate
    assert (sims["ci_lower"] < sims["estimate"]).all() and \
        (sims["estimate"] < sims["ci_upper"]).all()
    # sparse visits leave wider intervals
    assert table.loc[1, "median_ci_width"] > table.loc[0, "median_ci_width"]


def test_a_failed_fit_is_kept_counted_and_does_not_reject():
    # 3 patients: most samples have no diabetic patient, and the model cannot be fitted
    result = regen.plan({"n_patients": 3, "p_retreat": 0.0}, "kinetics", n_sim=8, seed=1,
                        client=SERIAL)
    sims = result.simulations
    assert len(sims) == 8 and sims["failed"].any()
    assert (sims.loc[sims["failed"], "message"].str.len() > 0).all()
    assert sims.loc[sims["failed"], "p_value"].isna().all()
    assert result.table.loc[0, "failed"] == pytest.approx(sims["failed"].mean())
    assert result.table.loc[0, "power"] == pytest.approx((sims["p_value"] < 0.05).sum() / 8)


def test_repeated_treatments_can_be_analysed_robustly_over_patients():
    design = {"n_patients": 40, "retreat": "on_relief_end", "patient_sd_log": 0.4,
              "max_treatments": 3}
    analysis = {"name": "aft", "term": "diabetes", "outcome": "relief", "dist": "lognormal"}
    plain = regen.plan(design, analysis, n_sim=3, seed=2, client=SERIAL)
    robust = regen.plan(design, {**analysis, "cluster": "patient_id"}, n_sim=3, seed=2,
                        client=SERIAL)
    assert (plain.simulations["n_episodes"] > 40).all()   # retreatments: several per patient
    assert np.allclose(plain.simulations["estimate"], robust.simulations["estimate"])
    assert not np.allclose(plain.simulations["std_err"], robust.simulations["std_err"])


def test_the_same_seed_gives_the_same_studies_whatever_the_chunks(small_plan):
    again = regen.plan(KINETICS, "kinetics", n_sim=6, seed=5, chunk_size=4,
                       grid={"schedule": [[14, 28, 56, 84], [42, 84]]}, client=SERIAL)
    _compare(again.simulations, small_plan.simulations)
    other = regen.plan(KINETICS, "kinetics", n_sim=6, seed=6,
                       grid={"schedule": [[14, 28, 56, 84], [42, 84]]}, client=SERIAL)
    assert not np.allclose(other.simulations["estimate"], small_plan.simulations["estimate"])


def test_min_n_is_the_smallest_sample_reaching_the_power():
    table = pd.DataFrame({"point": range(4), "n_patients": [50, 100, 50, 100],
                          "schedule": ["a", "a", "b", "b"], "truth": 0.1,
                          "power": [0.5, 0.85, 0.2, 0.6], "power_se": 0.01})
    spec = PlanSpec.build({"n_patients": 50}, "kinetics",
                          grid={"n_patients": [50, 100], "schedule": [[14, 28], [42, 84]]})
    result = regen.PlanResult(spec, table, pd.DataFrame(), None)
    found = result.min_n(0.8)
    assert found["min_n"].iloc[0] == 100 and math.isnan(found["min_n"].iloc[1])
    with pytest.raises(ValueError, match="between 0 and 1"):
        result.min_n(80)


def test_a_script_without_a_main_guard_is_told_what_to_do(tmp_path):
    """Workers are spawned processes that import the script: without the guard, each would
    run the plan again; regen says so instead of a wall of multiprocessing errors."""
    import subprocess
    import sys

    script = tmp_path / "no_guard.py"
    script.write_text("import regen\nregen.plan({'n_patients': 30, 'p_retreat': 0.0}, "
                      "'kinetics', n_sim=2, n_workers=1, progress=False)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode != 0
    assert "call regen.plan under 'if __name__ == \"__main__\":'" in done.stderr.splitlines()[-1]
    guarded = tmp_path / "guarded.py"   # with the guard, plan after plan in one script
    guarded.write_text("import regen\nif __name__ == '__main__':\n    for seed in (1, 2):\n"
                       "        r = regen.plan({'n_patients': 30, 'p_retreat': 0.0}, "
                       "'kinetics', n_sim=2, n_workers=1, seed=seed, progress=False)\n"
                       "        print(len(r.simulations))\n")
    done = subprocess.run([sys.executable, str(guarded)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.split() == ["2", "2"], done.stderr[-2000:]


# --------------------------------------------------------------- checkpoints --

def test_an_interrupted_plan_resumes_from_its_checkpoint(tmp_path, small_plan):
    folder = tmp_path / "checkpoint"
    grid = {"schedule": [[14, 28, 56, 84], [42, 84]]}
    first = regen.plan(KINETICS, "kinetics", n_sim=6, seed=5, grid=grid, client=SERIAL,
                       chunk_size=2, checkpoint=folder)
    chunks = sorted(folder.glob("chunk-*.parquet"))
    assert len(chunks) == 6 and first.info.resumed == 0
    for path in chunks[::2]:   # as if the run had stopped before these chunks
        path.unlink()
    resumed = regen.plan(KINETICS, "kinetics", n_sim=6, seed=5, grid=grid, client=SERIAL,
                         chunk_size=2, checkpoint=folder)
    assert resumed.info.resumed == 6
    _compare(resumed.simulations, small_plan.simulations)
    # more studies with the same seed extend the plan
    longer = regen.plan(KINETICS, "kinetics", n_sim=7, seed=5, grid=grid, client=SERIAL,
                        checkpoint=folder)
    assert longer.info.resumed == 12 and len(longer.simulations) == 14
    # a finished plan run again reads everything and starts no cluster
    finished = regen.plan(KINETICS, "kinetics", n_sim=7, seed=5, grid=grid, checkpoint=folder)
    assert finished.info.resumed == 14 and finished.info.scheduler == SERIAL
    _compare(finished.simulations, longer.simulations)
    # another plan is refused
    with pytest.raises(ValueError, match="checkpoint of another plan"):
        regen.plan(KINETICS, "kinetics", n_sim=6, seed=9, grid=grid, client=SERIAL,
                   checkpoint=folder)


# ---------------------------------------------------------------- the figure --

def test_the_power_curve_has_a_line_per_schedule_with_error_bars():
    import matplotlib.pyplot as plt

    table = pd.DataFrame({"point": range(4), "n_patients": [50, 100, 50, 100],
                          "schedule": ["14/28", "14/28", "42/84", "42/84"], "truth": 0.1,
                          "power": [0.5, 0.85, 0.2, 0.6], "power_se": [0.05, 0.04, 0.04, 0.05]})
    ax = regen.plot.power(table, target=0.8)
    lines = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert sorted(text.get_text() for text in ax.get_legend().get_texts()) == \
        ["schedule: 14/28", "schedule: 42/84"]
    assert [list(line.get_ydata()) for line in lines] == [[0.5, 0.85], [0.2, 0.6]]
    assert [0.8, 0.8] in [list(line.get_ydata()) for line in ax.get_lines()]   # the target
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="measure"):
        regen.plot.power(table, measure="accuracy")
    with pytest.raises(ValueError, match="also varies schedule"):
        regen.plot.power(table.assign(extra=["x", "y", "x", "y"])[
            ["point", "n_patients", "schedule", "extra", "truth", "power", "power_se"]],
            by="extra")


# ----------------------------------------------------------- the command line --

def test_regen_plan_prints_the_table_writes_its_files_and_resumes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "small.toml"
    spec.write_text('n_sim = 3\nseed = 4\n[design]\nn_patients = 40\np_retreat = 0.0\n'
                    'diabetes_velocity_ratio = 0.7\n[analysis]\nname = "kinetics"\n'
                    '[grid]\nn_patients = [30, 40]\n')
    runner = CliRunner()
    result = runner.invoke(main, ["plan", str(spec), "--serial", "--min-power", "0.5"])
    assert result.exit_code == 0, result.output
    assert "kinetics of diabetes (log velocity ratio): 3 simulated studies" in result.output
    assert "Smallest n_patients with power ≥ 50%" in result.output
    out = tmp_path / "small_plan"
    table = pd.read_csv(out / "power.csv")
    assert list(table["n_patients"]) == [30, 40]
    assert len(pd.read_parquet(out / "simulations.parquet")) == 6
    assert (out / "power.png").stat().st_size > 1000
    again = runner.invoke(main, ["plan", str(spec), "--serial"])
    assert again.exit_code == 0 and "6 read from the checkpoint" in again.output
    assert pd.read_csv(out / "power.csv").equals(table)
    bad = runner.invoke(main, ["plan", str(spec), "--serial", "--workers", "2"])
    assert bad.exit_code == 2 and "--serial runs in this process" in bad.output
    spec.write_text('[design]\nn_patients = 40\n[analysis]\nname = "kinetcs"\n')
    wrong = runner.invoke(main, ["plan", str(spec), "--serial"])
    assert wrong.exit_code == 1 and "did you mean 'kinetics'" in wrong.output
