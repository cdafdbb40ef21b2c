"""regen's proportional-hazards fit and log-rank test against their peers, as ratios.

regen: ``regen.fit_ph("~ nerve + diabetes + smoker + age + bmi", episodes)`` (default
``variance="profile"``: the fit and its analytic standard errors) and
``regen.logrank_test(episodes, by="nerve")`` (two groups), on interval-censored
episodes ``(lower, upper]``, ``upper = inf`` right-censored.

The data: simulated episodes like regen's, about ``N`` treatments each with one
episode. Visits on integer days every 14 days (+-3 days of jitter) up to day ~365,
each visit after the first missed with probability 0.1; 30% of patients drop out
after a uniformly drawn visit. The event time is Weibull (shape 1.3, median ~60
days at the reference) with proportional hazards, true log hazard ratios nerve
(lesser vs greater occipital) 0.4, diabetes -0.3, smoker -0.2, age -0.02/year,
bmi 0.01/unit: three binary and two continuous covariates. An episode is
``(last visit before the event, first visit at or after it]``, or
``(last visit, inf)`` when the event comes after the last attended visit.

Peers, each on the same data in the same run (nothing in Python fits the
interval-censored semiparametric PH model, so the first two fit an easier model):

* ``lifelines`` ``CoxPHFitter`` (Efron ties) and ``lifelines.statistics.logrank_test``
  on a *right-censored reading* of the same episodes: an event at ``upper`` when it
  is finite, censored at ``lower`` otherwise. Cox's partial likelihood on exact
  (tied) times: a different, easier model; its coefficients are close to regen's
  but not equal (column ``max|db|``).
* R, when ``Rscript`` is on the PATH: ``survival::coxph`` (Efron ties) and
  ``survival::survdiff`` (log-rank) on that same right-censored reading; and, when
  the R package icenReg is installed (Debian's ``r-cran-icenreg``; bookworm has no
  such package), ``icenReg::ic_sp(cbind(lower, upper) ~ ..., model = "ph",
  bs_samples = 0, B = c(0, 1))`` on the interval-censored data, intervals
  ``(l, u]``: the same model as regen's, so its log-likelihood should match regen's
  (column ``agreement``). Without bootstrap ic_sp gives no standard errors: it
  does less work than regen's default.

Timing: only the call itself, ``--repeats`` times, median of CPU seconds
(``time.process_time``; R's ``proc.time`` user + system) and of wall seconds.
R gets the data in a temporary CSV and times its fit call inside R (reading the
CSV and starting R are not timed). regen and lifelines get one untimed warm-up
call on small data first (imports, first-call caches). The ratios are the peer's
median CPU and wall seconds over regen's (> 1: regen is faster). Issue 15's targets:
fit_ph on 10,000 episodes <= 1 s and 100,000 <= 10 s; logrank_test on 100,000 <= 1 s,
judged on regen's median CPU seconds and on its median wall seconds (``ok/ok``:
both met). CPU seconds are the steadier figure on a shared machine, where other
processes stretch the wall time; wall seconds also count BLAS threads' waiting.

``--blas-threads N`` reruns the benchmark with ``OPENBLAS_NUM_THREADS``,
``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` set to N (R inherits them too). regen's
dense algebra is on small matrices (one row and column per support interval, a
few hundred with visit days), where OpenBLAS's threads cost more than they give
on a busy 2-core machine: compare a run with ``--blas-threads 1`` to the default.

Run:  python benchmarks/bench_ph.py [--sizes 1000 10000 100000] [--repeats 3] [--no-r]
                                    [--blas-threads N]
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import timing

import regen

FORMULA = "~ nerve + diabetes + smoker + age + bmi"
COVARIATES = ["nerve", "diabetes", "smoker", "age", "bmi"]
#: True log hazard ratios of the simulation (nerve: lesser vs greater occipital).
TRUTH = {"nerve": 0.4, "diabetes": -0.3, "smoker": -0.2, "age": -0.02, "bmi": 0.01}
#: The environment variables that set the BLAS libraries' threads.
#: Issue 15's targets, seconds of regen's median wall time, by (fit, N).
TARGETS = {("fit_ph", 10_000): 1.0, ("fit_ph", 100_000): 10.0,
           ("logrank_test", 100_000): 1.0}


# ---------------------------------------------------------------------- data --

def simulated(n: int, seed: int) -> pd.DataFrame:
    """``n`` interval-censored episodes with five covariates, and their right-censored reading.

    Columns: lower, upper (days, upper inf when right-censored), nerve (str), diabetes,
    smoker (bool), age, bmi (float); duration and event (the right-censored reading:
    the event at upper when finite, censored at lower otherwise).
    """
    rng = np.random.default_rng(seed)
    nerve = np.where(rng.random(n) < 0.4, "lesser_occipital", "greater_occipital")
    diabetes = rng.random(n) < 0.2
    smoker = rng.random(n) < 0.25
    age = np.round(np.clip(rng.normal(53, 13, n), 18, 90))
    bmi = np.round(np.clip(rng.normal(27, 5, n), 16, 50), 1)
    eta = (TRUTH["nerve"] * (nerve == "lesser_occipital") + TRUTH["diabetes"] * diabetes
           + TRUTH["smoker"] * smoker + TRUTH["age"] * (age - 53) + TRUTH["bmi"] * (bmi - 27))
    shape, scale = 1.3, 60 / np.log(2) ** (1 / 1.3)          # median 60 days at eta = 0
    event = scale * (-np.log(rng.random(n)) / np.exp(eta)) ** (1 / shape)
    # Visits: every 14 days +-3, 26 of them (to about day 365), the first always attended.
    slots = 26
    days = 14 * np.arange(1, slots + 1)[None, :] + rng.integers(-3, 4, (n, slots))
    attended = rng.random((n, slots)) >= 0.1
    attended[:, 0] = True
    last = np.where(rng.random(n) < 0.3, rng.integers(1, slots, n), slots)  # drop-outs
    attended &= np.arange(slots)[None, :] < last[:, None]
    before = attended & (days < event[:, None])
    after = attended & (days >= event[:, None])
    lower = np.where(before, days, 0).max(axis=1).astype(float)
    upper = np.where(after, days, np.iinfo(np.int64).max).min(axis=1).astype(float)
    upper[~after.any(axis=1)] = np.inf
    seen = np.isfinite(upper)
    return pd.DataFrame({"lower": lower, "upper": upper, "nerve": nerve, "diabetes": diabetes,
                         "smoker": smoker, "age": age, "bmi": bmi,
                         "duration": np.where(seen, upper, lower), "event": seen.astype(int)})


def numeric_covariates(data: pd.DataFrame) -> pd.DataFrame:
    """The covariates as numbers (nerve: 1 for lesser occipital), as lifelines and R read them."""
    return pd.DataFrame({"nerve": (data["nerve"] == "lesser_occipital").astype(int),
                         "diabetes": data["diabetes"].astype(int),
                         "smoker": data["smoker"].astype(int),
                         "age": data["age"], "bmi": data["bmi"]})


# -------------------------------------------------------------------- timing --

# ------------------------------------------------------------------------ R --

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
repeats <- as.integer(args[2])
suppressPackageStartupMessages(library(survival))
d$upper[is.na(d$upper)] <- Inf
""" + timing.R_TIMED + r"""f <- Surv(duration, event) ~ nerve + diabetes + smoker + age + bmi
t <- timed(function() coxph(f, data = d, ties = "efron"))
say("coxph", t, t$value$loglik[2], coef(t$value))
t <- timed(function() survdiff(Surv(duration, event) ~ nerve, data = d))
say("survdiff", t, t$value$chisq)
if (requireNamespace("icenReg", quietly = TRUE)) {
  t <- timed(function() icenReg::ic_sp(cbind(lower, upper) ~ nerve + diabetes + smoker + age + bmi,
                                       data = d, model = "ph", bs_samples = 0, B = c(0, 1)))
  say("ic_sp", t, t$value$llk, coef(t$value))
} else cat("MISSING icenReg\n")
"""


