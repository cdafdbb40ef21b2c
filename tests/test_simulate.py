"""Tests of regen.simulate: schema, reproducibility, and agreement with the truth."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regen.simulate import NERVE_DISTANCES, SimulatedCohort, cohort
from regen.tables import TABLES


@pytest.fixture(scope="module")
def sim() -> SimulatedCohort:
    return cohort(300, seed=20240601, time_columns=("day", "visit_date"))


@pytest.fixture(scope="module")
def visits(sim: SimulatedCohort) -> pd.DataFrame:
    """Visits joined to the truth, with the day recomputed from the dates."""
    merged = sim.visits.merge(sim.treatments, on="treatment_id", validate="many_to_one")
    keys = ["treatment_id", "patient_id", "nerve", "side", "procedure", "distance_mm"]
    merged = merged.merge(sim.events, on=keys, validate="many_to_one")
    merged["date_day"] = (merged["visit_date"] - merged["treated_on"]).dt.days
    return merged


def _text_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame as files hold it: dates as ISO text, yes/no booleans, numbers as floats."""
    out = frame.copy()
    for name in out.columns:
        col = out[name]
        if pd.api.types.is_datetime64_any_dtype(col):
            out[name] = col.dt.strftime("%Y-%m-%d")
        elif pd.api.types.is_bool_dtype(col):
            out[name] = col.map({True: "yes", False: "no"})
        elif pd.api.types.is_numeric_dtype(col):
            out[name] = col.astype("float64")
        else:
            out[name] = col.astype(str)
    return out


def test_same_seed_gives_byte_identical_files_and_other_seed_differs(tmp_path):
    paths = [cohort(200, seed=seed).write(tmp_path / str(i)) for i, seed in enumerate((7, 7, 8))]
    for name in ("patients.csv", "treatments.csv", "visits.csv"):
        first, again, other = ((path / name).read_bytes() for path in paths)
        assert first == again
        assert first != other


def test_seed_none_records_a_seed_that_reproduces_the_cohort():
    first = cohort(30)
    assert isinstance(first.truth["seed"], int)
    again = cohort(30, seed=first.truth["seed"])
    pd.testing.assert_frame_equal(first.visits, again.visits)
    assert cohort(30).truth["seed"] != first.truth["seed"]


@pytest.mark.parametrize("time_columns", [("visit_date",), ("day",), ("day", "visit_date")])
def test_columns_are_declared_and_values_valid(time_columns):
    sim = cohort(150, seed=3, time_columns=time_columns)
    frames = {"patients": sim.patients, "treatments": sim.treatments, "visits": sim.visits}
    assert "age" not in sim.treatments.columns
    assert [c for c in sim.visits.columns if c in ("day", "visit_date")] == list(time_columns)
    for name, frame in frames.items():
        table = TABLES[name]
        assert set(frame.columns) <= set(table.names)
        for column in table.columns:
            if column.required:
                assert column.name in frame.columns
            if column.name not in frame.columns:
                continue
            values = frame[column.name].dropna()
            if column.required:
                assert len(values) == len(frame), column.name
            if column.allowed:
                assert set(values) <= set(column.allowed), column.name
            if column.kind == "boolean":
                assert frame[column.name].dtype == bool
            if column.kind in ("integer", "number"):
                low, high = column.minimum, column.maximum
                if low is not None:
                    above = values >= low if column.minimum_inclusive else values > low
                    assert above.all(), column.name
                if high is not None:
                    assert (values <= high).all(), column.name
    for score in ("numbness", "pain", "headache_days", "distance_mm"):
        frame = sim.treatments if score == "distance_mm" else sim.visits
        values = frame[score].dropna().to_numpy(dtype=float)
        assert np.array_equal(values, np.round(values)), score
    assert set(sim.treatments["nerve"]) <= set(NERVE_DISTANCES)
    assert set(sim.treatments["procedure"]) == {"cryo", "cryo_with_decompression"}
    treated = sim.treatments["treated_on"]
    assert treated.min() >= pd.Timestamp("2021-01-01")
    assert treated.max() <= pd.Timestamp("2024-06-30")
    assert json.loads(json.dumps(sim.truth)) == sim.truth


