"""The ``regen`` command line.

Every command calls the public API only. A user error (bad files, bad
options) prints one message saying what is wrong, where, and how to fix it,
and exits 1; it never shows a traceback. An output path regen will not write
(an input, two outputs on one path, a file regen did not write, without
``--force``) is a usage error: exit 2, before any work is done. Everything
printed has its control characters escaped, so text from the data cannot
drive the terminal. Set ``REGEN_DEBUG=1`` to see the traceback of an
unexpected failure.
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from pathlib import Path

import click
import numpy as np
import pandas as pd
from formulaic.errors import FormulaicError

import regen
from regen._terminal import (
    at_words,
    days,
    format_fit,
    format_flow,
    format_medians,
    format_probability,
    strict_json,
)
from regen._write import Outputs, printable
from regen.cohort import DEFAULT_BASELINE_WINDOW_DAYS, DEFAULT_MAX_FOLLOW_UP_DAYS
from regen.design import typical_profiles
from regen.episodes import RELIEF_CONFIRM
from regen.exceptions import CohortValidationError, OutputError, RegenError
from regen.io import LIMIT_OPTIONS, LIMIT_UNITS
from regen.ledger import PROBLEM_COLUMNS
from regen.survival.likelihood import DISTRIBUTIONS
from regen.validation import BOOLEAN_WORDS

__all__ = ["main"]

OUTCOMES = click.Choice(["numbness", "relief"])


def _echo(message: object = "", *, err: bool = False, nl: bool = True) -> None:
    """Print a message with its control characters escaped (see :func:`regen._write.printable`):
    a nerve name or a file name holding an ANSI escape is shown, not obeyed."""
    click.echo(printable(str(message)), err=err, nl=nl)


def _user_errors(command):
    """Turn regen's errors into one message and exit code 1 (output paths refused: 2); show
    data warnings plainly."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("default", regen.RegenWarning)
            warnings.showwarning = _show_warning
            try:
                return command(*args, **kwargs)
            except CohortValidationError as error:
                _echo(error, err=True)
                sys.exit(1)
            except OutputError as error:
                raise click.UsageError(printable(str(error))) from None  # exit 2
            except click.ClickException as error:  # click prints usage errors itself (exit 2)
                error.message = printable(error.message)  # it may quote a model file's text
                raise
            except (RegenError, OSError, ValueError, FormulaicError) as error:
                # regen's own errors, files, and values or formulas the user gave
                if os.environ.get("REGEN_DEBUG"):
                    raise
                _echo(f"error: {error}", err=True)
                sys.exit(1)
            except Exception as error:  # a bug in regen, not the user's doing
                if os.environ.get("REGEN_DEBUG"):
                    raise
                _echo(f"internal error: {type(error).__name__}: {error}\nThis is a bug in "
                      "regen, not in your data; rerun with REGEN_DEBUG=1 to see where it "
                      "happened and report it.", err=True)
                sys.exit(3)

    return wrapper


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """regen's warnings as one plain line on stderr; others as Python shows them."""
    if issubclass(category, regen.RegenWarning):
        _echo(f"warning: {message}", err=True)
    else:
        _echo(warnings.formatwarning(message, category, filename, lineno, line), err=True,
              nl=False)


