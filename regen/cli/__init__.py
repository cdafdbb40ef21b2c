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

from pathlib import Path
from typing import TYPE_CHECKING

import click

import regen
from regen.cli.common import (
    OUTCOMES,
    check_suffix,
    echo,
    force_option,
    limit_options,
    path_argument,
    read,
    relief_options,
    user_errors,
    window_options,
)
from regen.cli.compare import compare
from regen.cli.fit import Crossing, fit, print_trajectory, profiles_for
from regen.cli.plan import plan
from regen.exceptions import CohortValidationError

if TYPE_CHECKING:
    from regen._write import Outputs

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(regen.__version__, prog_name="regen")
def main() -> None:
    """Nerve recovery after cryoneurolysis: validate follow-up tables, build episodes,
    simulate cohorts."""


main.add_command(fit)
main.add_command(compare)
main.add_command(plan)

@main.command()
@path_argument
@window_options
@click.option("--problems", "problems_file", type=click.Path(path_type=Path),
              help="Also write every problem found to this CSV file.")
@click.option("--strict", is_flag=True,
              help="Refuse every value outside its column's range; by default a descriptive "
                   "covariate's (bmi) is set missing with a warning.")
@force_option
@user_errors
def validate(path: Path, baseline_window_days: int, max_follow_up_days: int,
             problems_file: Path | None, strict: bool, force: bool) -> None:
    """Check the follow-up tables in PATH and print the flow.

    PATH is a folder with patients, treatments and visits (.csv or .parquet)
    or one .xlsx workbook. Exits 0 when the data are usable, 1 when not.
    """
    import pandas as pd

    from regen._terminal import format_flow
    from regen._write import Outputs
    from regen.ledger import PROBLEM_COLUMNS

    outputs = Outputs(inputs=[path], force=force)
    if problems_file:
        check_suffix(outputs.file(problems_file), (".csv",), "--problems")
    try:
        cohort = read(path, baseline_window_days, max_follow_up_days, strict=strict)
    except CohortValidationError as error:
        if not problems_file:
            raise
        outputs.write_table(error.problems, problems_file)
        raise CohortValidationError(f"{error}\n\nAll problems written to {problems_file}",
                                    error.problems) from None
    if problems_file:  # this run's problems: none (not a stale list from an earlier run)
        outputs.write_table(pd.DataFrame(columns=PROBLEM_COLUMNS), problems_file)
    echo(format_flow(cohort, path))
    n = len(cohort.warnings)
    echo("\nThe data are usable" + (f" ({n} warning{'s' if n > 1 else ''} above)." if n else "."))
    if problems_file:
        echo(f"No problems: {problems_file} lists none.")

@main.command()
@path_argument
@click.option("--outcome", type=OUTCOMES, default="numbness", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Episodes file to write (.csv or .parquet).")
@relief_options
@click.option("--exclusions", "exclusions_file", type=click.Path(path_type=Path),
              help="Also write the treatments without an episode, with reasons.")
@window_options
@force_option
@user_errors
def episodes(path: Path, outcome: str, output: Path, threshold: float,
             response_window: tuple[int, int], confirm: int, exclusions_file: Path | None,
             baseline_window_days: int, max_follow_up_days: int, force: bool) -> None:
    """Write one interval-censored episode per treatment in PATH."""
    from regen._write import Outputs

    outputs = Outputs(inputs=[path], force=force)
    for file in (output, exclusions_file):
        if file:
            check_suffix(outputs.file(file), option="-o" if file is output else "--exclusions")
    cohort = read(path, baseline_window_days, max_follow_up_days)
    table, excluded = cohort.episodes(outcome, threshold=threshold, response_window=response_window,
                                      confirm=confirm, with_exclusions=True)
    outputs.write_table(table, output)
    echo(f"{len(table)} {outcome} episodes written to {output}; "
          f"{len(excluded)} treatment(s) without an episode.")
    for reason, n in excluded["reason"].value_counts().items():
        echo(f"  {reason}: {n}")
    if exclusions_file:
        outputs.write_table(excluded, exclusions_file)
        echo(f"Exclusions written to {exclusions_file}")

@main.command()
@path_argument
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("report.html"),
              show_default=True, help="The HTML file; report.json and CSV tables go beside it.")
