"""How do pain and numbness scores change after the freeze, and when do they cross a threshold?

Linear mixed models (``regen.fit_trajectory``, REML, random effects per patient) of the
pain and numbness scores at the visits after the treatment (day >= 1), with a centred
natural cubic spline of day: the fixed effects, the variance components, and the first
day the mean crosses a clinical threshold (numbness below 1; pain back above 80% of
baseline, for low, typical and high baseline pain) with delta-method 95% CIs. A GEE
(``regen.fit_probability``, logit link, exchangeable working correlation) gives the
population share still numb by day with its 95% band, beside the observed shares.

Usage: python analyses/score_trajectories.py [--data PATH] [--out DIR] [--seed N]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

import regen
import regen.plot

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scripts' shared helpers
from _shared import (
    Result,
    new_axes,
    parser,
    run,
)

NAME = "score_trajectories"
#: ``cr(day, df=4)`` sums to 1 and so repeats the intercept: regen refuses it. Centred, it
#: does not. The numbness model has a random intercept only: with a random slope in day
#: the intercept-slope correlation goes to -1 on the example data (a boundary fit), as
#: numbness piles up at 0 once sensation has returned.
SCORES = {
    "pain": dict(formula="pain ~ cr(day, df=4, constraints='center') + baseline_pain",
                 re_formula="~ day", threshold=0.8, direction="above",
                 relative_to="baseline_pain", label="Pain (0–10)",
                 rule="mean pain back above 80% of baseline"),
    "numbness": dict(formula="numbness ~ cr(day, df=4, constraints='center')",
                     re_formula="~ 1", threshold=1.0, direction="below", relative_to=None,
                     label="Numbness (0–10)", rule="mean numbness below 1"),
}
#: What the script writes (checked before the analysis): CSV tables, PNG and SVG figures.
TABLES = ("fixed_effects", "variance_components", "time_to_threshold", "numb_probability",
          "numb_observed_by_day", "gee_fit")
FIGURES = (*(f"{score}_trajectory" for score in SCORES), "numb_probability")
GEE_FORMULA = "numb ~ cr(day, df=4, constraints='center')"
#: Days at which the GEE's share still numb is tabulated.
DAYS = (7, 14, 30, 60, 90, 120, 180, 270, 365)
#: Patients whose own visits are drawn behind each mean trajectory.
PATIENTS_SHOWN = 60
COLOURS = {"pain": "#d55e00", "numbness": "#0173b2"}


def after_treatment(cohort: regen.Cohort, score: str) -> pd.DataFrame:
    """The visits after the treatment (day >= 1) that record ``score``."""
    return cohort.measurements(score).query("day >= 1").reset_index(drop=True)


def recorded(cohort: regen.Cohort, score: str) -> bool:
    """Whether any visit records ``score`` (``numbness`` is an optional column)."""
    return score in cohort.visits.columns and bool(cohort.visits[score].notna().any())


def baseline_profiles(visits: pd.DataFrame, column: str = "baseline_pain") -> dict[str, float]:
    """Low, typical and high baseline: the quartiles over treatments (not over visits)."""
    per_treatment = visits.drop_duplicates("treatment_id")[column].dropna()
    q1, q2, q3 = per_treatment.quantile([0.25, 0.5, 0.75])
    return {"lower quartile": float(q1), "median": float(q2), "upper quartile": float(q3)}


def crossing(fit: regen.TrajectoryFit, score: str, profile: dict, label: str) -> dict:
    """One row of the time-to-threshold table: the first day the mean crosses (delta CI)."""
    spec = SCORES[score]
    found = fit.time_to(spec["threshold"], profile, direction=spec["direction"],
                        relative_to=spec["relative_to"])
    return {"score": score, "rule": spec["rule"], "profile": label,
            **{f"profile_{k}": v for k, v in profile.items()},
            "threshold_level": found["threshold"], "day": found["estimate"],
            "ci_lower": found["ci_lower"], "ci_upper": found["ci_upper"]}


def observed_share(visits: pd.DataFrame, response: str = "numb", bins: int = 12) -> pd.DataFrame:
    """The share of visits with ``response`` in bins of day of about equal size."""
    frame = visits.dropna(subset=[response]).assign(
        _y=lambda f: f[response].astype("float64"),
        _bin=lambda f: pd.qcut(f["day"], bins, duplicates="drop"))
    table = frame.groupby("_bin", observed=True).agg(
        day=("day", "mean"), first_day=("day", "min"), last_day=("day", "max"),
        share=("_y", "mean"), visits=("_y", "size"))
    return table.reset_index(drop=True)


def analyse(cohort: regen.Cohort, seed: int = 1) -> Result:
    """Fit the trajectory models and the GEE; return tables, figures and summary.

    Parameters
    ----------
    cohort : regen.Cohort
    seed : int
        Seed of the patients whose own lines are drawn behind the mean trajectories.
    """
    result = Result()
    fixed, components, crossings = [], [], []
    for score, spec in SCORES.items():
        if not recorded(cohort, score):
            result.summary.append(f"{score}: no visit records this optional score in this "
                                  "cohort, so its trajectory is left out.")
            continue
        visits = after_treatment(cohort, score)
        fit = regen.fit_trajectory(spec["formula"], visits, groups="patient_id",
                                   re_formula=spec["re_formula"])
        result.models[score] = fit
        fixed.append(fit.summary.rename_axis("term").reset_index().assign(score=score))
        components.append(fit.variance_components.assign(score=score))
        if spec["relative_to"]:
            profiles = {label: {spec["relative_to"]: value}
                        for label, value in baseline_profiles(visits, spec["relative_to"]).items()}
        else:
            profiles = {"all": {}}
        rows = [crossing(fit, score, profile, label) for label, profile in profiles.items()]
        crossings += rows
        typical = profiles["median"] if "median" in profiles else profiles["all"]
        row = rows[list(profiles).index("median")] if "median" in profiles else rows[0]
        with regen.plot.style():
            result.figures[f"{score}_trajectory"] = trajectory_plot(fit, visits, typical, row,
                                                                    spec, seed)
    result.tables["fixed_effects"] = _first(pd.concat(fixed, ignore_index=True), "score")
    result.tables["variance_components"] = _first(pd.concat(components, ignore_index=True),
                                                  "score")
    result.tables["time_to_threshold"] = pd.DataFrame(crossings)

    numb = after_treatment(cohort, "numb")
    gee = regen.fit_probability(GEE_FORMULA, numb, groups="patient_id",
                                correlation="exchangeable")
    result.models["gee"] = gee
    last = float(numb["day"].max())
    days = pd.DataFrame({"day": [d for d in DAYS if numb["day"].min() <= d <= last]})
    result.tables["numb_probability"] = gee.predict(days).rename(
        columns={"estimate": "probability"})
    observed = observed_share(numb)
    result.tables["numb_observed_by_day"] = observed
    result.tables["gee_fit"] = pd.DataFrame([{
        "formula": gee.formula, "correlation": gee.correlation,
        "working_correlation": gee.working_correlation, "qic": gee.qic, "visits": gee.n,
        "patients": gee.n_groups}])
    with regen.plot.style():
        result.figures["numb_probability"] = probability_plot(gee, numb, observed)

    table = result.tables["time_to_threshold"]
    result.summary += [
        *[fit_line(result.models[score]) for score in SCORES if score in result.models],
        *[f"  {r.score}: {r.rule} ({r.profile}"
          + (f", baseline {r.profile_baseline_pain:g}" if r.profile != "all" else "")
          + f"): day {r.day:.0f} (95% CI {r.ci_lower:.0f}–{r.ci_upper:.0f})"
          if np.isfinite(r.day) else f"  {r.score}: {r.rule} ({r.profile}): not within follow-up"
          for r in table.itertuples()],
        "Share still numb (GEE, 95% CI): " + ", ".join(
            f"day {r.day:g} {r.probability:.0%} ({r.ci_lower:.0%}–{r.ci_upper:.0%})"
            for r in result.tables["numb_probability"].itertuples() if r.day in (30, 90, 180)),
    ]
    return result


def fit_line(fit: regen.TrajectoryFit) -> str:
    """One line about a trajectory fit: rows, patients, residual SD, boundary if any."""
    boundary = fit.boundary()
    return (f"{fit.response}: {fit.n} visits of {fit.n_groups} patients, random "
            f"{fit.re_formula!r}, residual SD {fit.residual_sd:.2f}"
            + (f"; boundary fit: {boundary}" if boundary else ""))


def trajectory_plot(fit, visits: pd.DataFrame, profile: dict, row: dict, spec: dict, seed: int):
    """Patients' lines, the population mean with its band, the threshold and its crossing."""
    ax = new_axes(4.6, 2.9)
    colour = COLOURS.get(fit.response)
    regen.plot.trajectories(fit, visits, profile=profile or None, ax=ax, seed=seed,
                            n_patients=PATIENTS_SHOWN,
                            ylabel=spec["label"], colour=colour)
    level = row["threshold_level"]
    ax.axhline(level, color="0.2", linestyle="--", linewidth=0.8,
               label=f"threshold {level:g}" + (f" (80% of baseline {profile['baseline_pain']:g})"
                                               if spec["relative_to"] else ""))
    if np.isfinite(row["day"]):
        ax.axvspan(row["ci_lower"], row["ci_upper"], color="0.5", alpha=0.2, linewidth=0,
                   label=f"crossed on day {row['day']:.0f} "
                         f"(95% CI {row['ci_lower']:.0f}–{row['ci_upper']:.0f})")
        ax.axvline(row["day"], color="0.2", linewidth=0.8, linestyle=":")
    shown = min(PATIENTS_SHOWN, int(visits[fit.groups].nunique()))
    ax.plot([], [], color="0.55", linewidth=0.6, label=f"visits of {shown} patients drawn at random")
    ax.set_ylim(-0.3, 10.3)
    top = float(visits["day"].max())
    ax.set_xlim(0, top)
    ax.set_xticks(_day_ticks(top))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=6.5)
    who = (f"baseline pain {profile['baseline_pain']:g}" if spec["relative_to"]
           else "all patients")
    ax.set_title(f"{spec['label'].split(' (')[0]} after the freeze: mixed model, {who}",
                 loc="left")
    return ax.figure


