"""A freeze that missed the nerve: episodes that recover before any axon could regrow."""

from __future__ import annotations

import tempfile
import warnings

import numpy as np
import pandas as pd
import pytest

import regen
from regen.survival.regeneration import MAX_VELOCITY_RATIO


@pytest.fixture(scope="module")
def episodes() -> pd.DataFrame:
    sim = regen.simulate.cohort(300, seed=7, velocity_mm_per_day=1.3, lag_days=10.0)
    with tempfile.TemporaryDirectory() as folder:
        sim.write(folder)
        return regen.read_cohort(folder).episodes("numbness")


def with_failed_freeze(episodes: pd.DataFrame, *, treatment_id: bool = True) -> pd.DataFrame:
    """The cohort plus one (0, 5] episode: numbness gone by the first visit on day 5."""
    bad = episodes.iloc[[0]].assign(lower=0.0, upper=5.0, distance_mm=40.0,
                                    treatment_id="T-MISSED")
    bad.index = ["missed"]
    data = pd.concat([episodes, bad])
    return data if treatment_id else data.drop(columns="treatment_id")


@pytest.fixture(scope="module")
def clean(episodes):
    with warnings.catch_warnings():
        warnings.simplefilter("error", regen.DataWarning)  # no genuine episode is flagged
        return regen.fit_regeneration(episodes)


def test_one_failed_freeze_moves_the_velocity_less_than_3_percent_by_default(episodes, clean):
    data = with_failed_freeze(episodes)
    with pytest.warns(regen.DataWarning, match=r"1 episode\(s\) recovered before the minimum "
                      r"regrowth time.*T-MISSED.*left out"):
        fit = regen.fit_regeneration(data)
    shift = fit.velocity["estimate"] / clean.velocity["estimate"] - 1
    assert abs(shift) < 0.03
    assert fit.lag["estimate"] == pytest.approx(clean.lag["estimate"], abs=0.5)
    assert fit.n == clean.n and fit.n_excluded == 1 and fit.failed_freeze == "exclude"
    assert fit.excluded["treatment_id"].tolist() == ["T-MISSED"]
    assert fit.excluded["row"].tolist() == ["missed"]
    assert fit.excluded["reason"].tolist() == ["possible_failed_freeze"]
    recovered = np.isfinite(data["upper"])
    typical = np.median(data["distance_mm"][recovered] / data["upper"][recovered])
    assert fit.excluded["minimum_time"].iloc[0] == pytest.approx(
        40 / (MAX_VELOCITY_RATIO * typical))
    assert 5 < fit.excluded["minimum_time"].iloc[0] < 15  # 40 mm at 3-8 mm/day


def test_the_rule_does_not_depend_on_the_unit_of_time(episodes):
    data = with_failed_freeze(episodes)
    years = data.assign(lower=data["lower"] / 365.25, upper=data["upper"] / 365.25)
    with pytest.warns(regen.DataWarning, match="T-MISSED"):
        fit = regen.fit_regeneration(years, lag=8.0 / 365.25)
    assert fit.excluded["treatment_id"].tolist() == ["T-MISSED"]


def test_keep_fits_the_failed_freeze_as_given(episodes, clean):
    data = with_failed_freeze(episodes)
    with pytest.warns(regen.DataWarning, match="T-MISSED.*fitted as given"), \
            pytest.warns(regen.DataWarning, match="lag estimate 0.00 days is at or near"):
        kept = regen.fit_regeneration(data, failed_freeze="keep")
    # As the audit found: the row caps the lag at day 5 and pulls the velocity down.
    assert kept.n == clean.n + 1 and kept.failed_freeze == "keep"
    assert kept.lag["estimate"] < 5
    assert kept.velocity["estimate"] < 0.95 * clean.velocity["estimate"]
    assert kept.excluded["treatment_id"].tolist() == ["T-MISSED"]  # flagged, not left out


def test_without_treatment_id_the_row_label_is_named(episodes):
    data = with_failed_freeze(episodes, treatment_id=False)
    with pytest.warns(regen.DataWarning, match="row missed"):
        fit = regen.fit_regeneration(data)
    assert fit.excluded["row"].tolist() == ["missed"]


def test_the_rule_depends_on_the_distance(episodes):
    # Day 5 is plausible for 10 mm (2 mm/day) but not for 40 mm (8 mm/day).
    data = with_failed_freeze(episodes).assign(
        distance_mm=lambda f: f["distance_mm"].where(f.index != "missed", 10.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", regen.DataWarning)  # the 10 mm distance warns
        fit = regen.fit_regeneration(data)
    assert fit.n_excluded == 0 and fit.n == len(data)


def test_a_bad_setting_is_refused(episodes):
    with pytest.raises(ValueError, match="failed_freeze must be 'exclude' or 'keep'"):
        regen.fit_regeneration(episodes, failed_freeze="drop")


def test_the_setting_and_count_are_saved_and_old_files_load(episodes, tmp_path):
    with pytest.warns(regen.DataWarning, match="T-MISSED"):
        fit = regen.fit_regeneration(with_failed_freeze(episodes), lag=8.0)
    path = fit.save(tmp_path / "kin.json")
    loaded = regen.load_model(path)
    assert loaded.failed_freeze == "exclude" and loaded.n_excluded == 1
    assert loaded.velocity["estimate"] == pytest.approx(fit.velocity["estimate"])
    # A file from before the setting existed fitted every episode.
    import json
    document = json.loads(path.read_text())
    del document["failed_freeze"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(document))
    loaded = regen.load_model(old)
    assert loaded.failed_freeze == "keep" and loaded.n_excluded == 0
    document["failed_freeze"] = {"setting": "exclude", "n_excluded": -1}
    old.write_text(json.dumps(document))
    with pytest.raises(regen.ModelFileError, match="not a count"):
        regen.load_model(old)


def test_a_distance_in_the_wrong_unit_is_not_called_a_failed_freeze(episodes):
    data = with_failed_freeze(episodes).assign(
        distance_mm=lambda f: f["distance_mm"].where(f.index != "missed", 4000.0),
        upper=lambda f: f["upper"].where(f.index != "missed", 30.0))
    with pytest.warns(regen.DataWarning, match="outside 5–500 mm"):
        fit = regen.fit_regeneration(data, lag=8.0)
    assert fit.n_excluded == 0


def test_episodes_with_repeated_index_labels_fit_as_with_positions(episodes):
    """Two episode tables concatenated without ignore_index: every label twice. The fits
    picked rows by label and took each twice (and the kinetics fit failed)."""
    doubled = pd.concat([episodes, episodes])
    assert not doubled.index.is_unique
    plain = doubled.reset_index(drop=True)
    a = regen.fit_regeneration(doubled, formula="~ 1")
    b = regen.fit_regeneration(plain, formula="~ 1")
    assert a.n == b.n == len(doubled)
    assert a.params.to_numpy() == pytest.approx(b.params.to_numpy())
    a = regen.fit_recovery("~ 1", doubled)
    b = regen.fit_recovery("~ 1", plain)
    assert a.n == b.n == len(doubled)
    assert a.params.to_numpy() == pytest.approx(b.params.to_numpy())
