"""regen's shared-frailty AFT fit against its peers, as ratios.

regen: ``regen.fit_recovery("~ x + group + treatment_number", episodes, dist=...,
frailty="patient_id")``: the whole call, that is the fit without frailty it starts
from, the Gauss–Hermite fit (nodes doubled until the log-likelihood is exact to 1e-6),
the covariance and the profile-likelihood interval of the frailty SD. The same call
without ``frailty=`` is timed beside it (what the frailty costs).

The data: ``N`` patients with 5 episodes each (treatment_number 1-5); ``x`` standard
normal per episode, ``group`` "b" for 40% of the patients (per patient), and

    log T = 3.5 + 0.2 x - 0.3 [group b] + 0.05 (treatment_number - 1) + b_i + 0.4 eps,

b_i ~ N(0, 0.4^2), eps standard normal (``lognormal``) or minimum extreme value
(``weibull``: each law's fits get data from that law, same seed). Visits at days 7, 14,
28, 42, 56, 84, 112, 168, each missed with probability 0.1; an episode is (last visit
before T, first visit at or after it], (0, first] or (last, inf): about 2% left- and 1%
right-censored.

Peers, on the exact-time special case (lognormal, no censoring: ``lower = upper = T``,
the same patients), where the frailty model is a linear mixed model of log T:

* R, when ``Rscript`` is on the PATH and lme4 is installed:
  ``lme4::lmer(log(t) ~ x + group + treatment_number + (1 | patient_id), REML = FALSE)``;
* statsmodels ``MixedLM`` (``smf.mixedlm(..., groups=patient_id).fit(reml=False)``),
  on log T.

Both are maximum likelihood of the same model as regen's lognormal frailty fit on the
same exact data (row ``frailty lognormal, exact``); regen's log-likelihood in days is
theirs on log days minus sum(log T) (column ``agreement``: its difference, and the
largest difference of the coefficients, the frailty SD and sigma). regen computes more
(the profile interval of the frailty SD). No Python or R package fits the frailty model
to interval-censored times, so the interval-censored rows have no peer.

Timing: only the call itself, ``--repeats`` times, median of CPU seconds
(``time.process_time``; R's ``proc.time`` user + system) and of wall seconds.
R gets the data in a temporary CSV and times its fit call inside R (reading the
CSV and starting R are not timed). regen and statsmodels get one untimed warm-up
call on small data first. The ratios are the peer's median CPU and wall seconds over
regen's (> 1: regen is faster). The issue's target: a frailty fit of 2,000 patients x 5
episodes <= 2 s, judged on regen's median CPU and wall seconds (``ok/ok``: both met).

``--blas-threads N`` reruns the benchmark with ``OPENBLAS_NUM_THREADS``,
``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` set to N (R inherits them too).

Run:  python benchmarks/bench_frailty.py [--sizes 500 2000 10000] [--repeats 3] [--no-r]
                                         [--blas-threads N]
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pandas as pd
import timing

import regen

FORMULA = "~ x + group + treatment_number"
EPISODES = 5
VISITS = np.array([7, 14, 28, 42, 56, 84, 112, 168])
#: The simulation's truth: coefficients (Intercept, x, group b, treatment_number), sigma, tau.
BETA = np.array([3.5, 0.2, -0.3, 0.05])
SIGMA, TAU = 0.4, 0.4
#: The environment variables that set the BLAS libraries' threads.
#: The issue's target, seconds, by (fit, patients).
TARGETS = {("frailty lognormal", 2000): 2.0, ("frailty weibull", 2000): 2.0}


# ---------------------------------------------------------------------- data --

def simulated(n_patients: int, seed: int, dist: str = "lognormal", *,
              exact: bool = False) -> pd.DataFrame:
    """``n_patients`` x 5 episodes: patient_id, x, group, treatment_number, lower, upper
    (``lower == upper`` with ``exact``) and log_t."""
    rng = np.random.default_rng(seed)
    n = n_patients * EPISODES
    patient = np.repeat(np.arange(n_patients), EPISODES)
    number = np.tile(np.arange(1, EPISODES + 1), n_patients)
    x = rng.standard_normal(n)
    group_b = (rng.random(n_patients) < 0.4)[patient]
    effect = TAU * rng.standard_normal(n_patients)[patient]
    normal, uniform = rng.standard_normal(n), rng.random(n)
    eps = normal if dist == "lognormal" else np.log(-np.log(uniform))
    log_t = (BETA[0] + BETA[1] * x + BETA[2] * group_b + BETA[3] * (number - 1) + effect
             + SIGMA * eps)
    t = np.exp(log_t)
    attended = rng.random((n, len(VISITS))) >= 0.1
    if exact:
        lower = upper = t
    else:
        days = np.where(attended, VISITS[None, :], np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
            lower = np.nanmax(np.where(days < t[:, None], days, np.nan), axis=1)
            upper = np.nanmin(np.where(days >= t[:, None], days, np.nan), axis=1)
        lower, upper = np.nan_to_num(lower, nan=0.0), np.nan_to_num(upper, nan=np.inf)
    return pd.DataFrame({"patient_id": [f"P{i:05d}" for i in patient], "x": x,
                         "group": np.where(group_b, "b", "a"), "treatment_number": number,
                         "lower": lower, "upper": upper, "log_t": log_t})


# -------------------------------------------------------------------- timing --

def fit_regen(data: pd.DataFrame, dist: str, frailty: bool):
    return regen.fit_recovery(FORMULA, data, dist=dist,
                              frailty="patient_id" if frailty else None)


def fit_mixedlm(data: pd.DataFrame):
    import statsmodels.formula.api as smf

    return smf.mixedlm("log_t ~ x + group + treatment_number", data,
                       groups=data["patient_id"]).fit(reml=False)


# ------------------------------------------------------------------------ R --

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
repeats <- as.integer(args[2])
if (!requireNamespace("lme4", quietly = TRUE)) {
  cat("MISSING lme4\n")
  quit(status = 0)
}
suppressPackageStartupMessages(library(lme4))
d$group <- factor(d$group)
cpu <- numeric(repeats); wall <- numeric(repeats)
for (r in seq_len(repeats)) {
  t0 <- proc.time()
  fit <- lmer(log(t) ~ x + group + treatment_number + (1 | patient_id), data = d, REML = FALSE)
  t1 <- proc.time() - t0
  cpu[r] <- t1[["user.self"]] + t1[["sys.self"]]; wall[r] <- t1[["elapsed"]]
}
s <- as.data.frame(VarCorr(fit))$sdcor
cat("RESULT lmer", format(c(median(cpu), median(wall), as.numeric(logLik(fit)), fixef(fit),
                            s[1], s[2]), digits = 15), "\n")
"""


