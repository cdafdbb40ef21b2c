"""The whole pipeline on about a million visit rows: wall time per step and peak memory.

Simulates ``--patients`` patients (default 87,500: about 11.43 visit rows per
patient with regen.simulate's defaults, so about 1,000,000 visit rows) and writes
them as CSV to a temporary folder; that is timed and printed but is not part of
the target. Then, once, in a fresh process (so that the peak memory is the
pipeline's, not the simulator's), it times

* ``regen.read_cohort`` (read, parse, validate, link),
* ``cohort.episodes("numbness")`` and ``cohort.episodes("relief")``,
* ``regen.turnbull(numbness, by="nerve", n_bootstrap=B, cluster="patient_id")``,
* ``regen.fit_recovery("~ nerve + age + diabetes", numbness, dist="weibull",
  cluster="patient_id")``,
* ``regen.report.relief_report(cohort, out/"report.html", n_bootstrap=B)``
  (which derives its own episodes and bootstraps relief and numbness curves),

with a modest bootstrap, ``B = --bootstrap`` (default 50; the report's own
default is 200), and everything on one core (``n_jobs=1``, the default).
It prints each step's wall time, the total, and the process's peak resident
memory (``ru_maxrss``), and PASS/FAIL against the target: the pipeline in under
60 s and under 4 GB on a 2-core machine. A single run, not a median: one run
takes about a minute, and the peak memory is per process anyway. Figures are
drawn with matplotlib's Agg backend.

Run:  python benchmarks/bench_large.py [--patients 87500] [--bootstrap 50] [--seed 1] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VISITS_PER_PATIENT = 11.43  # regen.simulate defaults (measured: 11.42-11.46)
TARGET_SECONDS = 60.0
TARGET_MB = 4096.0
STEPS = ["regen.read_cohort", "episodes(numbness)", "episodes(relief)",
         "turnbull(by nerve, bootstrap)", "fit_recovery(weibull)", "report.relief_report"]


def peak_mb() -> float:
    """This process's peak resident memory in MB (ru_maxrss is KB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def measure(folder: Path, out: Path, n_bootstrap: int, seed: int) -> dict:
    """Run the pipeline once, in this (fresh) process; wall time of each step."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import regen

    result = {"seconds": {}, "warnings": []}
    seconds = result["seconds"]

    def step(name, function):
        start = time.perf_counter()
        value = function()
        seconds[name] = time.perf_counter() - start
        return value

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cohort = step("regen.read_cohort", lambda: regen.read_cohort(folder))
        numbness = step("episodes(numbness)", lambda: cohort.episodes("numbness"))
        relief = step("episodes(relief)", lambda: cohort.episodes("relief"))
        step("turnbull(by nerve, bootstrap)",
             lambda: regen.turnbull(numbness, by="nerve", n_bootstrap=n_bootstrap,
                                    cluster="patient_id", seed=seed, progress=False))
        step("fit_recovery(weibull)",
             lambda: regen.fit_recovery("~ nerve + age + diabetes", numbness, dist="weibull",
                                        cluster="patient_id"))
        step("report.relief_report",
             lambda: regen.report.relief_report(cohort, out / "report.html",
                                                n_bootstrap=n_bootstrap, progress=False))
    result["warnings"] = sorted({f"{w.category.__name__}: {w.message}"[:200] for w in caught})
    result["visit_rows"] = len(cohort.visits)
    result["treatments"] = len(cohort.treatments)
    result["n_numbness"] = len(numbness)
    result["n_relief"] = len(relief)
    result["peak_rss_mb"] = peak_mb()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=round(1_000_000 / VISITS_PER_PATIENT),
                        help="simulated patients (default: about 1,000,000 visit rows)")
    parser.add_argument("--bootstrap", type=int, default=50,
                        help="bootstrap replicates for turnbull and the report")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true",
                        help="keep the folder with the CSV files and the report")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        result = measure(args.measure, args.measure / "report", args.bootstrap, args.seed)
        print(json.dumps(result))
        return

    import regen

    tmp = Path(tempfile.mkdtemp(prefix="regen_bench_large_"))
    try:
        folder = tmp / "cohort"
        start = time.perf_counter()
        # Dated visits, as clinics export them: days are computed by read_cohort.
        sim = regen.simulate.cohort(args.patients, seed=args.seed)
        simulated = time.perf_counter() - start
        sim.write(folder)
        written = time.perf_counter() - start - simulated
        print(f"simulated {args.patients} patients, {len(sim.treatments)} treatments, "
              f"{len(sim.visits)} visit rows: {simulated:.1f} s, CSV written in {written:.1f} s "
              "(not part of the target)")
        del sim
        env = {**os.environ, "MPLBACKEND": "Agg"}
        run = subprocess.run([sys.executable, __file__, "--measure", str(folder),
                              "--bootstrap", str(args.bootstrap), "--seed", str(args.seed)],
                             capture_output=True, text=True, env=env)
        if run.returncode != 0:
            sys.exit(f"the pipeline failed:\n{run.stderr}")
        result = json.loads(run.stdout.strip().splitlines()[-1])
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{result['visit_rows']} visit rows, {result['treatments']} treatments; "
          f"{result['n_numbness']} numbness and {result['n_relief']} relief episodes; "
          f"bootstrap {args.bootstrap} (patients), one run in a fresh process, n_jobs=1")
    for name in STEPS:
        print(f"  {name:<32}{result['seconds'][name]:8.2f} s")
    total = sum(result["seconds"][name] for name in STEPS)
    print(f"  {'total':<32}{total:8.2f} s")
    peak = result["peak_rss_mb"]
    print(f"  {'peak resident memory':<32}{peak:8.0f} MB")
    for warning in result["warnings"]:
        print(f"  warned: {warning}")
    ok = total < TARGET_SECONDS and peak < TARGET_MB
    print(f"\ntarget: under {TARGET_SECONDS:.0f} s and {TARGET_MB / 1024:.0f} GB on {os.cpu_count()} "
          f"cores -> {'PASS' if ok else 'FAIL'} ({total:.1f} s, {peak / 1024:.2f} GB)")


if __name__ == "__main__":
    main()
