"""How well fit_ph's standard errors and the generalized log-rank test do on visit data.

Simulates cohorts of 300 patients with interval-censored visit schedules (the design
of tests/survival/test_ph_simulation.py, which checks the same numbers): a binary
``x`` with log hazard ratio 0.4 and ``age`` (25-85 years) with 0.02 per year,
proportional hazards on a Weibull baseline of shape 1.5 (median about 75 days);
visits due at days 14, 28, 56, 84, 112 and 168, each +-3 days and missed 1 time
in 10; drop-out (exponential, mean 400 days) and the end of follow-up censor on
the right (about 15% of rows left-, 25% right-censored).

For every cohort it fits ``regen.fit_ph("~ x + age")`` with the default
``variance="profile"`` (analytic observed information of the profile likelihood),
``variance="numeric"`` (its second differences, Zeng, Mao & Lin 2016) and
``cluster=`` a patient id (the cluster sandwich, every patient its own cluster); on
the first ``--bootstrap-cohorts`` cohorts also with ``n_bootstrap=--bootstrap`` (rows
resampled; 200 refits of a cohort take 5-15 s, so by default 400 of the 1,000
cohorts get one; the profile row on those same cohorts is printed beside it).
Then ``regen.logrank_test`` on 2 x ``--cohorts`` null cohorts (x without effect;
and a 3-group split of unequal sizes independent of everything) and on
``--cohorts`` cohorts with log HR 0.4 (power).

Prints Markdown tables: per method and coefficient, the mean estimate, the
empirical SD of the estimates, the mean SE, the coverage of the 95% CIs
(``conf_int()``) with its Monte-Carlo SE and the median CI width; then the log-rank
test's mean chi-square and rejection rate at 0.05. Each cohort has its own seed spawned
from ``--seed``, so the numbers do not depend on ``--jobs``.

Run:  python docs/ph_simulation.py [--cohorts 1000] [--seed 15] [--bootstrap 200]
"""

from __future__ import annotations

import argparse
import time
import warnings
from multiprocessing import Pool

import numpy as np
import pandas as pd

import regen

TRUTH = {"x": 0.4, "age": 0.02}
SCHEDULE = np.array([14, 28, 56, 84, 112, 168])
JITTER = 3
MISSED = 0.10
DROPOUT_MEAN = 400.0
SHAPE, SCALE = 1.5, 80.0
N = 300
FORMULA = "~ x + age"


