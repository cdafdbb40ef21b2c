"""How many patients does the next study need, and when should they be seen?

Plans a study of the diabetes velocity ratio (the regeneration kinetics model on the
numbness episodes) by simulation, with the design taken from a pilot cohort:

- the nerve mix: each nerve's share of the pilot's treatments (nerves the simulator does
  not know are left out, and said so);
- the practice's own visit schedule: the median day of the k-th visit after treatment,
  for k up to the median number of visits a treatment has; compared with each
  ``--schedule`` given (default: every 2-4 weeks to 16 weeks, and 6 and 12 weeks).

For each schedule and each ``--patients`` size, ``--n-sim`` studies are simulated with a
true velocity ratio ``--ratio`` for diabetes (0.8: 20% slower regrowth), the model fitted
to each and the ratio tested at ``--alpha``. It writes the power table (with Monte-Carlo
SEs, bias, RMSE, the median width of the ratio's CI and its coverage), the smallest size
reaching ``--min-power`` for each schedule, the design used, and the power and CI-width
curves.

Usage: python analyses/plan_study.py [COHORT] [--data PATH] [--out DIR] [--ratio 0.8]
           [--patients 100 200 300 400] [--schedule 14,28,56,84,112 ...] [--n-sim N]
           [--min-power 0.8] [--alpha 0.05] [--workers N] [--seed N] [--force]
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import regen
from regen.simulate import NERVE_DISTANCES

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scripts' shared helpers
from _shared import Result, at_least, literal, new_axes, parser, run

NAME = "plan_study"
TABLES = ("power", "min_patients", "design")
FIGURES = ("power_curve", "ci_width_curve")
#: Schedules compared with the pilot's own when none is given (days after treatment).
DEFAULT_SCHEDULES = ((14, 28, 56, 84, 112), (42, 84))
DEFAULT_PATIENTS = (100, 200, 300, 400)


def pilot_design(cohort: regen.Cohort) -> tuple[dict, tuple[int, ...], list[str]]:
    """The nerve mix and the visit schedule of the pilot cohort, and notes on them."""
    treatments, visits = cohort.treatments, cohort.visits
    counts = treatments["nerve"].value_counts()
    known = counts[counts.index.isin(list(NERVE_DISTANCES))]
    notes = []
    if known.empty:
        raise ValueError("none of the pilot's nerves is one the simulator knows "
                         f"({', '.join(NERVE_DISTANCES)})")
    if len(known) < len(counts):
        left = int(counts.sum() - known.sum())
        notes.append(f"{left} treatment(s) of nerves the simulator does not know are left out "
                     "of the nerve mix.")
    mix = {str(nerve): round(float(n / known.sum()), 4) for nerve, n in known.items()}
    after = visits[visits["day"] >= 1].sort_values(["treatment_id", "day"])
    rank = after.groupby("treatment_id").cumcount()
    typical = int(np.median(after.groupby("treatment_id").size()))
    days = after.groupby(rank)["day"].median().iloc[:max(typical, 1)]
    schedule = tuple(sorted({int(round(d)) for d in days}))
    return mix, schedule, notes


def _label(schedule) -> str:
    return "/".join(str(day) for day in schedule)


def analyse(cohort: regen.Cohort, *, ratio: float = 0.8, patients=DEFAULT_PATIENTS,
            schedules=DEFAULT_SCHEDULES, n_sim: int = 200, min_power: float = 0.8,
            alpha: float = 0.05, seed: int = 1, workers: int | None = None,
            client=None) -> Result:
    """Plan the study from the pilot ``cohort`` (see the module docstring)."""
    result = Result()
    mix, own, notes = pilot_design(cohort)
    candidates = [own, *(tuple(s) for s in schedules if tuple(s) != own)]
    design = {"diabetes_velocity_ratio": float(ratio), "nerves": mix, "p_retreat": 0.0,
              "n_patients": int(patients[0])}
    grid = {"n_patients": sorted({int(n) for n in patients}),
            "schedule": [list(s) for s in candidates]}
    planned = regen.plan(design, {"name": "kinetics", "term": "diabetes"}, grid=grid,
                         n_sim=n_sim, seed=seed, alpha=alpha, n_workers=workers, client=client)
    table = planned.table.assign(velocity_ratio=ratio, ci_ratio_width=lambda t: np.exp(
        t["median_ci_width"]))
    result.tables["power"] = table
    found = planned.min_n(min_power)
    largest = max(grid["n_patients"])
    result.tables["min_patients"] = found.assign(
        target_power=min_power, note=[
            "reached" if math.isfinite(n) else f"not reached with {largest} patients"
            for n in found["min_n"]])
    result.tables["design"] = pd.DataFrame(
        [{"setting": "nerve mix (share of treatments)", "value": ", ".join(
            f"{n} {s:.2f}" for n, s in mix.items())},
         {"setting": "the pilot's schedule (days)", "value": _label(own)},
         {"setting": "diabetes velocity ratio", "value": f"{ratio:g}"},
         {"setting": "studies per design point", "value": str(n_sim)},
         {"setting": "alpha", "value": f"{alpha:g}"}, {"setting": "seed", "value": str(seed)}])
    result.figures["power_curve"] = regen.plot.power(
        planned, target=min_power, title=f"Power to detect a velocity ratio of {ratio:g}").figure
    ax = new_axes(3.5, 2.6)
    regen.plot.power(planned, measure="median_ci_width", ax=ax,
                     title="Width of the ratio's CI (log scale)")
    result.figures["ci_width_curve"] = ax.figure
    result.summary += [f"Pilot: {len(cohort.treatments)} treatments; its schedule "
                       f"{_label(own)} days.", *notes,
                       f"Power to detect diabetics' regrowth {100 * (1 - ratio):.0f}% "
                       f"{'slower' if ratio < 1 else 'faster'} (ratio {ratio:g}) at alpha "
                       f"{alpha:g}, {n_sim} simulated studies per design:"]
    for _, row in found.iterrows():
        where = literal(str(row["schedule"]))
        if math.isfinite(row["min_n"]):
            result.summary.append(f"  visits at days {where}: {int(row['min_n'])} patients "
                                  f"(power {row['power_at_n']:.0%} ± {row['power_se']:.0%})")
        else:
            result.summary.append(f"  visits at days {where}: {min_power:.0%} power not reached "
                                  f"with {max(grid['n_patients'])} patients")
    return result


def _schedule(text: str) -> tuple[int, ...]:
    try:
        days = tuple(int(day) for day in text.split(","))
    except ValueError:
        raise ValueError(f"--schedule {text!r}: give days after treatment separated by "
                         "commas, such as 14,28,56,84") from None
    return days


def main(argv: list[str] | None = None) -> list[Path]:
    p = parser(NAME, "Plan a study of the diabetes velocity ratio by simulation, with the "
               "design from a pilot cohort.", seed_help="the plan's seed (default 1)")
    p.add_argument("cohort", nargs="?", type=Path, default=None,
                   help="the pilot cohort (same as --data)")
    p.add_argument("--ratio", type=float, default=0.8,
                   help="the true diabetes velocity ratio to detect (default 0.8)")
    p.add_argument("--patients", type=at_least(2), nargs="+", default=list(DEFAULT_PATIENTS),
                   help="study sizes to compare (default 100 200 300 400)")
    p.add_argument("--schedule", type=_schedule, action="append", default=None,
                   help="a visit schedule to compare with the pilot's, days separated by "
                        "commas; repeat the option for more (default 14,28,56,84,112 and 42,84)")
    p.add_argument("--n-sim", type=at_least(1), default=200,
                   help="simulated studies per design point (default 200)")
    p.add_argument("--min-power", type=float, default=0.8, help="the power to reach (0.8)")
    p.add_argument("--alpha", type=float, default=0.05, help="the test's level (0.05)")
    p.add_argument("--workers", type=at_least(1), default=None,
                   help="worker processes (default one per core)")
    args = p.parse_args(argv)
    if args.cohort is not None:
        args.data = args.cohort
    return run(args, lambda cohort: analyse(
        cohort, ratio=args.ratio, patients=args.patients,
        schedules=args.schedule or DEFAULT_SCHEDULES, n_sim=args.n_sim,
        min_power=args.min_power, alpha=args.alpha, seed=args.seed, workers=args.workers),
        tables=TABLES, figures=FIGURES)


if __name__ == "__main__":
    main()
