"""``regen fit MODEL PATH``: one subcommand per model (recovery, regeneration, trajectory,
probability), each with only its own options, and what each prints."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

import regen
from regen.cli.common import (
    OUTCOMES,
    check_suffix,
    echo,
    force_option,
    path_argument,
    read,
    relief_options,
    user_errors,
    window_options,
)
from regen.defaults import DISTRIBUTION_NAMES

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Crossing", "FitGroup", "fit", "print_trajectory", "profiles_for"]


class FitGroup(click.Group):
    """``regen fit MODEL PATH``. The form of earlier releases, ``regen fit PATH [--model
    MODEL]``, still works for now: it is rewritten to the new one, with a note saying so."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = list(args)
            model = "recovery"
            for i, arg in enumerate(args):
                if arg == "--model" and i + 1 < len(args):
                    model = args[i + 1]
                    del args[i:i + 2]
                    break
                if arg.startswith("--model="):
                    model = arg.partition("=")[2]
                    del args[i]
                    break
            echo(f"note: `regen fit PATH --model {model}` is now `regen fit {model} PATH`; "
                  "the old form will be removed in a later release.", err=True)
            args = [model, *args]
        return super().parse_args(ctx, args)

@click.group(cls=FitGroup)
def fit() -> None:
    """Fit a model to the cohort in PATH: regen fit MODEL PATH [OPTIONS].

    \b
    recovery      time to the event (numbness fading, relief ending): AFT model
    regeneration  numbness: T = lag + distance / velocity (needs distance_mm)
    trajectory    a visit score over time: linear mixed model
    probability   a yes/no visit score over time: GEE logistic model

    `regen fit MODEL --help` lists each model's options.
    """

_at_option = click.option(
    "--at", "settings", multiple=True, metavar="NAME=VALUE",
    help="Covariate value for the predictions, e.g. --at age=60 --at diabetes=yes; others "
         "are set to the cohort's median or most common value.")

def _fit_output_options(command):
    """--json, --save, --force and the reading options, shared by every model."""
    for option in reversed([
        click.option("--json", "as_json", is_flag=True, help="Print the results as JSON."),
        click.option("--save", "save_to", type=click.Path(path_type=Path),
                     help="Write the fitted model to this JSON file."),
        window_options, force_option, user_errors]):
        command = option(command)
    return command

def _prepare(path: Path, save_to: Path | None, force: bool, baseline_window_days: int,
             max_follow_up_days: int) -> regen.Cohort:
    """Check --save before any work, then read the cohort."""
    from regen._write import Outputs

    if save_to:
        check_suffix(Outputs(inputs=[path], force=force).file(save_to), (".json",), "--save")
    return read(path, baseline_window_days, max_follow_up_days)

def _robust_over(cluster: str) -> str | None:
    return None if cluster.lower() == "none" else cluster

_cluster_option = click.option(
    "--cluster", default="patient_id", show_default=True,
    help="Robust standard errors over this unit; 'none' for model-based ones.")

@fit.command("recovery")
@path_argument
@click.option("--outcome", type=OUTCOMES, default="numbness", show_default=True,
              help="Which episodes to model.")
@click.option("--formula", default="~ nerve", show_default=True,
              help='Covariates, e.g. "~ nerve + age + diabetes".')
@click.option("--dist", type=click.Choice(["auto", *DISTRIBUTION_NAMES]), default="auto",
              show_default=True,
              help="Law of the time to the event; auto: the one of the three with the lowest "
                   "AIC (the table is printed).")
@_cluster_option
@click.option("--frailty", default=None, metavar="COLUMN",
              help="A patient effect shared by each patient's episodes (e.g. patient_id): "
                   "how much patients differ, and a model that `regen predict --history` "
                   "can learn from (docs/frailty.md). Replaces --cluster.")
