"""Simulation: velocity, lag and velocity-ratio intervals cover the truth 93-97% (slow).

Cohorts come from regen.simulate (whose truth is exactly T = lag + distance / velocity,
log-normal velocity) through the whole pipeline: files, validation, episodes, fit.
"""

from __future__ import annotations

import tempfile
import warnings

import numpy as np
import pytest

import regen

TRUTH = {"velocity": 1.3, "lag": 10.0, "diabetes": 0.8}


def one_fit(seed: int):
    sim = regen.simulate.cohort(300, seed=seed, velocity_mm_per_day=TRUTH["velocity"],
                                lag_days=TRUTH["lag"], diabetes_velocity_ratio=TRUTH["diabetes"])
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore", regen.RegenWarning)
        sim.write(folder)
        episodes = regen.read_cohort(folder).episodes("numbness")
        return regen.fit_regeneration(episodes, formula="~ I((age - 50) / 10) + diabetes + smoker",
                                      cluster="patient_id")


def covered(fit) -> dict[str, bool]:
    velocity, lag = fit.velocity, fit.lag
    ratio = fit.velocity_ratios.loc["diabetes"]
    return {"velocity": velocity["ci_lower"] <= TRUTH["velocity"] <= velocity["ci_upper"],
            "lag": lag["ci_lower"] <= TRUTH["lag"] <= lag["ci_upper"],
            "diabetes": ratio["ci_lower"] <= TRUTH["diabetes"] <= ratio["ci_upper"]}


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "over 300 cohorts the lag (93.7%) and diabetes-ratio (93.7%) intervals cover, but the "
    "velocity's Wald interval covers 90.7%: its standard error is ~6% small next to a lag "
    "whose profile is skewed. Needs a profile-likelihood interval for the velocity (issue 4)."))
def test_intervals_cover_the_truth():
    results = [covered(one_fit(seed)) for seed in range(300)]
    coverage = {name: np.mean([r[name] for r in results]) for name in TRUTH}
    assert all(0.93 <= c <= 0.97 for c in coverage.values()), coverage
