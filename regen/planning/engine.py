"""Running a plan's simulations: in this process, or as dask tasks on a cluster.

The simulations are cut into chunks (tasks) of one design point each. Each simulation's
seed depends only on the plan's seed and its number, so the results are the same
whatever the chunks, the workers or the order in which they finish; they are sorted by
(point, simulation) at the end.

With ``dask.distributed`` the default is a :class:`~distributed.LocalCluster` of one
single-threaded worker process per core (each worker's BLAS on one thread); a
``Client`` or a scheduler's address uses an existing cluster unchanged. A worker that
dies loses only the chunk it was running: the scheduler runs it again elsewhere.

A checkpoint folder keeps every finished chunk as a Parquet file (written atomically)
beside ``plan.json``; a plan run again with the same folder reads them and runs only the
simulations not yet done.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from regen._write import Outputs
from regen.planning.analyses import RECORD_COLUMNS, run_chunk
from regen.planning.spec import PlanSpec

__all__ = ["Checkpoint", "RunInfo", "SERIAL", "run"]

#: ``client=SERIAL`` runs every simulation in this process, without dask.
SERIAL = "serial"
#: The most simulations in one task, and the fewest tasks per worker and design point.
MAX_CHUNK = 10
_TASKS_PER_WORKER = 4
#: A chunk file is a few KB; anything far larger in a checkpoint folder is not one.
_MAX_CHUNK_BYTES = 50_000_000
_SINGLE_THREAD_BLAS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                       "MKL_NUM_THREADS": "1"}
#: The cluster started here has no dashboard, so its workers need not sample the tasks'
#: stacks (every 10 ms) nor time their event loop (every 20 ms): in a worker both take the
#: interpreter's lock from the running simulation, which then took 30-80% longer.
_QUIET_WORKERS = {"distributed.worker.profile.enabled": False,
                  "distributed.admin.tick.interval": "1s",
                  "distributed.admin.system-monitor.interval": "5s"}


@dataclass(frozen=True)
class RunInfo:
    """How the plan ran: ``workers``, ``wall_seconds`` (the simulations, without starting a
    cluster), ``compute_seconds`` (CPU time inside the simulations, this run only),
    ``resumed`` (simulations read from the checkpoint), ``scheduler``."""

    workers: int
    wall_seconds: float
    compute_seconds: float
    resumed: int
    scheduler: str

    @property
    def efficiency(self) -> float:
        """Share of the workers' time spent simulating: 1 - task overhead and idling."""
        busy = self.wall_seconds * self.workers
        return self.compute_seconds / busy if busy > 0 else math.nan


class Checkpoint:
    """The finished chunks of one plan in a folder: ``plan.json`` and ``chunk-*.parquet``."""

    def __init__(self, folder: str | os.PathLike[str], spec: PlanSpec, *, force: bool = False):
        self.outputs = Outputs(force=force)
        self.folder = self.outputs.folder(folder)
        self.spec = spec
        self.meta = self.folder / "plan.json"
        if self.meta.exists():
            self._check_same_plan()

    def _check_same_plan(self) -> None:
        try:
            stored = json.loads(self.meta.read_text(encoding="utf-8"))
            fingerprint = stored["fingerprint"]
        except (OSError, ValueError, KeyError, TypeError):
            raise ValueError(f"{self.meta} is not a plan's checkpoint record; choose another "
                             "checkpoint folder") from None
        if fingerprint != self.spec.fingerprint():
            raise ValueError(f"{self.folder} holds the checkpoint of another plan (another "
                             "design, grid, analysis, alpha, seed or regen version); choose "
                             "another checkpoint folder, or delete this one to start again")

    def done(self) -> pd.DataFrame:
        """Every simulation already in the folder (the plan's points only)."""
        frames = []
        for path in sorted(self.folder.glob("chunk-*.parquet")):
            size = path.stat().st_size
            if size > _MAX_CHUNK_BYTES:
                raise ValueError(f"{path}: {size:,} bytes is not a chunk of this plan; "
                                 "delete it to run its simulations again")
            try:
                frame = pd.read_parquet(path)
            except Exception as error:  # pyarrow raises many types for a damaged file
                raise ValueError(f"{path} cannot be read ({type(error).__name__}); delete it "
                                 "to run its simulations again") from None
            if list(frame.columns) != list(RECORD_COLUMNS):
                raise ValueError(f"{path} is not a chunk of this plan (its columns differ); "
                                 "delete it to run its simulations again")
            frames.append(frame)
        if not frames:
            return pd.DataFrame(columns=list(RECORD_COLUMNS))
        done = pd.concat(frames, ignore_index=True)
        return done.drop_duplicates(["point", "sim"]).reset_index(drop=True)

    def start(self) -> None:
        self.outputs.write_json(self.meta, {"fingerprint": self.spec.fingerprint(),
                                            "plan": self.spec.as_dict()})

    def save(self, chunk: pd.DataFrame) -> None:
        point, first = int(chunk["point"].iloc[0]), int(chunk["sim"].iloc[0])
        name = f"chunk-{point:05d}-{first:07d}-{len(chunk):03d}.parquet"
        self.outputs.write_table(chunk, self.folder / name)


def _tasks(spec: PlanSpec, todo: dict[int, list[int]], chunk_size: int) -> list[dict[str, Any]]:
    points, analysis = spec.points, spec.analysis.as_dict()
    tasks = []
    for index, sims in todo.items():
        for start in range(0, len(sims), chunk_size):
            tasks.append({"point_index": index, "point": points[index], "analysis": analysis,
                          "seed": spec.seed, "alpha": spec.alpha,
                          "sims": sims[start:start + chunk_size]})
    return tasks


