"""How fast do the axons regrow after the freeze, after what lag, and what slows them?

Fits the regeneration kinetics ``T = lag + distance_mm / velocity`` to the numbness
episodes (``regen.fit_regeneration``, log-normal velocity, covariates
``~ I((age - 50) / 10) + diabetes + smoker`` so that the reference velocity is that of a
50-year-old without diabetes who does not smoke; robust standard errors over patients):
the velocity (mm/day) and the lag (days, profile-likelihood interval), the velocity
ratios, the AIC against the plain AFT models (fit_recovery's three distributions, with
and without log distance), the lag's profile log-likelihood, a forest plot of the
velocity ratios, and the predicted median day numbness fades by distance.

Usage: python analyses/regeneration_kinetics.py [--data PATH] [--out DIR] [--seed N]
                                                [--lag DAYS] [--velocity-dist lognormal]
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import regen
import regen.plot

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scripts' shared helpers
from _shared import (
    Result,
    new_axes,
    nonnegative,
    parser,
    run,
)

NAME = "regeneration_kinetics"
#: What the script writes (checked before the analysis): CSV tables, PNG and SVG figures.
TABLES = ("kinetics_estimates", "velocity_ratios", "model_comparison", "median_day_by_distance",
          "lag_profile")
FIGURES = ("lag_profile", "velocity_ratios", "median_day_by_distance")
FORMULA = "~ I((age - 50) / 10) + diabetes + smoker"
#: The covariates of the plain AFT models compared by AIC (the same, in the AFT's form).
AFT_FORMULA = "~ I((age - 50) / 10) + diabetes + smoker"
DISTRIBUTIONS = ("weibull", "lognormal", "loglogistic")
LABELS = {"I((age - 50) / 10)": "age, per 10 years", "diabetes": "diabetes", "smoker": "smoker"}
MEANINGS = {"I((age - 50) / 10)": "per 10 years of age", "diabetes": "diabetes against none",
            "smoker": "smoker against non-smoker"}
#: Half the 95% point of chi-squared with 1 df: the profile-likelihood cut-off below the peak.
CUT_95 = 3.841458820694124 / 2
RATIO_TICKS = (0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.1, 1.2, 1.5, 2)
#: Profiles of the distance figure: the reference patient and one change at a time.
PROFILES = {"age 50, no diabetes, non-smoker": {"age": 50.0, "diabetes": False, "smoker": False},
            "age 50, diabetes, non-smoker": {"age": 50.0, "diabetes": True, "smoker": False},
            "age 70, no diabetes, non-smoker": {"age": 70.0, "diabetes": False, "smoker": False}}


def estimates(fit: regen.RegenerationFit) -> pd.DataFrame:
    """Velocity (mm/day, reference patient) and lag (days) with 95% CIs, and the fit's size."""
    velocity, lag = fit.velocity, fit.lag
    rows = [("velocity_mm_per_day", velocity["estimate"], velocity["ci_lower"],
             velocity["ci_upper"], "Wald, robust over patients"),
            ("lag_days", lag["estimate"], lag["ci_lower"], lag["ci_upper"],
             "fixed" if fit.lag_fixed else "profile likelihood"
             + (" (not identified: fix it with --lag)" if fit.lag_flat else "")),
            ("scale", fit.scale, np.nan, np.nan, "SD of log velocity")]
    table = pd.DataFrame(rows, columns=["quantity", "estimate", "ci_lower", "ci_upper", "interval"])
    return table.assign(episodes=fit.n, loglik=fit.loglik, aic=fit.aic)


def ratio_table(fit: regen.RegenerationFit) -> pd.DataFrame:
    """Velocity ratios exp(beta) with 95% CIs; below 1: slower regrowth."""
    table = fit.effects().rename_axis("term").reset_index()
    table["p_value"] = fit.summary.loc[table["term"], "p_value"].to_numpy()
    table["meaning"] = table["term"].map(MEANINGS).fillna("")
    return table