def test_truth_records_every_keyword_parameter(sim):
    keywords = set(inspect.signature(cohort).parameters) - {"n_patients"}
    assert keywords <= set(sim.truth)
    assert sim.truth["time_columns"] == ["day", "visit_date"]
    assert sim.truth["n_patients"] == 300


def test_ids_unique_and_references_consistent(sim, visits):
    assert sim.patients["patient_id"].is_unique
    assert sim.treatments["treatment_id"].is_unique
    assert sim.patients["patient_id"].str.fullmatch(r"P\d{5}").all()
    assert sim.treatments["treatment_id"].str.fullmatch(r"T\d{6}").all()
    assert set(sim.treatments["patient_id"]) == set(sim.patients["patient_id"])
    assert set(sim.visits["treatment_id"]) <= set(sim.treatments["treatment_id"])
    assert list(sim.events["treatment_id"]) == list(sim.treatments["treatment_id"])
    assert (visits["date_day"] == visits["day"]).all()
    # one baseline visit per treatment, days strictly increasing within a treatment
    baseline = sim.visits[sim.visits["day"] <= 0]
    assert baseline["treatment_id"].is_unique and len(baseline) == len(sim.treatments)
    assert baseline["day"].between(-14, 0).all()
    assert (sim.visits.groupby("treatment_id")["day"].diff().dropna() > 0).all()
    # the age in the truth is the one regen derives from the tables
    ages = sim.treatments["treated_on"].dt.year - sim.treatments["patient_id"].map(
        sim.patients.set_index("patient_id")["birth_year"]
    )
    assert (ages.to_numpy() == sim.events["age"].to_numpy()).all()


def test_numb_flags_follow_the_recovery_day(visits):
    post = visits["day"] >= 1
    assert post.sum() > 1000
    expected = visits["day"] < visits["recovery_day"]
    assert (visits.loc[post, "numb"] == expected[post]).all()
    assert not visits.loc[~post, "numb"].any()
    assert (visits.loc[visits["numb"], "numbness"] >= 1).all()
    assert (visits.loc[~visits["numb"], "numbness"] <= 1).all()
    assert (visits.loc[~post, "numbness"] == 0).all()
    assert 0 < visits.loc[post, "numb"].mean() < 1


def test_relief_classification_follows_the_truth(sim, visits):
    baseline = visits[visits["day"] <= 0].set_index("treatment_id")["pain"]
    assert (baseline.to_numpy() == sim.events.set_index("treatment_id").loc[baseline.index,
            "baseline_pain"].to_numpy()).all()
    observed = visits["pain"] <= 0.5 * visits["treatment_id"].map(baseline)
    truth = (
        visits["responder"] & (visits["day"] >= 1) & (visits["day"] < visits["relief_end_day"])
    )
    assert (observed == truth).all()
    assert truth.any() and (~truth & (visits["day"] >= 1)).any()
    responders = sim.events["responder"]
    assert sim.events.loc[~responders, "relief_end_day"].isna().all()
    assert (sim.events.loc[responders, "relief_end_day"] >= sim.events.loc[responders,
            "recovery_day"]).all()


def test_headache_days_only_for_occipital_nerves(visits):
    occipital = visits["nerve"].isin(["greater_occipital", "lesser_occipital", "third_occipital"])
    assert visits.loc[occipital, "headache_days"].notna().all()
    assert visits.loc[~occipital, "headache_days"].isna().all()


