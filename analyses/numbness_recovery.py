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
           [--bootstrap N] [--min-patients N] [--dist weibull]
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

NAME = "numbness_recovery"
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "example"
OUTPUT = ROOT / "analyses" / "output" / NAME
#: Age centred at 50 and per 10 years: its time ratio reads at a glance, the intercept is a
#: 50-year-old, and Newton starts well conditioned (the same model as ``+ age``).
FORMULA = "~ nerve + I((age - 50) / 10) + diabetes"
QUARTILES = (0.25, 0.5, 0.75)
#: Days at which the share still numb is tabulated (4, 8, 12 and 26 weeks).
DAYS = (28, 56, 84, 182)
CALIBRATION_DAY = 56.0
#: Nerves with fewer patients get no NPMLE curve or quartiles (they stay in the AFT model).
MIN_PATIENTS = 10
RATIO_TICKS = (0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 7, 10, 20)


class Result:
    """What :func:`analyse` returns: tables and figures by file stem, the fitted models,
    and the summary lines."""

    def __init__(self) -> None:
        self.tables: dict[str, pd.DataFrame] = {}
        self.models: dict = {}
        self.figures: dict = {}
        self.summary: list[str] = []


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
    """Per group: episodes, and each quartile (days) with its bootstrap 95% CI, in one row."""
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
    """Per group and day: the share still event-free with its 95% CI, days as columns."""
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
    meanings = {"I((age - 50) / 10)": "per 10 years of age", "diabetes": "diabetes against none"}
    table["meaning"] = [f"against {reference}" if term.startswith("nerve[T.")
                        else meanings.get(term, "") for term in table["term"]]
    return table


def analyse(cohort: regen.Cohort, seed: int = 1, n_bootstrap: int = 200,
            min_patients: int = MIN_PATIENTS,
            dist: str = "weibull") -> Result:
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
        Distribution of the AFT model ("weibull", "lognormal" or "loglogistic").
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
    fit = regen.fit_recovery(FORMULA, coded, dist=dist, cluster="patient_id")
    result.models.update(npmle=npmle, aft=fit)
    result.tables["aft_time_ratios"] = time_ratio_table(fit, reference)
    profiles = typical_profiles(episodes, "nerve", ["age", "diabetes"])
    predicted = fit.predict_quantile(profiles, q=list(QUARTILES)).drop(columns="std_err_log")
    result.tables["aft_predicted_quartiles"] = predicted.rename(columns={"estimate": "days"})

    comparison, _ = regen.compare_distributions(FORMULA, episodes, cluster="patient_id")
    result.tables["aft_distributions"] = comparison

    with regen.plot.style():  # titles and labels added here in regen's sizes too
        ax = regen.plot.recovery(npmle, ylabel="Share still numb", max_day=_last_day(curves),
                                 ax=_new_axes(7.0, 2.9))
        ax.set_title("Numbness by nerve: NPMLE with patient-bootstrap 95% CIs", loc="left")
        result.figures["numbness_by_nerve"] = ax.figure
        result.figures["numbness_by_nerve_aft"] = model_panels(
            curves, fit, profiles, seed=seed, n_bootstrap=n_bootstrap,
            ylabel="Share still numb", title=f"Numbness by nerve: NPMLE (95% CI) and the "
            f"{dist.title()} AFT at the nerve's median age, {_diabetes(profiles)}")
        result.figures["aft_forest"] = forest(
            fit, reference, title=f"Time until numbness fades: time ratios ({dist.title()} AFT)")
        ax = regen.plot.calibration(fit, _complete(episodes, ["age", "diabetes"]),
                                    time=CALIBRATION_DAY, n_bootstrap=n_bootstrap, seed=seed)
        ax.set_xlabel(f"Predicted share still numb at day {CALIBRATION_DAY:g}")
        ax.set_ylabel(f"Observed (NPMLE, 95% CI) at day {CALIBRATION_DAY:g}")
        ax.set_title(f"{dist.title()} AFT, by quarter of predicted risk", loc="left")
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
        *[f"  {row.nerve:<28} {row.median_days:6.1f} ({_ci(row, 'median')})  n={row.episodes}"
          for row in quartiles.itertuples()],
        f"{dist.title()} AFT {FORMULA}: diabetes time ratio "
        + _ratio(result.tables["aft_time_ratios"], "diabetes")
        + ", age per 10 years " + _ratio(result.tables["aft_time_ratios"], "I((age - 50) / 10)"),
        *([f"No curve for nerves with fewer than {min_patients} patients: {', '.join(small)}"]
          if small else []),
        f"Best distribution by AIC: {best['dist']}"
        + ("" if best["dist"] == dist else f" ({dist} is {mine['delta_aic']:.1f} AIC units worse;"
           f" rerun with --dist {best['dist']})"),
        f"Calibration at day {CALIBRATION_DAY:g}: largest |observed - predicted| = "
        f"{(calibration['observed'] - calibration['predicted']).abs().max():.3f}",
    ]
    return result


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
            labels.append({"I((age - 50) / 10)": "age, per 10 years",
                           "diabetes": "diabetes"}.get(term, term))
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


def _diabetes(profiles: pd.DataFrame) -> str:
    return "with diabetes" if bool(profiles["diabetes"].iloc[0]) else "without diabetes"


def _complete(frame: pd.DataFrame, columns) -> pd.DataFrame:
    return frame.dropna(subset=list(columns))


def _last_day(episodes: pd.DataFrame) -> float:
    """The last day worth drawing: the 99th centile of the episodes' finite ends."""
    ends = pd.concat([episodes["lower"], episodes["upper"]]).replace(np.inf, np.nan).dropna()
    return float(np.ceil(ends.quantile(0.99) / 28) * 28)


def _ci(row, prefix: str) -> str:
    low, high = getattr(row, f"{prefix}_ci_lower", np.nan), getattr(row, f"{prefix}_ci_upper", np.nan)
    return f"{low:.1f}–{high:.1f}" if np.isfinite(low) or np.isfinite(high) else "no CI"


def _ratio(table: pd.DataFrame, term: str) -> str:
    row = table.loc[table["term"] == term].iloc[0]
    return f"{row['time_ratio']:.3f} ({row['ci_lower']:.3f}–{row['ci_upper']:.3f})"


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
    p.add_argument("--dist", default="weibull", choices=["weibull", "lognormal", "loglogistic"],
                   help="AFT distribution (default weibull)")
    args = p.parse_args(argv)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("once", regen.RegenWarning)  # show suspicious data, once
        cohort = read(args.data)
        result = analyse(cohort, seed=args.seed, n_bootstrap=args.bootstrap,
                         min_patients=args.min_patients, dist=args.dist)
        written = write(result, args.out)
    print("\n".join(result.summary))
    print(f"\n{len(written)} files written to {args.out} in {time.perf_counter() - started:.1f} s:")
    print("\n".join(f"  {path.name}" for path in written))
    return written


if __name__ == "__main__":
    main()
