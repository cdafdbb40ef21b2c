"""How long does pain relief last, per nerve, and who responds?

Responders per nerve (relieved in days 1-30; non-responders are the relief exclusions
with reason ``no_response``) with Wilson 95% CIs; Turnbull NPMLE curves of the day relief
ends, by nerve, with patient-bootstrap 95% CIs, their quartiles and the share still
relieved at 4, 8, 12 and 16 weeks; a Weibull accelerated-failure-time model of that day
``~ nerve + I((age - 50) / 10) + diabetes + smoker + baseline_pain`` with robust standard
errors over patients (time ratios, forest plot, the model over each nerve's NPMLE) and
its predicted quartiles for a typical patient of each nerve. Nerves with fewer than 10
patients (``--min-patients``) stay in the AFT model but get no NPMLE curve or quartiles.

Times are days after the freeze (relief begins within the response window), among
responders only. Relief ends at the first of ``--confirm`` consecutive unrelieved visits
(default 3; the last visit of the follow-up counts alone; see docs/episodes.md).

Usage: python analyses/relief_duration.py [--data PATH] [--out DIR] [--seed N]
           [--bootstrap N] [--min-patients N] [--threshold 0.5] [--confirm 3]
           [--dist auto]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

import regen
import regen.plot
from regen.episodes import RELIEF_CONFIRM

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scripts' shared helpers
from _shared import (
    MIN_PATIENTS,
    QUARTILES,
    Result,
    at_least,
    ci,
    for_curves,
    forest,
    last_day,
    model_panels,
    new_axes,
    parser,
    quartile_table,
    run,
    share,
    share_table,
    time_ratio_table,
    typical_profiles,
    with_reference,
)

NAME = "relief_duration"
#: What the script writes (checked before the analysis): CSV tables, PNG and SVG figures.
TABLES = ("responders", "npmle_quartiles", "npmle_still_relieved", "aft_time_ratios",
          "aft_predicted_quartiles", "aft_distributions")
FIGURES = ("responders", "relief_by_nerve", "relief_by_nerve_aft", "aft_forest")
FORMULA = "~ nerve + I((age - 50) / 10) + diabetes + smoker + baseline_pain"
COVARIATES = ("age", "diabetes", "smoker", "baseline_pain")
#: Days at which the share still relieved is tabulated (4, 8, 12 and 16 weeks).
DAYS = (28, 56, 84, 112)
#: Nerves with fewer patients get no NPMLE curve or quartiles (they stay in the AFT model).
#: The normal quantile of a two-sided 95% interval.
Z95 = 1.959963984540054


def responders(cohort: regen.Cohort, threshold: float = 0.5,
               confirm: int = RELIEF_CONFIRM) -> pd.DataFrame:
    """Per nerve and overall: treatments, assessed, responders, responder rate (Wilson 95% CI).

    A treatment is assessed for response when it has a relief episode (a responder) or
    is excluded with reason ``no_response``; the other relief exclusions (no baseline
    pain, no pain recorded in the response window, ...) are counted as not assessed.
    """
    episodes, excluded = cohort.episodes("relief", threshold=threshold, confirm=confirm,
                                         with_exclusions=True)
    nerve_of = cohort.treatments.set_index("treatment_id")["nerve"]
    excluded = excluded.assign(nerve=excluded["id"].map(nerve_of))
    no_response = excluded.loc[excluded["reason"] == "no_response"]
    other = excluded.loc[excluded["reason"] != "no_response"]
    table = pd.DataFrame({
        "treatments": cohort.treatments.groupby("nerve").size(),
        "responders": episodes.groupby("nerve").size(),
        "non_responders": no_response.groupby("nerve").size(),
        "not_assessed": other.groupby("nerve").size(),
    }).fillna(0).astype(int)
    table.loc["all"] = table.sum()
    table.insert(1, "assessed", table["responders"] + table["non_responders"])
    rate, low, high = wilson(table["responders"].to_numpy(), table["assessed"].to_numpy())
    table["responder_rate"], table["ci_lower"], table["ci_upper"] = rate, low, high
    return table.rename_axis("nerve").reset_index()


def wilson(successes, trials) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Share and Wilson score 95% interval (NaN where there are no trials)."""
    k, n = np.asarray(successes, dtype="float64"), np.asarray(trials, dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
        half = Z95 / (1 + Z95**2 / n) * np.sqrt(p * (1 - p) / n + Z95**2 / (4 * n**2))
    return p, centre - half, centre + half


def analyse(cohort: regen.Cohort, seed: int = 1, n_bootstrap: int = 200,
            min_patients: int = MIN_PATIENTS,
            threshold: float = 0.5, dist: str = "auto",
            confirm: int = RELIEF_CONFIRM) -> Result:
    """Responders, and every model of how long relief lasts; return tables, figures, summary.

    Parameters
    ----------
    cohort : regen.Cohort
    seed : int
        Seed of the patient bootstraps of the NPMLE intervals; same seed, same numbers.
    n_bootstrap : int
        Bootstrap replicates of the NPMLE intervals.
    min_patients : int
        Nerves with fewer patients are left out of the NPMLE curves and quartiles.
    threshold : float
        Relieved means pain at most (1 - threshold) x baseline (0.5: at least halved).
    dist : str
        Distribution of the AFT model: "auto" (the default), the one of "weibull",
        "lognormal" and "loglogistic" with the lowest AIC; or one of those.
    confirm : int
        Relief ends at the first of this many consecutive unrelieved visits (the last
        visit of the follow-up counts alone); 1: at the first unrelieved visit.
    """
    result = Result()
    result.tables["responders"] = responders(cohort, threshold, confirm)
    episodes = cohort.episodes("relief", threshold=threshold, confirm=confirm)
    curves, small = for_curves(episodes, min_patients)
    npmle = regen.turnbull(curves, by="nerve", n_bootstrap=n_bootstrap, seed=seed,
                           cluster="patient_id", progress=False)
    result.tables["npmle_quartiles"] = quartile_table(npmle)
    result.tables["npmle_still_relieved"] = share_table(npmle, DAYS, "still_relieved")

    coded = with_reference(episodes)
    reference = str(coded["nerve"].cat.categories[0])
    comparison, _ = regen.compare_distributions(FORMULA, episodes, cluster="patient_id")
    result.tables["aft_distributions"] = comparison
    if dist == "auto":
        dist = str(comparison["dist"].iloc[0])
    fit = regen.fit_recovery(FORMULA, coded, dist=dist, cluster="patient_id")
    law = fit.dist_label[0].upper() + fit.dist_label[1:]
    result.models.update(npmle=npmle, aft=fit)
    result.tables["aft_time_ratios"] = time_ratio_table(fit, reference)
    profiles = typical_profiles(episodes, "nerve", COVARIATES)
    predicted = fit.predict_quantile(profiles, q=list(QUARTILES)).drop(columns="std_err_log")
    result.tables["aft_predicted_quartiles"] = predicted.rename(columns={"estimate": "days"})

    with regen.plot.style():  # titles and labels added here in regen's sizes too
        result.figures["responders"] = responder_plot(result.tables["responders"], threshold)
        ax = regen.plot.recovery(npmle, ylabel="Share still relieved", max_day=last_day(curves),
                                 ax=new_axes(7.0, 2.9))
        ax.set_title("Relief by nerve among responders: NPMLE with patient-bootstrap 95% CIs",
                     loc="left")
        result.figures["relief_by_nerve"] = ax.figure
        result.figures["relief_by_nerve_aft"] = model_panels(
            curves, fit, profiles, seed=seed, n_bootstrap=n_bootstrap, ylabel="Share still relieved",
            title=f"Relief by nerve: NPMLE (95% CI) and the {law} AFT for a typical "
            "patient of the nerve")
        result.figures["aft_forest"] = forest(
            fit, reference, title=f"Day relief ends: time ratios ({law} AFT)")

    rates = result.tables["responders"].set_index("nerve")
    quartiles = result.tables["npmle_quartiles"]
    still = result.tables["npmle_still_relieved"].set_index("nerve")
    best = comparison.iloc[0]
    mine = comparison.loc[comparison["dist"] == dist].iloc[0]
    overall = rates.loc["all"]
    result.summary += [
        f"Responders: {overall['responders']:.0f} of {overall['assessed']:.0f} assessed treatments "
        f"({overall['responder_rate']:.0%}, 95% CI {overall['ci_lower']:.0%}–"
        f"{overall['ci_upper']:.0%}); {overall['not_assessed']:.0f} not assessable",
        "Median day relief ends (NPMLE, 95% CI), share still relieved at week 12:",
        *[f"  {row.nerve:<28} {row.median_days:6.1f} ({ci(row, 'median')})  "
          f"{still.loc[row.nerve, 'still_relieved_week12']:.0%} at week 12  n={row.episodes}"
          for row in quartiles.itertuples()],
        *([f"No curve for nerves with fewer than {min_patients} patients: {', '.join(small)}"]
          if small else []),
        f"Best distribution by AIC: {best['dist']}"
        + ("" if best["dist"] == dist else f" ({dist} is {mine['delta_aic']:.1f} AIC units worse;"
           f" rerun without --dist to use {best['dist']})"),
    ]
    return result


def responder_plot(table: pd.DataFrame, threshold: float):
    """Responder rate per nerve and overall, with Wilson 95% CIs and the numbers assessed."""
    ax = new_axes(4.8, 0.8 + 0.24 * len(table))
    colours = regen.plot.colours([n for n in table["nerve"] if n != "all"])
    y = np.arange(len(table))[::-1]
    for yi, row in zip(y, table.itertuples(), strict=True):
        colour = colours.get(row.nerve, "0.15")
        ax.errorbar(row.responder_rate, yi, xerr=[[row.responder_rate - row.ci_lower],
                                                  [row.ci_upper - row.responder_rate]],
                    fmt="D" if row.nerve == "all" else "o", color=colour, markersize=3.5,
                    capsize=2, linewidth=1)
        ax.text(1.02, yi, f"{row.responders}/{row.assessed}", va="center", fontsize=6.5,
                transform=ax.get_yaxis_transform())
    ax.set_yticks(y, [str(n).replace("_", " ") for n in table["nerve"]])
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_xlabel("Responders (Wilson 95% CI); right: responders / assessed")
    ax.spines["left"].set_visible(False)
    ax.tick_params(axis="y", length=0)
    ax.set_title(f"Pain at least {threshold:.0%} lower at a visit in days 1–30", loc="left")
    return ax.figure


def main(argv: list[str] | None = None) -> list[Path]:
    """Run the analysis from the command line; return the files written."""
    p = parser(NAME, __doc__.splitlines()[0], "seed of the bootstraps (default 1)", bootstrap=True)
    p.add_argument("--threshold", type=share, default=0.5,
                   help="relief: share of baseline pain removed (default 0.5)")
    p.add_argument("--confirm", type=at_least(1), default=RELIEF_CONFIRM,
                   help="relief ends at the first of this many consecutive unrelieved visits "
                        f"(the last visit counts alone; default {RELIEF_CONFIRM})")
    p.add_argument("--dist", default="auto",
                   choices=["auto", "weibull", "lognormal", "loglogistic"],
                   help="AFT distribution (default auto: the lowest AIC of the three)")
    args = p.parse_args(argv)
    return run(args, lambda cohort: analyse(cohort, seed=args.seed, n_bootstrap=args.bootstrap,
                                            min_patients=args.min_patients,
                                            threshold=args.threshold, dist=args.dist,
                                            confirm=args.confirm),
               tables=TABLES, figures=FIGURES)


if __name__ == "__main__":
    main()