def test_bilateral_and_retreatment_cases_exist_at_defaults():
    sim = cohort(300, seed=11)
    t = sim.treatments
    per_day = t.groupby(["patient_id", "nerve", "treated_on"])["side"].agg(sorted)
    bilateral = per_day[per_day.map(len) == 2]
    assert len(bilateral) > 20
    assert all(sides == ["left", "right"] for sides in bilateral)
    assert not (t.loc[t["nerve"] == "third_occipital", "side"] != "midline").any()
    assert ((t["side"] == "midline") == (t["nerve"] == "third_occipital")).all()

    ordered = t.sort_values(["patient_id", "nerve", "side", "treated_on"])
    nxt = ordered.groupby(["patient_id", "nerve", "side"])["treated_on"].shift(-1)
    retreated = ordered.assign(next_on=nxt).dropna(subset=["next_on"])
    assert len(retreated) > 20
    gaps = (retreated["next_on"] - retreated["treated_on"]).dt.days
    assert gaps.between(90, 300).all()
    last_visit = sim.visits.groupby("treatment_id")["visit_date"].max()
    assert (last_visit.loc[retreated["treatment_id"]].to_numpy()
            < retreated["next_on"].to_numpy()).all()


def test_velocity_parameters_are_recovered_from_the_events():
    sim = cohort(20000, seed=5, velocity_mm_per_day=1.4, velocity_sd_log=0.25,
                 age_velocity_ratio_per_decade=0.93, diabetes_velocity_ratio=0.8,
                 smoker_velocity_ratio=0.95)
    ev = sim.events
    kinetics = 10 + ev["distance_mm"] / ev["velocity_mm_per_day"]
    np.testing.assert_allclose(ev["recovery_day"], kinetics)
    design = np.column_stack(
        [np.ones(len(ev)), (ev["age"] - 50) / 10, ev["diabetes"], ev["smoker"]]
    )
    coef, *_ = np.linalg.lstsq(design, np.log(ev["velocity_mm_per_day"]), rcond=None)
    np.testing.assert_allclose(np.exp(coef[0]), 1.4, rtol=0.02)
    np.testing.assert_allclose(np.exp(coef[1:]), [0.93, 0.8, 0.95], atol=0.02)
    residual = np.log(ev["velocity_mm_per_day"]) - design @ coef
    np.testing.assert_allclose(residual.std(), 0.25, rtol=0.03)
    reference = (ev["age"].between(48, 52)) & ~ev["diabetes"] & ~ev["smoker"]
    np.testing.assert_allclose(ev.loc[reference, "velocity_mm_per_day"].median(), 1.4, rtol=0.04)


def test_nerve_mix_gives_plausible_durations():
    sim = cohort(4000, seed=9)
    median = sim.events.groupby("nerve")["recovery_day"].median()
    assert 35 < median["greater_occipital"] < 70
    assert 55 < median["infrapatellar_saphenous"] < 90
    assert 150 < median["intercostal"] < 210
    share = sim.events["nerve"].value_counts(normalize=True)
    assert abs(share["greater_occipital"] - 0.35) < 0.03
    assert abs(share["third_occipital"] - 0.05) < 0.015
    only = cohort(50, seed=9, nerves={"intercostal": 2.0})
    assert set(only.treatments["nerve"]) == {"intercostal"}
    assert only.truth["nerves"] == {"intercostal": 1.0}


def test_complete_schedule_without_jitter_missing_dropout_or_retreatment():
    schedule = (7, 30, 90)
    sim = cohort(40, seed=2, schedule=schedule, jitter_days=0, p_missed=0.0,
                 dropout_per_year=0.0, p_retreat=0.0, time_columns="day")
    days = sim.visits.groupby("treatment_id")["day"].agg(list)
    assert len(days) == len(sim.treatments)
    assert all(d[1:] == list(schedule) and -14 <= d[0] <= 0 for d in days)


def test_misclassification_flips_post_treatment_flags():
    right = cohort(50, seed=4, time_columns="day")
    flipped = cohort(50, seed=4, time_columns="day", p_misclassified=1.0)
    post = right.visits["day"] >= 1
    assert (flipped.visits.loc[post, "numb"] == ~right.visits.loc[post, "numb"]).all()
    assert not flipped.visits.loc[~post, "numb"].any()


@settings(max_examples=25, deadline=None)
@given(
    schedule=st.lists(st.integers(1, 60), min_size=1, max_size=6, unique=True).map(sorted),
    jitter=st.integers(0, 20),
)
def test_jitter_never_reaches_day_zero_or_reorders_visits(schedule, jitter):
    sim = cohort(15, seed=1, schedule=schedule, jitter_days=jitter, time_columns="day",
                 p_retreat=0.0)
    post = sim.visits[sim.visits["day"] > 0]
    assert post["day"].min() >= 1
    assert (sim.visits.groupby("treatment_id")["day"].diff().dropna() > 0).all()
    assert post["day"].max() <= schedule[-1] + jitter


