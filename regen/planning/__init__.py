"""Plan a study before collecting it: power, precision and visit schedules by simulation.

:func:`plan` simulates many studies under a design (``regen.simulate.cohort`` or
``regen.simulate.trial``), runs one analysis on each, and summarises every point of a
grid of designs (sample size x visit schedule x effect size, ...): power at ``alpha``,
type-I error where there is no effect, bias, RMSE, median CI width, coverage, and the
shares of fits that warned or failed, each with its Monte-Carlo standard error. The
simulations run as dask tasks (:mod:`regen.planning.engine`); ``regen plan SPEC.toml`` runs a
plan from a file (:func:`read_spec`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from regen.planning.engine import SERIAL, Checkpoint, RunInfo, chunk_size_for, run
from regen.planning.result import PlanResult, summarise
from regen.planning.spec import ANALYSES, MODELS, Analysis, PlanSpec, read_spec

__all__ = ["ANALYSES", "MODELS", "SERIAL", "Analysis", "PlanResult", "PlanSpec", "RunInfo",
           "chunk_size_for", "plan", "read_spec"]


def plan(design: Mapping | PlanSpec, analysis: Analysis | Mapping | str | None = None, *,
         n_sim: int = 1000, grid: Mapping | None = None, seed: int = 0, alpha: float = 0.05,
         client=None, n_workers: int | None = None, chunk_size: int | None = None,
         checkpoint: str | os.PathLike[str] | None = None, force: bool = False,
         progress: bool | None = None) -> PlanResult:
    """Simulate studies under a design and summarise how an analysis performs on them.

    Parameters
    ----------
    design : mapping or PlanSpec
        Arguments of the simulator: ``model`` (``"cohort"``, default, for
        :func:`regen.simulate.cohort`, or ``"trial"`` for :func:`regen.simulate.trial`),
        ``n_patients`` and any other argument but ``seed`` (schedule, jitter_days,
        p_missed, dropout_per_year, nerves, diabetes_velocity_ratio, patient_sd_log,
        hazard_ratio, ...). A :class:`PlanSpec` (from :func:`read_spec`) carries
        everything, and then the other arguments but the running ones are not given.
    analysis : str, mapping or Analysis
        ``"kinetics"``, ``"aft"``, ``"ph"``, ``"logrank"`` or ``"median"``, or a mapping
        with ``name`` and the options of :class:`Analysis` (``term``, ``outcome``,
        ``formula``, ``dist``, ``level``).
    n_sim : int, default 1000
        Simulated studies per design point.
    grid : mapping, optional
        Design keys to lists of values; every combination is a design point, with
        the rest of ``design``.
    seed : int, default 0
        Study ``i``'s seed is the ``i``-th spawned from it, at every design point
        (common random numbers): the results are identical for a seed whatever the
        workers, and a plan with more studies extends one with fewer.
    alpha : float, default 0.05
        Tests reject at ``alpha``; intervals are at level 1 - alpha.
    client : distributed.Client, str or None
        ``None``: a LocalCluster of ``n_workers`` single-threaded worker processes
        (default one per core), started and closed here. A ``Client`` or a scheduler
        address (``"tcp://host:8786"``) uses that cluster. ``"serial"``: in this
        process, without dask.
    n_workers : int, optional
        Workers of the LocalCluster started when ``client`` is None.
    chunk_size : int, optional
        Studies per task; default enough to keep every worker busy, at most 10.
    checkpoint : path, optional
        A folder keeping every finished chunk (Parquet); the same plan run again with
        it runs only what is missing. A folder holding another plan is refused.
    force : bool, default False
        Replace files in ``checkpoint`` that regen did not write.
    progress : bool, optional
        Show a progress bar of the studies done; default: when standard error is a
        terminal.

    Returns
    -------
    PlanResult
        ``table`` (one row per design point), ``simulations`` (one row per study),
        ``min_n(power)``, ``to_text()``; :func:`regen.plot.power` draws it.

    Examples
    --------
    >>> import regen
    >>> result = regen.plan({"n_patients": 60, "diabetes_velocity_ratio": 0.7},
    ...                     "kinetics", n_sim=4, grid={"schedule": [[14, 28, 56], [42, 84]]},
    ...                     client="serial")
    >>> list(result.table["schedule"])
    ['14/28/56', '42/84']
    """
    if isinstance(design, PlanSpec):
        if analysis is not None or grid is not None:
            raise TypeError("a PlanSpec carries its analysis and grid; give neither with it")
        spec = design
    else:
        if analysis is None:
            raise TypeError("plan() needs an analysis: kinetics, aft, ph, logrank or median")
        spec = PlanSpec.build(design, analysis, grid=grid, n_sim=n_sim, seed=seed, alpha=alpha)
    store = Checkpoint(checkpoint, spec, force=force) if checkpoint is not None else None
    sims, info = run(spec, client=client, n_workers=n_workers, chunk_size=chunk_size,
                     checkpoint=store, progress=progress)
    return PlanResult(spec, summarise(spec, sims), sims, info)
