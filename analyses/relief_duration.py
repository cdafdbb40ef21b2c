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
responders only.

Usage: python analyses/relief_duration.py [--data PATH] [--out DIR] [--seed N]
           [--bootstrap N] [--min-patients N] [--threshold 0.5] [--dist weibull]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import regen
import regen.plot

NAME = "relief_duration"
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "example"
OUTPUT = ROOT / "analyses" / "output" / NAME
FORMULA = "~ nerve + I((age - 50) / 10) + diabetes + smoker + baseline_pain"
COVARIATES = ("age", "diabetes", "smoker", "baseline_pain")
QUARTILES = (0.25, 0.5, 0.75)
#: Days at which the share still relieved is tabulated (4, 8, 12 and 16 weeks).
DAYS = (28, 56, 84, 112)
#: Nerves with fewer patients get no NPMLE curve or quartiles (they stay in the AFT model).
MIN_PATIENTS = 10
RATIO_TICKS = (0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 7, 10, 20)
#: The normal quantile of a two-sided 95% interval.
Z95 = 1.959963984540054


class Result:
    """What :func:`analyse` returns: tables and figures by file stem, the fitted models,
    and the summary lines."""

    def __init__(self) -> None:
        self.tables: dict[str, pd.DataFrame] = {}
        self.models: dict = {}
        self.figures: dict = {}
        self.summary: list[str] = []


def responders(cohort: regen.Cohort, threshold: float = 0.5) -> pd.DataFrame:
    """Per nerve and overall: treatments, assessed, responders, responder rate (Wilson 95% CI).

    A treatment is assessed for response when it has a relief episode (a responder) or
    is excluded with reason ``no_response``; the other relief exclusions (no baseline
    pain, no pain recorded in the response window, ...) are counted as not assessed.
    """
    episodes, excluded = cohort.episodes("relief", threshold=threshold, with_exclusions=True)
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


def with_reference(episodes: pd.DataFrame, column: str = "nerve") -> pd.DataFrame:
    """A copy whose ``column`` is categorical with its most common value first.

    The formula then compares every nerve with the most common one (the most precise
    reference) instead of with the first name in alphabetical order.
    """
    order = episodes[column].value_counts().index.tolist()
    return episodes.assign(**{column: pd.Categorical(episodes[column].astype(object),
                                                     categories=order)})


def for_curves(episodes: pd.DataFrame, min_patients: int) -> tuple[pd.DataFrame, list[str]]:
    """The episodes of the nerves with at least ``min_patients`` patients, and the others
    (a curve and a bootstrap interval of a handful of patients say little)."""
    patients = episodes.groupby("nerve")["patient_id"].nunique()
    small = sorted(str(n) for n in patients.index[patients < min_patients])
    if len(small) == len(patients):
        raise regen.ModelError(f"no nerve has {min_patients} patients with an episode; "
                               "lower --min-patients to draw curves")
    return episodes.loc[~episodes["nerve"].isin(small)], small


def typical_profiles(episodes: pd.DataFrame, by: str, covariates) -> pd.DataFrame:
    """One row per group of ``by``: each number at the group's median, each yes/no or
    category at the cohort's most common value."""
    rows = []
    for group, part in episodes.groupby(by, sort=True):
        row = {by: group}
        for name in covariates:
            column = episodes[name]
            if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
                row[name] = float(part[name].median())
            else:
                row[name] = column.mode().iloc[0]
        rows.append(row)
    return pd.DataFrame(rows)


def quartile_table(npmle: regen.TurnbullFit) -> pd.DataFrame:
    """Per nerve: episodes, and each quartile (days) with its bootstrap 95% CI, in one row."""
    long = npmle.quantile(list(QUARTILES))
    names = {0.25: "q25", 0.5: "median", 0.75: "q75"}
    wide = []
    for q, part in long.groupby("q"):
        part = part.set_index("nerve")[[c for c in ("time", "ci_lower", "ci_upper")
                                        if c in part.columns]]
        prefix = names[round(float(q), 2)]
        wide.append(part.rename(columns={"time": f"{prefix}_days",
                                         "ci_lower": f"{prefix}_ci_lower",
                                         "ci_upper": f"{prefix}_ci_upper"}))
    table = pd.concat(wide, axis=1)
    table.insert(0, "episodes", npmle.n.reindex(table.index).astype(int))
    return table.reset_index()