@pytest.mark.parametrize("fmt", ["csv", "parquet", "xlsx"])
def test_write_round_trips(tmp_path, fmt):
    sim = cohort(25, seed=6, time_columns=("day", "visit_date"))
    written = sim.write(tmp_path / "out", format=fmt)
    for name in ("patients", "treatments", "visits"):
        if fmt == "csv":
            back = pd.read_csv(written / f"{name}.csv", dtype=str, keep_default_na=False)
            if name == "visits":
                assert set(back["numb"]) <= {"yes", "no"}
        elif fmt == "parquet":
            back = pd.read_parquet(written / f"{name}.parquet")
        else:
            assert written.name == "cohort.xlsx"
            back = pd.read_excel(written, sheet_name=name)
        expected = _text_frame(getattr(sim, name))
        back = _text_frame(back.replace("", np.nan) if fmt == "csv" else back)
        for column in expected.select_dtypes("float64").columns:
            back[column] = back[column].astype("float64")
        pd.testing.assert_frame_equal(back, expected, check_dtype=False)
    dates = back["visit_date"]
    assert dates.str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"n_patients": 0}, ValueError),
        ({"n_patients": 2.5}, TypeError),
        ({"n_patients": True}, TypeError),
        ({"seed": -1}, ValueError),
        ({"seed": 1.5}, TypeError),
        ({"p_missed": 1.5}, ValueError),
        ({"p_response": -0.1}, ValueError),
        ({"velocity_mm_per_day": 0}, ValueError),
        ({"velocity_mm_per_day": "fast"}, TypeError),
        ({"velocity_sd_log": float("nan")}, ValueError),
        ({"lag_days": -1}, ValueError),
        ({"diabetes_velocity_ratio": 0}, ValueError),
        ({"jitter_days": 1.5}, TypeError),
        ({"nerves": {"sciatic": 1.0}}, ValueError),
        ({"nerves": {"greater_occipital": 0.0}}, ValueError),
        ({"nerves": ["greater_occipital"]}, TypeError),
        ({"schedule": (30, 7)}, ValueError),
        ({"schedule": ()}, ValueError),
        ({"schedule": (0, 7)}, ValueError),
        ({"time_columns": ("week",)}, ValueError),
        ({"time_columns": ()}, ValueError),
        ({"start_date": "not a date"}, ValueError),
        ({"start_date": 2021}, TypeError),
        ({"start_date": "2024-01-01", "end_date": "2023-01-01"}, ValueError),
        ({"start_date": "2024-01-01", "end_date": "2024-03-01"}, ValueError),
        ({"unknown_option": 1}, TypeError),
    ],
)
def test_bad_arguments_raise(kwargs, error):
    arguments = {"n_patients": 5, **kwargs}
    with pytest.raises(error):
        cohort(**arguments)


def test_bad_write_format_raises(tmp_path):
    with pytest.raises(ValueError, match="format"):
        cohort(3, seed=1).write(tmp_path, format="json")
    assert not any(tmp_path.iterdir())


# ------------------------------------- patient effects, treatment number, retreatment --

EVENT_COLUMNS = ["patient_id", "treatment_id", "nerve", "side", "distance_mm", "age", "diabetes",
                 "velocity_mm_per_day", "recovery_day", "responder", "relief_end_day",
                 "baseline_pain", "smoker", "procedure", "treatment_number", "patient_effect"]
SIDES = ["patient_id", "nerve", "side"]


def _fixed_log_velocity(sim: SimulatedCohort) -> pd.Series:
    """log v less the patient effect, the treatment number and the per-nerve noise."""
    ev, truth = sim.events, sim.truth
    return (np.log(truth["velocity_mm_per_day"])
            + np.log(truth["age_velocity_ratio_per_decade"]) * (ev["age"] - truth["reference_age"]) / 10
            + np.log(truth["diabetes_velocity_ratio"]) * ev["diabetes"]
            + np.log(truth["smoker_velocity_ratio"]) * ev["smoker"])