_force_option = click.option(
    "--force", is_flag=True,
    help="Replace output files that regen did not write, or that were changed since it did "
         "(never an input).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(regen.__version__, prog_name="regen")
def main() -> None:
    """Nerve recovery after cryoneurolysis: validate follow-up tables, build episodes,
    simulate cohorts."""


def _read(path: Path, baseline_window_days: int = DEFAULT_BASELINE_WINDOW_DAYS,
          max_follow_up_days: int = DEFAULT_MAX_FOLLOW_UP_DAYS) -> regen.Cohort:
    """The cohort in PATH, read within the limits the command's options set."""
    limits = click.get_current_context().meta.get("regen_limits", {})
    return regen.read_cohort(path, baseline_window_days=baseline_window_days,
                             max_follow_up_days=max_follow_up_days,
                             limits=regen.ReadLimits(**limits))


_path_argument = click.argument("path", type=click.Path(path_type=Path))
_confirm_option = click.option(
    "--confirm", type=click.IntRange(min=1), default=RELIEF_CONFIRM, show_default=True,
    help="Relief: relief ends at the first of this many consecutive unrelieved visits (the "
         "last visit of the follow-up counts alone); 1: at the first unrelieved visit.")


def _limit_options(command):
    """--max-file-mb, --max-rows, ...: raise the limits at which a crafted or huge file is
    refused (a refusal's message names the option); _read passes them on."""
    defaults = regen.ReadLimits()
    for field, (unit, what) in reversed(LIMIT_UNITS.items()):
        def keep(ctx: click.Context, param, value: int | None, field=field, unit=unit) -> None:
            if value is not None:
                ctx.meta.setdefault("regen_limits", {})[field] = value * unit

        command = click.option(
            LIMIT_OPTIONS[field], type=click.IntRange(min=1), default=None, expose_value=False,
            callback=keep, metavar={1: "N", 1_000: "KB", 1_000_000: "MB"}[unit],
            help=f"{what} [default: {getattr(defaults, field) // unit:,}]")(command)
    return command


def _window_options(command):
    command = _limit_options(command)
    command = click.option(
        "--max-follow-up-days", default=DEFAULT_MAX_FOLLOW_UP_DAYS, show_default=True,
        type=click.IntRange(min=0),
        help="Visits more than this many days after their treatment are errors.")(command)
    return click.option(
        "--baseline-window-days", default=DEFAULT_BASELINE_WINDOW_DAYS, show_default=True,
        type=click.IntRange(min=0),
        help="Visits more than this many days before their treatment are errors.")(command)


def _check_window(ctx, param, value: tuple[int, int]) -> tuple[int, int]:
    first, last = value
    if not 1 <= first <= last:
        raise click.BadParameter(f"need 1 ≤ first day ≤ last day, got {first} {last}")
    return value


@main.command()
@_path_argument
@_window_options
@click.option("--problems", "problems_file", type=click.Path(path_type=Path),
              help="Also write every problem found to this CSV file.")
@_force_option
@_user_errors
def validate(path: Path, baseline_window_days: int, max_follow_up_days: int,
             problems_file: Path | None, force: bool) -> None:
    """Check the follow-up tables in PATH and print the flow.

    PATH is a folder with patients, treatments and visits (.csv or .parquet)
    or one .xlsx workbook. Exits 0 when the data are usable, 1 when not.
    """
    outputs = Outputs(inputs=[path], force=force)
    if problems_file:
        _check_suffix(outputs.file(problems_file), (".csv",), "--problems")
    try:
        cohort = _read(path, baseline_window_days, max_follow_up_days)
    except CohortValidationError as error:
        if not problems_file:
            raise
        outputs.write_table(error.problems, problems_file)
        raise CohortValidationError(f"{error}\n\nAll problems written to {problems_file}",
                                    error.problems) from None
    if problems_file:  # this run's problems: none (not a stale list from an earlier run)
        outputs.write_table(pd.DataFrame(columns=PROBLEM_COLUMNS), problems_file)
    _echo(format_flow(cohort, path))
    n = len(cohort.warnings)
    _echo("\nThe data are usable" + (f" ({n} warning{'s' if n > 1 else ''} above)." if n else "."))
    if problems_file:
        _echo(f"No problems: {problems_file} lists none.")


@main.command()
@_path_argument
@click.option("--outcome", type=OUTCOMES, default="numbness", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Episodes file to write (.csv or .parquet).")
@click.option("--threshold", default=0.5, show_default=True, type=click.FloatRange(0, 1,
              min_open=True, max_open=True), help="Relief: share of baseline pain removed.")
@click.option("--response-window", nargs=2, type=int, default=(1, 30), show_default=True,
              callback=_check_window,
              help="Relief: first and last day in which relief must begin.")
@_confirm_option
@click.option("--exclusions", "exclusions_file", type=click.Path(path_type=Path),
              help="Also write the treatments without an episode, with reasons.")
@_window_options
@_force_option
@_user_errors
def episodes(path: Path, outcome: str, output: Path, threshold: float,
             response_window: tuple[int, int], confirm: int, exclusions_file: Path | None,
             baseline_window_days: int, max_follow_up_days: int, force: bool) -> None:
    """Write one interval-censored episode per treatment in PATH."""
    outputs = Outputs(inputs=[path], force=force)
    for file in (output, exclusions_file):
        if file:
            _check_suffix(outputs.file(file), option="-o" if file is output else "--exclusions")
    cohort = _read(path, baseline_window_days, max_follow_up_days)
    table, excluded = cohort.episodes(outcome, threshold=threshold, response_window=response_window,
                                      confirm=confirm, with_exclusions=True)
    outputs.write_table(table, output)
    _echo(f"{len(table)} {outcome} episodes written to {output}; "
          f"{len(excluded)} treatment(s) without an episode.")
    for reason, n in excluded["reason"].value_counts().items():
        _echo(f"  {reason}: {n}")
    if exclusions_file:
        outputs.write_table(excluded, exclusions_file)
        _echo(f"Exclusions written to {exclusions_file}")


class _FitGroup(click.Group):
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
            _echo(f"note: `regen fit PATH --model {model}` is now `regen fit {model} PATH`; "
                  "the old form will be removed in a later release.", err=True)
            args = [model, *args]
        return super().parse_args(ctx, args)


@main.group(cls=_FitGroup)
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
        _window_options, _force_option, _user_errors]):
        command = option(command)
    return command