@relief_options
@_at_option
@_fit_output_options
def fit_recovery(path: Path, outcome: str, formula: str, dist: str, cluster: str,
                 frailty: str | None,
                 threshold: float, response_window: tuple[int, int], confirm: int,
                 settings: tuple[str, ...], as_json: bool, save_to: Path | None,
                 baseline_window_days: int, max_follow_up_days: int, force: bool) -> None:
    """An accelerated-failure-time model of the time to the event.

    Prints the time ratios with 95% CIs and each nerve's predicted median and
    quartiles (covariates at --at values, else typical ones).
    """
    from regen._terminal import format_fit, strict_json

    context = click.get_current_context()
    for name in ("threshold", "response_window", "confirm"):
        if context.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE and \
                outcome != "relief":
            raise click.UsageError(f"--{name.replace('_', '-')} applies to relief episodes: "
                                   "add --outcome relief")
    if frailty is not None:
        if context.get_parameter_source("cluster") == click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError("--frailty models the likeness of a patient's episodes; "
                                   "give it without --cluster")
        cluster = "none"
    cohort = _prepare(path, save_to, force, baseline_window_days, max_follow_up_days)
    relief = dict(threshold=threshold, response_window=response_window, confirm=confirm)
    episodes = cohort.episodes(outcome, **(relief if outcome == "relief" else {}))
    if frailty is not None and frailty not in episodes.columns:
        raise click.UsageError(f"--frailty {frailty!r} is not a column of the episodes; "
                               "e.g. --frailty patient_id")
    options = {"cluster": _robust_over(cluster), "frailty": frailty}
    aic = None
    if dist == "auto":
        model, aic = regen.choose_distribution(formula, episodes, **options)
    else:
        model = regen.fit_recovery(formula, episodes, dist=dist, **options)
    profiles = profiles_for(episodes, model, settings)
    predicted = model.predict_quantile(profiles, q=[0.25, 0.5, 0.75])
    if save_to:
        model.save(save_to, outcome=outcome, force=force)
    if as_json:
        echo(strict_json({
            "outcome": outcome, "dist": model.dist, "formula": formula, "episodes": model.n,
            "loglik": model.loglik, "aic": model.aic,
            "distributions": None if aic is None else aic.to_dict(orient="records"),
            "summary": model.summary.reset_index(names="term").to_dict(orient="records"),
            "predictions": predicted.drop(columns="std_err_log").to_dict(orient="records"),
        } | ({"frailty": {"column": frailty, "frailty_sd": model.frailty_sd,
                          "frailty_ci": list(model.frailty_ci), **model.frailty_test,
                          "n_nodes": model.n_nodes}} if frailty else {}), indent=1))
        return
    echo(format_fit(model, outcome, profiles, predicted, aic))
    if save_to:
        echo(f"\nModel saved to {save_to}")

@fit.command("regeneration")
@path_argument
@click.option("--formula", default="~ 1", show_default=True,
              help='Covariates of log velocity, e.g. "~ I(age - 50) + diabetes".')
@click.option("--lag", type=click.FloatRange(min=0), default=None,
              help="Fix the lag (days) instead of estimating it.")
@click.option("--dist", type=click.Choice(list(DISTRIBUTION_NAMES)), default="lognormal",
              show_default=True,
              help="Law of the regrowth time per mm (lognormal: a log-normal velocity).")
@_cluster_option
@_fit_output_options
def fit_regeneration(path: Path, formula: str, lag: float | None, dist: str, cluster: str,
                     as_json: bool, save_to: Path | None, baseline_window_days: int,
                     max_follow_up_days: int, force: bool) -> None:
    """Regrowth kinetics of numbness: T = lag + distance_mm / velocity.

    Prints the velocity (mm/day) and lag (days) with 95% CIs, the velocity
    ratios, and the AIC beside the AFT models of the same covariates.
    """
    cohort = _prepare(path, save_to, force, baseline_window_days, max_follow_up_days)
    _fit_regeneration(cohort.episodes("numbness"), "numbness", formula, lag, dist, cluster,
                      as_json, save_to, force)

_groups_option = click.option(
    "--groups", "--cluster", "groups", default="patient_id", show_default=True,
    help="The grouping of the visits: the random effects' (trajectory) or the correlated "
         "rows' (probability) unit.")

@fit.command("trajectory")
@path_argument
@click.option("--score", default="pain", show_default=True,
              help="The visit score to model (pain, numbness, headache_days, ...).")
