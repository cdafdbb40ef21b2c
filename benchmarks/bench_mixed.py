"""regen's mixed model against statsmodels' MixedLM on the same simulated data, as ratios.

A random intercept and slope in time (``score ~ years + x``, ``re_formula="~ years"``),
REML, fit only, 1,000 and 10,000 patients with 6-8 visits each (7 on average). Both run
in this process on the same DataFrame; the median of ``--repeats`` fits is compared, and
both REML log-likelihoods are printed so that a fast wrong answer cannot pass unnoticed.
statsmodels is run as its users run it: ``MixedLM.from_formula(...).fit(reml=True)``.

Time is in years for the timed comparison because statsmodels does not converge with
time in days (the slope's variance is then ~1e-4 next to an intercept's ~2): ``--days``
adds that run (one repeat for statsmodels, which then takes minutes at 10,000 patients).

Run:  python benchmarks/bench_mixed.py [--sizes 1000 10000] [--repeats 3] [--days]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import pandas as pd

import regen


def simulated(n_patients: int, seed: int = 0) -> pd.DataFrame:
    """6-8 visits per patient over a year; intercept SD 1.5, slope SD 0.01/day, residual 1."""
    rng = np.random.default_rng(seed)
    visits = rng.integers(6, 9, n_patients)
    patient = np.repeat(np.arange(n_patients), visits)
    slot = np.arange(len(patient)) - np.repeat(np.cumsum(visits) - visits, visits)
    day = np.array([7, 30, 60, 90, 120, 180, 270, 365])[slot] + rng.integers(-3, 4, len(patient))
    b0 = rng.normal(0, 1.5, n_patients)
    b1 = rng.normal(0, 0.01, n_patients)
    x = rng.normal(size=n_patients)[patient]
    score = 6 - 0.02 * day + 0.5 * x + b0[patient] + b1[patient] * day \
        + rng.normal(0, 1, len(patient))
    return pd.DataFrame({"patient_id": patient, "day": day.astype(float), "x": x,
                         "score": score})


def timed(function, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--days", action="store_true",
                        help="also time both with time in days, where statsmodels fails")
    args = parser.parse_args()
    print(f"{'patients':>9} {'rows':>7} {'time':>6} {'regen s':>9} {'statsmodels s':>14} "
          f"{'ratio':>7} {'loglik regen':>14} {'loglik sm':>14}  statsmodels")
    for n in args.sizes:
        data = simulated(n).assign(years=lambda f: f["day"] / 365.25)
        for unit in ("years", "days") if args.days else ("years",):
            time_column = "years" if unit == "years" else "day"
            formula = f"score ~ {time_column} + x"
            regen.fit_trajectory(formula, data, re_formula=f"~ {time_column}")   # warm-up
            ours, fit = timed(lambda d=data, f=formula, t=time_column: regen.fit_trajectory(
                f, d, re_formula=f"~ {t}"), args.repeats)
            theirs, result = timed(lambda d=data, f=formula, t=time_column: statsmodels_fit(
                d, f, t), args.repeats if unit == "years" else 1)
            state = "converged" if result.converged else "NOT converged"
            print(f"{n:>9} {len(data):>7} {unit:>6} {ours:>9.3f} {theirs:>14.3f} "
                  f"{theirs / ours:>6.0f}x {fit.loglik:>14.3f} {result.llf:>14.3f}  {state}")


def statsmodels_fit(data: pd.DataFrame, formula: str, time_column: str):
    from statsmodels.regression.mixed_linear_model import MixedLM

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MixedLM.from_formula(formula, data, groups="patient_id",
                                     re_formula=f"~ {time_column}")
        return model.fit(reml=True)


if __name__ == "__main__":
    main()