def _prepare(path: Path, save_to: Path | None, force: bool, baseline_window_days: int,
             max_follow_up_days: int) -> regen.Cohort:
    """Check --save before any work, then read the cohort."""
    if save_to:
        _check_suffix(Outputs(inputs=[path], force=force).file(save_to), (".json",), "--save")
    return _read(path, baseline_window_days, max_follow_up_days)


def _robust_over(cluster: str) -> str | None:
    return None if cluster.lower() == "none" else cluster


_cluster_option = click.option(
    "--cluster", default="patient_id", show_default=True,
    help="Robust standard errors over this unit; 'none' for model-based ones.")


@fit.command("recovery")
@_path_argument
@click.option("--outcome", type=OUTCOMES, default="numbness", show_default=True,
              help="Which episodes to model.")
@click.option("--formula", default="~ nerve", show_default=True,
              help='Covariates, e.g. "~ nerve + age + diabetes".')
@click.option("--dist", type=click.Choice(list(DISTRIBUTIONS)), default="weibull",
              show_default=True, help="Law of the time to the event.")
@_cluster_option
@_confirm_option
@_at_option
@_fit_output_options
def fit_recovery(path: Path, outcome: str, formula: str, dist: str, cluster: str,
                 confirm: int, settings: tuple[str, ...], as_json: bool, save_to: Path | None,
                 baseline_window_days: int, max_follow_up_days: int, force: bool) -> None:
    """An accelerated-failure-time model of the time to the event.

    Prints the time ratios with 95% CIs and each nerve's predicted median and
    quartiles (covariates at --at values, else typical ones).
    """
    if click.get_current_context().get_parameter_source("confirm") == \
            click.core.ParameterSource.COMMANDLINE and outcome != "relief":
        raise click.UsageError("--confirm applies to relief episodes: add --outcome relief")
    cohort = _prepare(path, save_to, force, baseline_window_days, max_follow_up_days)
    episodes = cohort.episodes(outcome, **({"confirm": confirm} if outcome == "relief" else {}))
    model = regen.fit_recovery(formula, episodes, dist=dist, cluster=_robust_over(cluster))
    profiles = _profiles(episodes, model, settings)
    predicted = model.predict_quantile(profiles, q=[0.25, 0.5, 0.75])
    if save_to:
        model.save(save_to, outcome=outcome, force=force)
    if as_json:
        _echo(strict_json({
            "outcome": outcome, "dist": dist, "formula": formula, "episodes": model.n,
            "loglik": model.loglik, "aic": model.aic,
            "summary": model.summary.reset_index(names="term").to_dict(orient="records"),
            "predictions": predicted.drop(columns="std_err_log").to_dict(orient="records"),
        }, indent=1))
        return
    _echo(format_fit(model, outcome, profiles, predicted))
    if save_to:
        _echo(f"\nModel saved to {save_to}")