@click.option("--formula", default=None,
              help="Covariates of the score (the score is put before \"~\"); default "
                   "\"~ cr(day, df=4, constraints='center')\", plus baseline_pain for pain.")
@click.option("--re-formula", default="~ day", show_default=True,
              help="Random effects per group ('~ 1': intercept only).")
@click.option("--threshold", type=float, default=None,
              help="The level whose crossing day is reported (default: 0.8 of baseline for "
                   "pain, 1 for numbness). For pain it is a fraction of the baseline unless "
                   "--absolute.")
@click.option("--relative/--absolute", "relative", default=None,
              help="--threshold is a fraction of the baseline score (default for pain) or a "
                   "level of the score.")
@click.option("--direction", type=click.Choice(["below", "above"]), default=None,
              help="Crossing downwards (numbness fading) or upwards (pain coming back); "
                   "default above for pain, below otherwise.")
@click.option("--ci", "ci_method", type=click.Choice(["delta", "bootstrap"]), default="delta",
              show_default=True, help="How the crossing day's CI is computed.")
@click.option("--n-bootstrap", type=click.IntRange(min=20), default=200, show_default=True,
              help="With --ci bootstrap: the number of refits.")
@click.option("--seed", type=int, default=None, help="With --ci bootstrap: its seed.")
@_groups_option
@_at_option
@_fit_output_options
def fit_trajectory(path: Path, score: str, formula: str | None, re_formula: str,
                   threshold: float | None, relative: bool | None, direction: str | None,
                   ci_method: str, n_bootstrap: int, seed: int | None, groups: str,
                   settings: tuple[str, ...], as_json: bool, save_to: Path | None,
                   baseline_window_days: int, max_follow_up_days: int, force: bool) -> None:
    """A linear mixed model of a visit score after the treatment.

    Prints the fixed effects, the variance components and the day the mean
    crosses --threshold, with a 95% CI.
    """
    cohort = _prepare(path, save_to, force, baseline_window_days, max_follow_up_days)
    print_trajectory(cohort, score, formula, re_formula, settings,
                    Crossing(threshold, relative, direction, ci_method, n_bootstrap, seed),
                    groups, as_json, save_to, force)

@fit.command("probability")
@path_argument
@click.option("--score", default="numb", show_default=True,
              help="The yes/no visit score to model.")
@click.option("--formula", default=None,
              help="Covariates of the log odds (the score is put before \"~\"); default "
                   "\"~ cr(day, df=4, constraints='center')\".")
@click.option("--correlation", type=click.Choice(["exchangeable", "ar1", "independence"]),
              default="exchangeable", show_default=True,
              help="The working correlation of a group's visits.")
@click.option("--days", "at_days", type=click.IntRange(min=1), multiple=True,
              default=(30, 60, 90, 180), show_default=True,
              help="Days at which the predicted probability is printed (repeat the option).")
@_groups_option
@_at_option
@_fit_output_options
def fit_probability(path: Path, score: str, formula: str | None, correlation: str,
                    at_days: tuple[int, ...], groups: str, settings: tuple[str, ...],
                    as_json: bool, save_to: Path | None, baseline_window_days: int,
                    max_follow_up_days: int, force: bool) -> None:
    """A GEE logistic model of a yes/no visit score after the treatment.

    Prints the odds ratios with 95% CIs (robust over --groups) and the predicted
    probability of the score at --days for each nerve.
    """
    import pandas as pd

    from regen._terminal import format_probability, strict_json

    cohort = _prepare(path, save_to, force, baseline_window_days, max_follow_up_days)
    rows = cohort.measurements(score)
    rows = rows.loc[rows["day"] >= 1]
    formula = _with_response(score, formula or "~ cr(day, df=4, constraints='center')")
    model = regen.fit_probability(formula, rows, groups=groups, correlation=correlation)
    profiles = profiles_for(rows, model, settings, exclude=("day",))
    grid = profiles.merge(pd.DataFrame({"day": [float(d) for d in at_days]}), how="cross")
    predicted = model.predict(grid)
    if save_to:
        model.save(save_to, force=force)
    if as_json:
        echo(strict_json({
            "model": "probability", "score": score, "formula": formula,
            "correlation": correlation, "rows": model.n, "groups": model.n_groups,
            "qic": model.qic, "working_correlation": model.working_correlation,
            "summary": model.summary.reset_index(names="term").to_dict(orient="records"),
            "predictions": predicted.to_dict(orient="records"),
        }, indent=1))
        return
    echo(format_probability(model, score, predicted))
    if save_to:
        echo(f"\nModel saved to {save_to}")

