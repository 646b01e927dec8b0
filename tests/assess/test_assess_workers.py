"""The thread pool of ``assess`` (#11): worker count, order of results, first failure."""

from __future__ import annotations

import threading
import time

import pytest

from oncohybrid.errors import InputError
from oncohybrid.services.assess import WORKERS_ENV, _map_ordered, assess_workers


def test_workers_default_to_the_cpus_capped_by_the_tasks(monkeypatch):
    monkeypatch.delenv(WORKERS_ENV, raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert assess_workers(3) == 3
    assert assess_workers(0) == 1
    assert assess_workers(3, workers=1) == 1
    monkeypatch.setenv(WORKERS_ENV, "2")
    assert assess_workers(3) == 2
    monkeypatch.setenv(WORKERS_ENV, "many")
    with pytest.raises(InputError, match=WORKERS_ENV):
        assess_workers(3)


def test_results_keep_the_input_order_whatever_finishes_first():
    def slow_first(k: int) -> tuple[int, str]:
        time.sleep(0.05 if k == 0 else 0.0)
        return k, threading.current_thread().name

    out = _map_ordered(slow_first, range(4), 4)
    assert [k for k, _ in out] == [0, 1, 2, 3]
    assert any(name.startswith("assess") for _, name in out)


def test_the_first_failure_in_input_order_is_raised_as_sequentially():
    def fail(k: int) -> int:
        if k in (1, 2):
            time.sleep(0.05 if k == 1 else 0.0)
            raise InputError(f"timepoint {k}")
        return k

    for workers in (1, 3):
        with pytest.raises(InputError, match="timepoint 1"):
            _map_ordered(fail, range(3), workers)
