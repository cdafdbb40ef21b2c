"""What the benchmarks share: BLAS threads, CPU and wall timing, and running an R script.

The scripts of this folder import it by name (``python benchmarks/bench_x.py`` puts the
folder on the path).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

#: The variables that set how many threads the BLAS libraries use.
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def peer_options(description: str, sizes: list[int], size_help: str | None = None,
                 r_timeout_help: str = "seconds allowed to one Rscript run"
                 ) -> argparse.ArgumentParser:
    """The options of a benchmark against peers: sizes, repeats, seed, the R peer's switch
    and timeout, and the BLAS threads."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--sizes", type=int, nargs="+", default=sizes, help=size_help)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--no-r", action="store_true", help="skip the R peer(s)")
    parser.add_argument("--r-timeout", type=float, default=1800, help=r_timeout_help)
    parser.add_argument("--blas-threads", type=int,
                        help="rerun with the BLAS libraries limited to this many threads")
    return parser


def use_r(args: argparse.Namespace, notes: list[str]) -> bool:
    """Whether to run the R peer: asked for and ``Rscript`` on the PATH (else a note)."""
    found = not args.no_r and shutil.which("Rscript") is not None
    if not args.no_r and not found:
        notes.append("R peer skipped: no Rscript on the PATH")
    return found


def limit_blas(threads: int | None, script: str) -> None:
    """Rerun ``script`` with the BLAS libraries limited to ``threads`` (they read the
    variables only when loaded), unless they already are."""
    if threads and os.environ.get(BLAS_THREADS[0]) != str(threads):
        sys.stdout.flush()
        env = {**os.environ, **dict.fromkeys(BLAS_THREADS, str(threads))}
        os.execve(sys.executable, [sys.executable, os.path.abspath(script), *sys.argv[1:]], env)


def blas_setting() -> str:
    return f"{BLAS_THREADS[0]}={os.environ.get(BLAS_THREADS[0], '(unset: one per core)')}"


def timed(function, repeats: int) -> tuple[float, float, object]:
    """Median CPU seconds, median wall seconds and the last result of ``repeats`` calls."""
    cpu, wall, result = [], [], None
    for _ in range(repeats):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        result = function()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(cpu), statistics.median(wall), result


def quiet(function):
    """``function`` with its warnings silenced (a benchmark times, it does not judge)."""
    def call():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return function()
    return call


#: R functions a benchmark script times with: ``timed(f)`` runs ``f`` ``repeats`` times and
#: keeps the median CPU (user + system) and elapsed seconds and the last value; ``say``
#: prints the ``RESULT name cpu wall statistic values...`` line :func:`run_r` reads.
R_TIMED = r"""
timed <- function(f) {
  cpu <- numeric(repeats); wall <- numeric(repeats)
  for (r in seq_len(repeats)) {
    t0 <- proc.time(); value <- f(); t1 <- proc.time() - t0
    cpu[r] <- t1[["user.self"]] + t1[["sys.self"]]; wall[r] <- t1[["elapsed"]]
  }
  list(cpu = median(cpu), wall = median(wall), value = value)
}
say <- function(name, t, stat, values = numeric(0))
  cat("RESULT", name, format(c(t$cpu, t$wall, stat, values), digits = 15), "\n")
"""


def run_r(script_text: str, frame: pd.DataFrame, repeats: int, timeout: float, *,
          what: str, **to_csv) -> tuple[dict, bool, str | None]:
    """Run an R script on ``frame`` (written as CSV, its path and ``repeats`` the script's
    arguments). The script prints ``RESULT name cpu wall statistic values...`` lines, and
    ``MISSING`` when a package is not installed. Returns {name: (cpu, wall, statistic,
    values)}, whether a package was missing, and an error note (None when it ran)."""
    with tempfile.TemporaryDirectory() as folder:
        csv, script = Path(folder) / "data.csv", Path(folder) / "fit.R"
        frame.to_csv(csv, index=False, **to_csv)
        script.write_text(script_text)
        try:
            run = subprocess.run(["Rscript", str(script), str(csv), str(repeats)],
                                 capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {}, False, f"R: stopped after {timeout:.0f} s at {what}"
    if run.returncode != 0:
        return {}, False, f"R failed at {what}: {run.stderr.strip()[-500:]}"
    out, missing = {}, False
    for line in run.stdout.splitlines():
        fields = line.split()
        if fields[:1] == ["RESULT"]:
            values = [float(v) for v in fields[2:]]
            out[fields[1]] = (values[0], values[1], values[2], np.array(values[3:]))
        elif fields[:1] == ["MISSING"]:
            missing = True
    return out, missing, None
