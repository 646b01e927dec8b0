"""Shared SPECT-CT phantoms for the nm tests (written once per session)."""

from __future__ import annotations

import datetime as dt

import pytest

from oncohybrid.phantom.spect import SpectCycle, SpectPhantom, write_spect_patient


@pytest.fixture(scope="session")
def lu_cycle(tmp_path_factory):
    """A 4-time-point Lu-177 cycle, quantitative (Bq/ml) reconstructions, repositioned."""
    root = tmp_path_factory.mktemp("nm_bqml")
    truth = write_spect_patient(root, SpectPhantom(patient_id="NM-BQML"))
    return root, truth


@pytest.fixture(scope="session")
def lu_counts_two_cycles(tmp_path_factory):
    """Two Lu-177 cycles (4 and 3 time points) in counts, sensitivity 11.5 cps/MBq; the
    left kidney with two-phase clearance."""
    root = tmp_path_factory.mktemp("nm_counts")
    from oncohybrid.phantom.spect import DEFAULT_KINETICS

    # the left kidney clears in two phases (fast 3 h, slow 45 h)
    kinetics = dict(DEFAULT_KINETICS, kidney_left=("bi-exp-clearance", 50.0, 3.0, 70.0, 45.0))
    p = SpectPhantom(patient_id="NM-COUNTS", units="counts", sensitivity_cps_mbq=11.5,
                     kinetics=kinetics,
                     cycles=(SpectCycle(dt.datetime(2026, 1, 5, 10, 30), 7400.0),
                             SpectCycle(dt.datetime(2026, 3, 2, 9, 15), 3700.0,
                                        (6.0, 48.0, 120.0))),
                     frame_duration_ms=15000, frames_in_rotation=64)
    truth = write_spect_patient(root, p)
    return root, truth