def _with_previous(sim: SimulatedCohort) -> pd.DataFrame:
    """Treatments with their events, the relief end of their procedure (the later of its
    sides, NaN unless every side responded) and the next treatment of the nerve and side."""
    t = sim.treatments.merge(sim.events, on=["treatment_id", "patient_id", "nerve", "side",
                                             "distance_mm", "procedure"], validate="one_to_one")
    procedure = t.groupby(["patient_id", "treated_on"])
    t["procedure_end"] = procedure["relief_end_day"].transform("max").where(
        procedure["responder"].transform("all"))
    t = t.sort_values([*SIDES, "treated_on"])
    nxt = t.groupby(SIDES)
    t["next_on"] = nxt["treated_on"].shift(-1)
    t["next_id"] = nxt["treatment_id"].shift(-1)
    return t


def test_events_columns_are_the_documented_ones(sim):
    assert list(sim.events.columns) == EVENT_COLUMNS
    doc = " ".join(SimulatedCohort.__doc__.split())
    assert ", ".join(EVENT_COLUMNS) in doc


def test_patient_sd_log_zero_is_the_default_cohort():
    default = cohort(200, seed=21)
    zero = cohort(200, seed=21, patient_sd_log=0.0, retreatment_velocity_ratio=1.0)
    for name in ("patients", "treatments", "visits", "events"):
        pd.testing.assert_frame_equal(getattr(zero, name), getattr(default, name), check_exact=True)
    assert zero.truth == default.truth
    assert (default.events["patient_effect"] == 0).all()
    numbers = default.treatments.sort_values([*SIDES, "treated_on"]).groupby(SIDES).cumcount() + 1
    assert (default.events["treatment_number"] == numbers.sort_index()).all()
    assert set(default.events["treatment_number"]) == {1, 2}


def test_a_patient_effect_changes_only_the_truth_and_outcomes_with_random_retreatment():
    plain = cohort(300, seed=8)
    shared = cohort(300, seed=8, patient_sd_log=0.5)
    pd.testing.assert_frame_equal(shared.patients, plain.patients, check_exact=True)
    pd.testing.assert_frame_equal(shared.treatments, plain.treatments, check_exact=True)
    pd.testing.assert_frame_equal(shared.visits[["treatment_id", "visit_date"]],
                                  plain.visits[["treatment_id", "visit_date"]], check_exact=True)
    # log v moved by exactly the patient's effect, the same for all of a patient's nerves
    moved = np.log(shared.events["velocity_mm_per_day"] / plain.events["velocity_mm_per_day"])
    np.testing.assert_allclose(moved, shared.events["patient_effect"], atol=1e-12)
    assert (shared.events.groupby("patient_id")["patient_effect"].nunique() == 1).all()
    assert not shared.visits["numb"].equals(plain.visits["numb"])
    # the same standard normals behind b_j whatever its SD
    double = cohort(300, seed=8, patient_sd_log=1.0)
    np.testing.assert_allclose(double.events["patient_effect"], 2 * shared.events["patient_effect"])


def test_patient_effect_has_its_sd_and_is_shared_by_a_patients_treatments():
    sim = cohort(3000, seed=17, patient_sd_log=0.4, retreat="on_relief_end")
    ev = sim.events
    per_patient = ev.groupby("patient_id")["patient_effect"]
    assert (per_patient.nunique() == 1).all()
    np.testing.assert_allclose(per_patient.first().std(), 0.4, rtol=0.04)
    assert sim.truth["patient_sd_log"] == 0.4
    # log v less its fixed terms: two nerves of one patient covary by sigma_p^2 ...
    residual = np.log(ev["velocity_mm_per_day"]) - _fixed_log_velocity(sim)
    pairs = residual.groupby(ev["patient_id"]).agg(["first", "last", "size"])
    pairs = pairs[pairs["size"] >= 2]
    assert len(pairs) > 1500
    np.testing.assert_allclose(np.cov(pairs["first"], pairs["last"])[0, 1], 0.16, atol=0.025)
    # ... and less the patient effect, they are independent with SD sigma_v
    within = residual - ev["patient_effect"]
    np.testing.assert_allclose(within.std(), 0.25, rtol=0.04)
    again = within.groupby(ev["patient_id"]).agg(["first", "last", "size"])
    again = again[again["size"] >= 2]
    assert abs(np.cov(again["first"], again["last"])[0, 1]) < 0.01


