"""Relief ends at the first of ``confirm`` consecutive unrelieved visits (the last visit
counts alone): hand-built cases, a loop-by-loop reference, the options that carry
``confirm`` (API, CLI, report, analysis script), the simulator's noisy-pain knobs, and
(slow) a simulation study of how often relief is ended too early."""

from __future__ import annotations

import importlib.util
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import regen
from regen.cli import main
from regen.episodes import RELIEF_CONFIRM
from tests.conftest import write_cohort

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example"
PATIENTS = "patient_id,birth_year\nP1,1970\nP2,1980\n"
PATIENT = "patient_id,birth_year\nP1,1970\n"
R, U = 2, 7  # with baseline 8, relieved means pain <= 4


#: (pain scores on days 7, 14, 21, ... after a baseline of 8, confirm, expected episode)
CASES = [
    # Two unrelieved visits in a row: the interval is the one before the run starts.
    ([R, R, U, U, R], 2, (14, 21, "interval_censored", "relief_ended")),
    # A relieved visit breaks the run and relief goes on, to the next run of two.
    ([R, U, R, U, U, R], 2, (21, 28, "interval_censored", "relief_ended")),
    ([R, U, U, R, U, U, U], 3, (28, 35, "interval_censored", "relief_ended")),
    # Plain rule: the first unrelieved visit ends relief.
    ([R, U, R, U, U, R], 1, (7, 14, "interval_censored", "relief_ended")),
    # Broken runs only, relieved at the last visit: right-censored.
    ([R, U, R, U, R], 2, (35, np.inf, "right_censored", "relieved_at_last_visit")),
    # The last visit counts alone: a closing run shorter than confirm ends relief at its
    # first visit, and the reason says it was not confirmed.
    ([R, U, R, U], 2, (21, 28, "interval_censored", "relief_ended_unconfirmed")),
    ([R, R, U, U], 3, (14, 21, "interval_censored", "relief_ended_unconfirmed")),
    # Unrelieved visits before relief began (the response window's onset) do not count.
    ([U, R, U, U], 2, (14, 21, "interval_censored", "relief_ended")),
    # A visit without a pain score (numbness only) neither counts nor breaks a run.
    ([R, U, None, U, R], 2, (7, 14, "interval_censored", "relief_ended")),
]


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> regen.Cohort:
    """One treatment (and patient) per case, read once."""
    patients = "patient_id,birth_year\n" + "".join(f"P{i},1970\n" for i in range(len(CASES)))
    treatments = "treatment_id,patient_id,nerve,side\n" + "".join(
        f"T{i},P{i},greater_occipital,left\n" for i in range(len(CASES)))
    visits = "treatment_id,day,pain,numb\n" + "".join(
        f"T{i},0,8,no\n" + "".join(f"T{i},{7 * (j + 1)},{'' if p is None else p},yes\n"
                                   for j, p in enumerate(pains))
        for i, (pains, _, _) in enumerate(CASES))
    return regen.read_cohort(write_cohort(tmp_path_factory.mktemp("cases"), patients,
                                          treatments, visits))


@pytest.mark.parametrize("case", range(len(CASES)))
def test_relief_end_with_confirmation(cases, case):
    pains, confirm, expected = CASES[case]
    row = cases.episodes("relief", confirm=confirm).set_index("treatment_id").loc[f"T{case}"]
    assert tuple(row[["lower", "upper", "status", "reason"]]) == expected, pains


