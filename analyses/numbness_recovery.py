"""When does numbness fade after the freeze, by nerve, and what slows it?

Turnbull NPMLE curves by nerve with patient-bootstrap 95% CIs, their quartiles and the
share still numb at 4, 8, 12 and 26 weeks; a Weibull accelerated-failure-time model
``~ nerve + I((age - 50) / 10) + diabetes`` with robust standard errors over patients (time
ratios against the most common nerve, a forest plot, the model's curves over each
nerve's NPMLE); the three AFT distributions compared by AIC; and the model's
calibration at day 56.

Nerves with fewer than 10 patients (``--min-patients``) stay in the AFT model but get no
NPMLE curve or quartiles.

Usage: python analyses/numbness_recovery.py [--data PATH] [--out DIR] [--seed N]
           [--bootstrap N] [--min-patients N] [--dist auto]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

import regen
import regen.plot

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scripts' shared helpers
from _shared import (
    MIN_PATIENTS,
    QUARTILES,
    Result,
    ci,
    for_curves,
    forest,
    last_day,
    model_panels,
    new_axes,
    parser,
    quartile_table,
    run,
    share_table,
    time_ratio_table,
    typical_profiles,
    with_reference,
)

NAME = "numbness_recovery"
#: What the script writes (checked before the analysis): CSV tables, PNG and SVG figures.
TABLES = ("npmle_quartiles", "npmle_still_numb", "aft_time_ratios", "aft_predicted_quartiles",
          "aft_distributions", "aft_calibration_day56")
FIGURES = ("numbness_by_nerve", "numbness_by_nerve_aft", "aft_forest", "aft_calibration_day56")
#: Age centred at 50 and per 10 years: its time ratio reads at a glance, the intercept is a
#: 50-year-old, and Newton starts well conditioned (the same model as ``+ age``).
FORMULA = "~ nerve + I((age - 50) / 10) + diabetes"
#: Days at which the share still numb is tabulated (4, 8, 12 and 26 weeks).
DAYS = (28, 56, 84, 182)
CALIBRATION_DAY = 56.0
#: Nerves with fewer patients get no NPMLE curve or quartiles (they stay in the AFT model).


def analyse(cohort: regen.Cohort, seed: int = 1, n_bootstrap: int = 200,
            min_patients: int = MIN_PATIENTS,
            dist: str = "auto") -> Result:
    """Fit every model of the time until numbness fades; return tables, figures, summary.

    Parameters
    ----------
    cohort : regen.Cohort
    seed : int
        Seed of the patient bootstraps (NPMLE CIs and calibration); same seed, same numbers.
    n_bootstrap : int
        Bootstrap replicates of the NPMLE intervals.
    min_patients : int
        Nerves with fewer patients are left out of the NPMLE curves and quartiles.
    dist : str
        Distribution of the AFT model: "auto" (the default), the one of "weibull",
        "lognormal" and "loglogistic" with the lowest AIC; or one of those.
    """
    result = Result()
    episodes = cohort.episodes("numbness")
    curves, small = for_curves(episodes, min_patients)
    npmle = regen.turnbull(curves, by="nerve", n_bootstrap=n_bootstrap, seed=seed,
                           cluster="patient_id", progress=False)
    result.tables["npmle_quartiles"] = quartile_table(npmle)
    result.tables["npmle_still_numb"] = share_table(npmle, DAYS, "still_numb")

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
    profiles = typical_profiles(episodes, "nerve", ["age", "diabetes"])
    predicted = fit.predict_quantile(profiles, q=list(QUARTILES)).drop(columns="std_err_log")
    result.tables["aft_predicted_quartiles"] = predicted.rename(columns={"estimate": "days"})


    with regen.plot.style():  # titles and labels added here in regen's sizes too
        ax = regen.plot.recovery(npmle, ylabel="Share still numb", max_day=last_day(curves),
                                 ax=new_axes(7.0, 2.9))
        ax.set_title("Numbness by nerve: NPMLE with patient-bootstrap 95% CIs", loc="left")
        result.figures["numbness_by_nerve"] = ax.figure
        result.figures["numbness_by_nerve_aft"] = model_panels(
            curves, fit, profiles, seed=seed, n_bootstrap=n_bootstrap,
            ylabel="Share still numb", title=f"Numbness by nerve: NPMLE (95% CI) and the "
            f"{law} AFT at the nerve's median age, {_diabetes(profiles)}")
        result.figures["aft_forest"] = forest(
            fit, reference, title=f"Time until numbness fades: time ratios ({law} AFT)")
        ax = regen.plot.calibration(fit, _complete(episodes, ["age", "diabetes"]),
                                    time=CALIBRATION_DAY, n_bootstrap=n_bootstrap, seed=seed)
        ax.set_xlabel(f"Predicted share still numb at day {CALIBRATION_DAY:g}")
        ax.set_ylabel(f"Observed (NPMLE, 95% CI) at day {CALIBRATION_DAY:g}")
        ax.set_title(f"{law} AFT, by quarter of predicted risk", loc="left")
        result.figures["aft_calibration_day56"] = ax.figure
    calibration = ax.calibration_table.rename(columns={"_risk": "risk_group"})
    result.tables["aft_calibration_day56"] = calibration

    quartiles = result.tables["npmle_quartiles"]
    best = comparison.iloc[0]
    mine = comparison.loc[comparison["dist"] == dist].iloc[0]
    result.summary += [
        f"{len(episodes)} numbness episodes: "
        + ", ".join(f"{n} {s.replace('_', '-')}" for s, n in
                    episodes["status"].value_counts().items()),
        "Median days until numbness fades (NPMLE, 95% CI):",
        *[f"  {row.nerve:<28} {row.median_days:6.1f} ({ci(row, 'median')})  n={row.episodes}"
          for row in quartiles.itertuples()],
        f"{law} AFT {FORMULA}: diabetes time ratio "
        + _ratio(result.tables["aft_time_ratios"], "diabetes")
        + ", age per 10 years " + _ratio(result.tables["aft_time_ratios"], "I((age - 50) / 10)"),
        *([f"No curve for nerves with fewer than {min_patients} patients: {', '.join(small)}"]
          if small else []),
        f"Best distribution by AIC: {best['dist']}"
        + ("" if best["dist"] == dist else f" ({dist} is {mine['delta_aic']:.1f} AIC units worse;"
           f" rerun without --dist to use {best['dist']})"),
        f"Calibration at day {CALIBRATION_DAY:g}: largest |observed - predicted| = "
        f"{(calibration['observed'] - calibration['predicted']).abs().max():.3f}",
    ]
    return result


def _diabetes(profiles: pd.DataFrame) -> str:
    return "with diabetes" if bool(profiles["diabetes"].iloc[0]) else "without diabetes"


def _complete(frame: pd.DataFrame, columns) -> pd.DataFrame:
    return frame.dropna(subset=list(columns))


def _ratio(table: pd.DataFrame, term: str) -> str:
    row = table.loc[table["term"] == term].iloc[0]
    return f"{row['time_ratio']:.3f} ({row['ci_lower']:.3f}–{row['ci_upper']:.3f})"


def main(argv: list[str] | None = None) -> list[Path]:
    """Run the analysis from the command line; return the files written."""
    p = parser(NAME, __doc__.splitlines()[0], "seed of the bootstraps (default 1)", bootstrap=True)
    p.add_argument("--dist", default="auto",
                   choices=["auto", "weibull", "lognormal", "loglogistic"],
                   help="AFT distribution (default auto: the lowest AIC of the three)")
    args = p.parse_args(argv)
    return run(args, lambda cohort: analyse(cohort, seed=args.seed, n_bootstrap=args.bootstrap,
                                            min_patients=args.min_patients, dist=args.dist),
               tables=TABLES, figures=FIGURES)


if __name__ == "__main__":
    main()