def model_comparison(episodes: pd.DataFrame, fits: dict) -> pd.DataFrame:
    """AIC of the kinetics fits beside fit_recovery's three distributions.

    The plain AFT is fitted twice: with the same covariates (it does not know the
    distances) and with ``log(distance_mm)`` added (it does), so that the kinetics model
    is compared with an AFT that sees the same data.
    """
    rows = []
    for dist, fit in fits.items():
        rows.append(("regeneration kinetics", dist, fit.formula, fit.loglik, fit.aic))
    for formula in (AFT_FORMULA, AFT_FORMULA + " + log(distance_mm)"):
        for dist in DISTRIBUTIONS:
            aft = regen.fit_recovery(formula, episodes, dist=dist, cluster="patient_id")
            rows.append(("AFT (fit_recovery)", dist, formula, aft.loglik, aft.aic))
    table = pd.DataFrame(rows, columns=["model", "dist", "formula", "loglik", "aic"])
    table.insert(4, "n_params", ((table["aic"] + 2 * table["loglik"]) / 2).round().astype(int))
    table = table.sort_values("aic", ignore_index=True)
    table["delta_aic"] = table["aic"] - table["aic"].iloc[0]
    return table


def lag_profile(episodes: pd.DataFrame, fit: regen.RegenerationFit, points: int = 41,
                **options) -> pd.DataFrame:
    """The profile log-likelihood on a fine grid around the lag's interval.

    Each point refits the model with the lag fixed there (``fit_regeneration(lag=...)``):
    its log-likelihood, maximised over everything else, is the profile at that lag.
    """
    lag = fit.lag
    width = max(lag["ci_upper"] - lag["ci_lower"], 2.0)
    first_recovery = float(episodes.loc[np.isfinite(episodes["upper"]), "upper"].min())
    low = max(lag["ci_lower"] - 0.75 * width, 0.0)
    high = min(lag["ci_upper"] + 0.75 * width, first_recovery - 1e-3)
    loglik = []
    grid = np.linspace(low, high, points)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", regen.RegenWarning)  # far lags fit badly, by design
        for value in grid:
            loglik.append(regen.fit_regeneration(episodes, lag=float(value), **options).loglik)
    return pd.DataFrame({"lag": grid, "profile_loglik": loglik})


def by_distance(fit: regen.RegenerationFit, distances) -> pd.DataFrame:
    """Predicted median day numbness fades (95% CI) at each distance, for each profile."""
    parts = []
    for label, profile in PROFILES.items():
        rows = pd.DataFrame({"distance_mm": distances}).assign(**profile)
        parts.append(fit.predict_quantile(rows, q=[0.5]).assign(profile=label))
    table = pd.concat(parts, ignore_index=True)
    return table[["profile", "age", "diabetes", "smoker", "distance_mm", "q", "estimate",
                  "ci_lower", "ci_upper"]].rename(columns={"estimate": "days"})