def test_retreatment_censors_before_the_run_is_confirmed(tmp_path):
    treatments = ("treatment_id,patient_id,nerve,side,treated_on\n"
                  "T1,P1,greater_occipital,left,2024-01-01\n"
                  "T2,P1,greater_occipital,left,2024-03-01\n")
    # T1 is retreated on day 60: its visits at days 75 and 90 are set aside, so its day-45
    # unrelieved visit is its last one and ends relief alone; at day 30 it was relieved.
    visits = ("treatment_id,day,pain\nT1,0,8\nT1,7,2\nT1,30,7\nT1,40,3\nT1,45,7\nT1,75,7\n"
              "T1,90,7\nT2,0,8\nT2,7,2\nT2,30,2\n")
    with pytest.warns(regen.DataWarning, match="on or after a retreatment"):
        cohort = regen.read_cohort(write_cohort(tmp_path, PATIENT, treatments, visits))
    episodes = cohort.episodes("relief", confirm=2).set_index("treatment_id")
    assert tuple(episodes.loc["T1", ["lower", "upper", "status", "reason"]]) == (
        40, 45, "interval_censored", "relief_ended_unconfirmed")
    assert tuple(episodes.loc["T2", ["upper", "reason"]]) == (np.inf, "relieved_at_last_visit")
    # Relieved at the last visit before the retreatment: censored there, as before.
    plain = cohort.episodes("relief", confirm=1).set_index("treatment_id")
    assert tuple(plain.loc["T1", ["lower", "upper"]]) == (7, 30)


def reference(days: np.ndarray, relieved: np.ndarray, confirm: int) -> tuple:
    """The rule, one visit at a time: (lower, upper, reason) after relief began at visit 0."""
    run = 0
    for i in range(1, len(days)):
        run = 0 if relieved[i] else run + 1
        start = i - run + 1
        if run == confirm or (run and i == len(days) - 1):
            reason = "relief_ended" if run >= confirm else "relief_ended_unconfirmed"
            return days[start - 1], days[start], reason
    return days[-1], np.inf, "relieved_at_last_visit"


def test_vectorised_rule_matches_a_visit_by_visit_reference(tmp_path, rng):
    n = 200
    counts = rng.integers(1, 9, n)
    rows = ["treatment_id,day,pain"]
    expected = {}
    for t, count in enumerate(counts):
        days = np.sort(rng.choice(np.arange(1, 400), count, replace=False))
        relieved = rng.random(count) < 0.55
        relieved[0] = True  # relief begins at the first visit (day ≤ 30 below)
        days[0] = min(days[0], 30)
        days = np.unique(days)
        relieved = relieved[: len(days)]
        rows.append(f"T{t},0,8")
        rows += [f"T{t},{d},{R if r else U}" for d, r in zip(days, relieved, strict=True)]
        expected[f"T{t}"] = (days, relieved)
    patients = "patient_id,birth_year\n" + "".join(f"P{t},1970\n" for t in range(n))
    treatments = "treatment_id,patient_id,nerve,side\n" + "".join(
        f"T{t},P{t},greater_occipital,left\n" for t in range(n))
    cohort = regen.read_cohort(write_cohort(tmp_path, patients, treatments, "\n".join(rows) + "\n"))
    for confirm in (1, 2, 3, 5):
        episodes = cohort.episodes("relief", confirm=confirm)
        assert len(episodes) == n
        got = dict(zip(episodes["treatment_id"], zip(episodes["lower"], episodes["upper"],
                                                     episodes["reason"], strict=True), strict=True))
        for tid, (days, relieved) in expected.items():
            assert got[tid] == reference(days, relieved, confirm), (tid, confirm, days, relieved)


@pytest.mark.parametrize(("value", "error"), [
    (0, ValueError), (-2, ValueError), (1.5, TypeError), (2.0, TypeError), ("2", TypeError),
    (True, TypeError), (None, TypeError)])
def test_confirm_must_be_a_whole_number_of_at_least_one(cases, value, error):
    with pytest.raises(error, match="confirm must") as raised:
        cases.episodes("relief", confirm=value)
    assert str(raised.value).endswith(f"not {value!r}")


def test_numpy_whole_numbers_are_accepted_and_give_the_same_episodes(cases):
    pd.testing.assert_frame_equal(cases.episodes("relief", confirm=np.int64(3)),
                                  cases.episodes("relief", confirm=3))