@click.option("--min-group", type=click.IntRange(min=1), default=10, show_default=True,
              help="Nerves with fewer treatments are not reported.")
@click.option("--min-patients", type=click.IntRange(min=1), default=5, show_default=True,
              help="Nerves with fewer different patients are not reported.")
@click.option("--n-bootstrap", type=click.IntRange(min=20), default=200, show_default=True,
              help="Bootstrap samples of patients for the 95% intervals.")
@click.option("--seed", type=int, default=2026, show_default=True)
@click.option("--title", default=None,
              help="The report's title [default: Expected relief after cryoneurolysis].")
@relief_options
@window_options
@force_option
@user_errors
def report(path: Path, output: Path, min_group: int, min_patients: int, n_bootstrap: int,
           seed: int, title: str | None, threshold: float, response_window: tuple[int, int],
           confirm: int, baseline_window_days: int, max_follow_up_days: int,
           force: bool) -> None:
    """Write the practice's expected-relief report for the cohort in PATH.

    One self-contained HTML file (figures embedded, nothing fetched), with the
    same numbers beside it as report.json and CSV tables. No patient or
    treatment identifier is written; a nerve with fewer than --min-group
    treatments or --min-patients patients is not shown.
    """
    from regen._write import Outputs
    from regen.report import relief_report, report_files

    Outputs(inputs=[path], force=force).files(report_files(output))  # refuse before the work
    cohort = read(path, baseline_window_days, max_follow_up_days)
    content = relief_report(cohort, output, min_group=min_group, min_patients=min_patients,
                            n_bootstrap=n_bootstrap, seed=seed, threshold=threshold,
                            response_window=response_window, confirm=confirm, title=title,
                            force=force)
    shown = sum(not row["suppressed"] for row in content["by_nerve"])
    hidden: dict[str, list[str]] = {}
    for row in content["by_nerve"]:
        if row["suppressed"] and row["nerve"] in content["suppressed"]:
            hidden.setdefault(f"not shown ({row['note']})", []).append(row["nerve"])
        elif row["suppressed"]:  # free-text names are only counted, never printed
            hidden.setdefault("not shown", []).append(row["note"])
    echo(f"Report on {shown} nerve(s)" + "".join(
        f"; {why}: {', '.join(nerves)}" for why, nerves in hidden.items()))
    for file in content["files"]:
        echo(f"  {file}")

@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--model", "model_file", type=click.Path(path_type=Path), required=True,
              help="A model saved by 'regen fit --save' (recovery or regeneration).")
@click.option("--history", "history_file", type=click.Path(path_type=Path), default=None,
              help="A CSV file of the patient's earlier episodes (lower, upper in days, the "
                   "model's covariates; patient_id optional): predict their next treatment, "
                   "learning from them. Needs a model fitted with frailty.")
@click.option("--cohort", "cohort_path", type=click.Path(path_type=Path), default=None,
              help="Take the earlier episodes of --patient-id from this cohort (a folder or an "
                   ".xlsx workbook, as 'regen validate' reads).")
@click.option("--patient-id", default=None,
              help="The patient whose earlier episodes to learn from (--cohort; or a --history "
                   "file with a patient_id column).")
@click.option("--outcome", type=OUTCOMES, default=None,
              help="The model's outcome, when its file does not say (needed with --cohort).")