def run_r(data: pd.DataFrame, repeats: int, timeout: float) -> tuple[dict, list[str]]:
    """R's fits on ``data``: {name: (cpu, wall, statistic, coefficients)} and notes."""
    frame = pd.concat([data[["lower", "upper", "duration", "event"]], numeric_covariates(data)], axis=1)
    out, missing, error = timing.run_r(R_SCRIPT, frame, repeats, timeout, what=f"N = {len(data)}",
                                       na_rep="NA", float_format="%.10g")
    notes = [error] if error else []
    if missing:
        notes.append("icenReg::ic_sp skipped: the R package icenReg is not installed "
                     "(Debian has no r-cran-icenreg; CRAN is not used here)")
    return out, notes


# ---------------------------------------------------------------------- main --

def regen_coefficients(fit) -> np.ndarray:
    """regen's log hazard ratios in the order of COVARIATES (formulaic names their levels)."""
    params = fit.params
    return np.array([params[[name for name in params.index if name.startswith(c)][0]]
                     for c in COVARIATES])


def main() -> None:
    parser = timing.peer_options(__doc__.splitlines()[0], [1000, 10000, 100000],
                                 r_timeout_help="seconds allowed to one Rscript run (all "
                                                "of one size's R fits)")
    args = parser.parse_args()
    timing.limit_blas(args.blas_threads, __file__)
    began = time.perf_counter()

    notes = []
    try:
        from lifelines import CoxPHFitter
        from lifelines.statistics import logrank_test as lifelines_logrank
    except ImportError:
        CoxPHFitter = lifelines_logrank = None
        notes.append("lifelines skipped: not installed")
    use_r = timing.use_r(args, notes)

    warm = simulated(500, seed=0)                 # imports and first calls, not timed
    timing.quiet(lambda: regen.fit_ph(FORMULA, warm))()
    timing.quiet(lambda: regen.logrank_test(warm, by="nerve"))()
    if CoxPHFitter is not None:
        timing.quiet(lambda: CoxPHFitter().fit(pd.concat([warm[["duration", "event"]],
                                                   numeric_covariates(warm)], axis=1),
                                        "duration", "event"))()

    rows = []
    for n in args.sizes:
        data = simulated(n, seed=args.seed + n)
        right = pd.concat([data[["duration", "event"]], numeric_covariates(data)], axis=1)
        lesser = (data["nerve"] == "lesser_occipital").to_numpy()
        print(f"N = {n}: {np.isinf(data['upper']).mean():.1%} right-censored, "
              f"{(data['lower'] == 0).mean():.1%} left-censored, median width "
              f"{np.median((data['upper'] - data['lower'])[np.isfinite(data['upper'])]):.0f} "
              "days", flush=True)

        cpu, wall, fit = timing.timed(timing.quiet(lambda d=data: regen.fit_ph(FORMULA, d)), args.repeats)
        ours = regen_coefficients(fit)
        ph = {"fit": "fit_ph", "N": n, "regen cpu": cpu, "regen wall": wall}
        cpu, wall, test = timing.timed(timing.quiet(lambda d=data: regen.logrank_test(d, by="nerve")),
                                args.repeats)
        lr = {"fit": "logrank_test", "N": n, "regen cpu": cpu, "regen wall": wall}
        print(f"  regen fit_ph {ph['regen wall']:.3f} s (loglik {fit.loglik:.3f}, "
              f"{fit.iterations} iterations), logrank_test {lr['regen wall']:.3f} s "
              f"(chi-square {test.statistic:.3f})", flush=True)

        def peer(base, name, cpu, wall, agreement):
            rows.append({**base, "peer": name, "peer cpu": cpu, "peer wall": wall,
                         "agreement": agreement})

        def db(theirs, ours=ours):
            return f"max|db| {np.max(np.abs(theirs - ours)):.3f}"

        if CoxPHFitter is not None:
            cpu, wall, model = timing.timed(timing.quiet(lambda r=right: CoxPHFitter().fit(
                r, "duration", "event")), args.repeats)
            peer(ph, "lifelines CoxPH (right-cens.)", cpu, wall,
                 db(model.params_[COVARIATES].to_numpy()))
            a, b = right[lesser], right[~lesser]
            cpu, wall, result = timing.timed(timing.quiet(lambda a=a, b=b: lifelines_logrank(
                a["duration"], b["duration"], a["event"], b["event"])), args.repeats)
            peer(lr, "lifelines logrank (right-cens.)", cpu, wall,
                 f"chi2 {result.test_statistic:.2f}, regen {test.statistic:.2f}")
        if use_r:
            r, r_notes = run_r(data, args.repeats, args.r_timeout)
            notes += [note for note in r_notes if note not in notes]
            if "coxph" in r:
                cpu, wall, _, coefs = r["coxph"]
                peer(ph, "R coxph (right-cens.)", cpu, wall, db(coefs))
            if "ic_sp" in r:
                cpu, wall, loglik, coefs = r["ic_sp"]
                peer(ph, "R icenReg::ic_sp", cpu, wall,
                     f"loglik {loglik:.3f}, regen {fit.loglik:.3f}; {db(coefs)}")
            if "survdiff" in r:
                cpu, wall, chisq, _ = r["survdiff"]
                peer(lr, "R survdiff (right-cens.)", cpu, wall,
                     f"chi2 {chisq:.2f}, regen {test.statistic:.2f}")
        if not any(row["N"] == n and row["fit"] == "fit_ph" for row in rows):
            peer(ph, "(none)", np.nan, np.nan, "")
        if not any(row["N"] == n and row["fit"] == "logrank_test" for row in rows):
            peer(lr, "(none)", np.nan, np.nan, "")

    rows.sort(key=lambda row: (row["fit"] != "fit_ph", row["N"]))
    print(f"\nmedian of {args.repeats} (seconds: CPU = process_time or R proc.time "
          f"user+sys; wall), fit call only; ratio = peer / regen; {FORMULA}; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end, "
          + timing.blas_setting())
    header = (f"{'fit':<13}{'N':>7} {'regen cpu':>9} {'wall':>7} {'target cpu/wall':>16}  "
              f"{'peer':<32}{'peer cpu':>9} {'wall':>8} {'ratio cpu':>9} {'wall':>6}  agreement")
    print(header)
    print("-" * len(header))
    for row in rows:
        target = TARGETS.get((row["fit"], row["N"]))
        verdict = "" if target is None else "<={:g} {}/{}".format(
            target, *("ok" if row[k] <= target else "MISS" for k in ("regen cpu", "regen wall")))
        print(f"{row['fit']:<13}{row['N']:>7} {row['regen cpu']:>9.3f} {row['regen wall']:>7.3f} "
              f"{verdict:>16}  {row['peer']:<32}{row['peer cpu']:>9.3f} {row['peer wall']:>8.3f} "
              f"{row['peer cpu'] / row['regen cpu']:>8.2f}x "
              f"{row['peer wall'] / row['regen wall']:>5.2f}x  {row['agreement']}")
    print("\nagreement: max|db| is the largest difference between the peer's log hazard "
          "ratios and regen's (right-censored peers fit a different model: a few hundredths, "
          "not 0); chi2 is the peer's log-rank chi-square on the right-censored reading, next "
          "to regen's on the intervals (1 df); loglik: ic_sp's and regen's (same model)")
    for note in notes:
        print(f"note: {note}")
    print(f"benchmark ran {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
