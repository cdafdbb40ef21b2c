"""regen's survival fits against lifelines on the same simulated episodes, as ratios.

AFT: ``regen.fit_recovery`` against lifelines'
``WeibullAFTFitter.fit_interval_censoring`` (``~ nerve + age + diabetes``) at the
same sizes. NPMLE: ``regen.turnbull`` against ``lifelines.KaplanMeierFitter.fit_interval_censoring``
on numbness episodes at 1k, 10k and 100k episodes. Only the fit is timed (median
of ``--repeats``), both in this process. lifelines reads intervals as closed
[l, u]; regen as (l, u], as visit data mean them, so the log-likelihood of each
curve under (l, u] is printed too.

Run:  python benchmarks/bench_survival.py [--sizes 1000 10000 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings

import numpy as np

import regen

VISITS_PER_PATIENT = 11.4
EPISODES_PER_PATIENT = 1.53


def episodes(n_episodes: int, seed: int):
    """Numbness episodes of a simulated cohort with about ``n_episodes`` treatments."""
    sim = regen.simulate.cohort(max(1, round(n_episodes / EPISODES_PER_PATIENT)), seed=seed,
                                time_columns=("day",))
    with tempfile.TemporaryDirectory() as folder:
        sim.write(folder)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", regen.DataWarning)
            return regen.read_cohort(folder).episodes("numbness")


def timed(function, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def half_open_loglik(lower, upper, times, survival) -> float:
    """Sum of log P(l < T <= u) for a step curve S given at ``times``."""
    def s(t):
        at = np.searchsorted(times, t, side="right") - 1
        return np.where(np.isinf(t), 0.0, np.where(at >= 0, survival[np.maximum(at, 0)], 1.0))
    return float(np.log(np.maximum(s(lower) - s(upper), 1e-300)).sum())


def bench_aft(sizes, repeats) -> None:
    """Weibull AFT, ~ nerve + age + diabetes: regen against lifelines' interval AFT."""
    from lifelines import WeibullAFTFitter

    print(f"\nWeibull AFT (~ nerve + age + diabetes): median of {repeats}, fit only")
    print(f"{'episodes':>9} {'regen s':>9} {'lifelines s':>12} {'ratio':>7} "
          f"{'loglik regen':>13} {'loglik lifelines':>17}")
    for size in sizes:
        ep = episodes(size, seed=size)[["lower", "upper", "nerve", "age", "diabetes"]]
        ep = ep.assign(diabetes=ep["diabetes"].astype(float), age=ep["age"].astype(float),
                       nerve=ep["nerve"].astype(object))  # lifelines reads plain objects
        ours, fit = timed(lambda ep=ep: regen.fit_recovery("~ nerve + age + diabetes", ep),
                          repeats)
        # lifelines needs lower > 0 on the log scale: left-censored rows start just above 0.
        theirs_data = ep.assign(lower=ep["lower"].clip(lower=1e-6))

        def theirs_fit(data=theirs_data):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return WeibullAFTFitter().fit_interval_censoring(
                    data, lower_bound_col="lower", upper_bound_col="upper",
                    formula="nerve + age + diabetes")

        theirs, model = timed(theirs_fit, repeats)
        print(f"{len(ep):>9} {ours:>9.4f} {theirs:>12.3f} {theirs / ours:>6.1f}x "
              f"{fit.loglik:>13.2f} {model.log_likelihood_:>17.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["npmle", "aft"], help="run one half only")
    args = parser.parse_args()
    if args.only != "npmle":
        bench_aft(args.sizes, args.repeats)
    if args.only == "aft":
        return
    from lifelines import KaplanMeierFitter

    print(f"NPMLE (Turnbull): median of {args.repeats}, fit only")
    print(f"{'episodes':>9} {'regen s':>9} {'lifelines s':>12} {'ratio':>7} "
          f"{'loglik regen':>13} {'loglik lifelines':>17}")
    for size in args.sizes:
        ep = episodes(size, seed=size)
        lower, upper = ep["lower"].to_numpy(), ep["upper"].to_numpy()
        ours, fit = timed(lambda lower=lower, upper=upper: regen.turnbull(lower=lower, upper=upper),
                          args.repeats)

        def theirs_fit(lower=lower, upper=upper):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # lifelines needs lower > 0 for its closed intervals; 0 stays 0.
                return KaplanMeierFitter().fit_interval_censoring(lower, upper)

        theirs, km = timed(theirs_fit, args.repeats)
        curve = fit.to_frame()
        ll_ours = half_open_loglik(lower, upper, curve["time"].to_numpy(),
                                   curve["survival_upper"].to_numpy())
        sf = km.survival_function_
        ll_theirs = half_open_loglik(lower, upper, sf.index.to_numpy(dtype=float),
                                     sf["NPMLE_estimate_upper"].to_numpy())
        print(f"{len(ep):>9} {ours:>9.4f} {theirs:>12.3f} {theirs / ours:>6.0f}x "
              f"{ll_ours:>13.2f} {ll_theirs:>17.2f}")


if __name__ == "__main__":
    main()
