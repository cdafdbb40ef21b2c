"""Same input and seed, same bytes: the report, the figures, bootstraps with any n_jobs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd

import regen
from regen.report import relief_report


def test_report_is_byte_identical_across_runs_and_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")  # 2026-01-01
    cohort = regen.read_cohort("data/example")
    one = relief_report(cohort, tmp_path / "a" / "report.html", n_bootstrap=30, seed=5)
    relief_report(cohort, tmp_path / "b" / "report.html", n_bootstrap=30, seed=5, n_jobs=2)
    assert one["generated"] == "2026-01-01"
    for name in ("report.json", "report.html", "report_by_nerve.csv", "report_still_relieved.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_bootstraps_do_not_depend_on_n_jobs():
    cohort = regen.read_cohort("data/example")
    episodes = cohort.episodes("relief")
    a = regen.turnbull(episodes, by="nerve", n_bootstrap=30, seed=3, cluster="patient_id")
    b = regen.turnbull(episodes, by="nerve", n_bootstrap=30, seed=3, cluster="patient_id",
                       n_jobs=2)
    pd.testing.assert_frame_equal(a.survival_at([28, 56, 84]), b.survival_at([28, 56, 84]))
    pain = cohort.measurements("pain").query("day >= 1")
    traj = regen.fit_trajectory("pain ~ bs(day, df=4) + baseline_pain", pain, re_formula="~ 1")
    profile = {"baseline_pain": 7.0}
    kwargs = dict(direction="above", relative_to="baseline_pain", method="bootstrap",
                  n_bootstrap=24, seed=9)
    pd.testing.assert_series_equal(traj.time_to(0.8, profile, **kwargs),
                                   traj.time_to(0.8, profile, n_jobs=2, **kwargs))


def test_simulation_is_seeded_end_to_end():
    a = regen.simulate.cohort(50, seed=12)
    b = regen.simulate.cohort(50, seed=12)
    for name in ("patients", "treatments", "visits"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(regen.simulate.cohort(50, seed=13).visits["pain"],
                              a.visits["pain"])
