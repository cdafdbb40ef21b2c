"""``regen plan SPEC.toml``: power and precision of a study design, by simulation."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from regen.cli.common import echo, force_option, user_errors

__all__ = ["plan"]

#: What ``regen plan`` writes in its output folder.
PLAN_FILES = ("power.csv", "simulations.parquet", "power.png")


@click.command()
@click.argument("spec_file", metavar="SPEC.toml",
                type=click.Path(path_type=Path, dir_okay=False))
@click.option("-o", "--output", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder for power.csv, simulations.parquet, power.png and the checkpoint "
                   "[default: <SPEC>_plan in the current folder].")
@click.option("--n-sim", type=click.IntRange(min=1), default=None,
              help="Simulated studies per design point [default: the file's n_sim, or 1000].")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="The plan's seed [default: the file's seed, or 0].")
@click.option("--min-power", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=None, help="Also print the smallest n_patients of the grid reaching this "
                                 "power, for each visit schedule (or other grid value).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Run on an existing dask cluster (tcp://host:8786) instead of starting one "
                   "on this machine.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes of the cluster started here [default: one per core].")
@click.option("--serial", is_flag=True,
              help="Run every simulation in this process, without dask (small plans, "
                   "debugging).")
@click.option("--no-checkpoint", is_flag=True,
              help="Do not keep finished simulations in <output>/checkpoint (an interrupted "
                   "plan then starts again from nothing).")
@force_option
@user_errors
def plan(spec_file: Path, output: Path | None, n_sim: int | None, seed: int | None,
         min_power: float | None, scheduler: str | None, workers: int | None, serial: bool,
         no_checkpoint: bool, force: bool) -> None:
    """Simulate studies under the design in SPEC.toml and print their power table.

    SPEC.toml names the simulator's design, a grid over it (sample size x visit
    schedule x effect size, ...), the analysis and how many studies to simulate
    (docs/planning.md; examples in data/plans/). The simulations run as dask tasks
    on every core of this machine, or on the cluster at --scheduler; the result is
    the same for a seed whatever the workers. Finished simulations are kept in
    <output>/checkpoint: the same command run again after an interruption goes on
    where it stopped.
    """
    import dataclasses

    from regen._write import Outputs
    from regen.planning import SERIAL, read_spec
    from regen.planning import plan as run_plan

    if serial and (scheduler or workers):
        raise click.UsageError("--serial runs in this process: give neither --scheduler nor "
                               "--workers with it")
    if scheduler and workers:
        raise click.UsageError("--workers sizes the cluster started here; an existing cluster "
                               "(--scheduler) has its own")
    spec = read_spec(spec_file)
    changes = {k: v for k, v in (("n_sim", n_sim), ("seed", seed)) if v is not None}
    spec = dataclasses.replace(spec, **changes)
    output = output or Path(f"{spec_file.stem}_plan")
    outputs = Outputs(inputs=[spec_file], force=force)
    folder = outputs.folder(output)
    paths = outputs.files(folder / name for name in PLAN_FILES)
    checkpoint = None if no_checkpoint else outputs.folder(folder / "checkpoint")
    client = SERIAL if serial else scheduler
    echo(f"{spec.n_sim} studies x {len(spec.points)} design point(s) = "
         f"{spec.n_sim * len(spec.points):,} simulations"
         + ("" if serial else f" on {'the cluster at ' + scheduler if scheduler else 'this machine'}"))
    try:
        result = run_plan(spec, client=client, n_workers=workers, checkpoint=checkpoint,
                          force=force)
    except KeyboardInterrupt:
        echo("\nInterrupted." + ("" if checkpoint is None else
                                 " Run the same command again to go on where it stopped."),
             err=True)
        sys.exit(130)
    info = result.info
    echo(f"Ran {spec.n_sim * len(spec.points) - info.resumed:,} simulations in "
         f"{info.wall_seconds:.1f} s on {info.workers} worker(s)"
         + (f" ({info.resumed:,} read from the checkpoint)" if info.resumed else "")
         + (f"; workers busy {info.efficiency:.0%} of the time" if info.resumed == 0 else "")
         + "\n")
    echo(result.to_text(min_power))
    outputs.write_table(result.table, paths[0])
    outputs.write_table(result.simulations, paths[1])
    echo(f"\nTable: {paths[0]}\nEvery simulation: {paths[1]}")
    _figure(result, outputs, paths[2])


def _figure(result, outputs, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from regen.plot import power

    grid = result.spec.grid
    measure = "median_ci_width" if result.spec.analysis.name == "median" else (
        "type_i_error" if result.table["null"].all() else "power")
    if "n_patients" not in grid or len(grid) > 2:
        echo("No figure: it draws n_patients along x with at most one other grid key "
             "(draw others with regen.plot.power).")
        return
    target = {"power": 0.8, "type_i_error": result.spec.alpha}.get(measure)
    table = result.table[~result.table["null"]] if measure == "power" else result.table
    if table.empty:
        return
    ax = power(table, measure=measure, target=target,
               title=f"{result.spec.analysis.name}: {measure.replace('_', ' ')}")
    outputs.save_figure(ax.figure, path)
    plt.close(ax.figure)
    echo(f"Figure: {path}")
