"""The task graph of ``analyse_and_register`` (#11): same results as the sequential path,
failures raised in the order the sequential path meets them."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time

import numpy as np
import pytest

from oncohybrid.errors import InputError
from oncohybrid.services import assess
from oncohybrid.tracking.course import TimepointInput

phantom = pytest.importorskip("oncohybrid.phantom")


def _inputs(n: int) -> list[TimepointInput]:
    return [TimepointInput(dt.date(2024, 1 + k, 1), [], []) for k in range(n)]


def _fake_phases(monkeypatch, fail: dict[str, set[int]], seen: list[str],
                 slow: dict[str, set[int]] | None = None) -> None:
    """Phases that record what ran and fail where ``fail`` says (phase -> timepoints);
    ``slow`` phases take 50 ms."""
    lock = threading.Lock()

    def phase(name: str, make):  # noqa: ANN001, ANN202
        def run(tp, *args):  # noqa: ANN001, ANN202
            k = tp.date.month - 1
            time.sleep(0.02 if k == 0 else 0.0)  # the baseline finishes last
            if k in (slow or {}).get(name, set()):
                time.sleep(0.05)
            with lock:
                seen.append(f"{name}-{k}")
            if k in fail.get(name, set()):
                raise InputError(f"{name} broken")
            return make(k)
        return run

    monkeypatch.setattr(assess, "load_pet", phase("pet", lambda k: f"pet{k}"))
    monkeypatch.setattr(assess, "load_ct", phase("ct", lambda k: f"ct{k}"))
    monkeypatch.setattr(assess, "place_references", phase("refs", lambda k: f"refs{k}"))
    monkeypatch.setattr(assess, "detect_timepoint", phase("tp", lambda k: f"analysis{k}"))

    def fake_register(base_ct, ct, resolution_mm=None):  # noqa: ANN001, ANN202
        with lock:
            seen.append(f"reg-{ct}")
        if "reg" in fail and int(ct[2:]) in fail["reg"]:
            raise InputError("registration broken")
        return f"reg({base_ct},{ct})"

    monkeypatch.setattr("oncohybrid.imaging.register.register_ct", fake_register)


def test_graph_runs_every_phase_once_and_returns_results_in_timepoint_order(monkeypatch):
    seen: list[str] = []
    _fake_phases(monkeypatch, {}, seen)
    analyses, regs = assess.analyse_and_register("P1", _inputs(3), workers=2)
    assert analyses == ["analysis0", "analysis1", "analysis2"]
    assert regs == [None, "reg(ct0,ct1)", "reg(ct0,ct2)"]
    assert sorted(seen) == sorted([f"{ph}-{k}" for ph in ("pet", "ct", "refs", "tp")
                                   for k in range(3)] + ["reg-ct1", "reg-ct2"])
    # each timepoint's phases in dependency order
    for k in range(3):
        order = [seen.index(f"{ph}-{k}") for ph in ("refs", "tp")]
        assert seen.index(f"pet-{k}") < order[0] < order[1]
        assert seen.index(f"ct-{k}") < order[0]


@pytest.mark.parametrize("fail, expected", [
    ({"ct": {1}, "pet": {2}}, "timepoint 2024-02-01: ct broken"),
    ({"tp": {0}, "pet": {1}}, "timepoint 2024-01-01: tp broken"),
    ({"refs": {2}, "reg": {1}}, "timepoint 2024-03-01: refs broken"),
    ({"pet": {1}, "ct": {1}}, "timepoint 2024-02-01: pet broken"),
])
def test_the_first_failure_in_sequential_order_is_raised(monkeypatch, fail, expected):
    for workers in (1, 2, 4):
        _fake_phases(monkeypatch, fail, [])
        with pytest.raises(InputError, match=f"patient P1, {expected}"):
            assess.analyse_and_register("P1", _inputs(3), workers=workers)


def test_after_a_failed_phase_later_timepoints_are_not_started(monkeypatch):
    seen: list[str] = []
    _fake_phases(monkeypatch, {"ct": {1}}, seen, slow={"pet": {1}})
    with pytest.raises(InputError, match="timepoint 2024-02-01: ct broken"):
        assess.analyse_and_register("P1", _inputs(3), workers=2)
    assert {"pet-0", "ct-0", "refs-0", "tp-0", "ct-1", "pet-1"} <= set(seen)
    assert not any(k.endswith("-2") or k.startswith("reg") for k in seen), seen


def test_a_failed_registration_is_raised_after_the_timepoints_succeeded(monkeypatch):
    _fake_phases(monkeypatch, {"reg": {2}}, [])
    with pytest.raises(InputError, match="registration broken"):
        assess.analyse_and_register("P1", _inputs(3), workers=2)


def test_graph_and_sequential_paths_give_identical_analyses(tmp_path, monkeypatch):
    """A real phantom patient: every phase's output equal bit for bit on 1 and 3 threads."""
    monkeypatch.setenv("ONCOHYBRID_HOME", str(tmp_path / "home"))
    truth = phantom.generate_cohort(tmp_path / "data", patients=1, timepoints=3,
                                    vendor="mixed", seed=5, size="small")
    from oncohybrid.services.ingest import Ingestor

    with Ingestor() as ing:
        ing.ingest_paths([tmp_path / "data"])
    pid = truth["patients"][0]["patient_id"]
    inputs = assess.group_timepoints(pid)
    try:
        seq, seq_regs = assess.analyse_and_register(pid, inputs, workers=1)
        par, par_regs = assess.analyse_and_register(pid, inputs, workers=3)
    finally:
        from oncohybrid.store.db import dispose_engines

        dispose_engines()
    assert len(seq) == len(par) == 3
    for a, b in zip(seq, par, strict=True):
        assert np.array_equal(a.ct.array, b.ct.array) and np.array_equal(a.ct.affine, b.ct.affine)
        assert np.array_equal(a.pet.array, b.pet.array)
        assert a.sul_per_suv == b.sul_per_suv
        assert a.references() == b.references()
        assert a.notes == b.notes and a.segmentation == b.segmentation
        assert [les.label for les in a.lesions] == [les.label for les in b.lesions]
        for la, lb in zip(a.lesions, b.lesions, strict=True):
            assert la.measurements() == lb.measurements() and repr(la.pet) == repr(lb.pet)
            assert np.array_equal(la.pet_mask.array, lb.pet_mask.array)
    # ITK's multi-threaded metric sums differ in the last bits when two registrations
    # share its thread pool (so they did in the thread pool before the graph): equal to 1e-4
    for ra, rb in zip(seq_regs[1:], par_regs[1:], strict=True):
        assert np.allclose(ra.matrix_lps, rb.matrix_lps, rtol=0, atol=1e-4)
    assert os.environ["ONCOHYBRID_HOME"] == str(tmp_path / "home")
