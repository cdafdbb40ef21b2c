"""Episodes from about a million visit rows: time and peak memory.

Simulates a cohort with about ``--rows`` visit rows (regen.simulate), writes it
as CSV, then in a fresh process for each repeat times

* ``pandas.read_csv`` of the three files (the peer: reading without checks),
* ``regen.read_cohort`` (read, parse, validate, link),
* ``cohort.episodes("numbness")`` and ``cohort.episodes("relief")``,
* ``cohort.measurements("pain")``,

and prints the median of the repeats, the ratio of ``read_cohort`` to plain
``read_csv``, and the process's peak resident memory.

Run:  python benchmarks/bench_episodes.py [--rows 1000000] [--repeats 3]
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


def measure(folder: Path) -> dict:
    """Time each step once, in this (fresh) process."""
    import pandas as pd

    import regen

    timings = {}
    start = time.perf_counter()
    for name in ("patients", "treatments", "visits"):
        pd.read_csv(folder / f"{name}.csv")
    timings["pandas.read_csv (peer)"] = time.perf_counter() - start

    start = time.perf_counter()
    cohort = regen.read_cohort(folder)
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
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
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
        runs = []
        for _ in range(args.repeats):
            out = subprocess.run([sys.executable, __file__, "--measure", str(folder)],
                                 check=True, capture_output=True, text=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    steps = ["pandas.read_csv (peer)", "regen.read_cohort", "episodes(numbness)",
             "episodes(relief)", "measurements(pain)"]
    print(f"\n{runs[0]['visit_rows']} visit rows; {runs[0]['n_numbness']} numbness and "
          f"{runs[0]['n_relief']} relief episodes; median of {args.repeats} fresh processes")
    medians = {step: statistics.median(run[step] for run in runs) for step in steps}
    for step in steps:
        print(f"  {step:<26}{medians[step]:8.2f} s")
    both = medians["episodes(numbness)"] + medians["episodes(relief)"]
    label = "both outcomes' episodes"
    print(f"  {label:<26}{both:8.2f} s")
    ratio = medians["regen.read_cohort"] / medians["pandas.read_csv (peer)"]
    print(f"\nread_cohort / plain read_csv: {ratio:.1f}x (validation and linking overhead)")
    print(f"peak resident memory: {statistics.median(run['peak_rss_mb'] for run in runs):.0f} MB")


if __name__ == "__main__":
    main()
