"""What the analysis scripts share: options, reading the cohort, writing tables and
figures, and the survival tables and figures two of them draw.

The scripts put this folder on ``sys.path`` and import it as ``_shared``; it is not part
of the regen package.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

import regen
import regen.plot
from regen._write import literal, printable  # data's control characters shown, not obeyed
from regen.io import LIMIT_OPTIONS, LIMIT_UNITS

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "example"
QUARTILES = (0.25, 0.5, 0.75)
#: Nerves with fewer patients get no NPMLE curve or quartiles (they stay in the AFT model).
MIN_PATIENTS = 10
RATIO_TICKS = (0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 7, 10, 20)
#: What each covariate's ratio means, and its label in a forest plot.
MEANINGS = {"I((age - 50) / 10)": "per 10 years of age", "diabetes": "diabetes against none",
            "smoker": "smoker against non-smoker", "baseline_pain": "per point of baseline pain"}
LABELS = {"I((age - 50) / 10)": "age, per 10 years", "baseline_pain": "baseline pain, per point"}


class Result:
    """What :func:`analyse` returns: tables and figures by file stem, the fitted models,
    and the summary lines."""

    def __init__(self) -> None:
        self.tables: dict[str, pd.DataFrame] = {}
        #: Self-contained HTML pages by file stem (written as ``<stem>.html``).
        self.pages: dict[str, str] = {}
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
    """Per nerve: episodes, and each quartile (days) with its bootstrap 95% CI, in one row."""
    long = npmle.quantile(list(QUARTILES))
    names = {0.25: "q25", 0.5: "median", 0.75: "q75"}
    wide = []
    for q, part in long.groupby("q"):
        part = part.set_index("nerve")[[c for c in ("time", "time_lower", "time_upper",
                                                    "ci_lower", "ci_upper") if c in part.columns]]
        prefix = names[round(float(q), 2)]
        wide.append(part.rename(columns={"time": f"{prefix}_days",
                                         "time_lower": f"{prefix}_days_lower",
                                         "time_upper": f"{prefix}_days_upper",
                                         "ci_lower": f"{prefix}_ci_lower",
                                         "ci_upper": f"{prefix}_ci_upper"}))
    table = pd.concat(wide, axis=1)
    table.insert(0, "episodes", npmle.n.reindex(table.index).astype(int))
    return table.reset_index()


def share_table(npmle: regen.TurnbullFit, days, label: str) -> pd.DataFrame:
    """Per nerve and day: the share still event-free, the bounds the visits allow (they part
    between visits) and the 95% CI covering them, days as columns."""
    long = npmle.survival_at(list(days))
    table = long.assign(week=(long["time"] / 7).round().astype(int))
    wide = table.pivot(index="nerve", columns="week",
                       values=[c for c in ("survival", "survival_lower", "survival_upper",
                                           "ci_lower", "ci_upper") if c in long.columns])
    wide.columns = [f"{label}_week{week}" if stat == "survival" else f"{label}_week{week}_{stat}"
                    for stat, week in wide.columns]
    ordered = sorted(wide.columns, key=lambda c: (int(c.split("week")[1].split("_")[0]), c))
    return wide[ordered].clip(0, 1).round(4).reset_index()


def time_ratio_table(fit: regen.RecoveryFit, reference: str) -> pd.DataFrame:
    """The AFT's time ratios with 95% CIs and p-values (intercept and scale left out)."""
    effects = fit.effects()
    table = effects.rename(columns={"estimate": "time_ratio"}).rename_axis("term").reset_index()
    table["p_value"] = fit.summary.loc[effects.index, "p_value"].to_numpy()
    table["meaning"] = [f"against {reference}" if term.startswith("nerve[T.")
                        else MEANINGS.get(term, "") for term in table["term"]]
    return table


