"""Per nerve: how many treatments give a numbness or relief episode, and why the rest do not.

The first table of any recovery analysis: it shows what the later models are
fitted to (how many episodes are interval-, left- or right-censored) and what
was left out (by reason), before any estimate is made.

Usage: python analyses/episode_overview.py [COHORT] [--threshold 0.5]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

import regen

OUTPUT = Path(__file__).resolve().parent / "output"


def overview(cohort: regen.Cohort, threshold: float) -> pd.DataFrame:
    """One row per nerve: treatments, episodes by status, responders, exclusions by reason."""
    treatments = cohort.treatments.groupby("nerve").size().rename("treatments")
    numbness, numb_out = cohort.episodes("numbness", with_exclusions=True)
    relief, relief_out = cohort.episodes("relief", threshold=threshold, with_exclusions=True)
    nerve_of = cohort.treatments.set_index("treatment_id")["nerve"]
    status = pd.crosstab(numbness["nerve"], numbness["status"]).add_prefix("numbness_")
    assessed = relief.groupby("nerve").size().add(
        relief_out.loc[relief_out["reason"] == "no_response", "id"].map(nerve_of).value_counts(),
        fill_value=0)
    responders = relief.groupby("nerve").size().rename("responders")
    parts = [treatments, status, responders,
             (responders / assessed).rename("responder_rate").round(3)]
    for outcome, out in (("numbness", numb_out), ("relief", relief_out)):
        reasons = pd.crosstab(out["id"].map(nerve_of), out["reason"])
        parts.append(reasons.add_prefix(f"{outcome}_excluded_"))
    table = pd.concat(parts, axis=1).rename_axis("nerve")
    counts = [c for c in table.columns if c != "responder_rate"]
    table[counts] = table[counts].fillna(0).astype(int)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cohort", nargs="?", default="data/example", type=Path)
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="relief: share of baseline pain removed (default 0.5)")
    args = parser.parse_args()
    cohort = regen.read_cohort(args.cohort)
    OUTPUT.mkdir(exist_ok=True)
    table = overview(cohort, args.threshold)
    table.to_csv(OUTPUT / "episode_overview.csv")
    cohort.exclusions.to_csv(OUTPUT / "exclusions.csv", index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.T.to_string())
    print(f"\nWritten to {OUTPUT}/episode_overview.csv and exclusions.csv")


if __name__ == "__main__":
    main()
