"""The analysis scripts run on the example cohort, write every file they promise, and find
the truth the example was simulated from (1.4 mm/day at age 50, lag 10 days, diabetes x0.8,
about 80% responders)."""

from __future__ import annotations

import importlib.util
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import regen

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"analyses_{name}", ROOT / "analyses" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(name: str, out: Path, *options: str) -> tuple[list[Path], list[warnings.WarningMessage]]:
    """Run the script's main on the example cohort; the files written and regen's warnings."""
    import matplotlib.pyplot as plt

    module = load(name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = module.main(["--data", str(EXAMPLE), "--out", str(out), *options])
    assert plt.get_fignums() == [], "every figure is closed after saving"
    # Every file was declared, so checked before the analysis ran (README: before any work).
    declared = {out / f"{stem}.csv" for stem in module.TABLES}
    declared |= {out / f"{stem}.{suffix}" for stem in module.FIGURES for suffix in ("png", "svg")}
    declared |= {out / f"{stem}.html" for stem in getattr(module, "PAGES", ())}
    assert set(written) <= declared, set(written) - declared
    return written, [w for w in caught if issubclass(w.category, regen.RegenWarning)]


def check_files(out: Path, written: list[Path], tables: list[str], figures: list[str]) -> None:
    expected = {out / f"{t}.csv" for t in tables}
    expected |= {out / f"{f}.{suffix}" for f in figures for suffix in ("png", "svg")}
    assert expected <= set(written)
    for path in expected:
        assert path.is_file() and path.stat().st_size > (100 if path.suffix == ".csv" else 5000), path


def read(out: Path, table: str) -> pd.DataFrame:
    return pd.read_csv(out / f"{table}.csv")


def test_numbness_recovery(tmp_path):
    written, regen_warnings = run("numbness_recovery", tmp_path, "--bootstrap", "20", "--seed", "3")
    check_files(tmp_path, written,
                ["npmle_quartiles", "npmle_still_numb", "aft_time_ratios", "aft_predicted_quartiles",
                 "aft_distributions", "aft_calibration_day56"],
                ["numbness_by_nerve", "numbness_by_nerve_aft", "aft_forest", "aft_calibration_day56"])
    assert regen_warnings == []
    quartiles = read(tmp_path, "npmle_quartiles").set_index("nerve")
    assert len(quartiles) == 7 and quartiles["episodes"].sum() == 462
    assert (quartiles["q25_days"] <= quartiles["median_days"]).all()
    assert (quartiles["median_days"] <= quartiles["q75_days"]).all()
    assert quartiles.loc["third_occipital", "median_days"] < quartiles.loc["intercostal", "median_days"]
    ratios = read(tmp_path, "aft_time_ratios").set_index("term")
    assert ratios.loc["diabetes", "ci_lower"] > 1  # slower regrowth: numbness lasts longer
    assert set(read(tmp_path, "aft_distributions")["dist"]) == {"weibull", "lognormal", "loglogistic"}
    calibration = read(tmp_path, "aft_calibration_day56")
    assert len(calibration) == 4
    assert calibration[["predicted", "observed"]].stack().between(0, 1).all()
    assert (calibration["observed"] - calibration["predicted"]).abs().max() < 0.25


def test_numbness_recovery_is_reproducible_by_seed():
    module = load("numbness_recovery")
    cohort = regen.read_cohort(EXAMPLE)
    episodes = cohort.episodes("numbness")
    tables = [module.quartile_table(regen.turnbull(episodes, by="nerve", n_bootstrap=10, seed=seed,
                                                   cluster="patient_id", progress=False))
              for seed in (5, 5, 6)]
    pd.testing.assert_frame_equal(tables[0], tables[1])
    assert not tables[0].equals(tables[2])


def test_relief_duration(tmp_path):
    written, regen_warnings = run("relief_duration", tmp_path, "--bootstrap", "20")
    check_files(tmp_path, written,
                ["responders", "npmle_quartiles", "npmle_still_relieved", "aft_time_ratios",
                 "aft_predicted_quartiles", "aft_distributions"],
                ["responders", "relief_by_nerve", "relief_by_nerve_aft", "aft_forest"])
    assert regen_warnings == []
    responders = read(tmp_path, "responders").set_index("nerve")
    accounted = responders[["responders", "non_responders", "not_assessed"]].sum(axis=1)
    assert (accounted == responders["treatments"]).all()
    everyone = responders.loc["all"]
    assert everyone["treatments"] == 465
    assert 0.7 < everyone["responder_rate"] < 0.9  # simulated: about 80% respond
    assert everyone["ci_lower"] < everyone["responder_rate"] < everyone["ci_upper"]
    still = read(tmp_path, "npmle_still_relieved").set_index("nerve")
    weeks = still[[f"still_relieved_week{w}" for w in (4, 8, 12, 16)]]
    assert (weeks.diff(axis=1).iloc[:, 1:] <= 1e-9).all().all()  # relief only wears off
    predicted = read(tmp_path, "aft_predicted_quartiles")
    assert set(predicted["nerve"]) == set(responders.index) - {"all"}
    medians = predicted.loc[predicted["q"] == 0.5].set_index("nerve")["days"]
    assert medians["intercostal"] > 2 * medians["greater_occipital"]


def test_regeneration_kinetics(tmp_path):
    written, regen_warnings = run("regeneration_kinetics", tmp_path)
    check_files(tmp_path, written,
                ["kinetics_estimates", "velocity_ratios", "model_comparison", "median_day_by_distance",
                 "lag_profile"],
                ["lag_profile", "velocity_ratios", "median_day_by_distance"])
    assert regen_warnings == []
    estimates = read(tmp_path, "kinetics_estimates").set_index("quantity")
    velocity, lag = estimates.loc["velocity_mm_per_day"], estimates.loc["lag_days"]
    assert velocity["ci_lower"] < 1.4 < velocity["ci_upper"]
    assert lag["ci_lower"] < 10 < lag["ci_upper"]
    diabetes = read(tmp_path, "velocity_ratios").set_index("term").loc["diabetes"]
    assert diabetes["ci_lower"] < 0.8 < diabetes["ci_upper"]
    comparison = read(tmp_path, "model_comparison")
    assert len(comparison) == 9 and comparison["delta_aic"].min() == 0
    kinetics = comparison.loc[comparison["model"] == "regeneration kinetics", "aic"].min()
    plain = comparison["model"].str.startswith("AFT")
    without_distance = comparison.loc[plain & ~comparison["formula"].str.contains("distance"), "aic"]
    assert kinetics < without_distance.min()  # the distances carry the information
    profile = read(tmp_path, "lag_profile")
    peak = profile["profile_loglik"].idxmax()
    assert profile.loc[peak, "lag"] == pytest.approx(lag["estimate"], abs=0.5)
    by_distance = read(tmp_path, "median_day_by_distance")
    for _, part in by_distance.groupby("profile"):
        assert np.all(np.diff(part["days"].to_numpy()) > 0)  # further away, later
    fitted = regen.read_cohort(EXAMPLE).episodes("numbness")["distance_mm"].dropna()
    assert by_distance["distance_mm"].max() == pytest.approx(fitted.max())  # the longest nerves too


def test_score_trajectories(tmp_path):
    written, regen_warnings = run("score_trajectories", tmp_path, "--seed", "2")
    check_files(tmp_path, written,
                ["fixed_effects", "variance_components", "time_to_threshold", "numb_probability",
                 "numb_observed_by_day", "gee_fit"],
                ["pain_trajectory", "numbness_trajectory", "numb_probability"])
    assert regen_warnings == []
    components = read(tmp_path, "variance_components")
    assert set(components["score"]) == {"pain", "numbness"}
    assert (components.loc[components["component"] == "sd", "estimate"] > 0).all()
    crossings = read(tmp_path, "time_to_threshold").set_index(["score", "profile"])
    numbness = crossings.loc[("numbness", "all")]
    assert 30 < numbness["day"] < 150
    assert numbness["ci_lower"] < numbness["day"] < numbness["ci_upper"]
    pain = crossings.loc[("pain", "median")]
    assert pain["threshold_level"] == pytest.approx(0.8 * pain["profile_baseline_pain"])
    assert pain["ci_lower"] < pain["day"] < pain["ci_upper"]
    probability = read(tmp_path, "numb_probability")
    assert probability["probability"].iloc[0] > 0.9 > 0.2 > probability["probability"].iloc[-1]
    assert ((probability["ci_lower"] <= probability["probability"])
            & (probability["probability"] <= probability["ci_upper"])).all()


def test_score_trajectories_without_the_optional_numbness_score(tmp_path, capsys):
    data = tmp_path / "cohort"
    shutil.copytree(EXAMPLE, data)
    visits = pd.read_csv(data / "visits.csv", dtype=str, keep_default_na=False)
    visits.drop(columns="numbness").to_csv(data / "visits.csv", index=False)
    written = load("score_trajectories").main(["--data", str(data), "--out", str(tmp_path / "out")])
    said = capsys.readouterr().out
    assert "numbness: no visit records this optional score in this cohort" in said
    assert tmp_path / "out" / "pain_trajectory.png" in written
    assert set(read(tmp_path / "out", "variance_components")["score"]) == {"pain"}


def test_suspicious_data_warn_once_and_the_script_goes_on(tmp_path):
    data = tmp_path / "cohort"
    shutil.copytree(EXAMPLE, data)
    visits = (data / "visits.csv").read_text().splitlines()
    (data / "visits.csv").write_text("\n".join(visits + visits[-3:]) + "\n")  # 3 visits entered twice
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = load("regeneration_kinetics").main(["--data", str(data), "--out", str(tmp_path / "out")])
    repeated = [w for w in caught if issubclass(w.category, regen.DataWarning)
                and "repeat an earlier row" in str(w.message)]
    assert len(repeated) == 1
    assert tmp_path / "out" / "kinetics_estimates.csv" in written


def test_compare_groups(tmp_path):
    written, regen_warnings = run("compare_groups", tmp_path, "--by", "diabetes", "--outcome",
                                  "numbness", "--adjust", "age", "--bootstrap", "20")
    check_files(tmp_path, written, ["table_one", "flow", "ph_hazard_ratios", "logrank"],
                ["flow", "curves_by_group", "ph_forest"])
    assert regen_warnings == []
    ratios = read(tmp_path, "ph_hazard_ratios").set_index("term")
    assert list(ratios.index) == ["diabetes[T.yes]", "age"]
    # simulated: diabetes slows regrowth (x0.8), so numbness fades later: HR below 1
    assert ratios.loc["diabetes[T.yes]", "hazard_ratio_ci_upper"] < 1
    test = read(tmp_path, "logrank")
    assert list(test["group"]) == ["no", "yes"] and test["n"].sum() == 462
    assert test["p_value"].iloc[0] < 0.05
    table = read(tmp_path, "table_one")
    assert {"no", "yes", "Overall"} <= set(table.columns)
    page = (tmp_path / "table_one.html").read_text()
    assert "Table 1. Baseline characteristics by diabetes" in page and "<script" not in page


def test_compare_groups_refuses_an_unknown_column(tmp_path):
    with pytest.raises(SystemExit, match="--by agee: no such column"):
        load("compare_groups").main(["--data", str(EXAMPLE), "--out", str(tmp_path / "o"),
                                     "--by", "agee"])
    assert not any((tmp_path / "o").glob("*.csv"))


def test_plan_study_takes_its_design_from_the_pilot(tmp_path):
    module = load("plan_study")
    cohort = regen.read_cohort(EXAMPLE)
    mix, schedule, notes = module.pilot_design(cohort)
    assert sum(mix.values()) == pytest.approx(1, abs=1e-3) and not notes
    assert max(mix, key=mix.get) == "greater_occipital"
    # the example was simulated with visits at 7, 30, 60, 90, 120, 180, 270 (and 365) days
    assert schedule[:5] == pytest.approx((7, 30, 60, 90, 120), abs=3)
    result = module.analyse(cohort, patients=(40, 80), schedules=[(42, 84)], n_sim=3,
                            client="serial")
    power = result.tables["power"]
    assert list(power["n_patients"]) == [40, 40, 80, 80]
    assert set(power["schedule"]) == {"/".join(map(str, schedule)), "42/84"}
    assert np.allclose(power["truth"], np.log(0.8))
    assert len(result.tables["min_patients"]) == 2 and "alpha" in set(result.tables["design"]["setting"])
    assert set(result.figures) == {"power_curve", "ci_width_curve"}
    import matplotlib.pyplot as plt

    plt.close("all")   # analyse() leaves its figures to write()
    written, _ = run("plan_study", tmp_path, "--n-sim", "2", "--patients", "30", "40",
                     "--schedule", "14,28,56", "--workers", "1")
    check_files(tmp_path, written, ["power", "min_patients", "design"],
                ["power_curve", "ci_width_curve"])


@pytest.mark.parametrize("name", ["episode_overview", "numbness_recovery", "relief_duration",
                                  "regeneration_kinetics", "score_trajectories", "compare_groups",
                                  "plan_study"])
def test_every_script_takes_the_read_limits(name, tmp_path, capsys):
    """A script reads within the limits its --max-* options set, as the regen commands do,
    and a refusal names the option; nothing is written."""
    with pytest.raises(SystemExit) as stopped:
        load(name).main(["--data", str(EXAMPLE), "--out", str(tmp_path / "out"),
                         "--max-rows", "50"])
    assert stopped.value.code == 1
    message = capsys.readouterr().err
    assert "more than the limit of 50" in message and "--max-rows" in message
    assert not any((tmp_path / "out").glob("*.csv"))


@pytest.mark.parametrize("name", ["numbness_recovery", "relief_duration"])
def test_the_scripts_fit_the_distribution_with_the_lowest_aic(name):
    result = load(name).analyse(regen.read_cohort(EXAMPLE), n_bootstrap=20)
    assert result.models["aft"].dist == result.tables["aft_distributions"]["dist"].iloc[0]
    assert any(line.startswith("Best distribution by AIC") and "worse" not in line
               for line in result.summary)