def forest(fit, reference: str, title: str):
    """The forest plot of the time ratios, nerves named against the reference nerve."""
    terms = fit.effects().index
    ax = regen.plot.forest(fit, ax=new_axes(4.8, 0.7 + 0.24 * len(terms)))
    labels = []
    for term in terms:
        if term.startswith("nerve[T."):
            labels.append(literal(term[len("nerve[T."):-1].replace("_", " ")))
        else:
            labels.append(LABELS.get(term, literal(term.replace("_", " "))))
    ax.set_yticks(ax.get_yticks(), labels)
    ax.set_ylim(-0.6, len(terms) - 0.4)  # keep the last row off the axis
    low, high = ax.get_xlim()
    ax.set_xticks([t for t in RATIO_TICKS if low <= t <= high])
    ax.set_title(f"{title}\nnerves against {literal(reference.replace('_', ' '))}; ratio > 1: "
                 "longer",
                 loc="left", fontsize=8)
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
            top = last_day(part)
            regen.plot.recovery(curve, parametric=fit,
                                profiles=profiles.loc[profiles[by] == group], ax=ax,
                                at_risk=False, legend=False, max_day=top, ylabel="", xlabel="")
            ax.set_xticks(np.arange(0, top + 1, 28 * max(1, round(top / 28 / 4))))
            ax.set_title(literal(str(group).replace("_", " ")), loc="left", fontsize=7.5)
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
                                   label=f"{fit.dist_label[0].upper()}{fit.dist_label[1:]} AFT")],
                   loc="center", frameon=False)
        for ax in list(axes.flat)[len(groups) + 1:]:
            ax.axis("off")
        figure.suptitle(title, x=0.01, ha="left", fontsize=8.5)
    return figure


def new_axes(width: float, height: float):
    import matplotlib.pyplot as plt

    with regen.plot.style():
        _, ax = plt.subplots(figsize=(width, height), layout="constrained")
    return ax


def last_day(episodes: pd.DataFrame) -> float:
    """The last day worth drawing: the 99th centile of the episodes' finite ends."""
    ends = pd.concat([episodes["lower"], episodes["upper"]]).replace(np.inf, np.nan).dropna()
    return float(np.ceil(ends.quantile(0.99) / 28) * 28)


def ci(row, prefix: str) -> str:
    low, high = getattr(row, f"{prefix}_ci_lower", np.nan), getattr(row, f"{prefix}_ci_upper", np.nan)
    return f"{low:.1f}–{high:.1f}" if np.isfinite(low) or np.isfinite(high) else "no CI"


def paths(out: Path, tables, figures, pages=()) -> list[Path]:
    """The files of these table, figure and page stems: CSV tables, PNG and SVG figures,
    HTML pages."""
    return [out / f"{stem}.csv" for stem in tables] + [
        out / f"{stem}.{suffix}" for stem in figures for suffix in ("png", "svg")] + [
        out / f"{stem}.html" for stem in pages]


def write(result: Result, out: Path, outputs: regen.Outputs | None = None,
          planned=()) -> list[Path]:
    """Write the tables as CSV and the figures as PNG and SVG into ``out``; close the figures.

    Every path is checked before anything is written (``outputs`` knows the inputs: never
    one of them, never a file regen did not write unless --force; ``planned``: paths it
    has checked already), then written atomically with formula-safe cells.
    """
    import matplotlib.pyplot as plt

    outputs = outputs if outputs is not None else regen.Outputs()
    tables = {stem: out / f"{stem}.csv" for stem in result.tables}
    outputs.files([p for p in paths(out, result.tables, result.figures, result.pages)
                   if p not in set(planned)])
    written = []
    for stem, table in result.tables.items():
        written.append(outputs.write_table(table, tables[stem], float_format="%.6g"))
    for stem, page in result.pages.items():
        written.append(outputs.write_text(out / f"{stem}.html", page))
    for stem, figure in result.figures.items():
        written += regen.plot.save(figure, out / stem, outputs=outputs)
        plt.close(figure)
    return written


