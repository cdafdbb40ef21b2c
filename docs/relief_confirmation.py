"""How often one noisy pain score ends a relief episode too early, by ``confirm``.

Simulates cohorts with regen.simulate whose pain scores carry noise that may cross the
relief line (``pain_noise_crosses=True``), takes each through files, validation and
``cohort.episodes("relief", confirm=k)`` for k = 1, 2, 3, and compares every episode of a
true responder with the day its relief truly ended (``sim.events.relief_end_day``, E):

- premature: the episode says relief ended before it did (``upper < E``);
- late: the episode says relief lasted past its end (``lower >= E``);
- holds: the interval holds E (``lower < E <= upper``, or ``lower < E`` when censored);
- median: the Turnbull median day relief ends, over the cohort's episodes, less the
  median of E over the same true responders (mean over cohorts, days).

``--widened`` also judges the alternative regen did not take: the default ``confirm=3``
with each ended episode's upper end moved from the run's first visit to its second (the
end is then not placed before a visit that a misread could explain), with the median
width of the finite intervals.

Run:  python docs/relief_confirmation.py [--cohorts 40] [--patients 300] [--widened]
"""

from __future__ import annotations

import argparse
import tempfile
import warnings

import pandas as pd

import regen

MONTHLY = (30, 60, 90, 120, 150, 180, 240, 300, 365)
FORTNIGHTLY = tuple(range(14, 183, 14)) + (270, 365)
WEEKLY = tuple(range(7, 85, 7)) + (120, 180, 270, 365)
#: name: simulator settings (each also gets pain_noise_crosses=True and a seed).
SCENARIOS = {
    "default visits, baseline 6.5 ± 1.5, noise SD 0.7": {},
    "default visits, baseline 5, noise SD 0.7": {"baseline_pain_mean": 5, "baseline_pain_sd": 0},
    "default visits, baseline 6.5 ± 1.5, noise SD 1.0": {"pain_noise_sd": 1.0},
    "fortnightly visits, baseline 6.5 ± 1.5, noise SD 0.7": {"schedule": FORTNIGHTLY},
    "weekly visits to week 12, baseline 6.5 ± 1.5, noise SD 0.8": {"schedule": WEEKLY,
                                                                 "pain_noise_sd": 0.8},
    "monthly visits, baseline 5, noise SD 1.0": {"schedule": MONTHLY, "baseline_pain_mean": 5,
                                                 "baseline_pain_sd": 0, "pain_noise_sd": 1.0},
}
CONFIRM = (1, 2, 3)
#: The key of the rejected alternative: confirm=3, upper end at the run's second visit.
WIDENED = "3, upper at the run's 2nd visit"


def judge(episodes: pd.DataFrame, events: pd.DataFrame, pain: pd.DataFrame) -> dict:
    """Counts of premature, late and holding intervals among true responders' episodes.

    ``pain`` is ``cohort.measurements("pain")``: the visits the episodes were built from.
    A premature end is split by where the true end lay: at the next visit (the run that
    ended relief began with the last relieved visit misread: one visit early, which no
    ``confirm`` can tell from a true end), after a later visit (relief went on through
    at least one more visit: the ends ``confirm`` is for), or after the last visit
    (follow-up ended during relief and the last visit, misread, counts alone).
    """
    end = episodes["treatment_id"].map(events.set_index("treatment_id")["relief_end_day"])
    true = end.notna().to_numpy()        # episodes of true responders
    visits = pain.loc[pain["day"] >= 1, ["treatment_id", "day"]].sort_values(["treatment_id",
                                                                               "day"])
    visits = visits.assign(next_day=visits.groupby("treatment_id")["day"].shift(-1))
    ep = episodes.loc[true, ["treatment_id", "lower", "upper"]].assign(end=end[true])
    ep = ep.merge(visits.rename(columns={"day": "upper"}).astype({"upper": "float64"}),
                  on=["treatment_id", "upper"], how="left")
    premature = ep["upper"] < ep["end"]
    return {"episodes": len(ep), "premature": int(premature.sum()),
            "one_visit_early": int((premature & (ep["next_day"] >= ep["end"])).sum()),
            "at_last_visit": int((premature & ep["next_day"].isna()).sum()),
            "more_than_one_visit_early": int((premature & (ep["next_day"] < ep["end"])).sum()),
            "late": int((ep["lower"] >= ep["end"]).sum()),
            "holds": int(((ep["lower"] < ep["end"]) & (ep["end"] <= ep["upper"])).sum()),
            "false_responders": int((~true).sum()), "true_median": float(ep["end"].median())}