@pytest.mark.parametrize("retreat", ["random", "on_relief_end"])
def test_retreatment_velocity_ratio_scales_velocity_per_earlier_treatment(retreat):
    sim = cohort(600, seed=13, retreat=retreat, retreatment_velocity_ratio=0.8,
                 velocity_sd_log=0.0, patient_sd_log=0.3)
    ev = sim.events
    residual = np.log(ev["velocity_mm_per_day"]) - _fixed_log_velocity(sim) - ev["patient_effect"]
    np.testing.assert_allclose(residual, np.log(0.8) * (ev["treatment_number"] - 1), atol=1e-12)
    assert ev["treatment_number"].max() >= (2 if retreat == "random" else 3)
    assert sim.truth["retreatment_velocity_ratio"] == 0.8


@pytest.fixture(scope="module")
def chain() -> SimulatedCohort:
    return cohort(800, seed=31, retreat="on_relief_end", retreat_delay_days=10, max_treatments=4,
                  dropout_per_year=0.0, time_columns=("day", "visit_date"))


def test_on_relief_end_retreats_after_the_visit_that_saw_relief_end(chain):
    t = _with_previous(chain)
    visits = chain.visits.merge(t[["treatment_id", "procedure_end"]], on="treatment_id")
    seen = visits[visits["day"] >= visits["procedure_end"]].groupby("treatment_id")["visit_date"].min()
    last = chain.visits.groupby("treatment_id")["visit_date"].max()
    retreated = t.dropna(subset=["next_on"])
    assert len(retreated) > 300
    gap = (retreated["next_on"] - retreated["treated_on"]).dt.days
    assert (gap > retreated["procedure_end"]).all()     # after relief ended (NaN: fails)
    # the next treatment is 1-10 days after the first kept visit on or after the end, which is
    # the earlier treatment's last visit
    at = seen.reindex(retreated["treatment_id"]).to_numpy()
    assert (at == last.loc[retreated["treatment_id"]].to_numpy()).all()
    delay = (retreated["next_on"].to_numpy() - at) / np.timedelta64(1, "D")
    assert ((delay >= 1) & (delay <= 10)).all() and {1, 10} <= set(delay)
    # the retreatment's baseline visit is not before that visit
    baseline = chain.visits[chain.visits["day"] <= 0].set_index("treatment_id")["visit_date"]
    assert (baseline.loc[retreated["next_id"]].to_numpy() >= at).all()


def test_on_relief_end_retreats_responders_only_and_all_it_can(chain):
    t = _with_previous(chain)
    retreated = t["next_on"].notna()
    assert t.loc[retreated, "responder"].all()
    assert not t.loc[~t["responder"], "next_on"].notna().any()
    counts = t.groupby(SIDES).size()
    assert counts.max() == 4 and (counts == 4).sum() > 10
    assert (t.groupby(SIDES)["treatment_number"].agg(list)
            .map(lambda n: n == list(range(1, len(n) + 1)))).all()
    assert chain.treatments["treated_on"].max() <= pd.Timestamp(chain.truth["end_date"])
    assert set(t["treatment_number"]) == {1, 2, 3, 4}
    # No dropout here: a procedure every side of which responded, whose end a kept visit saw
    # early enough, is retreated unless it is the fourth.
    visits = chain.visits.merge(t[["treatment_id", "procedure_end"]], on="treatment_id")
    seen = visits[visits["day"] >= visits["procedure_end"]].groupby("treatment_id")["visit_date"].min()
    room = seen.reindex(t["treatment_id"]).to_numpy() + np.timedelta64(10, "D") \
        <= np.datetime64(chain.truth["end_date"])
    should = room & (t["treatment_number"] < 4).to_numpy()
    assert should.sum() > 300
    assert retreated.to_numpy()[should].all()