def run_r(data: pd.DataFrame, repeats: int, timeout: float) -> tuple[dict, list[str]]:
    """lmer's fit of the exact data: {"lmer": (cpu, wall, loglik, [beta..., tau, sigma])}."""
    frame = data[["patient_id", "x", "group", "treatment_number"]].assign(t=np.exp(data["log_t"]))
    out, missing, error = timing.run_r(R_SCRIPT, frame, repeats, timeout, what=f"{len(data)} episodes",
                                       float_format="%.17g")
    notes = [error] if error else []
    if missing:
        notes.append("lme4::lmer skipped: the R package lme4 is not installed")
    return out, notes


# ---------------------------------------------------------------------- main --

def regen_exact(fit) -> np.ndarray:
    """regen's coefficients, frailty SD and sigma, in the peers' order."""
    p = fit.params
    return np.array([p["Intercept"], p["x"], p[[n for n in p.index if n.startswith("group")][0]],
                     p["treatment_number"], p["frailty_sd"], np.exp(p["log_scale"])])


def agreement(their_loglik: float, theirs: np.ndarray, fit, jacobian: float) -> str:
    return (f"dloglik {their_loglik - jacobian - fit.loglik:+.1e}, "
            f"max|d| {np.max(np.abs(theirs - regen_exact(fit))):.1e}")


