"""One table of regen's core fits against their peers, on the same data, as ratios.

Rows are (fit, size); every engine gets the same data in one run, simulated (and written)
before any timing. Only the fit call is timed, ``--repeats`` times; the table gives the
medians: CPU seconds (``time.process_time``; R: ``proc.time()`` user + system, timed inside
R, so that starting R and reading its CSV are not counted) and wall seconds (R: elapsed) in
brackets. A ratio is the peer's CPU seconds over regen's: ``2.3×`` means regen is 2.3 times
faster. Every engine first warms up (imports, first calls) on small data.

* AFT, Weibull and log-normal, ``~ nerve + age + diabetes`` on the numbness episodes of a
  ``regen.simulate`` cohort (``--sizes`` episodes): ``regen.fit_recovery`` against R's
  ``survreg(Surv(l, u, type = "interval2") ~ ..., dist = ...)`` (l = NA where lower is 0, u = NA
  where upper is inf: see tests/reference/aft.R) and lifelines' ``WeibullAFTFitter`` /
  ``LogNormalAFTFitter().fit_interval_censoring`` (lower bounds clipped to 1e-6). R's
  log-likelihood should be regen's to about 1e-8; lifelines' only roughly.
* kinetics: ``regen.fit_regeneration(ep, distance="distance_mm", formula="~ age + diabetes")``
  on the same episodes, no peer; its note gives its time over the Weibull AFT's (target <= 2×).
* NPMLE: ``regen.turnbull(lower=, upper=)`` against lifelines'
  ``KaplanMeierFitter().fit_interval_censoring`` and R's ``survfit(Surv(l, u, type =
  "interval2") ~ 1)`` (Turnbull's EM, which stops when S moves by < 5e-5). lifelines reads
  closed intervals [l, u], so it gets l + 1e-6 for l > 0: the same (l, u] on visit days (given
  l itself, its curve is another NPMLE). Each curve's log-likelihood is taken under (l, u].
* LMM: random intercept and slope in years, REML, on bench_mixed.py's simulation of
  ``--sizes`` patients: ``regen.fit_trajectory`` against ``lme4::lmer(score ~ years + x +
  (years | patient_id), REML = TRUE)`` and statsmodels' ``MixedLM.from_formula(...).fit(reml=True)``.
* read: a ``regen.simulate`` cohort of ``--read-patients`` patients (about 1,000,000 visit
  rows) as CSV: ``regen.read_cohort`` against ``pandas.read_csv`` of the visits file and of all
  the files; then ``cohort.episodes("numbness")`` on a cohort that has not made them yet.

A peer is skipped at a size where its CPU seconds at the previous size, scaled by the sizes,
pass ``--peer-limit`` (60), and its cell says so. R runs once per (fit, size), with
its own repeats; without Rscript, survival or lme4 the R cells say so and the rest runs.

Run:  python benchmarks/bench_core.py [--sizes 1000 10000 100000] [--repeats 3] [--no-r]
          [--only aft kinetics npmle lmm read] [--read-patients 87500] [--peer-limit 60]
          [--markdown] [--blas-threads N]
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import timing
from bench_mixed import simulated as trajectories
from bench_mixed import statsmodels_fit
from bench_survival import episodes, half_open_loglik

import regen

FORMULA = "~ nerve + age + diabetes"
KINETICS = "~ age + diabetes"
LMM = "score ~ years + x"
FITS = ("aft", "kinetics", "npmle", "lmm", "read")
AFT = {"weibull": "Weibull AFT", "lognormal": "log-normal AFT"}
KINETICS_TARGET = 2.0
COLUMNS = ["fit", "n", "regen s", "R s", "R ratio", "Python peer", "peer s", "peer ratio",
           "loglik regen", "loglik R", "|Δ| R", "loglik peer", "|Δ| peer", "note"]

# ------------------------------------------------------------------------ R --

R_HEAD = r"""
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
repeats <- as.integer(args[2])
need <- function(package) {
  if (!requireNamespace(package, quietly = TRUE)) { cat("MISSING", package, "\n"); quit(status = 0) }
  suppressPackageStartupMessages(library(package, character.only = TRUE))
}
""" + timing.R_TIMED
R_AFT = R_HEAD + r"""
need("survival")
for (dist in c("weibull", "lognormal")) {
  t <- timed(function() survreg(Surv(l, u, type = "interval2") ~ nerve + age + diabetes,
                                data = d, dist = dist))
  say(dist, t, t$value$loglik[2])
}
"""
R_NPMLE = R_HEAD + r"""
need("survival")
t <- timed(function() survfit(Surv(l, u, type = "interval2") ~ 1, data = d))
say("survfit", t, length(t$value$time), c(t$value$time, t$value$surv))
"""
R_LMM = R_HEAD + r"""
need("lme4")
t <- timed(function() lmer(score ~ years + x + (years | patient_id), data = d, REML = TRUE))
say("lmer", t, as.numeric(logLik(t$value)))
"""
R_VERSIONS = ('cat(paste0(R.version$major, ".", R.version$minor)); for (p in c("survival", "lme4")) '
              'cat("", p, if (requireNamespace(p, quietly = TRUE)) format(packageVersion(p)) '
              'else "missing")')


# ------------------------------------------------------------------ the table --

def short(n: int) -> str:
    """1000 -> 1k, 100000 -> 100k, 1000000 -> 1M."""
    for unit, size in (("M", 1_000_000), ("k", 1000)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


class Table:
    """The rows, the notes, and each peer's last CPU seconds (to skip the sizes it would be too
    slow at)."""

    def __init__(self, args) -> None:
        self.args, self.rows, self.notes, self.last = args, [], [], {}
        self.r_absent = "not run (--no-r)" if args.no_r else "no Rscript"
        self.use_r = timing.use_r(args, self.notes)

    def skipped(self, key: tuple, n: int) -> str | None:
        if key in self.last:
            size, seconds = self.last[key]
            if seconds * n / size > self.args.peer_limit:
                return f"skipped (>{self.args.peer_limit:g} s at {short(n)})"
        return None

    def regen(self, function):
        """regen's median CPU and wall seconds and its result."""
        cpu, wall, result = timing.timed(timing.quiet(function), self.args.repeats)
        return (cpu, wall), result

    def peer(self, key: tuple, n: int, function):
        """A Python peer's (cpu, wall) and result, or why it did not run (and None)."""
        if reason := self.skipped(key, n):
            return reason, None
        cpu, wall, result = timing.timed(timing.quiet(function), self.args.repeats)
        self.last[key] = (n, cpu)
        return (cpu, wall), result

    def r(self, key: tuple, n: int, script: str, frame: pd.DataFrame, package: str):
        """R's {name: (cpu, wall, statistic, values)} on ``frame``, or why it did not run."""
        if not self.use_r:
            return self.r_absent
        if reason := self.skipped(key, n):
            return reason
        out, missing, error = timing.run_r(script, frame, self.args.repeats, self.args.r_timeout,
                                           what=f"{key[0]} {short(n)}", na_rep="NA",
                                           float_format="%.17g")
        if error:
            self.notes.append(error)
            timed_out = error.startswith("R: stopped")
            self.last[key] = (n, self.args.r_timeout if timed_out else 0.0)
            return "timed out" if timed_out else "failed (see note)"
        if missing:
            return f"R {package} not installed"
        self.last[key] = (n, max(value[0] for value in out.values()))
        return out

    def add(self, fit: str, n: str, ours, loglik, *, r=None, peer=None, note: str = "") -> None:
        """A row: ``r`` is ((cpu, wall) or reason, loglik), ``peer`` (name, the same two)."""
        row = dict.fromkeys(COLUMNS, "")
        row.update({"fit": fit, "n": n, "regen s": seconds(ours), "note": note,
                    "loglik regen": "" if loglik is None else f"{loglik:.3f}"})
        if peer is not None:
            row["Python peer"], *peer = peer
        for engine, side in (("R", r), ("peer", peer)):
            if side is None:
                continue
            time_, their = side
            row[f"{engine} s"] = seconds(time_)
            if not isinstance(time_, str):
                ratio = time_[0] / max(ours[0], 1e-9)
                row[f"{engine} ratio"] = f"{ratio:.{2 if ratio < 1 else 1 if ratio < 10 else 0}f}×"
            if their is not None:
                row[f"loglik {engine}"] = f"{their:.3f}"
                row[f"|Δ| {engine}"] = f"{abs(their - loglik):.1e}"
        self.rows.append(row)
        print(f"  {fit} {n}: " + ", ".join(f"{k} {v}" for k, v in list(row.items())[2:] if v),
              file=sys.stderr, flush=True)


