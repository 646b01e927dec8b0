"""Batch on Dask distributed with PostgreSQL (#17 acceptance).

- Serially, with 1 local worker and with 2 local workers the stored results are identical
  (every category and lesion number to the last digit: the stored JSON texts are equal).
- Real ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1, started and stopped
  by pid: killing the worker (and the batch) mid-run loses no finished task, and the rerun
  completes only the rest.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from batch_cohort import ingest

pytestmark = pytest.mark.postgres

BIN = Path(sys.executable).parent


def _stored(run_pk: int) -> dict[str, str]:
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_batch import BatchTask

    with session_scope() as s:
        rows = s.execute(sa.select(BatchTask.unit_key, BatchTask.status, BatchTask.result_json)
                         .where(BatchTask.run_pk == run_pk)).all()
    assert all(status == "done" for _k, status, _r in rows), rows
    return {k: r for k, _s, r in rows}


def _forget_tasks() -> None:
    """Drop earlier tasks so that the next run computes again instead of skipping."""
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_batch import BatchTask

    with session_scope() as s:
        s.execute(sa.delete(BatchTask))


def test_serial_one_and_two_workers_store_identical_results(backend, cohort_dir):
    if backend != "postgres":
        pytest.skip("multi-worker runs need PostgreSQL")
    from oncohybrid.services.batch import run_batch

    data, ids = cohort_dir
    ingest(data)
    stored = {}
    for workers in (0, 1, 2):
        _forget_tasks()
        report = run_batch("assess", ids, workers=workers)
        assert report.summary() == {"done": 2, "failed": 0, "skipped": 0}
        stored[workers] = _stored(report.run_pk)
    assert stored[0] == stored[1] == stored[2]
    for text in stored[0].values():
        doc = json.loads(text)
        assert doc["criteria"]["percist"]["timepoints"][-1]["overall"]


def _start(args: list[str], log: Path) -> subprocess.Popen:
    fh = open(log, "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _worker(address: str, tmp: Path, name: str) -> subprocess.Popen:
    return _start([str(BIN / "dask"), "worker", address, "--host", "127.0.0.1",
                   "--nthreads", "1", "--no-nanny", "--no-dashboard",
                   "--memory-limit", "2GiB", "--name", name], tmp / f"{name}.log")


def _statuses(run_pk: int | None = None) -> list[tuple[str, str, str | None]]:
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_batch import BatchTask

    with session_scope() as s:
        q = sa.select(BatchTask.unit_key, BatchTask.status, BatchTask.result_json)
        if run_pk is not None:
            q = q.where(BatchTask.run_pk == run_pk)
        return [tuple(r) for r in s.execute(q.order_by(BatchTask.id)).all()]


def test_killed_worker_loses_no_finished_task_and_the_rerun_does_the_rest(
        backend, cohort_dir, tmp_path):
    if backend != "postgres":
        pytest.skip("a remote cluster needs PostgreSQL")
    data, _ids = cohort_dir
    ingest(data)
    env = dict(os.environ)
    sched_file = tmp_path / "scheduler.json"
    scheduler = worker = driver = None
    try:
        scheduler = _start([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                            "--no-dashboard", "--scheduler-file", str(sched_file)],
                           tmp_path / "scheduler.log")
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        worker = _worker(address, tmp_path, "w1")
        cmd = [str(BIN / "oncohybrid"), "batch", "quantify", "--all", "--scheduler", address,
               "--json"]
        driver = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  start_new_session=True)
        # wait for a finished task while others remain, then kill the worker and the batch
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            st = [s for _k, s, _r in _statuses()]
            if "done" in st and ("queued" in st or "running" in st):
                break
            assert driver.poll() is None, driver.stderr.read().decode()
            time.sleep(0.2)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(10)
        before = _statuses()
        finished = {k: r for k, s, r in before if s == "done"}
        assert finished and len(finished) < len(before)
        assert all(r for r in finished.values())  # no finished task without its result
        assert all(r is None for _k, s, r in before if s != "done")  # nothing half-written

        worker = _worker(address, tmp_path, "w2")
        rerun = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr.decode()
        doc = json.loads(rerun.stdout)
        units = [t["unit"] for t in doc["tasks"]]
        assert sorted(units) == sorted(k for k, _s, _r in before)
        for t in doc["tasks"]:
            if t["unit"] in finished:  # reused, not recomputed
                assert (t["status"], t["attempts"]) == ("skipped", 0)
                assert t["result"] == json.loads(finished[t["unit"]])
            else:
                assert t["status"] == "done" and t["attempts"] == 1
        assert doc["summary"] == {"done": len(units) - len(finished), "failed": 0,
                                  "skipped": len(finished)}
    finally:
        for proc in (driver, worker, scheduler):
            _stop(proc)
