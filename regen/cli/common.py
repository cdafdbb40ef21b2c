"""What every ``regen`` command shares: printing literally, turning errors into one message
and an exit code, reading a cohort within the limits the options set, and the options
themselves."""

from __future__ import annotations

import functools
import os
import sys
import warnings
from pathlib import Path

import click

import regen
from regen.defaults import (
    DEFAULT_BASELINE_WINDOW_DAYS,
    DEFAULT_MAX_FOLLOW_UP_DAYS,
    LIMIT_OPTIONS,
    LIMIT_UNITS,
    OUTCOME_NAMES,
    READ_LIMITS,
    RELIEF_CONFIRM,
)
from regen.exceptions import CohortValidationError, OutputError, RegenError, RegenWarning

__all__ = ["OUTCOMES", "check_suffix", "check_window", "confirm_option", "echo", "force_option",
           "limit_options", "path_argument", "read", "relief_options", "show_warning",
           "user_errors", "window_options"]


OUTCOMES = click.Choice(list(OUTCOME_NAMES))

def echo(message: object = "", *, err: bool = False, nl: bool = True) -> None:
    """Print a message with its control characters escaped (see :func:`regen._write.printable`):
    a nerve name or a file name holding an ANSI escape is shown, not obeyed."""
    from regen._write import printable

    click.echo(printable(str(message)), err=err, nl=nl)

def user_errors(command):
    """Turn regen's errors into one message and exit code 1 (output paths refused: 2); show
    data warnings plainly."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("default", RegenWarning)
            warnings.showwarning = show_warning
            try:
                return command(*args, **kwargs)
            except CohortValidationError as error:
                echo(error, err=True)
                sys.exit(1)
            except OutputError as error:
                raise click.UsageError(_printable(str(error))) from None  # exit 2
            except click.ClickException as error:  # click prints usage errors itself (exit 2)
                error.message = _printable(error.message)  # it may quote a model file's text
                raise
            except Exception as error:
                if os.environ.get("REGEN_DEBUG"):
                    raise
                if _users(error):
                    echo(f"error: {error}", err=True)
                    sys.exit(1)
                # a bug in regen, not the user's doing
                echo(f"internal error: {type(error).__name__}: {error}\nThis is a bug in "
                      "regen, not in your data; rerun with REGEN_DEBUG=1 to see where it "
                      "happened and report it.", err=True)
                sys.exit(3)

    return wrapper

def _printable(text: str) -> str:
    from regen._write import printable

    return printable(text)

def _users(error: Exception) -> bool:
    """Whether an error is the user's to fix: regen's own errors, files, and values or
    formulas the user gave (formulaic's errors; formulaic is loaded by then if it raised)."""
    if isinstance(error, RegenError | OSError | ValueError):
        return True
    formulaic = sys.modules.get("formulaic.errors")
    return formulaic is not None and isinstance(error, formulaic.FormulaicError)

def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """regen's warnings as one plain line on stderr; others as Python shows them."""
    if issubclass(category, RegenWarning):
        echo(f"warning: {message}", err=True)
    else:
        echo(warnings.formatwarning(message, category, filename, lineno, line), err=True,
              nl=False)

force_option = click.option(
    "--force", is_flag=True,
    help="Replace output files that regen did not write, or that were changed since it did "
         "(never an input).")

def read(path: Path, baseline_window_days: int = DEFAULT_BASELINE_WINDOW_DAYS,
          max_follow_up_days: int = DEFAULT_MAX_FOLLOW_UP_DAYS, *,
          strict: bool = False) -> regen.Cohort:
    """The cohort in PATH, read within the limits the command's options set."""
    limits = click.get_current_context().meta.get("regen_limits", {})
    return regen.read_cohort(path, baseline_window_days=baseline_window_days,
                             max_follow_up_days=max_follow_up_days,
                             limits=regen.ReadLimits(**limits), strict=strict)

path_argument = click.argument("path", type=click.Path(path_type=Path))

confirm_option = click.option(
    "--confirm", type=click.IntRange(min=1), default=RELIEF_CONFIRM, show_default=True,
    help="Relief: relief ends at the first of this many consecutive unrelieved visits (the "
         "last visit of the follow-up counts alone); 1: at the first unrelieved visit.")

def relief_options(command):
    """--threshold, --response-window and --confirm: what counts as relief and when it ends,
    as in Cohort.episodes("relief")."""
    command = confirm_option(command)
    command = click.option(
        "--response-window", nargs=2, type=int, default=(1, 30), show_default=True,
        callback=check_window, metavar="FIRST LAST",
        help="Relief: first and last day after the treatment in which relief must begin "
             "(widen it when the one-month visit falls later, e.g. 1 50).")(command)
    return click.option(
        "--threshold", default=0.5, show_default=True,
        type=click.FloatRange(0, 1, min_open=True, max_open=True),
        help="Relief: share of baseline pain removed.")(command)

def limit_options(command):
    """--max-file-mb, --max-rows, ...: raise the limits at which a crafted or huge file is
    refused (a refusal's message names the option); read passes them on."""
    defaults = READ_LIMITS
    for field, (unit, what) in reversed(LIMIT_UNITS.items()):
        def keep(ctx: click.Context, param, value: int | None, field=field, unit=unit) -> None:
            if value is not None:
                ctx.meta.setdefault("regen_limits", {})[field] = value * unit

        command = click.option(
            LIMIT_OPTIONS[field], type=click.IntRange(min=1), default=None, expose_value=False,
            callback=keep, metavar={1: "N", 1_000: "KB", 1_000_000: "MB"}[unit],
            help=f"{what} [default: {defaults[field] // unit:,}]")(command)
    return command

def window_options(command):
    command = limit_options(command)
    command = click.option(
        "--max-follow-up-days", default=DEFAULT_MAX_FOLLOW_UP_DAYS, show_default=True,
        type=click.IntRange(min=0),
        help="Visits more than this many days after their treatment are errors.")(command)
    return click.option(
        "--baseline-window-days", default=DEFAULT_BASELINE_WINDOW_DAYS, show_default=True,
        type=click.IntRange(min=0),
        help="Visits more than this many days before their treatment are errors.")(command)

def check_window(ctx, param, value: tuple[int, int]) -> tuple[int, int]:
    first, last = value
    if not 1 <= first <= last:
        raise click.BadParameter(f"need 1 ≤ first day ≤ last day, got {first} {last}")
    return value

def check_suffix(path: Path, suffixes=(".csv", ".parquet", ".pq"), option: str = "-o") -> None:
    if path.suffix.lower() not in suffixes:
        endings = " or ".join(s for s in suffixes if s != ".pq")
        raise click.BadParameter(f"cannot write {path.name}: use a {endings} file name",
                                 param_hint=option)