@relief_options
@window_options
@click.option("--json", "as_json", is_flag=True, help="Print the prediction as JSON.")
@click.pass_context
@user_errors
def predict(ctx: click.Context, model_file: Path, history_file: Path | None,
            cohort_path: Path | None, patient_id: str | None, outcome: str | None,
            threshold: float, response_window: tuple[int, int], confirm: int,
            baseline_window_days: int, max_follow_up_days: int, as_json: bool) -> None:
    """Expected relief or numbness duration for one patient.

    Give the patient's values as options named after the model's covariates,
    e.g. --nerve greater_occipital --age 52 --diabetes no (--distance-mm 80 for
    the kinetics model). Missing or unknown values are listed with what the
    model needs.

    With --history FILE (or --cohort PATH --patient-id ID) the prediction is for
    the patient's next treatment, learned from their earlier ones: values not
    given are those of the latest earlier treatment, and the treatment number is
    the latest + 1. The relief and window options apply to --cohort.
    """
    import warnings

    from regen._terminal import strict_json
    from regen.exceptions import RegenWarning
    from regen.predict import (
        check_learns_from_history,
        expected_duration,
        heading,
        patient_history,
        read_history,
        sentence,
    )

    values = _pairs(ctx.args)
    if history_file is not None and cohort_path is not None:
        raise click.UsageError("give --history FILE or --cohort PATH, not both")
    if cohort_path is not None and patient_id is None:
        raise click.UsageError("--cohort needs --patient-id ID: the patient whose earlier "
                               "treatments to learn from")
    if patient_id is not None and history_file is None and cohort_path is None:
        raise click.UsageError("--patient-id goes with --cohort PATH (or --history FILE)")
    model = regen.load_model(model_file)
    if outcome is not None and getattr(model, "outcome", None) not in (None, outcome):
        raise click.UsageError(f"the model was fitted on {model.outcome}, not {outcome}")
    history = None
    if history_file is not None or cohort_path is not None:
        try:
            check_learns_from_history(model)
        except regen.ModelError as error:
            raise click.UsageError(str(error)) from None
    if cohort_path is not None:
        if outcome is None and model.outcome is None:
            raise click.UsageError("the model file does not say which outcome it was fitted "
                                   "on: give --outcome relief or --outcome numbness")
        with warnings.catch_warnings(record=True) as caught:  # they may name other patients
            warnings.simplefilter("always", RegenWarning)
            cohort = read(cohort_path, baseline_window_days, max_follow_up_days)
            try:
                history = patient_history(cohort, model, patient_id, outcome=outcome,
                                          threshold=threshold, response_window=response_window,
                                          confirm=confirm)
            except ValueError as error:
                raise click.UsageError(str(error)) from None
        ours = [w for w in caught if issubclass(w.category, RegenWarning)]
        for w in caught:
            if w not in ours:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if ours:
            echo(f"note: the cohort gave {len(ours)} warning(s) about its data, not shown here "
                 f"(they may name other patients); 'regen validate {cohort_path}' lists them.",
                 err=True)
    elif history_file is not None:
        limits = regen.ReadLimits(**ctx.meta.get("regen_limits", {}))
        try:
            history = read_history(history_file, model, patient_id=patient_id, limits=limits)
        except regen.CohortValidationError:
            raise
        except ValueError as error:  # no row of --patient-id
            raise click.UsageError(str(error)) from None
    try:
        result = expected_duration(model, values, history=history)
    except regen.ModelError:
        raise
    except ValueError as error:  # the profile does not fit the model: a usage error
        raise click.UsageError(str(error)) from None
    if result["outcome"] is None and outcome is not None:
        result["outcome"] = outcome
    if as_json:
        echo(strict_json(result, indent=1))
        return
    echo(heading(result))
    echo(sentence(result))

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
@force_option
@user_errors
def simulate(n_patients: int, output: Path, seed: int | None, file_format: str,
             force: bool) -> None:
    """Write a synthetic cohort with a known truth (see regen.simulate)."""
    from regen._write import Outputs

    Outputs(force=force).folder(output)
    sim = regen.simulate.cohort(n_patients, seed=seed)
    written = sim.write(output, format=file_format, force=force)
    echo(f"{len(sim.patients)} patients, {len(sim.treatments)} treatments, "
          f"{len(sim.visits)} visits written to {written}")