def read(path: Path, limits: regen.ReadLimits | None = None) -> regen.Cohort:
    """The cohort, or every validation problem printed and exit code 1."""
    try:
        return regen.read_cohort(path, limits=limits)
    except regen.CohortValidationError as error:
        print(printable(str(error)), file=sys.stderr)
        raise SystemExit(1) from None


def at_least(low: int) -> Callable[[str], int]:
    """An option type: a whole number of at least ``low`` (argparse reports anything else)."""

    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is below {low}")
        return value

    return whole


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def share(text: str) -> float:
    """An option type: a number strictly between 0 and 1 (a share of the baseline)."""
    value = _number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{value:g} is not between 0 and 1")
    return value


def nonnegative(text: str) -> float:
    """An option type: a finite number of days, at least 0."""
    value = _number(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{value:g} is not a number of days (0 or more)")
    return value


def parser(name: str, description: str, seed_help: str | None,
           bootstrap: bool = False) -> argparse.ArgumentParser:
    """The options every analysis script takes (with ``bootstrap``, also the NPMLE's; no
    ``--seed`` when ``seed_help`` is None: the script draws no random numbers)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", type=Path, default=DATA,
                   help="cohort folder or .xlsx workbook (default: data/example)")
    p.add_argument("--out", type=Path, default=ROOT / "analyses" / "output" / name,
                   help=f"folder for the tables and figures (default: analyses/output/{name}/)")
    if seed_help is not None:
        p.add_argument("--seed", type=int, default=1, help=seed_help)
    p.add_argument("--force", action="store_true",
                   help="replace files in --out that regen did not write (never an input)")
    if bootstrap:
        p.add_argument("--bootstrap", type=at_least(20), default=200,
                       help="patient-bootstrap replicates for the CIs (default 200)")
        p.add_argument("--min-patients", type=at_least(1), default=MIN_PATIENTS,
                       help="nerves with fewer patients get no NPMLE curve "
                            f"(default {MIN_PATIENTS})")
    limits = p.add_argument_group("read limits", "raise them only for files you trust "
                                  "(a refusal names the option to raise)")
    defaults = regen.ReadLimits()
    for field, (unit, what) in LIMIT_UNITS.items():
        limits.add_argument(LIMIT_OPTIONS[field], dest=field, type=at_least(1), default=None,
                            metavar={1: "N", 1_000: "KB", 1_000_000: "MB"}[unit],
                            help=f"{what[:-1]} (default {getattr(defaults, field) // unit:,})")
    return p


def read_limits(args: argparse.Namespace) -> regen.ReadLimits:
    """The read limits the --max-* options set (the defaults for those not given)."""
    return regen.ReadLimits(**{field: getattr(args, field) * unit
                               for field, (unit, _) in LIMIT_UNITS.items()
                               if getattr(args, field, None) is not None})


def run(args: argparse.Namespace, analyse: Callable[[regen.Cohort], Result], *,
        tables=(), figures=(), pages=()) -> list[Path]:
    """Read ``args.data``, analyse it, write into ``args.out``; print the summary and files.

    ``tables`` and ``figures`` are the stems the script writes: they are checked before the
    analysis, so that a file in the way stops the script before the work, not after it.
    """
    import matplotlib

    matplotlib.use("Agg")
    started = time.perf_counter()
    try:
        outputs = regen.Outputs(inputs=[args.data], force=args.force)
        outputs.folder(args.out)  # refused now, before the analysis
        planned = outputs.files(paths(args.out, tables, figures, pages))
        with warnings.catch_warnings():
            warnings.simplefilter("once", regen.RegenWarning)  # show suspicious data, once
            cohort = read(args.data, read_limits(args))
            result = analyse(cohort)
            written = write(result, args.out, outputs, planned)
    except regen.OutputError as error:
        print(f"error: {printable(str(error))}", file=sys.stderr)
        raise SystemExit(2) from None
    print(printable("\n".join(result.summary)))
    print(f"\n{len(written)} files written to {args.out} in {time.perf_counter() - started:.1f} s:")
    print("\n".join(f"  {path.name}" for path in written))
    return written
