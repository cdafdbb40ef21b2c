"""Distance-error sensitivity: SIMEX for multiplicative error in distance_mm (issue 12, item 7).

The slow test simulates cohorts (1.3 mm/day, lag 10 days), fits them with the true
distances (the reference) and with distances multiplied by exp(N(0, s)), and checks
that SIMEX removes at least half of the error's bias in the log velocity (and in the
lag at 20%). Run as a script for the figures of docs/kinetics.md:

    .venv/bin/python tests/survival/test_simex.py --cohorts 6 --patients 300 --replicates 20
"""

from __future__ import annotations

import argparse
import tempfile
import warnings

import numpy as np
import pandas as pd
import pytest

import regen

SETTINGS = dict(velocity_mm_per_day=1.3, lag_days=10.0)


def numbness(n_patients: int, seed: int) -> pd.DataFrame:
    sim = regen.simulate.cohort(n_patients, seed=seed, **SETTINGS)
    with tempfile.TemporaryDirectory() as folder:
        sim.write(folder)
        return regen.read_cohort(folder).episodes("numbness")


@pytest.fixture(scope="module")
def small():
    return regen.fit_regeneration(numbness(120, seed=21), formula="~ diabetes")


def test_table_shape_and_a_seed_gives_the_same_table(small):
    table = small.sensitivity(distance_error=[0.2], replicates=2, seed=5)
    assert list(table.columns) == ["distance_error", "parameter", "naive", "simex", "shift"]
    assert table["parameter"].tolist() == ["log_velocity", "lag", "log_ratio:diabetes"]
    naive = table.set_index("parameter")["naive"]
    assert naive["log_velocity"] == pytest.approx(np.log(small.velocity["estimate"]))
    assert naive["lag"] == pytest.approx(small.lag["estimate"])
    assert naive["log_ratio:diabetes"] == pytest.approx(small.params["diabetes"])
    np.testing.assert_allclose(table["shift"], table["simex"] - table["naive"])
    pd.testing.assert_frame_equal(table, small.sensitivity(distance_error=[0.2], replicates=2,
                                                           seed=5))
    other = small.sensitivity(distance_error=[0.2], replicates=2, seed=6)
    assert not np.allclose(other["simex"], table["simex"])
    # Error in distance biases the velocity up: the correction moves it down.
    assert table.set_index("parameter").loc["log_velocity", "shift"] < 0


def test_a_fixed_lag_is_not_in_the_table(small):
    data = numbness(120, seed=21)
    fixed = regen.fit_regeneration(data, lag=8.0)
    table = fixed.sensitivity(distance_error=[0.1, 0.2], replicates=2)
    assert table["parameter"].tolist() == ["log_velocity"] * 2
    assert table["distance_error"].tolist() == [0.1, 0.2]


def test_a_loaded_model_cannot_be_refitted(small, tmp_path):
    loaded = regen.load_model(small.save(tmp_path / "kin.json"))
    with pytest.raises(regen.ModelError, match="loaded from a file.*fit_regeneration"):
        loaded.sensitivity()


@pytest.mark.parametrize("bad", [[0.0], [-0.1], [np.nan], []])
def test_bad_error_sds_are_refused(small, bad):
    with pytest.raises(ValueError, match="distance_error must be SDs > 0"):
        small.sensitivity(distance_error=bad)


def test_bad_replicates_are_refused(small):
    with pytest.raises(ValueError, match="replicates must be an integer >= 2"):
        small.sensitivity(replicates=1)


def biases(n_patients: int, seed: int, sd: float, replicates: int) -> dict:
    """Bias (against the fit with the true distances) of the naive and SIMEX estimates."""
    episodes = numbness(n_patients, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", regen.DataWarning)
        reference = regen.fit_regeneration(episodes)
        error = np.exp(np.random.default_rng(seed + 1).normal(0, sd, len(episodes)))
        noisy = regen.fit_regeneration(episodes.assign(distance_mm=episodes["distance_mm"] * error))
    table = noisy.sensitivity(distance_error=[sd], replicates=replicates, seed=seed)
    table = table.set_index("parameter")
    truth = {"log_velocity": np.log(reference.velocity["estimate"]),
             "lag": reference.lag["estimate"]}
    return {f"{which}_{key}": table.loc[key, which] - truth[key]
            for key in truth for which in ("naive", "simex")}


@pytest.mark.slow
@pytest.mark.parametrize("sd", [0.1, 0.2])
def test_simex_removes_at_least_half_of_the_bias(sd):
    found = pd.DataFrame([biases(300, seed, sd, 20) for seed in (101, 102)]).mean()
    assert found["naive_log_velocity"] > 0.02  # the error biases the velocity up
    assert abs(found["simex_log_velocity"]) <= 0.5 * found["naive_log_velocity"]
    assert found["naive_lag"] > 0
    if sd == 0.2:
        assert abs(found["simex_lag"]) <= 0.5 * found["naive_lag"]
    else:
        assert abs(found["simex_lag"]) < found["naive_lag"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohorts", type=int, default=6)
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--replicates", type=int, default=20)
    args = parser.parse_args()
    for sd in (0.1, 0.2):
        found = pd.DataFrame([biases(args.patients, 1000 + i, sd, args.replicates)
                              for i in range(args.cohorts)])
        mean = found.mean()
        print(f"error SD {sd}: {args.cohorts} cohorts of {args.patients} patients, "
              f"{args.replicates} replicates per level")
        print(f"  velocity bias (ratio to the true-distance fit): naive "
              f"{np.exp(mean['naive_log_velocity']) - 1:+.1%}, SIMEX "
              f"{np.exp(mean['simex_log_velocity']) - 1:+.1%}")
        print(f"  lag bias (days): naive {mean['naive_lag']:+.2f}, SIMEX {mean['simex_lag']:+.2f}")
        print(found.round(4).to_string())


def test_the_figure_draws_each_parameter_shift(small):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = small.sensitivity(distance_error=[0.1, 0.2], replicates=2)
    try:
        ax = regen.plot.sensitivity(table)
        lines = {line.get_label(): line for line in ax.get_lines()}
        velocity = lines["velocity"].get_ydata()
        shifts = table.set_index(["parameter", "distance_error"])["shift"]
        np.testing.assert_allclose(velocity, [0.0, *(np.expm1(shifts["log_velocity"]) * 100)])
        assert "velocity ratio, diabetes" in lines
        lag_axes = [a for a in ax.figure.axes if a is not ax]
        np.testing.assert_allclose(lag_axes[0].get_lines()[0].get_ydata(),
                                   [0.0, *shifts["lag"]])
        assert ax.get_xlabel() == "Assumed error in distance (SD, %)"
    finally:
        plt.close("all")
    with pytest.raises(ValueError, match="sensitivity"):
        regen.plot.sensitivity(pd.DataFrame({"x": [1]}))