def analyse(cohort: regen.Cohort, seed: int = 1, lag: float | None = None,
            velocity_dist: str = "lognormal") -> Result:
    """Fit the regeneration kinetics to the numbness episodes; return tables, figures, summary.

    Parameters
    ----------
    cohort : regen.Cohort
    seed : int
        Unused (no random step); kept so that every analysis is called alike.
    lag : float, optional
        Fix the lag (days) instead of estimating it.
    velocity_dist : str
        Law of the velocity ("lognormal", "loglogistic" or "weibull").
    """
    del seed  # nothing random here
    result = Result()
    episodes = cohort.episodes("numbness")
    options = dict(formula=FORMULA, cluster="patient_id")
    fits = {}
    for dist in (velocity_dist, *[d for d in ("lognormal", "loglogistic", "weibull")
                                  if d != velocity_dist]):
        with warnings.catch_warnings():
            if dist != velocity_dist:  # the alternatives only give their AIC
                warnings.simplefilter("ignore", regen.RegenWarning)
            fits[dist] = regen.fit_regeneration(episodes, velocity_dist=dist, lag=lag, **options)
    fit = fits[velocity_dist]
    result.models["kinetics"] = fit
    result.tables["kinetics_estimates"] = estimates(fit)
    result.tables["velocity_ratios"] = ratio_table(fit)
    result.tables["model_comparison"] = model_comparison(episodes, fits)
    # Every fitted distance is covered: the longest nerves are the ones a patient asks about.
    distances = np.linspace(max(5.0, float(episodes["distance_mm"].min())),
                            float(episodes["distance_mm"].max()), 60)
    result.tables["median_day_by_distance"] = by_distance(fit, distances)
    if lag is None:
        fine = lag_profile(episodes, fit, velocity_dist=velocity_dist, **options)
        result.tables["lag_profile"] = fine

    with regen.plot.style():
        if lag is None:
            result.figures["lag_profile"] = profile_plot(fit, result.tables["lag_profile"])
        ax = regen.plot.forest(fit, ax=new_axes(4.2, 0.8 + 0.24 * len(fit.velocity_ratios)))
        ax.set_yticks(ax.get_yticks(), [LABELS.get(t, t) for t in fit.velocity_ratios.index])
        low, high = ax.get_xlim()
        ax.set_xticks([t for t in RATIO_TICKS if low <= t <= high])
        ax.set_ylim(-0.6, len(fit.velocity_ratios) - 0.4)  # keep the last row off the axis
        ax.set_title("Regrowth velocity ratios; below 1: slower", loc="left")
        result.figures["velocity_ratios"] = ax.figure
        result.figures["median_day_by_distance"] = distance_plot(
            result.tables["median_day_by_distance"], episodes, fit)

    velocity, lag_row = fit.velocity, fit.lag
    comparison = result.tables["model_comparison"]
    kinetics_aic = comparison.loc[(comparison["model"] == "regeneration kinetics")
                                  & (comparison["dist"] == velocity_dist), "delta_aic"].iloc[0]
    result.summary += [
        f"{fit.n} numbness episodes with a distance; kinetics model ({velocity_dist} velocity) "
        f"{FORMULA}",
        f"Velocity at age 50, no diabetes, non-smoker: {velocity['estimate']:.2f} mm/day "
        f"(95% CI {velocity['ci_lower']:.2f}–{velocity['ci_upper']:.2f})",
        f"Lag: {lag_row['estimate']:.1f} days"
        + (" (fixed)" if fit.lag_fixed else
           f" (profile 95% CI {lag_row['ci_lower']:.1f}–{lag_row['ci_upper']:.1f})"
           + (" NOT IDENTIFIED: fix it with --lag" if fit.lag_flat else "")),
        "Velocity ratios: " + "; ".join(
            f"{LABELS.get(t, t)} {r.estimate:.3f} ({r.ci_lower:.3f}–{r.ci_upper:.3f})"
            for t, r in fit.velocity_ratios.iterrows()),
        f"Best model by AIC: {comparison.iloc[0]['model']} ({comparison.iloc[0]['dist']}, "
        f"{comparison.iloc[0]['formula']}); this kinetics fit is {kinetics_aic:.1f} AIC units "
        "above it" if kinetics_aic > 0 else
        f"Best model by AIC: this kinetics fit (next: {comparison.iloc[1]['model']}, "
        f"{comparison.iloc[1]['dist']}, {comparison.iloc[1]['delta_aic']:.1f} AIC units worse)",
    ]
    return result


