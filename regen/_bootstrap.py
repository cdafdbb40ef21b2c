"""The one bootstrap runner: seeded, parallel, with a progress bar on a terminal.

Every bootstrap in regen (the NPMLE's cluster bootstrap, the trajectory's parametric
bootstrap) runs its replicates here. Each replicate gets its own seed, spawned from
the user's ``seed``, so the result does not depend on how the replicates are split
between processes (``n_jobs``) or batches.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
from joblib import Parallel, delayed
from tqdm.auto import tqdm

__all__ = ["run_replicates"]


def run_replicates(replicate_batch: Callable, shared, n_bootstrap: int, seed, *,
                   n_jobs: int = 1, progress: bool | None = None, batch_size: int = 25) -> list:
    """Run ``replicate_batch(shared, seeds)`` over batches of per-replicate seeds.

    Parameters
    ----------
    replicate_batch : callable
        ``replicate_batch(shared, seeds) -> list``: one result per seed (a
        :class:`numpy.random.SeedSequence`), in order. Module-level (or a
        ``functools.partial`` of one), so that worker processes can run it.
    shared
        What every replicate reads (arrays of the data and the fit).
    n_bootstrap : int
        Replicates.
    seed : int, SeedSequence or None
        Spawns one seed per replicate.
    n_jobs : int, default 1
        Worker processes (joblib; -1: every core).
    progress : bool, optional
        Show a progress bar; default: only when standard error is a terminal.
    batch_size : int, default 25
        Replicates per task sent to a worker.

    Returns
    -------
    list
        The replicates' results, in the order of their seeds.
    """
    seeds = np.random.SeedSequence(seed).spawn(n_bootstrap)
    batches = [seeds[i:i + batch_size] for i in range(0, n_bootstrap, batch_size)]
    tasks = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(replicate_batch)(shared, batch) for batch in batches)
    show = sys.stderr.isatty() if progress is None else progress
    out: list = []
    with tqdm(total=n_bootstrap, disable=not show, desc="bootstrap", unit="fit") as bar:
        for result in tasks:
            out.extend(result)
            bar.update(len(result))
    return out