def test_the_exact_simulator_gives_the_same_episodes_for_every_confirm():
    # data/example's pain never crosses the relief line by noise, so once relief ends every
    # later visit is unrelieved: the default changes nothing in the demo and the report.
    cohort = regen.read_cohort(EXAMPLE)
    plain = cohort.episodes("relief", confirm=1)
    for confirm in (RELIEF_CONFIRM, 3):
        confirmed = cohort.episodes("relief", confirm=confirm)
        pd.testing.assert_frame_equal(
            confirmed.drop(columns="reason"), plain.drop(columns="reason"))
    reasons = cohort.episodes("relief", confirm=3)["reason"].value_counts()
    assert reasons["relief_ended"] > 0 and reasons["relief_ended_unconfirmed"] > 0
    assert "relief_ended_unconfirmed" not in set(plain["reason"])


# ------------------------------------------------------------------ options --

NOISY = ("treatment_id,day,pain\nT1,0,8\nT1,7,2\nT1,30,7\nT1,60,2\nT1,90,7\nT1,120,7\n"
         "T2,0,6\nT2,7,1\nT2,30,1\n")
TWO = ("treatment_id,patient_id,nerve,side\nT1,P1,greater_occipital,left\n"
       "T2,P2,supraorbital,right\n")


@pytest.fixture
def noisy(tmp_path) -> Path:
    return write_cohort(tmp_path / "noisy", PATIENTS, TWO, NOISY)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_cli_episodes_confirm(noisy, tmp_path):
    for confirm, upper in ((1, 30), (2, 90)):
        out = tmp_path / f"k{confirm}.csv"
        result = invoke("episodes", noisy, "--outcome", "relief", "--confirm", confirm, "-o", out)
        assert result.exit_code == 0, result.output
        assert pd.read_csv(out).set_index("treatment_id").loc["T1", "upper"] == upper
    default = tmp_path / "default.csv"
    assert invoke("episodes", noisy, "--outcome", "relief", "-o", default).exit_code == 0
    assert pd.read_csv(default).set_index("treatment_id").loc["T1", "upper"] == (
        30 if RELIEF_CONFIRM == 1 else 90)
    bad = invoke("episodes", noisy, "--outcome", "relief", "--confirm", 0, "-o", tmp_path / "x.csv")
    assert bad.exit_code == 2 and "--confirm" in bad.stderr and "0" in bad.stderr
    assert "Traceback" not in bad.output
    assert not (tmp_path / "x.csv").exists()


def test_cli_fit_confirm_applies_to_relief_only():
    numb = invoke("fit", "recovery", EXAMPLE, "--confirm", 3)
    assert numb.exit_code == 2 and "--confirm applies to relief episodes" in numb.stderr
    trajectory = invoke("fit", "trajectory", EXAMPLE, "--confirm", 3)
    assert trajectory.exit_code == 2 and "No such option '--confirm'" in trajectory.stderr
    relief = invoke("fit", "recovery", EXAMPLE, "--outcome", "relief", "--confirm", 3, "--json")
    assert relief.exit_code == 0, relief.output
    assert json.loads(relief.stdout)["episodes"] > 300


@pytest.mark.filterwarnings("ignore:.*single patient_id:regen.exceptions.DataWarning")
def test_report_states_the_rule_it_used(noisy, tmp_path, monkeypatch):
    from regen.report import relief_report

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    cohort = regen.read_cohort(noisy)
    content = relief_report(cohort, tmp_path / "k1" / "report.html", n_bootstrap=20,
                            min_group=1, min_patients=1, confirm=1)
    assert content["settings"]["relief_confirm_visits"] == 1
    text = " ".join((tmp_path / "k1" / "report.html").read_text().split())
    assert "Relief ended at the first later visit without it" in text
    assert "in a row" not in text
    with pytest.raises(ValueError, match="confirm must be at least 1"):
        relief_report(cohort, tmp_path / "k0" / "report.html", confirm=0)
    assert not (tmp_path / "k0" / "report.html").exists()