def share_table(npmle: regen.TurnbullFit, days, label: str) -> pd.DataFrame:
    """Per nerve and day: the share still event-free with its 95% CI, days as columns."""
    long = npmle.survival_at(list(days))
    table = long.assign(week=(long["time"] / 7).round().astype(int))
    wide = table.pivot(index="nerve", columns="week",
                       values=[c for c in ("survival", "ci_lower", "ci_upper") if c in long.columns])
    wide.columns = [f"{label}_week{week}" if stat == "survival" else f"{label}_week{week}_{stat}"
                    for stat, week in wide.columns]
    ordered = sorted(wide.columns, key=lambda c: (int(c.split("week")[1].split("_")[0]), c))
    return wide[ordered].clip(0, 1).round(4).reset_index()


def time_ratio_table(fit: regen.RecoveryFit, reference: str) -> pd.DataFrame:
    """The AFT's time ratios with 95% CIs and p-values (intercept and scale left out)."""
    s = fit.summary.drop(index=["Intercept", "log_scale"], errors="ignore")
    table = pd.DataFrame({
        "term": s.index, "time_ratio": s["time_ratio"].to_numpy(),
        "ci_lower": s["time_ratio_ci_lower"].to_numpy(),
        "ci_upper": s["time_ratio_ci_upper"].to_numpy(), "p_value": s["p_value"].to_numpy()})
    table["meaning"] = [f"against {reference}" if term.startswith("nerve[T.")
                        else MEANINGS.get(term, "") for term in table["term"]]
    return table


MEANINGS = {"I((age - 50) / 10)": "per 10 years of age", "diabetes": "diabetes against none",
            "smoker": "smoker against non-smoker", "baseline_pain": "per point of baseline pain"}
LABELS = {"I((age - 50) / 10)": "age, per 10 years", "baseline_pain": "baseline pain, per point"}