def _with_response(score: str, formula: str) -> str:
    """The formula with the score before "~" when the user gave only the covariates."""
    return f"{score} {formula.strip()}" if not formula.split("~")[0].strip() else formula

def _fit_regeneration(episodes: pd.DataFrame, outcome: str, formula: str, lag: float | None,
                      velocity_dist: str, cluster: str, as_json: bool,
                      save_to: Path | None, force: bool = False) -> None:
    from regen._terminal import days, strict_json

    kinetics = regen.fit_regeneration(episodes, formula=formula, lag=lag,
                                      velocity_dist=velocity_dist,
                                      cluster=None if cluster.lower() == "none" else cluster)
    aic = {f"regeneration ({velocity_dist})": kinetics.aic}
    for dist in DISTRIBUTION_NAMES:
        aic[dist] = regen.fit_recovery(formula, episodes.loc[episodes["distance_mm"].notna()],
                                       dist=dist).aic
    if save_to:
        kinetics.save(save_to, force=force)
    velocity = kinetics.velocity if "Intercept" in kinetics.params.index else None
    if as_json:
        echo(strict_json({
            "outcome": outcome, "model": "regeneration", "formula": formula,
            "velocity_dist": velocity_dist,
            "episodes": kinetics.n, "loglik": kinetics.loglik, "aic": aic,
            "velocity_mm_per_day": None if velocity is None else velocity.to_dict(),
            "lag_days": {**kinetics.lag.to_dict(), "fixed": kinetics.lag_fixed,
                         "identified": not kinetics.lag_flat},
            "velocity_ratios": kinetics.velocity_ratios.reset_index(names="term")
            .to_dict(orient="records"),
        }, indent=1))
        return
    law = {"lognormal": "log-normal velocity", "loglogistic": "log-logistic velocity",
           "weibull": "Weibull regrowth time"}[velocity_dist]
    lines = [f"Regeneration kinetics, {outcome}: T = lag + distance_mm / velocity ({law}), "
             f"log velocity {formula}  ({kinetics.n} episodes, log-likelihood "
             f"{kinetics.loglik:.2f})"]
    if velocity is not None:
        lines.append(f"  velocity (covariates at 0): {velocity['estimate']:.2f} mm/day "
                     f"({velocity['ci_lower']:.2f}–{velocity['ci_upper']:.2f})")
    lag_row = kinetics.lag
    how = "fixed" if kinetics.lag_fixed else "profile-likelihood interval"
    lines.append(f"  lag: {days(lag_row['estimate'], digits=1)} days "
                 f"({days(lag_row['ci_lower'], digits=1)}–"
                 f"{days(lag_row['ci_upper'], digits=1, infinite='no upper bound')}; {how})"
                 + ("  NOT IDENTIFIED by these data: fix it with --lag" if kinetics.lag_flat
                    else ""))
    ratios = kinetics.effects()
    if len(ratios):
        lines.append("Velocity ratios (x velocity; 95% CI):")
        for term, row in ratios.iterrows():
            lines.append(f"  {term:<40}{row['estimate']:7.3f}  ({row['ci_lower']:.3f}–"
                         f"{row['ci_upper']:.3f})")
    lines.append("AIC (lower is better), same covariates: " + ", ".join(
        f"{name} {value:.1f}" for name, value in sorted(aic.items(), key=lambda kv: kv[1])))
    if save_to:
        lines.append(f"Model saved to {save_to}")
    echo("\n".join(lines))