@main.command()
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Cohort to run on [default: the example cohort, written to "
                   "OUT/example_cohort: the repository's data/example, simulated, so the demo "
                   "runs wherever regen is installed].")
@click.option("--out", type=click.Path(path_type=Path), default=Path("demo_output"),
              show_default=True, help="Folder for the outputs.")
@limit_options
@force_option
@user_errors
def demo(data: Path | None, out: Path, force: bool) -> None:
    """Run the main job on the example cohort: validate, flow, episodes, recovery medians,
    and the pain trajectory with the day pain comes back to 80% of baseline."""
    import pandas as pd

    from regen._terminal import format_fit, format_flow, format_medians
    from regen._write import Outputs
    from regen.report import relief_report, report_files

    if data is None:
        data = out / "example_cohort"
        Outputs(force=force).folder(out)
        regen.simulate.example().write(data, force=force)
        echo(f"The example cohort (300 simulated patients, as in data/example) is in {data}.\n")
    outputs = Outputs(inputs=[data], force=force)
    outputs.folder(out)
    outputs.folder(out / "figures")
    outputs.files([out / name for name in DEMO_FILES] + report_files(out / "report.html")
                  + [out / "figures" / "README.md"]
                  + [out / "figures" / f"{stem}.{suffix}" for stem in DEMO_FIGURES
                     for suffix in ("png", "svg")])
    cohort = read(data)
    echo(format_flow(cohort, data))
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
    echo("\n" + format_medians(medians))
    for outcome in ("numbness", "relief"):
        episodes = cohort.episodes(outcome)
        model, aic = regen.choose_distribution("~ nerve + I((age - 50) / 10) + diabetes", episodes,
                                               cluster="patient_id")
        models[outcome] = model
        profiles = profiles_for(episodes, model, ())
        predicted = model.predict_quantile(profiles, q=[0.25, 0.5, 0.75])
        outputs.write_table(aic, out / f"aft_{outcome}_distributions.csv")
        outputs.write_table(predicted.drop(columns="std_err_log"),
                            out / f"aft_{outcome}_predictions.csv")
        model.save(out / f"aft_{outcome}_model.json", outcome=outcome, force=force)
        echo("\n" + format_fit(model, outcome, profiles, predicted, aic))
    echo("")
    trajectory = print_trajectory(cohort, "pain", None, "~ day", (),
                                 Crossing(None, None, None, "delta", 200, None), "patient_id",
                                 False, out / "trajectory_pain_model.json", force)
    figures = _demo_figures(cohort, curves, models, trajectory, out / "figures", outputs)
    outputs.write_text(out / "figures" / "README.md", GALLERY.format(where=""))
    content = relief_report(cohort, out / "report.html", seed=2026, force=force)
    echo(f"\nWritten to {out}/:\n  tables: numbness_episodes.csv, relief_episodes.csv, "
               "exclusions.csv, flow.csv, summary_by_nerve.csv, npmle_quantiles_by_nerve.csv, "
               "aft_*_distributions.csv, aft_*_predictions.csv\n"
               "  models: aft_*_model.json, trajectory_pain_model.json\n"
               f"  figures: {', '.join(sorted({p.name for p in figures}))} (in figures/, "
               "shown together in figures/README.md)\n"
               f"  the practice report: {content['files'][0].name}, with "
               f"{', '.join(p.name for p in content['files'][1:] if p.parent.name != 'leaflets')}"
               f", and a printable leaflet per nerve in leaflets/")

#: The tables and models ``regen demo`` writes, and its figures (PNG and SVG, in figures/).
DEMO_FILES = ("flow.csv", "exclusions.csv", "summary_by_nerve.csv", "numbness_episodes.csv",
              "relief_episodes.csv", "npmle_quantiles_by_nerve.csv",
              "aft_numbness_distributions.csv", "aft_relief_distributions.csv",
              "aft_numbness_predictions.csv", "aft_relief_predictions.csv",
              "aft_numbness_model.json", "aft_relief_model.json", "trajectory_pain_model.json")

