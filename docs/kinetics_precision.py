"""How precisely the kinetics model estimates velocity, lag and the diabetes ratio.

Simulates cohorts of about 100, 300 and 1,000 treated nerves with regen.simulate
(1.3 mm/day at age 50, lag 10 days, diabetes x0.8), takes each through files,
validation and episodes, fits regen.fit_regeneration, and prints the median 95%-CI
width, the SD of the estimates over replicates, and the coverage.

Run:  python docs/kinetics_precision.py [--replicates 40]
"""

from __future__ import annotations

import argparse
import tempfile
import warnings

import numpy as np

import regen

TRUTH = {"velocity": 1.3, "lag": 10.0, "diabetes": 0.8}
FORMULA = "~ I((age - 50) / 10) + diabetes + smoker"
EPISODES_PER_PATIENT = 1.55


def fit(n_nerves: int, seed: int):
    sim = regen.simulate.cohort(round(n_nerves / EPISODES_PER_PATIENT), seed=seed,
                                velocity_mm_per_day=TRUTH["velocity"], lag_days=TRUTH["lag"],
                                diabetes_velocity_ratio=TRUTH["diabetes"])
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore", regen.RegenWarning)
        sim.write(folder)
        episodes = regen.read_cohort(folder).episodes("numbness")
        kinetics = regen.fit_regeneration(episodes, formula=FORMULA, cluster="patient_id")
    ratio = kinetics.velocity_ratios.loc["diabetes"]
    return len(episodes), {"velocity": kinetics.velocity, "lag": kinetics.lag, "diabetes": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=40)
    args = parser.parse_args()
    print("| treated nerves | quantity | truth | median estimate | SD | median 95% CI width "
          "| coverage |")
    print("|---|---|---|---|---|---|---|")
    for size in (100, 300, 1000):
        runs = [fit(size, seed) for seed in range(args.replicates)]
        nerves = int(np.median([n for n, _ in runs]))
        for name, truth in TRUTH.items():
            rows = [r[name] for _, r in runs]
            estimate = np.array([r["estimate"] for r in rows])
            width = np.array([r["ci_upper"] - r["ci_lower"] for r in rows])
            cover = np.mean([r["ci_lower"] <= truth <= r["ci_upper"] for r in rows])
            print(f"| {nerves} | {name} | {truth:g} | {np.median(estimate):.3f} | "
                  f"{estimate.std():.3f} | {np.median(width):.3f} | {cover:.0%} |")


if __name__ == "__main__":
    main()
