"""Synthetic IEC body phantoms written once per session (tests/qc)."""

from __future__ import annotations

import pytest
from iec_cases import EARL1_LIKE, EARL2_LIKE, REFERENCE

from oncohybrid.phantom.iec import write_iec_phantom


@pytest.fixture(scope="session")
def earl1_phantom(tmp_path_factory):
    out = tmp_path_factory.mktemp("iec_earl1")
    return write_iec_phantom(out / "PT", sphere_bq_ml=20000.0, background_bq_ml=2000.0,
                             reference_time=REFERENCE, serial="SN-OLD-1", model="Legacy PET",
                             reconstruction="OSEM 2i 24s", convolution_kernel="GAUSSIAN 8mm",
                             **EARL1_LIKE)


@pytest.fixture(scope="session")
def earl2_phantom(tmp_path_factory):
    out = tmp_path_factory.mktemp("iec_earl2")
    return write_iec_phantom(out / "PT", sphere_bq_ml=16000.0, background_bq_ml=1600.0,
                             reference_time=REFERENCE, serial="SN-DIG-2", model="Digital PET",
                             reconstruction="OSEM 4i 5s PSF TOF", convolution_kernel="NONE",
                             **EARL2_LIKE)