def profile_plot(fit: regen.RegenerationFit, fine: pd.DataFrame):
    """The lag's profile log-likelihood (relative to its peak) with the 95% cut-off."""
    ax = new_axes(3.6, 3.0)
    lag = fit.lag
    evaluated = fit.lag_profile
    peak = max(evaluated["profile_loglik"].max(), fine["profile_loglik"].max())
    shown = evaluated.loc[evaluated["lag"].between(fine["lag"].min(), fine["lag"].max())]
    ax.axvspan(lag["ci_lower"], lag["ci_upper"], color="#0173b2", alpha=0.12, linewidth=0,
               label="95% profile-likelihood CI")
    ax.plot(fine["lag"], fine["profile_loglik"] - peak, color="#0173b2",
            label="profile (lag fixed, refitted)")
    ax.plot(shown["lag"], shown["profile_loglik"] - peak, "o", color="0.2", markersize=2.5,
            label="points the fit evaluated")
    ax.axhline(-CUT_95, color="#d55e00", linestyle="--", linewidth=0.9,
               label=f"95% cut-off (−{CUT_95:.2f})")
    ax.axvline(lag["estimate"], color="0.4", linestyle=":", linewidth=0.9)
    ax.set_ylim(max(-4 * CUT_95, float((fine["profile_loglik"] - peak).min())) - 0.3, 0.5)
    ax.set_xlim(fine["lag"].min(), fine["lag"].max())
    ax.set_xlabel("Lag (days)")
    ax.set_ylabel("Profile log-likelihood − maximum")
    ax.set_title(f"Lag {lag['estimate']:.1f} days (95% CI {lag['ci_lower']:.1f}–"
                 f"{lag['ci_upper']:.1f})", loc="left")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=6.5)
    return ax.figure


def distance_plot(table: pd.DataFrame, episodes: pd.DataFrame, fit: regen.RegenerationFit):
    """Predicted median day numbness fades by distance, with the episodes behind it."""
    ax = new_axes(4.6, 3.6)
    top = float(table["ci_upper"].max()) * 1.15
    finite = episodes.loc[np.isfinite(episodes["upper"])]
    ax.vlines(finite["distance_mm"], finite["lower"], finite["upper"], color="0.6",
              linewidth=0.5, alpha=0.5, label="episodes: numb → not numb (days)")
    censored = episodes.loc[~np.isfinite(episodes["upper"])]
    if len(censored):
        ax.plot(censored["distance_mm"], censored["lower"], "^", color="0.5", markersize=2.5,
                alpha=0.7, label="still numb at the last visit")
    colours = ["#0173b2", "#d55e00", "#029e73"]
    for colour, (label, part) in zip(colours, table.groupby("profile", sort=False), strict=False):
        ax.fill_between(part["distance_mm"], part["ci_lower"], part["ci_upper"], color=colour,
                        alpha=0.2, linewidth=0)
        ax.plot(part["distance_mm"], part["days"], color=colour, label=f"median, {label}")
    ax.set_xlim(0, float(table["distance_mm"].max()))
    ax.set_ylim(0, top)
    ax.set_xlabel("Distance from the freeze to the territory (mm)")
    ax.set_ylabel("Days until numbness fades")
    velocity, lag = fit.velocity["estimate"], fit.lag["estimate"]
    ax.set_title(f"Median day = lag + distance / velocity ({lag:.1f} d, {velocity:.2f} mm/day "
                 "at age 50)", loc="left")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=6.5)
    return ax.figure


def main(argv: list[str] | None = None) -> list[Path]:
    """Run the analysis from the command line; return the files written."""
    p = parser(NAME, __doc__.splitlines()[0],
               "accepted like the other scripts; this analysis draws no random numbers")
    p.add_argument("--lag", type=nonnegative, default=None,
                   help="fix the lag (days) instead of estimating it")
    p.add_argument("--velocity-dist", default="lognormal",
                   choices=["lognormal", "loglogistic", "weibull"],
                   help="law of the velocity (default lognormal)")
    args = p.parse_args(argv)
    return run(args, lambda cohort: analyse(cohort, seed=args.seed, lag=args.lag,
                                            velocity_dist=args.velocity_dist),
               tables=TABLES, figures=FIGURES)


if __name__ == "__main__":
    main()
