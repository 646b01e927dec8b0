"""A small phantom cohort, written once per session and ingested into each test's workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

phantom = pytest.importorskip("oncohybrid.phantom")


@pytest.fixture(scope="session")
def cohort_dir(tmp_path_factory) -> tuple[Path, list[str]]:
    """Two patients, two PET/CT timepoints each (seed 5, small grids, mixed vendors)."""
    data = tmp_path_factory.mktemp("batch_cohort")
    truth = phantom.generate_cohort(data, patients=2, timepoints=2, vendor="mixed", seed=5,
                                    size="small")
    return data, [p["patient_id"] for p in truth["patients"]]