DEMO_FIGURES = ("numbness_curves", "numbness_forest", "relief_curves", "relief_forest",
                "pain_trajectories")

#: The gallery of the demo's figures: written beside them as README.md, and kept as
#: docs/figures.md (``{where}``: the folder of the images, relative to the page).
GALLERY = """# The figures regen draws

What `regen demo` draws (`make demo`: on the example cohort, into `demo_output/figures/` as
PNG and SVG, with this page beside them as `README.md`), so that a reviewer sees every
figure at once. docs/figures.md is this page for the example, its images at half size.

Every figure uses the same colour for a nerve (a colour-blind-safe scheme of nine hues,
`regen.plot.PALETTE`), text from the data is drawn literally, and each function returns its
Axes (or, for the small multiples, its Figure) for further styling; matplotlib options pass
through (`plot.recovery(fit, linewidth=2)`).

## Recovery curves: `plot.recovery` and `plot.recovery_panels`

More than four nerves are drawn as small multiples, one panel per nerve on shared axes,
the other nerves in light grey behind; each panel names its number of episodes (n). The
solid line is the NPMLE with its patient-bootstrap 95% band, the dashed line the AFT model
(its distribution chosen by AIC) for the nerve's typical patient. Up to four groups share
one panel, with the at-risk table under it (dark labels keyed by a mark in the curve's
colour). The practice report draws the same curves with the time axis in weeks
(`weeks=True`).

![Share of treated nerves still numb, one panel per nerve]({where}numbness_curves.png)

![Share of responders still relieved, one panel per nerve]({where}relief_curves.png)

## Effects: `plot.forest`

Time ratios with 95% intervals on a log axis (1: no effect). Categorical covariates are
compared with their reference level, named under the axis; yes/no covariates read
"diabetes: yes"; a scaled covariate gives its unit ("age (per 10 years)").

![Time ratios of the numbness model]({where}numbness_forest.png)

![Time ratios of the relief model]({where}relief_forest.png)

## Trajectories: `plot.trajectories`

The population mean of a score with its 95% band, over a seeded sample of patients' own
visits (one grey line per treated nerve; the legend says how many of how many), on the
score's whole scale, with the threshold whose crossing day the demo reports.

![Pain after the freeze, with 80% of a typical baseline]({where}pain_trajectories.png)
"""

def _demo_figures(cohort: regen.Cohort, curves: dict, models: dict,
                  trajectory: regen.TrajectoryFit, folder: Path, outputs: Outputs) -> list[Path]:
    """The recovery curves (the demo's NPMLE fits, with its AFT model over them at each nerve's
    typical patient), the forest plots of those models and the pain trajectories, as PNG and
    SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from regen import plot

    written = []
    labels = {"numbness": "Still numb", "relief": "Still relieved (responders)"}
    for outcome, label in labels.items():
        model, episodes = models[outcome], cohort.episodes(outcome)
        profiles = model.design.typical_profiles(episodes, "nerve", curves[outcome].groups)
        panels = len(curves[outcome].groups) > plot.PANELS_ABOVE
        draw = plot.recovery_panels if panels else plot.recovery
        drawn = draw(curves[outcome], model, profiles=profiles, ylabel=label)
        written += plot.save(drawn, folder / f"{outcome}_curves", outputs=outputs)
        plt.close(getattr(drawn, "figure", drawn))
        ax = plot.forest(models[outcome], title=f"{outcome.capitalize()}: time ratios")
        written += plot.save(ax, folder / f"{outcome}_forest", outputs=outputs)
        plt.close(ax.figure)
    pain = cohort.measurements("pain").query("day >= 1")
    baseline = float(pain.drop_duplicates("treatment_id")["baseline_pain"].median())
    ax = plot.trajectories(trajectory, pain, profile={"baseline_pain": baseline},
                           threshold=0.8 * baseline,
                           threshold_label=f"80% of a baseline of {baseline:g}")
    written += plot.save(ax, folder / "pain_trajectories", outputs=outputs)
    plt.close(ax.figure)
    return written
