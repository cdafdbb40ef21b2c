"""Per nerve: how many treatments give a numbness or relief episode, and why the rest do not.

The first table of any recovery analysis: it shows what the later models are
fitted to (how many episodes are interval-, left- or right-censored) and what
was left out (by reason), before any estimate is made.

Usage: python analyses/episode_overview.py [COHORT] [--data PATH] [--out DIR]
           [--threshold 0.5] [--force]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

import regen

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scripts' shared helpers
from _shared import Result, parser, run, share

NAME = "episode_overview"
#: What the script writes (checked before the analysis): CSV tables, PNG and SVG figures.
TABLES = ("episode_overview", "exclusions")
FIGURES = ()


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


def analyse(cohort: regen.Cohort, threshold: float = 0.5) -> Result:
    """The overview table and every exclusion, with the overview as the summary."""
    result = Result()
    table = overview(cohort, threshold)
    result.tables = {"episode_overview": table.reset_index(), "exclusions": cohort.exclusions}
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        result.summary = [table.T.to_string()]
    return result


def main(argv: list[str] | None = None) -> list[Path]:
    """Run the overview from the command line; return the files written."""
    p = parser(NAME, __doc__.splitlines()[0], seed_help=None)
    p.add_argument("cohort", nargs="?", type=Path, default=None,
                   help="the cohort folder or .xlsx workbook (same as --data)")
    p.add_argument("--threshold", type=share, default=0.5,
                   help="relief: share of baseline pain removed (default 0.5)")
    args = p.parse_args(argv)
    if args.cohort is not None:
        args.data = args.cohort
    return run(args, lambda cohort: analyse(cohort, threshold=args.threshold),
               tables=TABLES, figures=FIGURES)


if __name__ == "__main__":
    main()
