"""The command line: exit codes, messages without tracebacks, files written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import regen
from regen.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "example"


@pytest.fixture
def run():
    def invoke(*args: str):
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return invoke


def test_validate_example_prints_the_flow_and_exits_0(run):
    result = run("validate", EXAMPLE)
    assert result.exit_code == 0, result.output
    assert "patients" in result.stdout and "responders" in result.stdout
    assert "The data are usable." in result.stdout


@pytest.fixture
def broken(tmp_path) -> Path:
    """The example with an unknown treatment id, a date typo and a pain score of 14."""
    folder = tmp_path / "broken"
    shutil.copytree(EXAMPLE, folder)
    visits = (folder / "visits.csv").read_text().splitlines(keepends=True)
    fields = [line.split(",") for line in visits]
    fields[4][0] = "T999999"          # file row 5
    fields[9][1] = "2023-02-30"       # file row 10: no such date
    fields[14][4] = "14"              # file row 15: pain out of range
    (folder / "visits.csv").write_text("".join(",".join(f) for f in fields))
    return folder


def test_validate_broken_copy_names_each_problem_and_exits_1(run, broken):
    result = run("validate", broken)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    err = result.stderr
    assert "3 problems; nothing was analysed" in err
    assert "row 5, column treatment_id, value 'T999999'" in err
    assert "row 10, column visit_date, value '2023-02-30'" in err
    assert "row 15, column pain, value '14'" in err
    assert err.count("fix:") == 3


def test_validate_writes_all_problems_on_request(run, broken, tmp_path):
    out = tmp_path / "problems.csv"
    result = run("validate", broken, "--problems", out)
    assert result.exit_code == 1
    problems = pd.read_csv(out)
    assert problems["row"].tolist() == [5, 10, 15]


def test_validate_missing_folder_exits_1_without_traceback(run, tmp_path):
    result = run("validate", tmp_path / "nowhere")
    assert result.exit_code == 1
    assert "path does not exist" in result.stderr
    assert "Traceback" not in result.output


def test_episodes_command_writes_every_treatment_somewhere(run, tmp_path):
    out, excluded = tmp_path / "relief.csv", tmp_path / "excluded.csv"
    result = run("episodes", EXAMPLE, "--outcome", "relief", "-o", out, "--exclusions", excluded)
    assert result.exit_code == 0, result.output
    episodes, exclusions = pd.read_csv(out), pd.read_csv(excluded)
    treatments = pd.read_csv(EXAMPLE / "treatments.csv")
    assert len(episodes) + len(exclusions) == len(treatments)
    assert f"{len(episodes)} relief episodes written" in result.stdout


def test_episodes_parquet_round_trip_is_lossless(run, tmp_path):
    out = tmp_path / "numbness.parquet"
    assert run("episodes", EXAMPLE, "-o", out).exit_code == 0
    expected = regen.read_cohort(EXAMPLE).episodes("numbness")
    pd.testing.assert_frame_equal(pd.read_parquet(out), expected)


def test_episodes_bad_output_name_is_a_clear_error(run, tmp_path):
    result = run("episodes", EXAMPLE, "-o", tmp_path / "episodes.txt")
    assert result.exit_code == 2
    assert "use a .csv or .parquet file name" in result.stderr
    result = run("episodes", EXAMPLE, "--outcome", "relief", "-o", tmp_path / "r.csv",
                 "--response-window", 30, 1)
    assert result.exit_code == 2
    assert "first day ≤ last day" in result.stderr


def test_bad_option_is_a_usage_error(run):
    result = run("episodes", EXAMPLE, "--outcome", "sleep", "-o", "x.csv")
    assert result.exit_code == 2
    assert "sleep" in result.output


def test_simulate_writes_a_valid_cohort_reproducibly(run, tmp_path):
    for name in ("a", "b"):
        result = run("simulate", "-n", 40, "-o", tmp_path / name, "--seed", 7)
        assert result.exit_code == 0, result.output
    for table in ("patients", "treatments", "visits"):
        assert (tmp_path / "a" / f"{table}.csv").read_bytes() == \
            (tmp_path / "b" / f"{table}.csv").read_bytes()
    assert run("validate", tmp_path / "a").exit_code == 0


def test_demo_runs_from_any_folder_and_writes_episodes_flow_and_report(run, tmp_path,
                                                                      monkeypatch):
    # One demo run (the slowest command) checked for everything it writes.
    monkeypatch.chdir(tmp_path)                  # no data/example here
    result = run("demo", "--out", "here")
    assert result.exit_code == 0, result.output
    out = tmp_path / "here"
    for table in ("patients", "treatments", "visits"):
        assert (out / "example_cohort" / f"{table}.csv").read_bytes() == \
            (EXAMPLE / f"{table}.csv").read_bytes()
    written = {p.name for p in out.iterdir()}
    assert {"numbness_episodes.csv", "relief_episodes.csv", "exclusions.csv", "flow.csv",
            "summary_by_nerve.csv"} <= written
    summary = pd.read_csv(out / "summary_by_nerve.csv")
    assert not summary.filter(like="patient_id").shape[1]
    quantiles = pd.read_csv(out / "npmle_quantiles_by_nerve.csv")
    medians = quantiles[quantiles["q"] == 0.5]
    assert len(medians) == 2 * summary.shape[0]
    assert (medians["ci_lower"] <= medians["time"]).all()
    assert (medians["time"] <= medians["ci_upper"]).all()
    assert "until numbness fades" in result.stdout
    assert (out / "report.html").is_file()
    assert (out / "leaflets" / "greater_occipital.html").is_file()
    gallery = (out / "figures" / "README.md").read_text()
    assert "](relief_curves.png)" in gallery and (out / "figures" / "relief_curves.png").is_file()
    assert "The example cohort (300 simulated patients" in result.stdout


def test_validate_strict_refuses_what_the_default_sets_missing(run, tmp_path):
    folder = tmp_path / "bmi"
    shutil.copytree(EXAMPLE, folder)
    patients = pd.read_csv(folder / "patients.csv", dtype=str, keep_default_na=False)
    patients.loc[10, "bmi"] = "95"
    patients.to_csv(folder / "patients.csv", index=False)
    usable = run("validate", folder)
    assert usable.exit_code == 0 and "1 bmi value(s) not between 12 and 80" in usable.stderr
    strict = run("validate", folder, "--strict")
    assert strict.exit_code == 1 and "row 12, column bmi, value '95'" in strict.stderr


def test_data_warnings_are_plain_lines(run, tmp_path):
    folder = tmp_path / "warn"
    shutil.copytree(EXAMPLE, folder)
    text = (folder / "treatments.csv").read_text().replace("supraorbital", "Supra Orbitalis")
    (folder / "treatments.csv").write_text(text)
    result = run("validate", folder)
    assert result.exit_code == 0
    assert "warning: treatments.csv: nerve(s) regen does not know: supra_orbitalis" in result.stderr
    assert "DataWarning" not in result.stderr


def test_version(run):
    assert regen.__version__ in run("--version").output


def test_simulate_refuses_to_overwrite_a_cohort(run, tmp_path):
    folder = tmp_path / "real"
    shutil.copytree(EXAMPLE, folder)
    before = (folder / "visits.csv").read_bytes()
    result = run("simulate", "-n", 3, "-o", folder)
    assert result.exit_code == 2
    assert "--force" in result.stderr
    assert (folder / "visits.csv").read_bytes() == before
    assert run("simulate", "-n", 3, "-o", folder, "--force").exit_code == 0
    assert (folder / "visits.csv").read_bytes() != before


def test_folder_with_a_workbook_points_to_it(run, tmp_path):
    assert run("simulate", "-n", 20, "-o", tmp_path / "xl", "--format", "xlsx").exit_code == 0
    result = run("validate", tmp_path / "xl")
    assert result.exit_code == 1
    assert "give the workbook itself: xl/cohort.xlsx" in result.stderr
    assert run("validate", tmp_path / "xl" / "cohort.xlsx").exit_code == 0


def test_follow_up_horizon_option(run, tmp_path):
    folder = tmp_path / "long"
    shutil.copytree(EXAMPLE, folder)
    result = run("validate", folder, "--max-follow-up-days", 100)
    assert result.exit_code == 1
    assert "visit more than 100 days after the treatment" in result.stderr
    assert "column visit_date, value '" in result.stderr and "(day " in result.stderr


def test_internal_errors_are_reported_as_bugs(run, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("oops")
    monkeypatch.setattr(regen, "read_cohort", broken)
    result = run("validate", EXAMPLE)
    assert result.exit_code == 3
    assert "internal error: KeyError" in result.stderr and "Traceback" not in result.output


def test_fit_prints_time_ratios_and_predictions_for_a_profile(run, tmp_path):
    model = tmp_path / "model.json"
    result = run("fit", "recovery", EXAMPLE, "--formula", "~ nerve + age + diabetes",
                 "--at", "age=60",
                 "--at", "diabetes=yes", "--save", model)
    assert result.exit_code == 0, result.output
    assert "Time ratios" in result.stdout and "diabetes" in result.stdout
    line = next(x for x in result.stdout.splitlines() if x.strip().startswith("greater_occipital"))
    estimate = float(line.split()[1])
    fit = regen.load_model(model)
    profile = pd.DataFrame({"nerve": ["greater_occipital"], "age": [60.0], "diabetes": [True]})
    assert round(fit.predict_quantile(profile, q=[0.5])["estimate"].iloc[0]) == estimate


def test_fit_json_output(run):
    result = run("fit", "recovery", EXAMPLE, "--outcome", "relief", "--dist", "lognormal",
                 "--json")
    assert result.exit_code == 0, result.output
    import json
    document = json.loads(result.stdout)
    assert document["dist"] == "lognormal" and document["outcome"] == "relief"
    medians = [p for p in document["predictions"] if p["q"] == 0.5]
    assert len(medians) == 7
    assert all(p["ci_lower"] < p["estimate"] < p["ci_upper"] for p in medians)


def test_fit_bad_setting_is_a_usage_error(run):
    result = run("fit", "recovery", EXAMPLE, "--formula", "~ nerve + age", "--at", "weight=3")
    assert result.exit_code == 2
    assert "NAME one of age, nerve" in result.stderr


def test_fit_regeneration_prints_velocity_lag_and_ratios(run, tmp_path):
    result = run("fit", "regeneration", EXAMPLE, "--formula",
                 "~ I(age - 50) + diabetes", "--save", tmp_path / "kin.json")
    assert result.exit_code == 0, result.output
    assert "velocity (covariates at 0):" in result.stdout and "mm/day" in result.stdout
    assert "lag:" in result.stdout and "diabetes" in result.stdout
    assert "AIC (lower is better)" in result.stdout
    kinetics = regen.load_model(tmp_path / "kin.json")
    # data/example was simulated at 1.4 mm/day, a 10-day lag and diabetes x0.8.
    assert kinetics.velocity["ci_lower"] <= 1.4 <= kinetics.velocity["ci_upper"]
    assert kinetics.lag["ci_lower"] <= 10 <= kinetics.lag["ci_upper"]
    json_result = run("fit", "regeneration", EXAMPLE, "--lag", 10, "--json")
    import json
    document = json.loads(json_result.stdout)
    assert document["lag_days"]["fixed"] and document["lag_days"]["estimate"] == 10
    weibull = run("fit", "regeneration", EXAMPLE, "--dist", "weibull", "--lag", 10)
    assert weibull.exit_code == 0, weibull.output
    assert "Weibull regrowth time" in weibull.stdout and "regeneration (weibull)" in weibull.stdout


def test_fit_trajectory_prints_effects_components_and_the_crossing_day(run, tmp_path):
    result = run("fit", "trajectory", EXAMPLE, "--score", "pain",
                 "--save", tmp_path / "traj.json")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Fixed effects (95% CI):" in out and "baseline_pain" in out
    assert "Variance components:" in out and "SD residual" in out
    assert "first day the mean pain goes above 0.8 × baseline" in out
    assert regen.load_model(tmp_path / "traj.json").response == "pain"
    import json
    document = json.loads(run("fit", "trajectory", EXAMPLE, "--score", "numbness",
                              "--re-formula", "~ 1", "--json").stdout)
    crossing = document["time_to_threshold"][0]
    assert document["crossing"]["direction"] == "below" and crossing["threshold"] == 1
    assert crossing["ci_lower"] < crossing["estimate"] < crossing["ci_upper"]


def test_fit_trajectory_needs_a_threshold_for_other_scores(run):
    result = run("fit", "trajectory", EXAMPLE, "--score", "headache_days")
    assert result.exit_code == 2 and "--threshold" in result.stderr


def test_report_command_writes_the_report_and_its_tables(run, tmp_path):
    result = run("report", EXAMPLE, "-o", tmp_path / "out" / "report.html", "--n-bootstrap", 20,
                 "--min-group", 40)
    assert result.exit_code == 0, result.output
    assert "not shown (fewer than 40 treatments)" in result.stdout
    for name in ("report.html", "report.json", "report_by_nerve.csv", "report_still_relieved.csv"):
        assert (tmp_path / "out" / name).exists()


def test_report_takes_what_counts_as_relief_and_a_title(run, tmp_path):
    import json

    out = tmp_path / "out" / "report.html"
    result = run("report", EXAMPLE, "-o", out, "--n-bootstrap", 20, "--response-window", 1, 50,
                 "--threshold", 0.4, "--confirm", 2, "--title", "Relief at <our> clinic",
                 "--min-patients", 6)
    assert result.exit_code == 0, result.output
    content = json.loads((tmp_path / "out" / "report.json").read_text())
    assert content["settings"]["response_window_days"] == [1, 50]
    assert content["settings"]["relief_threshold"] == 0.4
    assert content["settings"]["relief_confirm_visits"] == 2
    assert content["settings"]["min_patients"] == 6
    assert content["title"] == "Relief at <our> clinic"
    assert "Relief at &lt;our&gt; clinic" in out.read_text()
    bad = run("report", EXAMPLE, "-o", tmp_path / "x.html", "--response-window", 30, 1)
    assert bad.exit_code == 2 and "need 1 ≤ first day ≤ last day" in bad.stderr


def test_a_trajectory_of_a_yes_no_score_points_to_the_probability_model(run):
    numb = run("fit", "trajectory", EXAMPLE, "--score", "numb")
    assert numb.exit_code == 2 and "--threshold" not in numb.stderr
    assert "numb is a yes/no score" in numb.stderr
    assert "regen fit probability --score numb" in numb.stderr


def test_fit_recovery_chooses_the_distribution_by_aic_and_says_so(run):
    import json

    chosen = run("fit", "recovery", EXAMPLE, "--formula", "~ nerve + age")
    assert chosen.exit_code == 0, chosen.output
    first = chosen.stdout.splitlines()[0]
    assert first.startswith("Distribution chosen by AIC: log-normal (") and "Weibull +" in first
    assert chosen.stdout.splitlines()[1].startswith("log-normal AFT, numbness")
    data = json.loads(run("fit", "recovery", EXAMPLE, "--json").stdout)
    assert data["dist"] == data["distributions"][0]["dist"]
    fixed = run("fit", "recovery", EXAMPLE, "--dist", "weibull")
    assert fixed.stdout.startswith("Weibull AFT, numbness") and "chosen by AIC" not in fixed.stdout


def test_relief_options_reach_the_recovery_fit_and_only_with_relief(run):
    wide = run("fit", "recovery", EXAMPLE, "--outcome", "relief", "--response-window", 1, 50,
               "--json")
    narrow = run("fit", "recovery", EXAMPLE, "--outcome", "relief", "--json")
    assert wide.exit_code == narrow.exit_code == 0, wide.output
    import json
    assert json.loads(wide.stdout)["episodes"] > json.loads(narrow.stdout)["episodes"]
    numbness = run("fit", "recovery", EXAMPLE, "--threshold", 0.4)
    assert numbness.exit_code == 2 and "--threshold applies to relief episodes" in numbness.stderr


def test_fit_options_that_do_not_apply_are_refused(run):
    """Each model has only its own options: another model's is no option at all."""
    wrong = run("fit", "trajectory", EXAMPLE, "--lag", 3)
    assert wrong.exit_code == 2 and "No such option '--lag'" in wrong.stderr
    relief = run("fit", "regeneration", EXAMPLE, "--outcome", "relief")
    assert relief.exit_code == 2 and "No such option '--outcome'" in relief.stderr
    assert "--lag" not in run("fit", "recovery", "--help").stdout
    assert "--re-formula" in run("fit", "trajectory", "--help").stdout
    typo = run("fit", "recovery", EXAMPLE, "--formula", "~ agee")
    assert typo.exit_code == 1 and "bug" not in typo.stderr
    assert "no column 'agee'" in typo.stderr and "did you mean 'age'?" in typo.stderr