def probability_plot(gee: regen.ProbabilityFit, visits: pd.DataFrame, observed: pd.DataFrame):
    """The GEE's share still numb by day with its 95% band, and the observed shares."""
    ax = new_axes(4.6, 2.9)
    grid = pd.DataFrame({"day": np.linspace(float(visits["day"].min()),
                                            float(visits["day"].max()), 200)})
    predicted = gee.predict(grid)
    ax.fill_between(predicted["day"], predicted["ci_lower"], predicted["ci_upper"],
                    color="#0173b2", alpha=0.25, linewidth=0)
    ax.plot(predicted["day"], predicted["estimate"], color="#0173b2",
            label="GEE: population share (95% CI)")
    ax.scatter(observed["day"], observed["share"], s=observed["visits"] / 12, color="0.2",
               zorder=3, label="observed share of visits (area: visits)")
    ax.set_xlim(0, float(visits["day"].max()))
    ax.set_ylim(0, 1.02)
    ax.set_xticks(_day_ticks(float(visits["day"].max())))
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_xlabel("Days after the freeze")
    ax.set_ylabel("Visits with numbness")
    ax.set_title("Share of visits still numb: GEE, logit link, exchangeable", loc="left")
    ax.legend(loc="upper right")
    return ax.figure


def _day_ticks(top: float) -> np.ndarray:
    """Every 4 weeks up to 7 months, then every 8 or 13 weeks (as regen's recovery figures)."""
    return np.arange(0, top + 1e-9, 28.0 if top <= 210 else 56.0 if top <= 420 else 91.0)


def _first(table: pd.DataFrame, column: str) -> pd.DataFrame:
    return table[[column] + [c for c in table.columns if c != column]]


def main(argv: list[str] | None = None) -> list[Path]:
    """Run the analysis from the command line; return the files written."""
    args = parser(NAME, __doc__.splitlines()[0], "seed of the sample of patients drawn in the "
                  "trajectory figures (default 1)").parse_args(argv)
    return run(args, lambda cohort: analyse(cohort, seed=args.seed),
               tables=TABLES, figures=FIGURES)


if __name__ == "__main__":
    main()