def seconds(time_) -> str:
    """``cpu (wall)`` with three significant digits, or the reason there is no time."""
    if isinstance(time_, str):
        return time_
    cpu, wall = (f"{t:.3g}" if t < 1000 else f"{t:.0f}" for t in time_)
    return f"{cpu} ({wall})"


def r_side(r, name: str):
    """((cpu, wall) or reason, statistic) of R's result ``name``."""
    if isinstance(r, str) or name not in r:
        return r if isinstance(r, str) else "no result", None
    return r[name][:2], r[name][2]


# ---------------------------------------------------------------------- fits --

def survival_rows(table: Table, size: int, only: set[str]) -> None:
    """AFT, kinetics and NPMLE rows on the numbness episodes of about ``size`` treatments."""
    ep = episodes(size, seed=table.args.seed + size)
    n = f"{len(ep):,} episodes"
    print(f"{n}: {np.isinf(ep['upper']).mean():.1%} right-censored", file=sys.stderr, flush=True)
    weibull = None
    if only & {"aft", "kinetics"}:
        weibull = aft_rows(table, ep, size, n, peers="aft" in only)
    if "kinetics" in only:
        ours, fit = table.regen(lambda: regen.fit_regeneration(ep, distance="distance_mm",
                                                               formula=KINETICS))
        ratio = ours[0] / weibull[0]
        verdict = "ok" if ratio <= KINETICS_TARGET else "MISS"
        table.add("kinetics", n, ours, fit.loglik,
                  note=f"{ratio:.2f}× Weibull AFT's CPU (target <= {KINETICS_TARGET:g}×: {verdict})")
    if "npmle" in only:
        npmle_rows(table, ep, size, n)