def test_trajectory_json_is_strict_and_categorical_profiles_work(run):
    import json
    result = run("fit", "trajectory", EXAMPLE, "--threshold", 100, "--absolute",
                 "--json")
    document = json.loads(result.stdout, parse_constant=lambda name: pytest.fail(name))
    assert document["time_to_threshold"][0]["estimate"] is None
    by_sex = run("fit", "trajectory", EXAMPLE, "--formula",
                 "~ cr(day, df=4, constraints='center') + baseline_pain + sex", "--at", "sex=M")
    assert by_sex.exit_code == 0, by_sex.output
    assert "at sex M" in by_sex.stdout
    unseen = run("fit", "trajectory", EXAMPLE, "--formula",
                 "~ cr(day, df=4, constraints='center') + nerve", "--at", "nerve=sural")
    assert unseen.exit_code == 1 and "known: anterior_femoral_cutaneous" in unseen.stderr


def test_fit_in_the_form_of_earlier_releases_still_works_with_a_note(run):
    """`regen fit PATH --model M` runs `regen fit M PATH` and says so on stderr."""
    old = run("fit", EXAMPLE, "--model", "regeneration", "--lag", 10, "--json")
    new = run("fit", "regeneration", EXAMPLE, "--lag", 10, "--json")
    assert old.exit_code == 0, old.output
    assert old.stdout == new.stdout
    assert "is now `regen fit regeneration PATH`" in old.stderr
    plain = run("fit", EXAMPLE, "--formula", "~ nerve", "--json")
    assert plain.exit_code == 0 and "is now `regen fit recovery PATH`" in plain.stderr
    assert "note:" not in new.stderr


def test_fit_probability_prints_odds_ratios_and_probabilities(run, tmp_path):
    import json
    result = run("fit", "probability", EXAMPLE, "--formula",
                 "~ cr(day, df=3, constraints='center') + diabetes", "--at", "diabetes=yes",
                 "--days", 30, "--days", 120, "--save", tmp_path / "gee.json")
    assert result.exit_code == 0, result.output
    assert "Odds ratios" in result.stdout and "diabetes" in result.stdout
    assert "at diabetes yes" in result.stdout and "day 120" in result.stdout
    model = regen.load_model(tmp_path / "gee.json")
    expected = model.predict(pd.DataFrame({"diabetes": [True], "day": [120.0]}))["estimate"]
    line = next(x for x in result.stdout.splitlines() if "day 120" in x)
    shown = float(line.split("day 120 ")[1].split("%")[0])
    assert shown == pytest.approx(100 * expected.iloc[0], abs=0.05)
    document = json.loads(run("fit", "probability", EXAMPLE, "--json").stdout)
    assert document["model"] == "probability" and len(document["predictions"]) == 4
    assert all(0 < p["ci_lower"] < p["estimate"] < p["ci_upper"] < 1
               for p in document["predictions"])