def test_on_relief_end_cohorts_read_back_with_their_treatment_numbers(chain, tmp_path):
    import regen

    read = regen.read_cohort(chain.write(tmp_path))
    number = read.treatments.set_index("treatment_id")["treatment_number"]
    events = chain.events.set_index("treatment_id")["treatment_number"]
    assert (number.loc[events.index].to_numpy() == events.to_numpy()).all()
    episodes = read.episodes("relief").set_index("treatment_id")
    assert (episodes["treatment_number"].to_numpy() == events.loc[episodes.index].to_numpy()).all()
    t = _with_previous(chain)
    retreated = t.loc[t["next_on"].notna(), "treatment_id"]
    ended = episodes.loc[episodes.index.intersection(retreated)]
    assert len(ended) > 0.9 * len(retreated)
    assert np.isfinite(ended["upper"]).all()
    assert (ended["status"] == "interval_censored").all()


def test_on_relief_end_draws_a_patients_procedures_whatever_the_others_chains():
    plain = cohort(400, seed=5, retreat="on_relief_end")
    shared = cohort(400, seed=5, retreat="on_relief_end", patient_sd_log=0.5)
    pd.testing.assert_frame_equal(shared.patients, plain.patients, check_exact=True)
    first = plain.events["treatment_number"] == 1
    assert (shared.events["treatment_number"] == 1).sum() == first.sum()
    keys = ["patient_id", "nerve", "side", "treated_on", "distance_mm", "procedure"]
    pd.testing.assert_frame_equal(
        shared.treatments.loc[(shared.events["treatment_number"] == 1).to_numpy(), keys]
        .reset_index(drop=True),
        plain.treatments.loc[first.to_numpy(), keys].reset_index(drop=True))
    index = shared.events[shared.events["treatment_number"] == 1].reset_index(drop=True)
    moved = np.log(index["velocity_mm_per_day"] / plain.events.loc[first, "velocity_mm_per_day"]
                   .reset_index(drop=True))
    np.testing.assert_allclose(moved, index["patient_effect"], atol=1e-12)
    assert shared.truth["p_retreat"] is None and shared.truth["retreat"] == "on_relief_end"


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"patient_sd_log": -0.1}, ValueError, "patient_sd_log"),
        ({"patient_sd_log": float("inf")}, ValueError, "patient_sd_log"),
        ({"patient_sd_log": "0.4"}, TypeError, "patient_sd_log"),
        ({"retreatment_velocity_ratio": 0}, ValueError, "retreatment_velocity_ratio"),
        ({"retreatment_velocity_ratio": -1.0}, ValueError, "retreatment_velocity_ratio"),
        ({"retreat": "sometimes"}, ValueError, "retreat"),
        ({"retreat": None}, TypeError, "retreat"),
        ({"retreat_delay_days": 0}, ValueError, "retreat_delay_days"),
        ({"retreat_delay_days": 2.5}, TypeError, "retreat_delay_days"),
        ({"max_treatments": 0}, ValueError, "max_treatments"),
        ({"max_treatments": True}, TypeError, "max_treatments"),
        ({"retreat": "on_relief_end", "p_retreat": 0.5}, ValueError, "p_retreat"),
        ({"retreat": "on_relief_end", "p_retreat": 0.0}, ValueError, "max_treatments=1"),
    ],
)
def test_bad_retreatment_arguments_raise_naming_them(kwargs, error, name):
    with pytest.raises(error, match=name):
        cohort(5, seed=1, **kwargs)


def test_on_relief_end_needs_no_minimum_date_range():
    with pytest.raises(ValueError, match="retreatments need"):
        cohort(20, seed=1, start_date="2024-01-01", end_date="2024-03-01")
    sim = cohort(20, seed=1, start_date="2024-01-01", end_date="2024-03-01",
                 retreat="on_relief_end", p_retreat=0.2)
    assert sim.treatments["treated_on"].between("2024-01-01", "2024-03-01").all()