def aft_rows(table: Table, ep: pd.DataFrame, size: int, n: str, *, peers: bool):
    """Weibull and log-normal AFT rows (with ``peers``); regen's Weibull (cpu, wall)."""
    from lifelines import LogNormalAFTFitter, WeibullAFTFitter

    data = ep[["lower", "upper", "nerve", "age", "diabetes"]]
    data = data.assign(diabetes=data["diabetes"].astype(float), age=data["age"].astype(float),
                       nerve=data["nerve"].astype(object))      # lifelines reads plain objects
    # lifelines needs lower > 0 on the log scale: left-censored rows start just above 0.
    clipped = data.assign(lower=data["lower"].clip(lower=1e-6))
    r_frame = pd.DataFrame({"l": data["lower"].where(data["lower"] > 0),
                            "u": data["upper"].where(np.isfinite(data["upper"])),
                            "nerve": data["nerve"], "age": data["age"],
                            "diabetes": data["diabetes"].astype(int)})
    r = table.r(("aft", "R"), size, R_AFT, r_frame, "survival") if peers else None
    times = {}
    for dist, fitter in (("weibull", WeibullAFTFitter), ("lognormal", LogNormalAFTFitter)):
        times[dist], fit = table.regen(lambda d=dist: regen.fit_recovery(FORMULA, ep, dist=d))
        if not peers:
            continue
        theirs, model = table.peer((dist, "lifelines"), size, lambda f=fitter: f().fit_interval_censoring(
            clipped, lower_bound_col="lower", upper_bound_col="upper",
            formula="nerve + age + diabetes"))
        table.add(AFT[dist], n, times[dist], fit.loglik, r=r_side(r, dist),
                  peer=("lifelines", theirs, None if model is None else model.log_likelihood_))
    return times["weibull"]


