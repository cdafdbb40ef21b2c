"""``regen compare PATH --by nerve``: do the groups' recovery curves differ, and by how much?
Hazard ratios from the interval-censored proportional-hazards model, the generalized
log-rank test, and the curves by group (NPMLE with the model over it)."""

from __future__ import annotations

from pathlib import Path

import click

import regen
from regen.cli.common import (
    OUTCOMES,
    echo,
    force_option,
    path_argument,
    read,
    relief_options,
    user_errors,
    window_options,
)

__all__ = ["compare"]

#: What ``regen compare`` writes into --out.
COMPARE_FILES = ("hazard_ratios.csv", "logrank.csv", "curves.csv", "curves.png", "curves.svg",
                 "ph_model.json")
#: More groups than this are no comparison a figure or a table can show: bin the column first.
MAX_GROUPS = 12


@click.command()
@path_argument
@click.option("--outcome", type=OUTCOMES, default="numbness", show_default=True,
              help="Which episodes to compare.")
@click.option("--by", default="nerve", show_default=True,
              help="The column whose groups are compared (nerve, diabetes, procedure, sex, ...).")
@click.option("--adjust", default=None, metavar="TERMS",
              help='Other covariates of the hazard-ratio model, e.g. "age + diabetes".')
@click.option("--strata", default=None, metavar="COLUMN",
              help="Compare within the levels of this column in the log-rank test (each "
                   "level its own baseline).")
@click.option("--cluster", default="patient_id", show_default=True,
              help="Robust CIs of the hazard ratios and a robust log-rank test over this unit "
                   "(a patient's episodes are not independent); 'none' for model-based ones.")
@click.option("--n-bootstrap", type=click.IntRange(min=0), default=0, show_default=True,
              help="Bootstrap refits (resampling --cluster) for the hazard ratios' CIs instead "
                   "of the robust ones; 0: none.")
@click.option("--permutations", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also a permutation p-value for the log-rank test over this many shuffles.")
@click.option("--seed", type=int, default=2026, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("compare_output"),
              show_default=True, help="Folder for the tables, the model and the figure.")
@relief_options
@window_options
@force_option
@user_errors
def compare(path: Path, outcome: str, by: str, adjust: str | None, strata: str | None,
            cluster: str, n_bootstrap: int, permutations: int, seed: int, out: Path, threshold: float,
            response_window: tuple[int, int], confirm: int, baseline_window_days: int,
            max_follow_up_days: int, force: bool) -> None:
    """Compare the groups of --by: hazard ratios with 95% CIs (semiparametric proportional
    hazards for interval-censored episodes), the generalized log-rank test, and the recovery
    curves by group with the model over them (written to --out)."""
    import pandas as pd

    from regen._terminal import format_comparison
    from regen._write import Outputs

    outputs = Outputs(inputs=[path], force=force)
    outputs.folder(out)
    outputs.files([out / name for name in COMPARE_FILES])
    cohort = read(path, baseline_window_days, max_follow_up_days)
    relief = dict(threshold=threshold, response_window=response_window, confirm=confirm)
    episodes = cohort.episodes(outcome, **(relief if outcome == "relief" else {}))
    _check_groups(episodes, by, strata)
    if pd.api.types.is_bool_dtype(episodes[by]):       # read "no" / "yes", as the report does
        episodes = episodes.assign(**{by: episodes[by].map({False: "no", True: "yes"})})
    formula = f"~ {by}" + (f" + {adjust}" if adjust else "")
    unit = None if cluster.lower() == "none" else cluster
    if unit is not None and unit not in episodes.columns:
        raise click.UsageError(f"--cluster {unit}: no such column in the episodes")
    repeated = bool(episodes["patient_id"].duplicated().any())  # both sides, retreatments
    model = regen.fit_ph(formula, episodes, n_bootstrap=n_bootstrap, seed=seed, cluster=unit)
    test = regen.logrank_test(episodes, by=by, strata=strata, cluster=unit,
                              n_permutations=permutations, seed=seed)
    echo(format_comparison(model, test, outcome))
    if repeated and unit is None:
        echo("  note: patients with several episodes (both sides, retreatments) count once per "
             "episode here, as if independent: the CIs are too narrow and the p-value too "
             "small. Leave out --cluster none to make them robust over patient_id.")
    outputs.write_table(model.summary.reset_index(names="term"), out / "hazard_ratios.csv")
    outputs.write_table(test.table.reset_index().assign(
        statistic=test.statistic, df=test.df, p_value=test.p_value), out / "logrank.csv")
    model.save(out / "ph_model.json", force=force)
    curves = _curves(episodes, by, model, out, outputs)
    outputs.write_table(pd.concat(curves, ignore_index=True), out / "curves.csv")
    echo(f"\nWritten to {out}/: {', '.join(COMPARE_FILES)}")


def _check_groups(episodes, by: str, strata: str | None) -> None:
    for option, column in (("--by", by), ("--strata", strata)):
        if column is not None and column not in episodes.columns:
            raise click.UsageError(f"{option} {column}: no such column in the episodes; "
                                   f"choose one of {', '.join(map(str, episodes.columns))}")
    groups = episodes[by].nunique()
    if groups > MAX_GROUPS:
        raise click.UsageError(f"--by {by} has {groups} values: compare at most {MAX_GROUPS} "
                               "groups (put a number into bands first, or use --adjust for it)")


def _curves(episodes, by: str, model, out: Path, outputs) -> list:
    """The NPMLE by group and the model at each group's typical covariates: a figure and
    the values behind it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from regen import plot

    npmle = regen.turnbull(episodes, by=by)
    groups = npmle.groups
    profiles = model.design.typical_profiles(episodes, by, groups)
    draw = plot.recovery_panels if len(groups) > plot.PANELS_ABOVE else plot.recovery
    drawn = draw(npmle, model, profiles=profiles, ylabel="Still without the event")
    plot.save(drawn, out / "curves", outputs=outputs)
    plt.close(getattr(drawn, "figure", drawn))
    finite = episodes["upper"].replace(np.inf, np.nan)
    times = np.linspace(0, float(np.nanmax(np.r_[finite.to_numpy(), episodes["lower"]])), 100)
    fitted = model.predict_survival(profiles, times)
    return [npmle.survival_at(times).rename(columns={by: "group"}).assign(curve="npmle"),
            fitted.rename(columns={by: "group"})[["group", "time", "estimate", "ci_lower",
                                                    "ci_upper"]]
            .rename(columns={"estimate": "survival"}).assign(curve="proportional_hazards")]
