"""Episodes from about a million visit rows: time and peak memory.

Simulates a cohort with about ``--rows`` visit rows (regen.simulate), writes it
as CSV, then in a fresh process for each repeat times

* ``pandas.read_csv`` of the visits file alone and of the three files (the peer:
  reading without checks),
* ``regen.read_cohort`` (read, parse, validate, link), once its module is imported
  (the import, once per process, is timed on its own line),
* ``cohort.episodes("numbness")`` and ``cohort.episodes("relief")``,
* ``cohort.measurements("pain")``,

and prints the median of the repeats, the ratio of ``read_cohort`` to plain
``read_csv`` (of the visits file, and of the three files), the process's peak
resident memory, and each against its target (issue 18: ``read_cohort`` in at most
1.5 s and 10x plain ``read_csv`` of the visits file, ``episodes("numbness")`` in at
most 0.3 s, at a million visit rows).

Run:  python benchmarks/bench_episodes.py [--rows 1000000] [--repeats 3] [--folder DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VISITS_PER_PATIENT = 11.4  # regen.simulate defaults: ~1.5 treatments x ~7.6 visits
TARGET_READ_SECONDS, TARGET_READ_RATIO, TARGET_EPISODES_SECONDS = 1.5, 10.0, 0.3


def measure(folder: Path) -> dict:
    """Time each step once, in this (fresh) process."""
    import pandas as pd

    import regen

    timings = {}
    start = time.perf_counter()
    pd.read_csv(folder / "visits.csv")
    timings["pandas.read_csv visits"] = time.perf_counter() - start
    start = time.perf_counter()
    for name in ("patients", "treatments", "visits"):
        pd.read_csv(folder / f"{name}.csv")
    timings["pandas.read_csv (peer)"] = time.perf_counter() - start

    start = time.perf_counter()
    read_cohort = regen.read_cohort   # imports regen.cohort, once per process
    timings["import regen.cohort"] = time.perf_counter() - start
    start = time.perf_counter()
    cohort = read_cohort(folder)
    timings["regen.read_cohort"] = time.perf_counter() - start
    for outcome in ("numbness", "relief"):
        start = time.perf_counter()
        episodes = cohort.episodes(outcome)
        timings[f"episodes({outcome})"] = time.perf_counter() - start
        timings[f"n_{outcome}"] = len(episodes)
    start = time.perf_counter()
    cohort.measurements("pain")
    timings["measurements(pain)"] = time.perf_counter() - start
    timings["visit_rows"] = len(cohort.visits)
    timings["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="visit rows (approximate)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--folder", type=Path,
                        help="a cohort folder written before (by regen.simulate), to time again "
                             "without simulating")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    if args.folder:
        report(args.folder, args.repeats)
        return

    import regen

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cohort"
        n_patients = max(1, round(args.rows / VISITS_PER_PATIENT))
        start = time.perf_counter()
        # Dated visits, as clinics export them (and as data/example is): days are computed.
        sim = regen.simulate.cohort(n_patients, seed=args.seed, time_columns=("visit_date",))
        sim.write(folder)
        print(f"simulated {n_patients} patients, {len(sim.treatments)} treatments, "
              f"{len(sim.visits)} visit rows in {time.perf_counter() - start:.1f} s (not timed below)")
        del sim
        report(folder, args.repeats)


def report(folder: Path, repeats: int) -> None:
    """Time the steps in ``repeats`` fresh processes; print the medians against the targets."""
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, __file__, "--measure", str(folder)],
                             check=True, capture_output=True, text=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    steps = ["pandas.read_csv visits", "pandas.read_csv (peer)", "import regen.cohort",
             "regen.read_cohort", "episodes(numbness)", "episodes(relief)", "measurements(pain)"]
    print(f"\n{runs[0]['visit_rows']} visit rows; {runs[0]['n_numbness']} numbness and "
          f"{runs[0]['n_relief']} relief episodes; median of {repeats} fresh processes")
    medians = {step: statistics.median(run[step] for run in runs) for step in steps}
    for step in steps:
        print(f"  {step:<26}{medians[step]:8.2f} s")
    both = medians["episodes(numbness)"] + medians["episodes(relief)"]
    label = "both outcomes' episodes"
    print(f"  {label:<26}{both:8.2f} s")
    read = medians["regen.read_cohort"]
    ratio = read / medians["pandas.read_csv visits"]
    print(f"\nread_cohort / plain read_csv of the visits file: {ratio:.1f}x; of the three files: "
          f"{read / medians['pandas.read_csv (peer)']:.1f}x (validation and linking overhead)")
    print(f"peak resident memory: {statistics.median(run['peak_rss_mb'] for run in runs):.0f} MB")
    numbness = medians["episodes(numbness)"]
    for what, ok in ((f"read_cohort {read:.2f} s <= {TARGET_READ_SECONDS} s",
                      read <= TARGET_READ_SECONDS),
                     (f"read_cohort {ratio:.1f}x <= {TARGET_READ_RATIO:.0f}x read_csv",
                      ratio <= TARGET_READ_RATIO),
                     (f"episodes(numbness) {numbness:.2f} s <= {TARGET_EPISODES_SECONDS} s",
                      numbness <= TARGET_EPISODES_SECONDS)):
        print(f"target: {what}: {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