def to_second_visit(episodes: pd.DataFrame, pain: pd.DataFrame) -> pd.DataFrame:
    """The episodes with each ended one's upper end moved to the next visit with a pain
    score (the run's second visit; a run that closes the follow-up with one visit keeps
    it)."""
    visits = pain.loc[pain["day"] >= 1, ["treatment_id", "day"]].sort_values(["treatment_id",
                                                                               "day"])
    visits = visits.assign(next_day=visits.groupby("treatment_id")["day"].shift(-1))
    out = episodes.merge(visits.rename(columns={"day": "upper"}).astype({"upper": "float64"}),
                         on=["treatment_id", "upper"], how="left")
    moved = out["status"].eq("interval_censored") & out["next_day"].notna()
    out.loc[moved, "upper"] = out.loc[moved, "next_day"].astype("float64")
    return out.drop(columns="next_day")


def one_cohort(settings: dict, n_patients: int, seed: int, confirm=CONFIRM) -> dict:
    """One simulated cohort, through files and validation; the judgement for each k."""
    sim = regen.simulate.cohort(n_patients, seed=seed, pain_noise_crosses=True, **settings)
    out = {}
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore", regen.RegenWarning)
        sim.write(folder, format="parquet")
        cohort = regen.read_cohort(folder)
        pain = cohort.measurements("pain")
        for k in confirm:
            episodes = (to_second_visit(cohort.episodes("relief"), pain) if k == WIDENED
                        else cohort.episodes("relief", confirm=k))
            row = judge(episodes, sim.events, pain)
            median = regen.turnbull(episodes).quantile(0.5)["time"].iloc[0]
            row["median_error"] = float(median) - row.pop("true_median")
            finite = episodes[episodes["upper"] < float("inf")]
            row["median_width"] = float((finite["upper"] - finite["lower"]).median())
            out[k] = row
    return out


def study(settings: dict, n_cohorts: int, n_patients: int, first_seed: int = 0,
          confirm=CONFIRM) -> pd.DataFrame:
    """Totals over ``n_cohorts`` cohorts, one row per k."""
    runs = [one_cohort(settings, n_patients, first_seed + i, confirm) for i in range(n_cohorts)]
    rows = []
    for k in confirm:
        counts = pd.DataFrame([run[k] for run in runs])
        total = counts.drop(columns=["median_error", "median_width"]).sum()
        shares = {name: total[name] / total["episodes"] for name in (
            "premature", "more_than_one_visit_early", "at_last_visit", "one_visit_early",
            "late", "holds")}
        rows.append({"confirm": k, "cohorts": n_cohorts, "episodes": int(total["episodes"]),
                     **shares, "false_responders": int(total["false_responders"]),
                     "median_error_days": counts["median_error"].mean(),
                     "median_width_days": counts["median_width"].mean()})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohorts", type=int, default=40)
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--widened", action="store_true",
                        help="also judge confirm=3 with the upper end at the run's 2nd visit")
    args = parser.parse_args()
    confirm = CONFIRM + (WIDENED,) if args.widened else CONFIRM
    print("| scenario | confirm | episodes | premature: all | more than one visit early "
          "| at the last visit | one visit early | late | interval holds E "
          "| median error, days | median width, days |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, settings in SCENARIOS.items():
        table = study(settings, args.cohorts, args.patients, confirm=confirm)
        for row in table.itertuples():
            print(f"| {name} | {row.confirm} | {row.episodes} | {row.premature:.2%} | "
                  f"{row.more_than_one_visit_early:.2%} | {row.at_last_visit:.2%} | "
                  f"{row.one_visit_early:.2%} | {row.late:.1%} | {row.holds:.1%} | "
                  f"{row.median_error_days:+.1f} | {row.median_width_days:.0f} |")


if __name__ == "__main__":
    main()