def test_cli_report_passes_confirm(noisy, tmp_path):
    result = invoke("report", noisy, "-o", tmp_path / "report.html", "--n-bootstrap", 20,
                    "--min-group", 1, "--min-patients", 1, "--confirm", 4)
    assert result.exit_code == 0, result.output
    settings = json.loads((tmp_path / "report.json").read_text())["settings"]
    assert settings["relief_confirm_visits"] == 4
    text = " ".join((tmp_path / "report.html").read_text().split())
    assert "Relief ended when 4 visits in a row were without it" in text
    assert "fewer than 4 in a row" in text and "at the first later visit" not in text
    bad = invoke("report", noisy, "-o", tmp_path / "again.html", "--confirm", -1)
    assert bad.exit_code == 2 and "--confirm" in bad.stderr and "-1" in bad.stderr


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"analyses_{name}",
                                                  ROOT / "analyses" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_relief_script_takes_confirm(noisy, tmp_path, capsys):
    script = load_script("relief_duration")
    with pytest.raises(SystemExit) as stopped:
        script.main(["--data", str(noisy), "--out", str(tmp_path / "out"), "--confirm", "0"])
    assert stopped.value.code == 2 and "--confirm: 0 is below 1" in capsys.readouterr().err
    cohort = regen.read_cohort(noisy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", regen.RegenWarning)
        table = script.responders(cohort, confirm=3).set_index("nerve")
    assert table.loc["all", "responders"] == 2


# ---------------------------------------------------------------- simulator --

def test_noisy_pain_knob_lets_scores_cross_the_relief_line():
    exact = regen.simulate.cohort(150, seed=77, pain_noise_sd=1.2)
    noisy = regen.simulate.cohort(150, seed=77, pain_noise_sd=1.2, pain_noise_crosses=True)
    for sim, crossing in ((exact, False), (noisy, True)):
        visits = sim.visits.merge(sim.treatments[["treatment_id", "treated_on"]]).merge(
            sim.events[["treatment_id", "relief_end_day", "baseline_pain"]])
        day = (visits["visit_date"] - visits["treated_on"]).dt.days
        post = (day >= 1) & visits["relief_end_day"].notna()
        truly = day < visits["relief_end_day"]
        scored = visits["pain"] <= 0.5 * visits["baseline_pain"]
        wrong = (truly != scored)[post].mean()
        assert (wrong > 0.03) if crossing else (wrong == 0), wrong
    assert noisy.truth["pain_noise_crosses"] is True and noisy.truth["pain_noise_sd"] == 1.2
    # The knob changes only the pain scores: same draws, same everything else.
    pd.testing.assert_frame_equal(exact.visits.drop(columns="pain"),
                                  noisy.visits.drop(columns="pain"))


def test_baseline_pain_knobs():
    sim = regen.simulate.cohort(60, seed=3, baseline_pain_mean=5, baseline_pain_sd=0)
    assert set(sim.events["baseline_pain"]) == {5}
    assert sim.truth["baseline_pain"]["mean"] == 5 and sim.truth["baseline_pain_sd"] == 0
    with pytest.raises(ValueError, match="baseline_pain_mean must be <= 10"):
        regen.simulate.cohort(5, seed=1, baseline_pain_mean=12)
    with pytest.raises(ValueError, match="pain_noise_sd must be >= 0"):
        regen.simulate.cohort(5, seed=1, pain_noise_sd=-1)
    with pytest.raises(TypeError, match="pain_noise_crosses must be True or False"):
        regen.simulate.cohort(5, seed=1, pain_noise_crosses="yes")


def test_default_simulation_still_writes_the_example_cohort(tmp_path):
    sim = regen.simulate.cohort(300, seed=2026)
    written = sim.write(tmp_path / "again")
    for name in ("patients", "treatments", "visits"):
        assert (written / f"{name}.csv").read_bytes() == (EXAMPLE / f"{name}.csv").read_bytes()


# ------------------------------------------------------- simulation study --

#: The slow study's own settings (not the docs' nor other tests'): visit schedules from
#: weekly to six-weekly, baseline pain 4.5-7, pain-score noise SD 0.6-0.9.
STUDY = {
    "fortnightly then spaced, baseline 5.5 ± 1, noise 0.8": dict(
        schedule=(10, 21, 35, 49, 63, 84, 112, 150, 200, 300), baseline_pain_mean=5.5,
        baseline_pain_sd=1.0, pain_noise_sd=0.8),
    "weekly for 12 weeks, baseline 7 ± 1.5, noise 0.9": dict(
        schedule=tuple(range(7, 85, 7)) + (120, 180), baseline_pain_mean=7.0,
        baseline_pain_sd=1.5, pain_noise_sd=0.9, jitter_days=2),
    "every 4-6 weeks, baseline 4.5 ± 1, noise 0.6, more missed visits and dropout": dict(
        schedule=(14, 42, 70, 98, 126, 180, 365), baseline_pain_mean=4.5, baseline_pain_sd=1.0,
        pain_noise_sd=0.6, jitter_days=5, p_missed=0.2, dropout_per_year=0.3),
}
COHORTS_PER_SETTING, PATIENTS_PER_COHORT = 70, 120


def judge(episodes: pd.DataFrame, events: pd.DataFrame, pain: pd.DataFrame) -> pd.Series:
    """Per true responder's episode: premature (ended before relief did), and whether the
    true end lay beyond the next visit (relief went on through a later visit), late, and
    whether the interval holds the true end."""
    end = episodes["treatment_id"].map(events.set_index("treatment_id")["relief_end_day"])
    visits = pain.loc[pain["day"] >= 1, ["treatment_id", "day"]].sort_values(["treatment_id",
                                                                               "day"])
    visits["next_day"] = visits.groupby("treatment_id")["day"].shift(-1)
    ep = episodes.loc[end.notna(), ["treatment_id", "lower", "upper"]].assign(end=end)
    ep = ep.merge(visits.rename(columns={"day": "upper"}).astype({"upper": "float64"}),
                  on=["treatment_id", "upper"], how="left")
    premature = ep["upper"] < ep["end"]
    return pd.Series({
        "episodes": len(ep), "premature": premature.sum(),
        "beyond_next_visit": (premature & (ep["next_day"] < ep["end"])).sum(),
        "late": (ep["lower"] >= ep["end"]).sum(),
        "holds": ((ep["lower"] < ep["end"]) & (ep["end"] <= ep["upper"])).sum()})


@pytest.mark.slow
def test_confirmation_keeps_premature_ends_from_a_lone_noisy_visit_below_one_percent():
    totals = {k: [] for k in (1, RELIEF_CONFIRM)}
    for i, settings in enumerate(STUDY.values()):
        for j in range(COHORTS_PER_SETTING):
            sim = regen.simulate.cohort(PATIENTS_PER_COHORT, seed=910_000 + 1000 * i + j,
                                        pain_noise_crosses=True, **settings)
            with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
                warnings.simplefilter("ignore", regen.RegenWarning)
                sim.write(folder, format="parquet")
                cohort = regen.read_cohort(folder)
                pain = cohort.measurements("pain")
                for k in totals:
                    totals[k].append(judge(cohort.episodes("relief", confirm=k), sim.events,
                                           pain).rename(i))
    plain = pd.DataFrame(totals[1]).groupby(level=0).sum()
    confirmed = pd.DataFrame(totals[RELIEF_CONFIRM]).groupby(level=0).sum()
    n = confirmed["episodes"].sum()
    assert n >= 15_000 and (confirmed["episodes"] == plain["episodes"]).all()
    rate = confirmed.sum() / n
    rate_plain = plain.sum() / n
    # The plain rule ends relief too early through a lone noisy visit in every setting:
    # the study can see what confirmation is for.
    assert (plain["beyond_next_visit"] / plain["episodes"] > 0.015).all(), plain
    # At the default, such ends are below 1% overall and in each setting.
    assert rate["beyond_next_visit"] < 0.01, rate
    assert (confirmed["beyond_next_visit"] / confirmed["episodes"] < 0.01).all(), confirmed
    # All premature ends fall by at least 40% and intervals hold the true end more often.
    assert rate["premature"] < 0.6 * rate_plain["premature"], (rate, rate_plain)
    assert rate["holds"] > rate_plain["holds"] + 0.02, (rate, rate_plain)
    # The price, relief read as lasting past its end, is smaller than the gain.
    gained = rate_plain["premature"] - rate["premature"]
    assert 0 < rate["late"] - rate_plain["late"] < 0.6 * gained, (rate, rate_plain)