def simulate(rng: np.random.Generator, n: int = N, *, x_effect: float = TRUTH["x"],
             arms: tuple[float, ...] = (0.5, 0.5)) -> pd.DataFrame:
    """One cohort of (lower, upper] episodes; ``arm`` is a group independent of everything.
    (The same as tests/survival/test_ph_simulation.py's, which checks that it is.)"""
    x = (rng.random(n) < 0.5).astype(float)
    age = rng.uniform(25, 85, n)
    arm = rng.choice(len(arms), size=n, p=arms)
    eta = x_effect * x + TRUTH["age"] * (age - 55)
    # S(t | x) = exp(-(t / SCALE)^SHAPE * exp(eta))
    times = SCALE * (rng.exponential(size=n) * np.exp(-eta)) ** (1 / SHAPE)
    visits = (SCHEDULE + rng.integers(-JITTER, JITTER + 1, size=(n, len(SCHEDULE)))).astype(float)
    dropout = rng.exponential(DROPOUT_MEAN, size=n)
    attended = (rng.random(visits.shape) >= MISSED) & (visits <= dropout[:, None])
    visits = np.where(attended, visits, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        lower = np.nanmax(np.where(visits < times[:, None], visits, np.nan), axis=1)
        upper = np.nanmin(np.where(visits >= times[:, None], visits, np.nan), axis=1)
    return pd.DataFrame({"lower": np.nan_to_num(lower, nan=0.0),
                         "upper": np.nan_to_num(upper, nan=np.inf),
                         "x": x, "age": age, "arm": arm})


def seeds(seed, count: int) -> list[np.random.SeedSequence]:
    return np.random.SeedSequence(seed).spawn(count)


# ------------------------------------------------------------- coverage --

def fit_cohort(task) -> dict:
    """Estimates and SEs of one cohort by each method (None where a fit failed)."""
    index, sequence, n_bootstrap, seed = task
    data = simulate(np.random.default_rng(sequence))
    out = {}
    data["patient"] = np.arange(len(data))
    options = {"profile": {}, "numeric": {"variance": "numeric"},
               "sandwich": {"cluster": "patient"}}
    if n_bootstrap:
        options["bootstrap"] = {"n_bootstrap": n_bootstrap, "seed": [seed, index]}
    for method, extra in options.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", regen.RegenWarning)
            try:
                fit = regen.fit_ph(FORMULA, data, **extra)
            except regen.ModelError as error:
                out[method] = {"error": repr(error)}
                continue
        ci = fit.conf_int().loc[list(TRUTH)]
        out[method] = {"estimate": fit.params[list(TRUTH)].to_numpy(),
                       "se": fit.bse[list(TRUTH)].to_numpy(),
                       "ci": ci[["ci_lower", "ci_upper"]].to_numpy(),
                       "warnings": sum(issubclass(w.category, regen.RegenWarning)
                                       for w in caught)}
    return out


def coverage_rows(label: str, runs: list[dict]) -> list[str]:
    done = [r for r in runs if "estimate" in r]
    if not done:
        return [f"| {label} | 0 ({len(runs)} failed) | | | | | | | | |"]
    estimate = np.array([r["estimate"] for r in done])
    se = np.array([r["se"] for r in done])
    ci = np.array([r["ci"] for r in done])                # cohort, coefficient, end
    truth = np.array(list(TRUTH.values()))
    covered = (ci[:, :, 0] <= truth) & (truth <= ci[:, :, 1])
    failed = len(runs) - len(done)
    warned = sum(r["warnings"] > 0 for r in done)
    note = (f" ({failed} failed)" if failed else "") + (f" ({warned} warned)" if warned else "")
    rows = []
    for k, (name, value) in enumerate(TRUTH.items()):
        share = covered[:, k].mean()
        mcse = np.sqrt(share * (1 - share) / len(done))
        rows.append(f"| {label} | {len(done)}{note} | {name} | {value:g} | "
                    f"{estimate[:, k].mean():.4f} | {estimate[:, k].std(ddof=1):.4f} | "
                    f"{se[:, k].mean():.4f} | {se[:, k].mean() / estimate[:, k].std(ddof=1):.3f} | "
                    f"{share:.1%} ± {mcse:.1%} | {np.median(ci[:, k, 1] - ci[:, k, 0]):.4f} |")
    return rows


# -------------------------------------------------------------- log-rank --

def logrank_cohort(task) -> tuple[float, float] | str:
    """The log-rank statistic and p-value of one cohort (the error's repr where the test
    failed)."""
    sequence, x_effect, arms, by = task
    data = simulate(np.random.default_rng(sequence), x_effect=x_effect, arms=arms)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result = regen.logrank_test(data, by)
    except (RuntimeError, regen.ModelError) as error:
        return repr(error)
    return float(result.statistic), float(result.p_value)


def logrank_row(label: str, truth: str, df: int, results: list) -> str:
    done = np.array([r for r in results if not isinstance(r, str)]).reshape(-1, 2)
    statistic, p = done[:, 0], done[:, 1]
    failed = len(results) - len(done)
    if not len(done):
        return f"| {label} | {truth} | 0 | {failed} | | |"
    rate = float((p < 0.05).mean())
    mcse = np.sqrt(rate * (1 - rate) / len(p))
    return (f"| {label} | {truth} | {len(p)} | {failed} | {statistic.mean():.3f} ({df}) | "
            f"{rate:.4f} ± {mcse:.4f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohorts", type=int, default=1000,
                        help="simulated cohorts for the coverage (and 2x as many null "
                             "cohorts per log-rank design); default 1000")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--bootstrap", type=int, default=200,
                        help="bootstrap refits a cohort (0: no bootstrap row); default 200")
    parser.add_argument("--bootstrap-cohorts", type=int, default=400,
                        help="how many of the cohorts (the first) get the bootstrap; default 400")
    parser.add_argument("--jobs", type=int, default=1,
                        help="worker processes over cohorts (the results do not depend on it)")
    args = parser.parse_args()
    started = time.perf_counter()
    n_boot_cohorts = min(args.bootstrap_cohorts, args.cohorts) if args.bootstrap else 0
    tasks = [(i, s, args.bootstrap if i < n_boot_cohorts else 0, args.seed)
             for i, s in enumerate(seeds(args.seed, args.cohorts))]
    n_null = 2 * args.cohorts
    designs = [("2 groups (x), null", "log HR 0", seeds([args.seed, 2], n_null), 0.0,
                (0.5, 0.5), "x"),
               ("3 groups 50/30/20 %, null", "no difference", seeds([args.seed, 3], n_null),
                0.0, (0.5, 0.3, 0.2), "arm"),
               ("2 groups (x), power", "log HR 0.4", seeds([args.seed, 4], args.cohorts),
                TRUTH["x"], (0.5, 0.5), "x")]
    with Pool(args.jobs) as pool:
        runs = pool.map(fit_cohort, tasks, chunksize=1)
        tests = [pool.map(logrank_cohort, [(s, effect, arms, by) for s in sequences],
                          chunksize=50)
                 for _, _, sequences, effect, arms, by in designs]

    print(f"fit_ph(\"{FORMULA}\") on {args.cohorts} simulated cohorts of {N} patients, "
          f"seed {args.seed}; 95% Wald intervals.\n")
    print("| method | cohorts | coefficient | truth | mean estimate | SD of estimates | "
          "mean SE | mean SE / SD | coverage ± MC SE | median CI width |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    labels = {"profile": "profile (default)", "numeric": "numeric",
              "sandwich": "sandwich, cluster = patient (t, G - 1 df)"}
    for method, label in labels.items():
        for row in coverage_rows(label, [r[method] for r in runs]):
            print(row)
    if n_boot_cohorts:
        first = runs[:n_boot_cohorts]
        for row in coverage_rows(f"profile, first {n_boot_cohorts}",
                                 [r["profile"] for r in first]):
            print(row)
        for row in coverage_rows(f"bootstrap ({args.bootstrap} refits), first "
                                 f"{n_boot_cohorts}", [r["bootstrap"] for r in first]):
            print(row)
    print("\nregen.logrank_test, rejection rate at 0.05 (type-I error under the null, power "
          "otherwise):\n")
    print("| design | truth | simulations | failed | mean chi-square (df) | "
          "rejection rate ± MC SE |")
    print("|---|---|---|---|---|---|")
    for (label, truth, _, _, arms, _), results in zip(designs, tests, strict=True):
        print(logrank_row(label, truth, len(arms) - 1, results))
    errors = sorted({r for results in tests for r in results if isinstance(r, str)})
    errors += sorted({r[m]["error"] for r in runs for m in r if "error" in r[m]})
    for error in errors:
        print(f"\nfailed with: {error}")
    print(f"\n{time.perf_counter() - started:.0f} s with {args.jobs} process(es)")


if __name__ == "__main__":
    main()