class Crossing:
    """The time-to-threshold question, with each score's clinical default."""

    def __init__(self, threshold, relative, direction, method, n_bootstrap, seed):
        self.threshold, self.relative, self.direction = threshold, relative, direction
        self.method, self.n_bootstrap, self.seed = method, n_bootstrap, seed

    def resolve(self, score: str) -> Crossing:
        import numpy as np

        is_pain = score == "pain"
        if self.threshold is None and score not in ("pain", "numbness"):
            raise click.BadParameter(f"give the level to report for {score}, e.g. --threshold 2",
                                     param_hint="--threshold")
        threshold = self.threshold if self.threshold is not None else (0.8 if is_pain else 1.0)
        relative = self.relative if self.relative is not None else is_pain
        if not np.isfinite(threshold) or (relative and threshold <= 0):
            raise click.BadParameter(
                f"{threshold:g} is not a level: give a finite number"
                + (", a fraction of the baseline score above 0 (0.8: 80% of baseline)"
                   if relative else ""), param_hint="--threshold")
        direction = self.direction or ("above" if is_pain else "below")
        return Crossing(threshold, relative, direction, self.method, self.n_bootstrap, self.seed)

    def describe(self, score: str, level: float) -> str:
        what = (f"{self.threshold:g} × baseline = {level:.2f}" if self.relative
                else f"{level:g}")
        return f"first day the mean {score} goes {self.direction} {what}"

def print_trajectory(cohort: regen.Cohort, score: str, formula: str | None, re_formula: str,
                    settings: tuple[str, ...], crossing: Crossing, cluster: str, as_json: bool,
                    save_to: Path | None, force: bool = False) -> regen.TrajectoryFit:
    """Fit, print (or print as JSON) and save a trajectory model; return it."""
    import numpy as np
    import pandas as pd

    from regen._terminal import at_words, days, strict_json

    measurements = cohort.measurements(score)      # an unknown score is an error here
    if pd.api.types.is_bool_dtype(measurements[score]):
        raise click.BadParameter(
            f"{score} is a yes/no score, and a trajectory models a graded one (pain, "
            f"numbness): for the share of visits with {score} over time, use regen fit "
            f"probability --score {score}", param_hint="--score")
    crossing = crossing.resolve(score)
    rows = measurements.loc[measurements["day"] >= 1]
    baseline = f"baseline_{score}"
    if formula is None:
        formula = f"{score} ~ cr(day, df=4, constraints='center')" + (
            f" + {baseline}" if score == "pain" else "")
    elif not formula.split("~")[0].strip():
        formula = f"{score} {formula.strip()}"
    if cluster.lower() == "none":
        raise click.UsageError("a trajectory's random effects need a grouping: --cluster "
                               "patient_id (the default) or another column")
    groups = cluster
    traj = regen.fit_trajectory(formula, rows, groups=groups, re_formula=re_formula)
    profiles = profiles_for(rows, traj, settings, exclude=("day",))
    if crossing.relative and baseline not in profiles.columns:
        profiles[baseline] = float(rows[baseline].median())
    answers = _crossings(traj, profiles, crossing, baseline)
    if save_to:
        traj.save(save_to, force=force)
    if as_json:
        echo(strict_json({
            "model": "trajectory", "score": score, "formula": formula, "re_formula": re_formula,
            "rows": traj.n, "groups": traj.n_groups, "reml_loglik": traj.loglik,
            "fixed_effects": traj.summary.reset_index(names="term").to_dict(orient="records"),
            "variance_components": traj.variance_components.to_dict(orient="records"),
            "crossing": {"threshold": crossing.threshold, "relative_to_baseline": crossing.relative,
                         "direction": crossing.direction, "ci": crossing.method},
            "time_to_threshold": answers.to_dict(orient="records"),
        }, indent=1))
        return traj
    lines = [f"Trajectory of {score}: {formula}, random {re_formula} per {groups}  "
             f"({traj.n} visits after treatment, {traj.n_groups} patients, REML log-likelihood "
             f"{traj.loglik:.2f})", "Fixed effects (95% CI):"]
    for term, row in traj.summary.iterrows():
        lines.append(f"  {term:<48}{row['estimate']:10.4g}  ({row['ci_lower']:.4g} to "
                     f"{row['ci_upper']:.4g})")
    lines.append("Variance components:")
    for _, row in traj.variance_components.iterrows():
        label = f"{'SD' if row['component'] == 'sd' else 'correlation'} {row['term']}"
        lines.append(f"  {label:<48}{row['estimate']:10.4g}")
    lines.append(f"Day of crossing: {crossing.describe(score, answers['threshold'].iloc[0])}"
                 f"{at_words(profiles.iloc[0], ('nerve', baseline))} (95% CI, "
                 f"{crossing.method}):")
    for _, answer in answers.iterrows():
        label = answer.get("nerve", "all") if "nerve" in answers.columns else "all"
        if np.isnan(answer["estimate"]):
            lines.append(f"  {label:<28}   not within the visits' days (no crossing)")
        else:
            lines.append(f"  {label:<28}{days(answer['estimate']):>7}  "
                         f"({days(answer['ci_lower'], infinite='beyond follow-up')}–"
                         f"{days(answer['ci_upper'], infinite='beyond follow-up')})"
                         + (f"  {int(answer['n_no_crossing'])} of {crossing.n_bootstrap} "
                            "bootstrap trajectories did not cross"
                            if answer.get("n_no_crossing", 0) else ""))
    if save_to:
        lines.append(f"Model saved to {save_to}")
    echo("\n".join(lines))
    return traj

