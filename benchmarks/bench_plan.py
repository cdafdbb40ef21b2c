"""Study planning on dask: 1,000 simulated studies of 300 patients, each fitted with the
regeneration kinetics model, on a LocalCluster of 1 and of 2 worker processes.

It prints the wall time of each (the simulations; starting the cluster apart), the
speed-up from 1 to 2 workers, the share of the workers' time spent simulating (what task
overhead and the last chunks' idling leave), and checks that both runs gave the same
studies bit for bit.

    .venv/bin/python benchmarks/bench_plan.py [--n-sim 1000] [--patients 300]
"""

from __future__ import annotations

import argparse
import os
import time

import regen

DESIGN = {"diabetes_velocity_ratio": 0.8, "p_retreat": 0.0,
          "schedule": [14, 28, 56, 84, 112], "jitter_days": 3, "p_missed": 0.1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-sim", type=int, default=1000)
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    design = {**DESIGN, "n_patients": args.patients}
    print(f"regen {regen.__version__}: {args.n_sim} studies x {args.patients} patients, "
          f"kinetics analysis (diabetes velocity ratio 0.8), {os.cpu_count()} cores")
    runs = {}
    for workers in args.workers:
        started = time.perf_counter()
        result = regen.plan(design, "kinetics", n_sim=args.n_sim, seed=1, n_workers=workers,
                            progress=False)
        total = time.perf_counter() - started
        info = result.info
        runs[workers] = result
        print(f"  {workers} worker(s): {info.wall_seconds:6.1f} s simulating "
              f"({total:.1f} s with the cluster's start and stop), "
              f"{1000 * info.compute_seconds / args.n_sim:.0f} ms CPU per study, "
              f"workers busy {info.efficiency:.0%}; power "
              f"{result.table.loc[0, 'power']:.3f}")
    if len(runs) > 1:
        first, *others = sorted(runs)
        for workers in others:
            ratio = runs[first].info.wall_seconds / runs[workers].info.wall_seconds
            same = runs[first].simulations.drop(columns="seconds").equals(
                runs[workers].simulations.drop(columns="seconds"))
            print(f"  speed-up {first} -> {workers} workers: {ratio:.2f}x "
                  f"(ideal {workers / first:.0f}x); identical studies: {same}")


if __name__ == "__main__":
    main()