def analyse(cohort: regen.Cohort, seed: int = 1, n_bootstrap: int = 200,
            min_patients: int = MIN_PATIENTS,
            threshold: float = 0.5, dist: str = "weibull") -> Result:
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
        Distribution of the AFT model ("weibull", "lognormal" or "loglogistic").
    """
    result = Result()
    result.tables["responders"] = responders(cohort, threshold)
    episodes = cohort.episodes("relief", threshold=threshold)
    curves, small = for_curves(episodes, min_patients)
    npmle = regen.turnbull(curves, by="nerve", n_bootstrap=n_bootstrap, seed=seed,
                           cluster="patient_id", progress=False)
    result.tables["npmle_quartiles"] = quartile_table(npmle)
    result.tables["npmle_still_relieved"] = share_table(npmle, DAYS, "still_relieved")

    coded = with_reference(episodes)
    reference = str(coded["nerve"].cat.categories[0])
    fit = regen.fit_recovery(FORMULA, coded, dist=dist, cluster="patient_id")
    result.models.update(npmle=npmle, aft=fit)
    result.tables["aft_time_ratios"] = time_ratio_table(fit, reference)
    profiles = typical_profiles(episodes, "nerve", COVARIATES)
    predicted = fit.predict_quantile(profiles, q=list(QUARTILES)).drop(columns="std_err_log")
    result.tables["aft_predicted_quartiles"] = predicted.rename(columns={"estimate": "days"})
    comparison, _ = regen.compare_distributions(FORMULA, episodes, cluster="patient_id")
    result.tables["aft_distributions"] = comparison

    with regen.plot.style():  # titles and labels added here in regen's sizes too
        result.figures["responders"] = responder_plot(result.tables["responders"], threshold)
        ax = regen.plot.recovery(npmle, ylabel="Share still relieved", max_day=_last_day(curves),
                                 ax=_new_axes(7.0, 2.9))
        ax.set_title("Relief by nerve among responders: NPMLE with patient-bootstrap 95% CIs",
                     loc="left")
        result.figures["relief_by_nerve"] = ax.figure
        result.figures["relief_by_nerve_aft"] = model_panels(
            curves, fit, profiles, seed=seed, n_bootstrap=n_bootstrap, ylabel="Share still relieved",
            title=f"Relief by nerve: NPMLE (95% CI) and the {dist.title()} AFT for a typical "
            "patient of the nerve")
        result.figures["aft_forest"] = forest(
            fit, reference, title=f"Day relief ends: time ratios ({dist.title()} AFT)")

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
        *[f"  {row.nerve:<28} {row.median_days:6.1f} ({_ci(row, 'median')})  "
          f"{still.loc[row.nerve, 'still_relieved_week12']:.0%} at week 12  n={row.episodes}"
          for row in quartiles.itertuples()],
        *([f"No curve for nerves with fewer than {min_patients} patients: {', '.join(small)}"]
          if small else []),
        f"Best distribution by AIC: {best['dist']}"
        + ("" if best["dist"] == dist else f" ({dist} is {mine['delta_aic']:.1f} AIC units worse;"
           f" rerun with --dist {best['dist']})"),
    ]
    return result


def responder_plot(table: pd.DataFrame, threshold: float):
    """Responder rate per nerve and overall, with Wilson 95% CIs and the numbers assessed."""
    ax = _new_axes(4.8, 0.8 + 0.24 * len(table))
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


def model_panels(episodes: pd.DataFrame, fit, profiles: pd.DataFrame, *, seed: int,
                 n_bootstrap: int, ylabel: str, title: str, by: str = "nerve"):
    """One panel per nerve: its NPMLE with the 95% band and the model's curve, dashed.

    Each nerve gets its own x-axis (up to the 99th centile of its episodes' ends), so
    that short and long recoveries can both be judged against the model.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    groups = sorted(episodes[by].dropna().unique())
    columns = 4 if len(groups) > 4 else len(groups) + 1
    rows = -(-(len(groups) + 1) // columns)
    with regen.plot.style():
        figure, axes = plt.subplots(rows, columns, figsize=(7.2, 1.75 * rows + 0.5),
                                    layout="constrained", squeeze=False)
        for ax, group in zip(axes.flat, groups, strict=False):
            part = episodes.loc[episodes[by] == group]
            curve = regen.turnbull(part, by=by, n_bootstrap=n_bootstrap, seed=seed,
                                   cluster="patient_id", progress=False)
            top = _last_day(part)
            regen.plot.recovery(curve, parametric=fit,
                                profiles=profiles.loc[profiles[by] == group], ax=ax,
                                at_risk=False, legend=False, max_day=top, ylabel="", xlabel="")
            ax.set_xticks(np.arange(0, top + 1, 28 * max(1, round(top / 28 / 4))))
            ax.set_title(str(group).replace("_", " "), loc="left", fontsize=7.5)
            ax.text(0.98, 0.97, f"n={len(part)}", transform=ax.transAxes, ha="right", va="top",
                    fontsize=6.5, color="0.3")
            ax.tick_params(labelsize=6.5)
        for ax in axes[:, 0]:
            ax.set_ylabel(ylabel)
        for ax in axes[-1, :]:
            ax.set_xlabel("Days after the freeze")
        key = axes.flat[len(groups)]
        key.axis("off")
        key.legend(handles=[Line2D([], [], color="0.3", label="NPMLE"),
                            Patch(color="0.3", alpha=0.15, linewidth=0, label="95% CI"),
                            Line2D([], [], color="0.3", linestyle="--", linewidth=0.9,
                                   label=f"{fit.dist.title()} AFT")],
                   loc="center", frameon=False)
        for ax in list(axes.flat)[len(groups) + 1:]:
            ax.axis("off")
        figure.suptitle(title, x=0.01, ha="left", fontsize=8.5)
    return figure


def forest(fit, reference: str, title: str):
    """The forest plot of the time ratios, nerves named against the reference nerve."""
    terms = fit.summary.drop(index=["Intercept", "log_scale"], errors="ignore").index
    ax = regen.plot.forest(fit, ax=_new_axes(4.8, 0.7 + 0.24 * len(terms)))
    labels = []
    for term in terms:
        if term.startswith("nerve[T."):
            labels.append(term[len("nerve[T."):-1].replace("_", " "))
        else:
            labels.append(LABELS.get(term, term.replace("_", " ")))
    ax.set_yticks(ax.get_yticks(), labels)
    ax.set_ylim(-0.6, len(terms) - 0.4)  # keep the last row off the axis
    low, high = ax.get_xlim()
    ax.set_xticks([t for t in RATIO_TICKS if low <= t <= high])
    ax.set_title(f"{title}\nnerves against {reference.replace('_', ' ')}; ratio > 1: longer",
                 loc="left", fontsize=8)
    return ax.figure


def _new_axes(width: float, height: float):
    import matplotlib.pyplot as plt

    with regen.plot.style():
        _, ax = plt.subplots(figsize=(width, height), layout="constrained")
    return ax


def _last_day(episodes: pd.DataFrame) -> float:
    """The last day worth drawing: the 99th centile of the episodes' finite ends."""
    ends = pd.concat([episodes["lower"], episodes["upper"]]).replace(np.inf, np.nan).dropna()
    return float(np.ceil(ends.quantile(0.99) / 28) * 28)


def _ci(row, prefix: str) -> str:
    low, high = getattr(row, f"{prefix}_ci_lower", np.nan), getattr(row, f"{prefix}_ci_upper", np.nan)
    return f"{low:.1f}–{high:.1f}" if np.isfinite(low) or np.isfinite(high) else "no CI"


def write(result: Result, out: Path) -> list[Path]:
    """Write the tables as CSV and the figures as PNG and SVG into ``out``; close the figures."""
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, table in result.tables.items():
        path = out / f"{stem}.csv"
        table.to_csv(path, index=False, float_format="%.6g")
        written.append(path)
    for stem, figure in result.figures.items():
        written += regen.plot.save(figure, out / stem)
        plt.close(figure)
    return written


def parser(description: str, bootstrap: bool = True) -> argparse.ArgumentParser:
    """The options every analysis script takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", type=Path, default=DATA,
                   help="cohort folder or .xlsx workbook (default: data/example)")
    p.add_argument("--out", type=Path, default=OUTPUT,
                   help=f"folder for the tables and figures (default: analyses/output/{NAME}/)")
    p.add_argument("--seed", type=int, default=1, help="seed of the bootstraps (default 1)")
    if bootstrap:
        p.add_argument("--bootstrap", type=int, default=200,
                       help="patient-bootstrap replicates for the CIs (default 200)")
        p.add_argument("--min-patients", type=int, default=MIN_PATIENTS,
                       help="nerves with fewer patients get no NPMLE curve "
                            f"(default {MIN_PATIENTS})")
    return p


def read(path: Path) -> regen.Cohort:
    """The cohort, or every validation problem printed and exit code 1."""
    try:
        return regen.read_cohort(path)
    except regen.CohortValidationError as error:
        print(error, file=sys.stderr)
        raise SystemExit(1) from None


def main(argv: list[str] | None = None) -> list[Path]:
    """Run the analysis from the command line; return the files written."""
    import matplotlib

    matplotlib.use("Agg")
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--threshold", type=float, default=0.5,
                   help="relief: share of baseline pain removed (default 0.5)")
    p.add_argument("--dist", default="weibull", choices=["weibull", "lognormal", "loglogistic"],
                   help="AFT distribution (default weibull)")
    args = p.parse_args(argv)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("once", regen.RegenWarning)  # show suspicious data, once
        cohort = read(args.data)
        result = analyse(cohort, seed=args.seed, n_bootstrap=args.bootstrap,
                         min_patients=args.min_patients,
                         threshold=args.threshold, dist=args.dist)
        written = write(result, args.out)
    print("\n".join(result.summary))
    print(f"\n{len(written)} files written to {args.out} in {time.perf_counter() - started:.1f} s:")
    print("\n".join(f"  {path.name}" for path in written))
    return written


if __name__ == "__main__":
    main()