def chunk_size_for(n_sim: int, workers: int) -> int:
    """Chunks long enough that a task's overhead is small (each simulation takes tens of
    milliseconds or more) and enough of them to keep every worker busy to the end."""
    return max(1, min(MAX_CHUNK, math.ceil(n_sim / (_TASKS_PER_WORKER * max(workers, 1)))))


def run(spec: PlanSpec, *, client=None, n_workers: int | None = None,
        chunk_size: int | None = None, checkpoint: Checkpoint | None = None,
        progress: bool | None = None) -> tuple[pd.DataFrame, RunInfo]:
    """Every simulation of the plan, one row each, sorted by (point, sim); and how it ran."""
    done = checkpoint.done() if checkpoint is not None else pd.DataFrame(
        columns=list(RECORD_COLUMNS))
    done = done[(done["point"] < len(spec.points)) & (done["sim"] < spec.n_sim)]
    finished = set(zip(done["point"].astype(int), done["sim"].astype(int), strict=True))
    todo = {p: [s for s in range(spec.n_sim) if (p, s) not in finished]
            for p in range(len(spec.points))}
    todo = {p: sims for p, sims in todo.items() if sims}
    if checkpoint is not None:
        checkpoint.start()
    n_todo = sum(len(s) for s in todo.values())
    show = sys.stderr.isatty() if progress is None else bool(progress)
    # nothing left to run (a finished plan run again): no cluster to start
    with _Executor(client if n_todo else SERIAL, n_workers) as executor, \
            tqdm(total=n_todo, disable=not show, desc="simulations", unit="study") as bar:
        size = chunk_size or chunk_size_for(spec.n_sim, executor.workers)
        started = time.perf_counter()
        chunks = []
        for chunk in executor.map(run_chunk, _tasks(spec, todo, size)):
            if checkpoint is not None:
                checkpoint.save(chunk)
            chunks.append(chunk)
            bar.update(len(chunk))
        wall = time.perf_counter() - started
        info = RunInfo(workers=executor.workers, wall_seconds=wall,
                       compute_seconds=float(sum(c["seconds"].sum() for c in chunks)),
                       resumed=len(done), scheduler=executor.scheduler)
    frames = [f for f in (done, *chunks) if len(f)]
    table = pd.concat(frames, ignore_index=True) if frames else done
    table = table.sort_values(["point", "sim"], kind="stable").reset_index(drop=True)
    return table.astype({"point": "int64", "sim": "int64", "n_episodes": "int64",
                         "warned": bool, "failed": bool}), info


_MAIN_GUARD = ("Each worker is a new Python process that imports the script which started "
               "it: in a script, call regen.plan under 'if __name__ == \"__main__\":', or "
               "give client='serial' to run in this process.")


def _not_while_starting_a_worker() -> None:
    """A script without a main guard runs regen.plan again in each worker process as it
    starts (multiprocessing's spawn runs the script as ``__mp_main__``): say so, instead of
    starting clusters within clusters."""
    import multiprocessing

    # what multiprocessing itself checks before it starts a process (spawn.py)
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise RuntimeError(f"regen.plan was called while a worker process was starting. "
                           f"{_MAIN_GUARD}")


def _ignore_interrupts() -> None:
    """In a worker of the cluster started here: leave Ctrl-C to the process that started it."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _Executor:
    """Runs tasks in this process (``SERIAL``) or on dask: an existing ``Client``, a
    scheduler's address, or (``None``) a LocalCluster started here and closed after."""

    def __init__(self, client, n_workers: int | None) -> None:
        self.client, self.n_workers = client, n_workers
        self._own: list = []
        self.workers, self.scheduler = 1, SERIAL

    def __enter__(self) -> _Executor:
        if isinstance(self.client, str) and self.client == SERIAL:
            return self
        from distributed import Client, LocalCluster

        if self.client is None:
            import dask

            _not_while_starting_a_worker()
            workers = self.n_workers or os.cpu_count() or 1
            try:
                with dask.config.set(_QUIET_WORKERS):
                    cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                                           processes=True, dashboard_address=None,
                                           silence_logs=50, env=_SINGLE_THREAD_BLAS)
            except RuntimeError as error:
                raise RuntimeError(f"the dask workers did not start ({error}). {_MAIN_GUARD}"
                                   ) from error
            self._own = [cluster, Client(cluster)]
            self.client = self._own[1]
            # Ctrl-C reaches the workers too: this process stops them, without their tracebacks
            self.client.run(_ignore_interrupts)
        elif isinstance(self.client, str):
            self._own = [Client(self.client)]
            self.client = self._own[0]
        elif not isinstance(self.client, Client):
            raise TypeError(f"client must be a distributed.Client, a scheduler address such as "
                            f"'tcp://host:8786', {SERIAL!r} or None, not "
                            f"{type(self.client).__name__}")
        self.scheduler = str(self.client.scheduler.address)
        self.workers = max(1, sum(self.client.nthreads().values()))
        # Each worker loads regen's models once, before the clock starts (seconds each).
        self.client.run(importlib.import_module, "regen.planning.analyses")
        return self

    def map(self, function: Callable, tasks: list) -> Iterable:
        if self.scheduler == SERIAL:
            return (function(task) for task in tasks)
        from distributed import as_completed

        futures = [self.client.submit(function, task, pure=False) for task in tasks]
        return (future.result() for future in as_completed(futures))

    def __exit__(self, *exc) -> None:
        for thing in reversed(self._own):
            thing.close()