def npmle_rows(table: Table, ep: pd.DataFrame, size: int, n: str) -> None:
    from lifelines import KaplanMeierFitter

    lower, upper = ep["lower"].to_numpy(), ep["upper"].to_numpy()
    ours, fit = table.regen(lambda: regen.turnbull(lower=lower, upper=upper))
    closed = np.where(lower > 0, lower + 1e-6, 0.0)      # (l, u] as lifelines' [l, u]
    theirs, km = table.peer(("npmle", "lifelines"), size, lambda: KaplanMeierFitter()
                            .fit_interval_censoring(closed, upper))
    km_loglik = None
    if km is not None:       # its "lower" column is the right-continuous S of the NPMLE
        curve = km.survival_function_
        km_loglik = half_open_loglik(lower, upper, curve.index.to_numpy(dtype=float),
                                     curve["NPMLE_estimate_lower"].to_numpy())
    r_frame = pd.DataFrame({"l": np.where(lower > 0, lower, np.nan),
                            "u": np.where(np.isfinite(upper), upper, np.nan)})
    r = table.r(("npmle", "R"), size, R_NPMLE, r_frame, "survival")
    r_row = r_side(r, "survfit")
    if not isinstance(r_row[0], str):
        times, survival = np.split(r["survfit"][3], 2)
        r_row = (r_row[0], half_open_loglik(lower, upper, times, survival))
    table.add("NPMLE (Turnbull)", n, ours, fit.loglik, r=r_row,
              peer=("lifelines", theirs, km_loglik))


def lmm_rows(table: Table, size: int) -> None:
    data = trajectories(size, seed=table.args.seed + size).assign(years=lambda f: f["day"] / 365.25)
    ours, fit = table.regen(lambda: regen.fit_trajectory(LMM, data, re_formula="~ years", reml=True))
    r = table.r(("lmm", "R"), size, R_LMM, data[["patient_id", "years", "x", "score"]], "lme4")
    theirs, result = table.peer(("lmm", "statsmodels"), size,
                                lambda: statsmodels_fit(data, LMM, "years"))
    note = "statsmodels NOT converged" if result is not None and not result.converged else ""
    table.add("LMM (REML)", f"{size:,} patients ({len(data):,} rows)", ours, fit.loglik,
              r=r_side(r, "lmer"),
              peer=("statsmodels", theirs, None if result is None else result.llf), note=note)


def read_rows(table: Table) -> None:
    """read_cohort against pandas.read_csv, then episodes("numbness"), on one written cohort."""
    with tempfile.TemporaryDirectory() as folder:
        regen.simulate.cohort(table.args.read_patients, seed=table.args.seed).write(folder)
        files = sorted(Path(folder).glob("*.csv"))
        cohorts = []                    # one fresh cohort per repeat for episodes()

        def read():
            cohorts.append(regen.read_cohort(folder))
            return cohorts[-1]

        ours, cohort = table.regen(read)
        n = f"{len(cohort.visits):,} visits"
        one = table.peer(("read", "visits"), 1, lambda: pd.read_csv(Path(folder) / "visits.csv"))[0]
        every = table.peer(("read", "all"), 1, lambda: [pd.read_csv(file) for file in files])[0]
        table.add("read_cohort", n, ours, None, peer=("pandas visits.csv", one, None))
        table.add("read_cohort", n, ours, None,
                  peer=(f"pandas all {len(files)} files", every, None),
                  note=", ".join(file.name for file in files))
        spent, ep = table.regen(lambda: cohorts.pop().episodes("numbness"))
        table.add('episodes("numbness")', n, spent, None, note=f"{len(ep):,} episodes")


# ---------------------------------------------------------------------- main --

def versions(table: Table) -> str:
    """regen's, its Python peers' and R's versions (R's packages: "missing" when not installed)."""
    found = [f"regen {regen.__version__}",
             *(f"{package} {version(package)}" for package in ("numpy", "pandas", "lifelines",
                                                               "statsmodels"))]
    if table.use_r:
        try:
            run = subprocess.run(["Rscript", "-e", R_VERSIONS], capture_output=True, text=True,
                                 timeout=120)
            words = run.stdout.split()
            found.append(f"R {words[0]} ({', '.join(' '.join(words[i:i + 2]) for i in (1, 3))})")
        except (subprocess.SubprocessError, IndexError):
            found.append("R version unknown")
    else:
        found.append(f"R {table.r_absent}")
    return ", ".join(found)


