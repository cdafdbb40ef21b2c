"""analyses/repeat_treatments.py: how much patients differ, the change per retreatment, and
whether a patient's earlier episodes predict the next one, on a simulated cohort whose
patients differ (a known shared effect) and are retreated when relief ends."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import types
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import regen

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example"


def load():
    spec = importlib.util.spec_from_file_location("analyses_repeat_treatments",
                                                  ROOT / "analyses" / "repeat_treatments.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(*argv: str):
    """The script's main: the files written, what it printed, and regen's warnings."""
    printed = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(printed):
        warnings.simplefilter("always")
        written = load().main([str(a) for a in argv])
    return written, printed.getvalue(), [w for w in caught
                                         if issubclass(w.category, regen.RegenWarning)]


@pytest.fixture(scope="module")
def repeated(tmp_path_factory) -> Path:
    """150 patients whose log durations share an effect of SD 0.5, retreated when relief ends."""
    sim = regen.simulate.cohort(150, seed=7, retreat="on_relief_end", patient_sd_log=0.5,
                                max_treatments=4)
    folder = tmp_path_factory.mktemp("repeated") / "cohort"
    sim.write(folder)
    return folder


@pytest.fixture(scope="module")
def ran(repeated, tmp_path_factory):
    """The script run once on the simulated cohort (two folds, to keep the test short)."""
    inputs = {p.name: p.read_bytes() for p in repeated.iterdir()}
    out = tmp_path_factory.mktemp("out")
    written, printed, regen_warnings = main(repeated, "--out", out, "--folds", 2)
    return types.SimpleNamespace(out=out, written=written, printed=printed,
                                 warnings=regen_warnings, inputs=inputs, cohort=repeated)


def read(out: Path, table: str) -> pd.DataFrame:
    return pd.read_csv(out / f"{table}.csv", dtype={"patient_id": str, "treatment_id": str,
                                                    "treatment_number": str})


def test_writes_every_file_it_declares_and_leaves_the_inputs_alone(ran):
    module = load()
    declared = {ran.out / f"{t}.csv" for t in module.TABLES}
    declared |= {ran.out / f"{p}.html" for p in module.PAGES} | {ran.out / module.MODEL}
    assert set(ran.written) == declared
    assert all(p.is_file() and p.stat().st_size > 50 for p in declared)
    assert ran.warnings == []
    assert {p.name: p.read_bytes() for p in ran.cohort.iterdir()} == ran.inputs
    page = (ran.out / "repeat_treatments.html").read_text()
    assert "<script" not in page and "Content-Security-Policy" in page
    assert "One patient in four has relief" in page
    assert "P0" not in page  # no patient id on the page; they are in cv_predictions.csv only


def test_the_numbers_agree_with_a_direct_fit(ran):
    episodes = regen.read_cohort(ran.cohort).episodes("relief")
    with warnings.catch_warnings():
        warnings.simplefilter("error", regen.RegenWarning)
        direct = regen.fit_recovery("~ nerve + treatment_number", episodes, dist="lognormal",
                                    frailty="patient_id")
    effect = read(ran.out, "patient_effect").set_index("quantity")
    tau = effect.loc["frailty_sd"]
    assert tau["estimate"] == pytest.approx(direct.frailty_sd, rel=1e-4)
    assert (tau["ci_lower"], tau["ci_upper"]) == pytest.approx(direct.frailty_ci, rel=1e-3)
    assert tau["p_value"] == pytest.approx(direct.frailty_test["p_value"], rel=1e-3)
    assert 0.2 < tau["estimate"] < 0.6 and tau["ci_lower"] > 0  # a patient effect, found
    assert effect.loc["upper_quartile_ratio", "estimate"] == pytest.approx(
        np.exp(0.6744897501960817 * direct.frailty_sd), rel=1e-4)
    share = direct.frailty_sd**2 / (direct.frailty_sd**2 + direct.scale**2)  # log-normal
    assert effect.loc["between_patient_share", "estimate"] == pytest.approx(share, rel=1e-4)
    assert effect.loc["patients_with_repeats", "estimate"] == (
        episodes["patient_id"].value_counts() >= 2).sum()
    # the treatment number's time ratio does not depend on which nerve is the reference
    summary = read(ran.out, "frailty_summary").set_index("term")
    for column in ("time_ratio", "time_ratio_ci_lower", "time_ratio_ci_upper", "p_value"):
        assert summary.loc["treatment_number", column] == pytest.approx(
            direct.summary.loc["treatment_number", column], rel=1e-3)
    assert summary.loc["treatment_number", "time_ratio_ci_lower"] < 1 < summary.loc[
        "treatment_number", "time_ratio_ci_upper"]  # simulated: no change per retreatment
    saved = regen.load_model(ran.out / "frailty_model.json")
    assert saved.frailty_sd == pytest.approx(direct.frailty_sd, rel=1e-4)
    assert saved.outcome == "relief"
    counts = read(ran.out, "episodes_by_treatment_number")
    expected = episodes["treatment_number"].value_counts().sort_index()
    assert list(counts["treatment_number"]) == [str(n) for n in expected.index]
    assert list(counts["episodes"]) == list(expected)


def test_a_patients_history_predicts_their_next_episode_better(ran):
    scores = read(ran.out, "cv_scores").set_index("prediction")
    own, marginal = scores.loc["own"], scores.loc["marginal"]
    assert own["mean_log_distance"] < marginal["mean_log_distance"]
    assert own["closer"] > marginal["closer"]
    assert own["sign_test_p_value"] < 0.05
    predictions = read(ran.out, "cv_predictions")
    assert len(predictions) == own["patients"] and predictions["patient_id"].is_unique
    assert (predictions["history_episodes"] >= 1).all() and set(predictions["fold"]) == {1, 2}
    # the held-out episode is each patient's latest
    episodes = regen.read_cohort(ran.cohort).episodes("relief")
    latest = episodes.groupby("patient_id")["treated_on"].max()
    held = episodes.set_index("treatment_id").loc[predictions["treatment_id"]]
    assert (held["treated_on"].to_numpy() == latest.loc[held["patient_id"]].to_numpy()).all()
    assert (predictions["own_log_distance"] >= 0).all()
    assert "predict their next relief episode better than their covariates alone" in ran.printed


def test_the_summary_says_it_in_words(ran):
    assert "One patient in four has relief that typically lasts at least 1." in ran.printed
    assert "per retreatment (95% CI" in ran.printed
    assert "Episodes by treatment number: 1: " in ran.printed
    assert "frailty_model.json" in ran.printed


def test_a_cohort_without_repeat_treatments_is_refused_in_words(tmp_path):
    regen.simulate.cohort(60, seed=1, p_retreat=0).write(tmp_path / "cohort")
    with pytest.raises(SystemExit) as stopped:
        main(tmp_path / "cohort", "--out", tmp_path / "out")
    message = str(stopped.value.code)
    assert message.startswith("error: ") and "treated more than once" in message
    assert "no patient has a relief episode treated after an earlier one" in message
    assert "both sides" in message  # the bilateral pairs are named, and why they do not count
    assert not (tmp_path / "out").exists()


def test_it_never_writes_into_the_cohort_folder(repeated, capsys):
    before = sorted(p.name for p in repeated.iterdir())
    with pytest.raises(SystemExit) as stopped:
        main(repeated, "--out", repeated)
    assert stopped.value.code == 2
    assert "folder holding the input tables" in capsys.readouterr().err
    assert sorted(p.name for p in repeated.iterdir()) == before


def test_a_model_file_regen_did_not_write_stops_it_before_the_work(repeated, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "frailty_model.json").write_text("{}")
    with pytest.raises(SystemExit) as stopped:
        main(repeated, "--out", out)
    assert stopped.value.code == 2
    assert "frailty_model.json exists and was not written by regen" in capsys.readouterr().err
    assert (out / "frailty_model.json").read_text() == "{}"
    assert not any(out.glob("*.csv"))


def test_it_takes_the_read_limits(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main("--data", EXAMPLE, "--out", tmp_path / "out", "--max-rows", "50")
    assert stopped.value.code == 1
    assert "--max-rows" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_log_distance_respects_the_interval():
    distance = load().log_distance
    median = np.array([50.0, 20.0, 200.0, 20.0, 200.0, 30.0])
    lower = np.array([40.0, 40.0, 40.0, 40.0, 0.0, 0.0])
    upper = np.array([60.0, 60.0, 60.0, np.inf, 60.0, 60.0])
    assert distance(median, lower, upper) == pytest.approx(
        [0, np.log(2), np.log(200 / 60), np.log(2), np.log(200 / 60), 0])
    assert distance([100.0], [40.0], [np.inf]) == pytest.approx([0])  # right-censored: above is in


def test_small_treatment_numbers_are_pooled_never_hidden():
    pool = load().by_treatment_number
    numbers = [1] * 30 + [2] * 12 + [3] * 6 + [4] * 3
    episodes = pd.DataFrame({"treatment_number": numbers,
                             "patient_id": [f"P{k % 25}" for k in range(len(numbers))]})
    table = pool(episodes, min_group=10, min_patients=5)
    assert list(table["treatment_number"]) == ["1", "2 or more"]
    assert table["episodes"].sum() == len(episodes)  # nothing to subtract
    assert list(pool(episodes, min_group=3, min_patients=3)["treatment_number"]) == [
        "1", "2", "3", "4"]
    assert pool(episodes, min_group=100, min_patients=5).empty


def test_history_is_what_was_treated_before_the_last_episode():
    day = pd.Timestamp
    episodes = pd.DataFrame({
        "patient_id": ["A", "A", "A", "B", "B", "C"],
        "treatment_id": ["T1", "T2", "T3", "T4", "T5", "T6"],
        "treatment_number": [1, 1, 2, 1, 1, 1],
        "treated_on": [day("2023-01-01"), day("2023-01-01"), day("2023-05-01"),
                       day("2023-02-01"), day("2023-02-01"), day("2023-03-01")],
    })
    held, history, key = load().last_episodes(episodes)
    assert key == "treated_on"
    assert list(held["treatment_id"]) == ["T3"]  # B's two sides on one day are not a repeat
    assert sorted(history["treatment_id"]) == ["T1", "T2"]
    undated = episodes.assign(treated_on=pd.NaT)
    held, history, key = load().last_episodes(undated)
    assert key == "treatment_number" and list(held["treatment_id"]) == ["T3"]


def test_a_patient_effect_at_zero_is_said_in_words():
    module = load()
    fit = types.SimpleNamespace(frailty_sd=0.0, frailty_ci=(0.0, 0.12),
                                frailty_test={"statistic": 0.0, "p_value": 1.0})
    table = pd.DataFrame({"quantity": ["upper_quartile_ratio", "between_patient_share"],
                          "estimate": [1.0, 0.0], "ci_lower": [1.0, np.nan],
                          "ci_upper": [np.exp(0.674 * 0.12), np.nan]})
    words = " ".join(module.patient_words(fit, table, "relief"))
    assert "No patient effect was found" in words and "estimated at 0" in words
    assert "up to 0.12" in words and "0.00–" not in words and "0.000–" not in words


def test_the_page_shows_data_text_literally():
    module = load()
    table = module.html_table(pd.DataFrame({"nerve": ["<img src=x onerror=alert(1)>"],
                                            "n": [3.14159]}), "<script>caption</script>")
    page = module.page("t", [{"heading": "<b>h</b>", "lines": ["<script>x</script>"],
                              "tables": [table]}], ["<i>note</i>"])
    assert "<script" not in page and "<img" not in page and "<b>h" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "3.142" in page


@pytest.mark.slow
def test_the_example_cohort(tmp_path):
    written, printed, regen_warnings = main(EXAMPLE, "--out", tmp_path)
    assert regen_warnings == []
    assert tmp_path / "cv_scores.csv" in written
    effect = read(tmp_path, "patient_effect").set_index("quantity")
    assert effect.loc["frailty_sd", "ci_lower"] == 0  # the example has no patient effect
    assert "cannot tell this from no patient effect" in printed
    counts = read(tmp_path, "episodes_by_treatment_number")
    assert counts["episodes"].sum() == 348