def _crossings(traj: regen.TrajectoryFit, profiles: pd.DataFrame, crossing: Crossing,
               baseline: str) -> pd.DataFrame:
    """The day the mean crosses the threshold, with its interval, for each profile."""
    import pandas as pd

    answers = []
    for i in range(len(profiles)):
        profile = profiles.iloc[[i]].reset_index(drop=True)
        answer = traj.time_to(crossing.threshold, profile, direction=crossing.direction,
                              relative_to=baseline if crossing.relative else None,
                              method=crossing.method, n_bootstrap=crossing.n_bootstrap,
                              seed=crossing.seed)
        answers.append({**profile.iloc[0].to_dict(), **answer.to_dict()})
    return pd.DataFrame(answers)

def profiles_for(episodes: pd.DataFrame, model, settings: tuple[str, ...],
              exclude: tuple[str, ...] = ()) -> pd.DataFrame:
    """One profile per nerve: --at values, else the median or most common value."""
    names = sorted(set(model.design.variables) - set(exclude))
    given = {}
    for setting in settings:
        name, sep, value = setting.partition("=")
        name = name.strip()
        if not names:
            raise click.BadParameter(f"{setting!r}: this model has no covariate to set",
                                     param_hint="--at")
        if not sep or name not in names:
            raise click.BadParameter(f"{setting!r}: use NAME=VALUE with NAME one of "
                                     f"{', '.join(names)}", param_hint="--at")
        given[name] = _setting_value(episodes[name], value.strip(), setting)
    by = "nerve" if "nerve" in names else None
    groups = sorted(episodes["nerve"].dropna().unique()) if by else [None]
    profiles = model.design.typical_profiles(episodes, by, groups, exclude)
    for name, value in given.items():
        profiles[name] = value
    return profiles

def _setting_value(column: pd.Series, value: str, setting: str):
    import numpy as np
    import pandas as pd

    from regen.validation import BOOLEAN_WORDS

    if pd.api.types.is_bool_dtype(column):
        if value.lower() not in BOOLEAN_WORDS:
            raise click.BadParameter(f"{setting!r}: write yes or no (also accepted: "
                                     f"{', '.join(BOOLEAN_WORDS)})", param_hint="--at")
        return BOOLEAN_WORDS[value.lower()]
    if pd.api.types.is_numeric_dtype(column):
        try:
            number = float(value)
        except ValueError:
            raise click.BadParameter(f"{setting!r}: needs a number", param_hint="--at") from None
        if not np.isfinite(number):
            raise click.BadParameter(f"{setting!r}: needs a finite number", param_hint="--at")
        return number
    return value
