"""GPU routing of ``batch segment --gpu`` (#17): real ``dask scheduler`` and two ``dask
worker`` processes on 127.0.0.1, one started with ``--resources GPU=1`` (no GPU needed:
Dask's resources are labels, https://distributed.dask.org/en/stable/resources.html). Every
segment task must run on the tagged worker; without a tagged worker the batch refuses
(exit 2) instead of waiting for ever."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from batch_cohort import ingest, threshold_model
from test_batch_dask import _start, _stop

pytestmark = pytest.mark.postgres

BIN = Path(sys.executable).parent


def _worker(address: str, tmp: Path, name: str, *extra: str):
    return _start([str(BIN / "dask"), "worker", address, "--host", "127.0.0.1",
                   "--nthreads", "1", "--no-nanny", "--no-dashboard", "--memory-limit", "2GiB",
                   "--name", name, *extra], tmp / f"{name}.log")


def _addresses(scheduler: str, n: int) -> dict[str, str]:
    """Worker name → address, once ``n`` workers have joined."""
    from distributed import Client

    with Client(scheduler, timeout="30s") as client:
        client.wait_for_workers(n, timeout=60)
        return {w["name"]: addr for addr, w in client.scheduler_info()["workers"].items()}


def test_segment_tasks_run_only_on_the_worker_tagged_gpu(backend, cohort_dir, tmp_path):
    if backend != "postgres":
        pytest.skip("a remote cluster needs PostgreSQL")
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_batch import BatchTask

    data, ids = cohort_dir
    ingest(data)
    model = threshold_model(tmp_path / "model", data / ids[0] / "TP1" / "PT")
    sched_file = tmp_path / "scheduler.json"
    procs = []
    try:
        procs.append(_start([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port",
                             "0", "--no-dashboard", "--scheduler-file", str(sched_file)],
                            tmp_path / "scheduler.log"))
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        procs.append(_worker(address, tmp_path, "cpu"))
        _addresses(address, 1)

        cmd = [str(BIN / "oncohybrid"), "batch", "segment", "--model", str(model), "--all",
               "--scheduler", address, "--gpu", "--json"]
        refused = subprocess.run(cmd, capture_output=True, timeout=300)
        assert refused.returncode == 2 and refused.stdout == b""
        assert b"--resources GPU=1" in refused.stderr

        procs.append(_worker(address, tmp_path, "gpu", "--resources", "GPU=1"))
        workers = _addresses(address, 2)
        done = subprocess.run(cmd, capture_output=True, timeout=300)
        assert done.returncode == 0, done.stderr.decode()
        doc = json.loads(done.stdout)
        assert doc["summary"] == {"done": 4, "failed": 0, "skipped": 0}
        with session_scope() as s:
            ran_on = s.execute(sa.select(BatchTask.worker).where(
                BatchTask.status == "done")).scalars().all()
            stopped = s.execute(sa.select(BatchTask.status, BatchTask.error).where(
                BatchTask.status == "cancelled")).all()
        assert ran_on and set(ran_on) == {workers["gpu"]}
        # the refused run left no task queued for ever: each says why it never ran
        assert len(stopped) == 4 and all("--resources GPU=1" in e for _s, e in stopped)
    finally:
        for proc in reversed(procs):
            _stop(proc)