@fit.command("regeneration")
@_path_argument
@click.option("--formula", default="~ 1", show_default=True,
              help='Covariates of log velocity, e.g. "~ I(age - 50) + diabetes".')
@click.option("--lag", type=click.FloatRange(min=0), default=None,
              help="Fix the lag (days) instead of estimating it.")
@click.option("--dist", type=click.Choice(list(DISTRIBUTIONS)), default="lognormal",
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
@_path_argument
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
    _fit_trajectory(cohort, score, formula, re_formula, settings,
                    _Crossing(threshold, relative, direction, ci_method, n_bootstrap, seed),
                    groups, as_json, save_to, force)


@fit.command("probability")
@_path_argument
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
    cohort = _prepare(path, save_to, force, baseline_window_days, max_follow_up_days)
    rows = cohort.measurements(score)
    rows = rows.loc[rows["day"] >= 1]
    formula = _with_response(score, formula or "~ cr(day, df=4, constraints='center')")
    model = regen.fit_probability(formula, rows, groups=groups, correlation=correlation)
    profiles = _profiles(rows, model, settings, exclude=("day",))
    grid = profiles.merge(pd.DataFrame({"day": [float(d) for d in at_days]}), how="cross")
    predicted = model.predict(grid)
    if save_to:
        model.save(save_to, force=force)
    if as_json:
        _echo(strict_json({
            "model": "probability", "score": score, "formula": formula,
            "correlation": correlation, "rows": model.n, "groups": model.n_groups,
            "qic": model.qic, "working_correlation": model.working_correlation,
            "summary": model.summary.reset_index(names="term").to_dict(orient="records"),
            "predictions": predicted.to_dict(orient="records"),
        }, indent=1))
        return
    _echo(format_probability(model, score, predicted))
    if save_to:
        _echo(f"\nModel saved to {save_to}")


def _with_response(score: str, formula: str) -> str:
    """The formula with the score before "~" when the user gave only the covariates."""
    return f"{score} {formula.strip()}" if not formula.split("~")[0].strip() else formula


def _fit_regeneration(episodes: pd.DataFrame, outcome: str, formula: str, lag: float | None,
                      velocity_dist: str, cluster: str, as_json: bool,
                      save_to: Path | None, force: bool = False) -> None:
    kinetics = regen.fit_regeneration(episodes, formula=formula, lag=lag,
                                      velocity_dist=velocity_dist,
                                      cluster=None if cluster.lower() == "none" else cluster)
    aic = {f"regeneration ({velocity_dist})": kinetics.aic}
    for dist in DISTRIBUTIONS:
        aic[dist] = regen.fit_recovery(formula, episodes.loc[episodes["distance_mm"].notna()],
                                       dist=dist).aic
    if save_to:
        kinetics.save(save_to, force=force)
    velocity = kinetics.velocity if "Intercept" in kinetics.params.index else None
    if as_json:
        _echo(strict_json({
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
    _echo("\n".join(lines))


class _Crossing:
    """The time-to-threshold question, with each score's clinical default."""

    def __init__(self, threshold, relative, direction, method, n_bootstrap, seed):
        self.threshold, self.relative, self.direction = threshold, relative, direction
        self.method, self.n_bootstrap, self.seed = method, n_bootstrap, seed

    def resolve(self, score: str) -> _Crossing:
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
        return _Crossing(threshold, relative, direction, self.method, self.n_bootstrap, self.seed)

    def describe(self, score: str, level: float) -> str:
        what = (f"{self.threshold:g} × baseline = {level:.2f}" if self.relative
                else f"{level:g}")
        return f"first day the mean {score} goes {self.direction} {what}"


def _fit_trajectory(cohort: regen.Cohort, score: str, formula: str | None, re_formula: str,
                    settings: tuple[str, ...], crossing: _Crossing, cluster: str, as_json: bool,
                    save_to: Path | None, force: bool = False) -> regen.TrajectoryFit:
    """Fit, print (or print as JSON) and save a trajectory model; return it."""
    measurements = cohort.measurements(score)      # an unknown score is an error here
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
    profiles = _profiles(rows, traj, settings, exclude=("day",))
    if crossing.relative and baseline not in profiles.columns:
        profiles[baseline] = float(rows[baseline].median())
    answers = []
    for i in range(len(profiles)):
        profile = profiles.iloc[[i]].reset_index(drop=True)
        answer = traj.time_to(crossing.threshold, profile,
                              direction=crossing.direction,
                              relative_to=baseline if crossing.relative else None,
                              method=crossing.method, n_bootstrap=crossing.n_bootstrap,
                              seed=crossing.seed)
        answers.append({**profile.iloc[0].to_dict(), **answer.to_dict()})
    answers = pd.DataFrame(answers)
    if save_to:
        traj.save(save_to, force=force)
    if as_json:
        _echo(strict_json({
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
    _echo("\n".join(lines))
    return traj


def _profiles(episodes: pd.DataFrame, model, settings: tuple[str, ...],
              exclude: tuple[str, ...] = ()) -> pd.DataFrame:
    """One profile per nerve: --at values, else the median or most common value."""
    names = sorted(set(model.model_spec.required_variables) - set(exclude))
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
    profiles = typical_profiles(episodes, names, by, groups)
    for name, value in given.items():
        profiles[name] = value
    return profiles


def _setting_value(column: pd.Series, value: str, setting: str):
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


@main.command()
@_path_argument
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("report.html"),
              show_default=True, help="The HTML file; report.json and CSV tables go beside it.")
@click.option("--min-group", type=click.IntRange(min=1), default=10, show_default=True,
              help="Nerves with fewer treatments are not reported.")
@click.option("--min-patients", type=click.IntRange(min=1), default=5, show_default=True,
              help="Nerves with fewer different patients are not reported.")
@click.option("--n-bootstrap", type=click.IntRange(min=20), default=200, show_default=True,
              help="Bootstrap samples of patients for the 95% intervals.")
@click.option("--seed", type=int, default=2026, show_default=True)
@_confirm_option
@_window_options
@_force_option
@_user_errors
def report(path: Path, output: Path, min_group: int, min_patients: int, n_bootstrap: int,
           seed: int, confirm: int, baseline_window_days: int, max_follow_up_days: int,
           force: bool) -> None:
    """Write the practice's expected-relief report for the cohort in PATH.

    One self-contained HTML file (figures embedded, nothing fetched), with the
    same numbers beside it as report.json and CSV tables. No patient or
    treatment identifier is written; a nerve with fewer than --min-group
    treatments or --min-patients patients is not shown.
    """
    from regen.report import relief_report, report_files

    Outputs(inputs=[path], force=force).files(report_files(output))  # refuse before the work
    cohort = _read(path, baseline_window_days, max_follow_up_days)
    content = relief_report(cohort, output, min_group=min_group, min_patients=min_patients,
                            n_bootstrap=n_bootstrap, seed=seed, confirm=confirm, force=force)
    shown = sum(not row["suppressed"] for row in content["by_nerve"])
    hidden: dict[str, list[str]] = {}
    for row in content["by_nerve"]:
        if row["suppressed"] and row["nerve"] in content["suppressed"]:
            hidden.setdefault(f"not shown ({row['note']})", []).append(row["nerve"])
        elif row["suppressed"]:  # free-text names are only counted, never printed
            hidden.setdefault("not shown", []).append(row["note"])
    _echo(f"Report on {shown} nerve(s)" + "".join(
        f"; {why}: {', '.join(nerves)}" for why, nerves in hidden.items()))
    for file in content["files"]:
        _echo(f"  {file}")


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--model", "model_file", type=click.Path(path_type=Path), required=True,
              help="A model saved by 'regen fit --save' (recovery or regeneration).")
@click.option("--json", "as_json", is_flag=True, help="Print the prediction as JSON.")
@click.pass_context
@_user_errors
def predict(ctx: click.Context, model_file: Path, as_json: bool) -> None:
    """Expected relief or numbness duration for one patient.

    Give the patient's values as options named after the model's covariates,
    e.g. --nerve greater_occipital --age 52 --diabetes no (--distance-mm 80 for
    the kinetics model). Missing or unknown values are listed with what the
    model needs.
    """
    from regen.predict import expected_duration, sentence

    values = _pairs(ctx.args)
    model = regen.load_model(model_file)
    try:
        result = expected_duration(model, values)
    except regen.ModelError:
        raise
    except ValueError as error:  # the profile does not fit the model: a usage error
        raise click.UsageError(str(error)) from None
    if as_json:
        _echo(strict_json(result, indent=1))
        return
    shown = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in result["profile"].items())
    _echo(f"For a patient with {shown}:" if shown else "For any patient:")
    _echo(sentence(result))


def _pairs(args: list[str]) -> dict[str, str]:
    """--name value or --name=value pairs, as the patient's values."""
    values, i = {}, 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) < 3:
            raise click.UsageError(f"unexpected {arg!r}: give the patient's values as "
                                   "--name value, e.g. --age 52")
        name, sep, value = arg[2:].partition("=")
        if not sep:
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                raise click.UsageError(f"--{name} needs a value, e.g. --{name} 52")
            value = args[i + 1]
            i += 1
        values[name.replace("-", "_")] = value
        i += 1
    return values


@main.command()
@click.option("-n", "--patients", "n_patients", type=click.IntRange(min=1), required=True,
              help="Number of patients.")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Folder to write patients, treatments and visits into.")
@click.option("--seed", type=int, default=None, help="Random seed (same seed, same files).")
@click.option("--format", "file_format", type=click.Choice(["csv", "parquet", "xlsx"]),
              default="csv", show_default=True)
@_force_option
@_user_errors
def simulate(n_patients: int, output: Path, seed: int | None, file_format: str,
             force: bool) -> None:
    """Write a synthetic cohort with a known truth (see regen.simulate)."""
    Outputs(force=force).folder(output)
    sim = regen.simulate.cohort(n_patients, seed=seed)
    written = sim.write(output, format=file_format, force=force)
    _echo(f"{len(sim.patients)} patients, {len(sim.treatments)} treatments, "
          f"{len(sim.visits)} visits written to {written}")


@main.command()
@click.option("--data", type=click.Path(path_type=Path), default=Path("data/example"),
              show_default=True, help="Cohort to run on.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("demo_output"),
              show_default=True, help="Folder for the outputs.")
@_limit_options
@_force_option
@_user_errors
def demo(data: Path, out: Path, force: bool) -> None:
    """Run the main job on the example cohort: validate, flow, episodes, recovery medians,
    and the pain trajectory with the day pain comes back to 80% of baseline."""
    from regen.report import relief_report, report_files

    outputs = Outputs(inputs=[data], force=force)
    outputs.folder(out)
    outputs.folder(out / "figures")
    outputs.files([out / name for name in DEMO_FILES] + report_files(out / "report.html")
                  + [out / "figures" / f"{stem}.{suffix}" for stem in DEMO_FIGURES
                     for suffix in ("png", "svg")])
    cohort = _read(data)
    _echo(format_flow(cohort, data))
    outputs.write_table(cohort.flow(), out / "flow.csv")
    outputs.write_table(cohort.exclusions, out / "exclusions.csv")
    outputs.write_table(cohort.summary(), out / "summary_by_nerve.csv", index=True)
    medians, curves, models = [], {}, {}   # each model fitted once, for tables and figures
    for outcome in ("numbness", "relief"):
        episodes = cohort.episodes(outcome)
        outputs.write_table(episodes, out / f"{outcome}_episodes.csv")
        fit = curves[outcome] = regen.turnbull(episodes, by="nerve", n_bootstrap=200,
                                               seed=2026, cluster="patient_id")
        table = fit.quantile([0.25, 0.5, 0.75]).assign(outcome=outcome)
        medians.append(table.assign(episodes=table["nerve"].map(fit.n)))
    medians = pd.concat(medians, ignore_index=True)
    outputs.write_table(medians, out / "npmle_quantiles_by_nerve.csv")
    _echo("\n" + format_medians(medians))
    for outcome in ("numbness", "relief"):
        episodes = cohort.episodes(outcome)
        model = models[outcome] = regen.fit_recovery("~ nerve + age + diabetes", episodes,
                                                     cluster="patient_id")
        profiles = _profiles(episodes, model, ())
        predicted = model.predict_quantile(profiles, q=[0.25, 0.5, 0.75])
        outputs.write_table(predicted.drop(columns="std_err_log"),
                            out / f"aft_{outcome}_predictions.csv")
        model.save(out / f"aft_{outcome}_model.json", outcome=outcome, force=force)
        _echo("\n" + format_fit(model, outcome, profiles, predicted))
    _echo("")
    trajectory = _fit_trajectory(cohort, "pain", None, "~ day", (),
                                 _Crossing(None, None, None, "delta", 200, None), "patient_id",
                                 False, out / "trajectory_pain_model.json", force)
    figures = _demo_figures(cohort, curves, models, trajectory, out / "figures", outputs)
    content = relief_report(cohort, out / "report.html", seed=2026, force=force)
    _echo(f"\nWritten to {out}/:\n  tables: numbness_episodes.csv, relief_episodes.csv, "
               "exclusions.csv, flow.csv, summary_by_nerve.csv, npmle_quantiles_by_nerve.csv, "
               "aft_*_predictions.csv\n  models: aft_*_model.json, trajectory_pain_model.json\n"
               f"  figures: {', '.join(sorted({p.name for p in figures}))} (in figures/)\n"
               f"  the practice report: {content['files'][0].name}, with "
               f"{', '.join(p.name for p in content['files'][1:])}")


#: The tables and models ``regen demo`` writes, and its figures (PNG and SVG, in figures/).
DEMO_FILES = ("flow.csv", "exclusions.csv", "summary_by_nerve.csv", "numbness_episodes.csv",
              "relief_episodes.csv", "npmle_quantiles_by_nerve.csv",
              "aft_numbness_predictions.csv", "aft_relief_predictions.csv",
              "aft_numbness_model.json", "aft_relief_model.json", "trajectory_pain_model.json")
DEMO_FIGURES = ("numbness_curves", "numbness_forest", "relief_curves", "relief_forest",
                "pain_trajectories")


def _demo_figures(cohort: regen.Cohort, curves: dict, models: dict,
                  trajectory: regen.TrajectoryFit, folder: Path, outputs: Outputs) -> list[Path]:
    """The recovery curves (the demo's NPMLE fits, with a Weibull AFT by nerve over them), the
    forest plots of the demo's AFT models and the pain trajectories, as PNG and SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from regen import plot

    written = []
    labels = {"numbness": "Still numb", "relief": "Still relieved (responders)"}
    for outcome, label in labels.items():
        by_nerve = regen.fit_recovery("~ nerve", cohort.episodes(outcome), cluster="patient_id")
        ax = plot.recovery(curves[outcome], by_nerve, ylabel=label)
        written += plot.save(ax, folder / f"{outcome}_curves", outputs=outputs)
        plt.close(ax.figure)
        ax = plot.forest(models[outcome], title=f"{outcome.capitalize()}: time ratios")
        written += plot.save(ax, folder / f"{outcome}_forest", outputs=outputs)
        plt.close(ax.figure)
    ax = plot.trajectories(trajectory, cohort.measurements("pain").query("day >= 1"))
    written += plot.save(ax, folder / "pain_trajectories", outputs=outputs)
    plt.close(ax.figure)
    return written


def _check_suffix(path: Path, suffixes=(".csv", ".parquet", ".pq"), option: str = "-o") -> None:
    if path.suffix.lower() not in suffixes:
        endings = " or ".join(s for s in suffixes if s != ".pq")
        raise click.BadParameter(f"cannot write {path.name}: use a {endings} file name",
                                 param_hint=option)


if __name__ == "__main__":  # pragma: no cover
    main()
