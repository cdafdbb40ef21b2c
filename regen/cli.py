"""The ``regen`` command line.

Every command calls the public API only. A user error (bad files, bad
options) prints one message saying what is wrong, where, and how to fix it,
and exits 1; it never shows a traceback. Set ``REGEN_DEBUG=1`` to see the
traceback of an unexpected failure.
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from pathlib import Path

import click
import pandas as pd

import regen
from regen.cohort import DEFAULT_BASELINE_WINDOW_DAYS, DEFAULT_MAX_FOLLOW_UP_DAYS
from regen.exceptions import CohortValidationError, RegenError

__all__ = ["main"]

OUTCOMES = click.Choice(["numbness", "relief"])


def _user_errors(command):
    """Turn regen's errors into one message and exit code 1; show data warnings plainly."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("default", regen.RegenWarning)
            warnings.showwarning = _show_warning
            try:
                return command(*args, **kwargs)
            except CohortValidationError as error:
                click.echo(str(error), err=True)
                problems_file = kwargs.get("problems_file")
                if problems_file:
                    error.problems.to_csv(problems_file, index=False)
                    click.echo(f"\nAll problems written to {problems_file}", err=True)
                sys.exit(1)
            except click.ClickException:
                raise  # click prints usage errors itself (exit 2)
            except (RegenError, OSError) as error:
                if os.environ.get("REGEN_DEBUG"):
                    raise
                click.echo(f"error: {error}", err=True)
                sys.exit(1)
            except Exception as error:  # a bug in regen, not the user's doing
                if os.environ.get("REGEN_DEBUG"):
                    raise
                click.echo(f"internal error: {type(error).__name__}: {error}\nThis is a bug in "
                           "regen, not in your data; rerun with REGEN_DEBUG=1 to see where it "
                           "happened and report it.", err=True)
                sys.exit(3)

    return wrapper


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """regen's warnings as one plain line on stderr; others as Python shows them."""
    if issubclass(category, regen.RegenWarning):
        click.echo(f"warning: {message}", err=True)
    else:
        click.echo(warnings.formatwarning(message, category, filename, lineno, line), err=True,
                   nl=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(regen.__version__, prog_name="regen")
def main() -> None:
    """Nerve recovery after cryoneurolysis: validate follow-up tables, build episodes,
    simulate cohorts."""


def _read(path: Path, baseline_window_days: int, max_follow_up_days: int) -> regen.Cohort:
    return regen.read_cohort(path, baseline_window_days=baseline_window_days,
                             max_follow_up_days=max_follow_up_days)


_path_argument = click.argument("path", type=click.Path(path_type=Path))
def _window_options(command):
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
@_user_errors
def validate(path: Path, baseline_window_days: int, max_follow_up_days: int,
             problems_file: Path | None) -> None:
    """Check the follow-up tables in PATH and print the flow.

    PATH is a folder with patients, treatments and visits (.csv or .parquet)
    or one .xlsx workbook. Exits 0 when the data are usable, 1 when not.
    """
    cohort = _read(path, baseline_window_days, max_follow_up_days)
    click.echo(format_flow(cohort, path))
    n = len(cohort.warnings)
    click.echo("\nThe data are usable" + (f" ({n} warning{'s' if n > 1 else ''} above)." if n else "."))


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
@click.option("--exclusions", "exclusions_file", type=click.Path(path_type=Path),
              help="Also write the treatments without an episode, with reasons.")
@_window_options
@_user_errors
def episodes(path: Path, outcome: str, output: Path, threshold: float,
             response_window: tuple[int, int], exclusions_file: Path | None,
             baseline_window_days: int, max_follow_up_days: int) -> None:
    """Write one interval-censored episode per treatment in PATH."""
    _check_suffix(output)
    if exclusions_file:
        _check_suffix(exclusions_file)
    cohort = _read(path, baseline_window_days, max_follow_up_days)
    table, excluded = cohort.episodes(outcome, threshold=threshold,
                                      response_window=response_window, with_exclusions=True)
    _write(table, output)
    click.echo(f"{len(table)} {outcome} episodes written to {output}; "
               f"{len(excluded)} treatment(s) without an episode.")
    for reason, n in excluded["reason"].value_counts().items():
        click.echo(f"  {reason}: {n}")
    if exclusions_file:
        _write(excluded, exclusions_file)
        click.echo(f"Exclusions written to {exclusions_file}")


@main.command()
@click.option("-n", "--patients", "n_patients", type=click.IntRange(min=1), required=True,
              help="Number of patients.")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Folder to write patients, treatments and visits into.")
@click.option("--seed", type=int, default=None, help="Random seed (same seed, same files).")
@click.option("--format", "file_format", type=click.Choice(["csv", "parquet", "xlsx"]),
              default="csv", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite cohort files already in the folder.")
@_user_errors
def simulate(n_patients: int, output: Path, seed: int | None, file_format: str,
             force: bool) -> None:
    """Write a synthetic cohort with a known truth (see regen.simulate)."""
    existing = sorted(p.name for p in output.glob("*") if p.is_file()
                      and p.stem.lower() in ("patients", "treatments", "visits", "cohort"))
    if existing and not force:
        raise click.UsageError(f"{output} already holds {', '.join(existing)}; choose an empty "
                               "folder, or add --force to overwrite them")
    sim = regen.simulate.cohort(n_patients, seed=seed)
    written = sim.write(output, format=file_format)
    click.echo(f"{len(sim.patients)} patients, {len(sim.treatments)} treatments, "
               f"{len(sim.visits)} visits written to {written}")


@main.command()
@click.option("--data", type=click.Path(path_type=Path), default=Path("data/example"),
              show_default=True, help="Cohort to run on.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("demo_output"),
              show_default=True, help="Folder for the outputs.")
@_user_errors
def demo(data: Path, out: Path) -> None:
    """Run the main job on the example cohort: validate, flow, episodes, recovery medians."""
    cohort = regen.read_cohort(data)
    click.echo(format_flow(cohort, data))
    out.mkdir(parents=True, exist_ok=True)
    cohort.flow().to_csv(out / "flow.csv", index=False)
    cohort.exclusions.to_csv(out / "exclusions.csv", index=False)
    cohort.summary().to_csv(out / "summary_by_nerve.csv")
    medians = []
    for outcome in ("numbness", "relief"):
        episodes = cohort.episodes(outcome)
        episodes.to_csv(out / f"{outcome}_episodes.csv", index=False)
        fit = regen.turnbull(episodes, by="nerve", n_bootstrap=200, seed=2026,
                             cluster="patient_id")
        table = fit.quantile([0.25, 0.5, 0.75]).assign(outcome=outcome)
        medians.append(table.assign(episodes=table["nerve"].map(fit.n)))
    medians = pd.concat(medians, ignore_index=True)
    medians.to_csv(out / "npmle_quantiles_by_nerve.csv", index=False)
    click.echo("\n" + format_medians(medians))
    click.echo(f"\nWritten to {out}/: numbness_episodes.csv, relief_episodes.csv, "
               "exclusions.csv, flow.csv, summary_by_nerve.csv, npmle_quantiles_by_nerve.csv")


def _check_suffix(path: Path) -> None:
    if path.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise click.BadParameter(f"cannot write {path.name}: use a .csv or .parquet file name")


def _write(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def format_medians(quantiles: pd.DataFrame) -> str:
    """Median days by outcome and nerve, with the bootstrap 95% interval and the quartiles."""
    lines = ["Median days (Turnbull NPMLE, 95% bootstrap interval over patients; quartiles).",
             "Between two visits the data cannot date the change; times there are interpolated."]
    labels = {"numbness": "until numbness fades", "relief": "until relief ends (responders)"}
    for outcome, part in quantiles.groupby("outcome", sort=False):
        lines.append(f"  {labels[outcome]}")
        for nerve, rows in part.groupby("nerve", sort=True):
            by_q = rows.set_index("q")
            median = by_q.loc[0.5]
            lines.append(
                f"    {nerve:<28}{_days(median['time']):>6}  ({_days(median['ci_lower'])}–"
                f"{_days(median['ci_upper'])})  quartiles {_days(by_q.loc[0.25, 'time'])}–"
                f"{_days(by_q.loc[0.75, 'time'])}  n={int(median['episodes'])}")
    return "\n".join(lines)


def _days(value: float) -> str:
    return "not reached" if value == float("inf") else f"{value:.0f}"


def format_flow(cohort: regen.Cohort, path: Path) -> str:
    """The flow from files to episodes as indented text."""
    flow = cohort.flow()
    width = 56

    def line(label: str, count: int, indent: int = 2, note: str = "") -> str:
        return f"{' ' * indent}{label:<{width - indent}}{count:>8}{note}"

    def get(step: str, outcome: str = "") -> int:
        rows = flow[(flow["step"] == step) & (flow["outcome"] == outcome)]
        return int(rows["count"].sum())

    lines = [f"Cohort {path}", "  files: " + ", ".join(s.name for s in cohort.sources), ""]
    lines.append(line("patients", get("patients")))
    lines.append(line("with at least one treatment", get("patients_with_treatment"), 4))
    lines.append(line("treatments", get("treatments")))
    lines.append(line("visits", get("visits")))
    for _, row in flow[flow["step"] == "visits_excluded"].iterrows():
        lines.append(line(f"excluded: {row['reason']}", row["count"], 4))
    for outcome in ("numbness", "relief"):
        part = flow[flow["outcome"] == outcome]
        lines.append("")
        lines.append(f"{outcome} episodes")
        if outcome == "relief":
            assessed, responders = get("assessed_for_response", outcome), get("responders", outcome)
            rate = f"  ({responders / assessed:.0%} of {assessed} assessed)" if assessed else ""
            lines.append(line("assessed for response", assessed))
            lines.append(line("responders", responders, note=rate))
        for _, row in part[part["step"] == "treatments_excluded"].iterrows():
            lines.append(line(f"no episode: {row['reason']}", row["count"]))
        lines.append(line("episodes", get("episodes_total", outcome)))
        for _, row in part[part["step"] == "episodes"].iterrows():
            lines.append(line(row["reason"], row["count"], 4))
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    main()
