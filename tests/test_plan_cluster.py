"""regen.plan on a real dask cluster: two worker processes give the single-process result
bit for bit, and a worker killed mid-run costs only its chunk."""

from __future__ import annotations

import os
import signal
import threading
import time

import pandas as pd
import pytest

import regen
from regen.planning import SERIAL

distributed = pytest.importorskip("distributed")

DESIGN = {"n_patients": 40, "diabetes_velocity_ratio": 0.75, "p_retreat": 0.0,
          "schedule": [14, 28, 56, 84]}
GRID = {"n_patients": [30, 40]}


def _compare(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"),
                                  check_exact=True)


@pytest.fixture(scope="module")
def cluster():
    local = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        silence_logs=50, env={"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    client = distributed.Client(local)
    yield client
    client.close()
    local.close()


@pytest.fixture(scope="module")
def serial():
    return regen.plan(DESIGN, "kinetics", n_sim=16, seed=11, grid=GRID, client=SERIAL)


def test_two_worker_processes_give_the_single_process_result_bit_for_bit(cluster, serial):
    result = regen.plan(DESIGN, "kinetics", n_sim=16, seed=11, grid=GRID, client=cluster,
                        chunk_size=3)
    assert result.info.workers == 2 and result.info.scheduler.startswith("tcp://")
    _compare(result.simulations, serial.simulations)
    pd.testing.assert_frame_equal(result.table, serial.table, check_exact=True)


def test_regen_plan_runs_on_an_existing_cluster_by_its_address(cluster, serial, tmp_path,
                                                                monkeypatch):
    from click.testing import CliRunner

    from regen.cli import main

    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "cluster.toml"
    spec.write_text('n_sim = 16\nseed = 11\n[design]\nn_patients = 40\n'
                    'diabetes_velocity_ratio = 0.75\np_retreat = 0.0\n'
                    'schedule = [14, 28, 56, 84]\n[analysis]\nname = "kinetics"\n'
                    '[grid]\nn_patients = [30, 40]\n')
    address = cluster.scheduler.address
    result = CliRunner().invoke(main, ["plan", str(spec), "--scheduler", address])
    assert result.exit_code == 0, result.output
    assert f"on the cluster at {address}" in result.output and "on 2 worker(s)" in result.output
    written = pd.read_parquet(tmp_path / "cluster_plan" / "simulations.parquet")
    _compare(written, serial.simulations)


def test_a_worker_killed_mid_run_loses_only_its_chunk(cluster, serial, tmp_path):
    folder = tmp_path / "checkpoint"
    before = cluster.run(os.getpid)
    holder: dict = {}

    def run():
        holder["result"] = regen.plan(DESIGN, "kinetics", n_sim=16, seed=11, grid=GRID,
                                      client=cluster, chunk_size=1, checkpoint=folder)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 120
    while not list(folder.glob("chunk-*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.005)
    done_at_kill = len(list(folder.glob("chunk-*.parquet")))
    victim = next(iter(before.values()))
    os.kill(victim, signal.SIGKILL)
    thread.join(timeout=300)
    assert not thread.is_alive(), "the plan did not finish after a worker was killed"
    assert 1 <= done_at_kill < 32, "the worker was not killed mid-run"
    _compare(holder["result"].simulations, serial.simulations)
    # the nanny started a new worker in its place
    deadline = time.monotonic() + 60
    while len(cluster.scheduler_info()["workers"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert victim not in cluster.run(os.getpid).values()