def main() -> None:
    parser = timing.peer_options(__doc__.splitlines()[0], [500, 2000, 10000],
                                 size_help="patients (5 episodes each)")
    args = parser.parse_args()
    timing.limit_blas(args.blas_threads, __file__)
    began = time.perf_counter()

    notes = []
    try:
        import statsmodels.formula.api  # noqa: F401
        have_statsmodels = True
    except ImportError:
        have_statsmodels = False
        notes.append("statsmodels MixedLM skipped: not installed")
    use_r = timing.use_r(args, notes)

    warm = simulated(100, seed=0)                 # imports and first calls, not timed
    for dist in ("lognormal", "weibull"):
        timing.quiet(lambda d=dist: fit_regen(warm, d, True))()
    if have_statsmodels:
        timing.quiet(lambda: fit_mixedlm(warm))()

    rows = []
    for n in args.sizes:
        base = {"N": n, "episodes": n * EPISODES}
        for dist in ("lognormal", "weibull"):
            data = simulated(n, seed=args.seed + n, dist=dist)
            if dist == "lognormal":
                print(f"N = {n} patients x {EPISODES}: {(data['lower'] == 0).mean():.1%} left-, "
                      f"{np.isinf(data['upper']).mean():.1%} right-censored", flush=True)
            for frailty in (True, False):
                cpu, wall, fit = timing.timed(
                    timing.quiet(lambda d=data, s=dist, f=frailty: fit_regen(d, s, f)),
                    args.repeats)
                name = f"{'frailty' if frailty else 'no frailty'} {dist}"
                detail = (f"tau {fit.frailty_sd:.3f}, {fit.n_nodes} nodes"
                          if frailty else f"sigma {np.exp(fit.params['log_scale']):.3f}")
                print(f"  regen {name}: {wall:.3f} s ({detail})", flush=True)
                rows.append({**base, "fit": name, "regen cpu": cpu, "regen wall": wall,
                             "peer": "(none)", "peer cpu": np.nan, "peer wall": np.nan,
                             "agreement": detail})

        exact = simulated(n, seed=args.seed + n, exact=True)
        cpu, wall, fit = timing.timed(timing.quiet(lambda d=exact: fit_regen(d, "lognormal", True)),
                               args.repeats)
        ex = {**base, "fit": "frailty lognormal, exact", "regen cpu": cpu, "regen wall": wall}
        print(f"  regen frailty lognormal, exact: {wall:.3f} s (tau {fit.frailty_sd:.3f}, "
              f"{fit.n_nodes} nodes)", flush=True)
        jacobian = float(exact["log_t"].sum())
        peers = 0
        if have_statsmodels:
            cpu, wall, model = timing.timed(timing.quiet(lambda d=exact: fit_mixedlm(d)), args.repeats)
            fe = model.fe_params[["Intercept", "x", "group[T.b]", "treatment_number"]]
            theirs = np.array([*fe.to_numpy(), np.sqrt(float(model.cov_re.iloc[0, 0])),
                               np.sqrt(model.scale)])
            rows.append({**ex, "peer": "statsmodels MixedLM (ML)", "peer cpu": cpu,
                         "peer wall": wall,
                         "agreement": agreement(model.llf, theirs, fit, jacobian)})
            peers += 1
        if use_r:
            r, r_notes = run_r(exact, args.repeats, args.r_timeout)
            notes += [note for note in r_notes if note not in notes]
            if "lmer" in r:
                cpu, wall, loglik, theirs = r["lmer"]
                rows.append({**ex, "peer": "R lme4::lmer (REML = FALSE)", "peer cpu": cpu,
                             "peer wall": wall,
                             "agreement": agreement(loglik, theirs, fit, jacobian)})
                peers += 1
        if not peers:
            rows.append({**ex, "peer": "(none)", "peer cpu": np.nan, "peer wall": np.nan,
                         "agreement": ""})

    order = ["frailty lognormal", "frailty weibull", "no frailty lognormal",
             "no frailty weibull", "frailty lognormal, exact"]
    rows.sort(key=lambda row: (order.index(row["fit"]), row["N"]))
    print(f"\nmedian of {args.repeats} (seconds: CPU = process_time or R proc.time "
          f"user+sys; wall), fit call only; ratio = peer / regen; {FORMULA}, N patients x "
          f"{EPISODES} episodes; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} at the end, " + timing.blas_setting())
    header = (f"{'fit':<25}{'N':>6}{'episodes':>9} {'regen cpu':>9} {'wall':>7} "
              f"{'target cpu/wall':>16}  {'peer':<29}{'peer cpu':>9} {'wall':>8} "
              f"{'ratio cpu':>9} {'wall':>6}  agreement")
    print(header)
    print("-" * len(header))
    for row in rows:
        target = TARGETS.get((row["fit"], row["N"]))
        verdict = "" if target is None else "<={:g} {}/{}".format(
            target, *("ok" if row[k] <= target else "MISS" for k in ("regen cpu", "regen wall")))
        peer = (f"{row['peer cpu']:>9.3f} {row['peer wall']:>8.3f} "
                f"{row['peer cpu'] / row['regen cpu']:>8.2f}x "
                f"{row['peer wall'] / row['regen wall']:>5.2f}x"
                if np.isfinite(row["peer cpu"]) else f"{'':>9} {'':>8} {'':>9} {'':>6}")
        print(f"{row['fit']:<25}{row['N']:>6}{row['episodes']:>9} {row['regen cpu']:>9.3f} "
              f"{row['regen wall']:>7.3f} {verdict:>16}  {row['peer']:<29}{peer}  "
              f"{row['agreement']}")
    print("\nagreement: on the exact data, dloglik is the peer's log-likelihood of log T minus "
          "sum(log T) minus regen's (same model: about 0), max|d| the largest difference of "
          "the coefficients, frailty SD and sigma; on the interval-censored data, regen's "
          f"estimates (truth: tau {TAU}, sigma {SIGMA})")
    for note in notes:
        print(f"note: {note}")
    print(f"benchmark ran {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