def warm_up(only: set[str]) -> None:
    """Imports and first calls of every engine, on small data, untimed."""
    from lifelines import KaplanMeierFitter, WeibullAFTFitter

    ep = episodes(300, seed=0)
    small = ep[["lower", "upper", "age"]].assign(lower=ep["lower"].clip(lower=1e-6))
    for call in (lambda: regen.fit_recovery(FORMULA, ep), lambda: regen.fit_regeneration(ep),
                 lambda: regen.turnbull(ep),
                 lambda: WeibullAFTFitter().fit_interval_censoring(small, "lower", "upper"),
                 lambda: KaplanMeierFitter().fit_interval_censoring(ep["lower"], ep["upper"])):
        timing.quiet(call)()
    if "lmm" in only:
        data = trajectories(50).assign(years=lambda f: f["day"] / 365.25)
        timing.quiet(lambda: regen.fit_trajectory(LMM, data, re_formula="~ years"))()
        timing.quiet(lambda: statsmodels_fit(data, LMM, "years"))()


def render(rows: list[dict], markdown: bool) -> str:
    columns = [c for c in COLUMNS if any(row[c] for row in rows)]
    cells = [columns] + [[row[c] for c in columns] for row in rows]
    left = {"fit", "n", "Python peer", "note"}
    if markdown:                        # a | inside a cell ends it: escaped
        rule = ["---" if c in left else "---:" for c in columns]
        return "\n".join("| " + " | ".join(text.replace("|", "\\|") for text in line) + " |"
                         for line in [cells[0], rule, *cells[1:]])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(text.ljust(w) if c in left else text.rjust(w)
                       for text, w, c in zip(line, widths, columns, strict=True)).rstrip()
             for line in cells]
    return "\n".join([lines[0], "-" * max(map(len, lines)), *lines[1:]])


def main() -> None:
    parser = timing.peer_options(__doc__.splitlines()[0], [1000, 10000, 100000],
                                 size_help="episodes (AFT, kinetics, NPMLE) and patients (LMM)")
    parser.add_argument("--only", nargs="+", choices=FITS, default=list(FITS))
    parser.add_argument("--read-patients", type=int, default=87_500,
                        help="patients of the read_cohort cohort (87,500: about 1M visit rows)")
    parser.add_argument("--peer-limit", type=float, default=60,
                        help="skip a peer at a size where it would take longer (seconds)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    timing.limit_blas(args.blas_threads, __file__)
    began, started = time.perf_counter(), datetime.datetime.now()
    only = set(args.only)
    table = Table(args)
    warm_up(only)
    for size in args.sizes if only & {"aft", "kinetics", "npmle"} else ():
        survival_rows(table, size, only)
    for size in args.sizes if "lmm" in only else ():
        lmm_rows(table, size)
    if "read" in only:
        read_rows(table)

    header = (f"regen against its peers, {started:%Y-%m-%d %H:%M}; {os.cpu_count()} cores, load "
              f"average {os.getloadavg()[0]:.1f} at the end; {versions(table)}; "
              f"{timing.blas_setting()}")
    legend = (f"seconds: CPU (wall), median of {args.repeats}, the fit call only (R: proc.time() "
              "user+sys (elapsed), inside R); ratio: the peer's CPU over regen's (2.3× = regen 2.3× "
              "faster); loglik: each engine's (NPMLE: each curve's under (l, u]), |Δ|: its distance "
              f"to regen's; AFT {FORMULA}, kinetics {KINETICS}, LMM {LMM} + (years | patient_id)")
    print(("\n\n" if args.markdown else "\n").join(
        [header, legend, render(table.rows, args.markdown), *(f"note: {note}" for note in table.notes),
         f"benchmark ran {time.perf_counter() - began:.0f} s"]))

if __name__ == "__main__":
    main()
