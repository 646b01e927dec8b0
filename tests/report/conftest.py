"""Shared data of the report tests: one small phantom cohort, its report data, a database."""

from __future__ import annotations

from pathlib import Path

import pytest
import report_data
import report_record


@pytest.fixture(scope="session")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """2 patients (responder, progressor with a new lesion) × 2 timepoints, small size."""
    from oncohybrid.phantom import generate_cohort

    root = tmp_path_factory.mktemp("report-phantom")
    truth = generate_cohort(root, patients=2, timepoints=2, vendor="siemens", seed=3,
                            size="small")
    return root, truth


@pytest.fixture(scope="session")
def data_p0(cohort):
    root, truth = cohort
    return report_data.build(root, truth["patients"][0], cohort=truth["patients"])


@pytest.fixture(scope="session")
def data_p1(cohort):
    root, truth = cohort
    return report_data.build(root, truth["patients"][1], cohort=truth["patients"])


@pytest.fixture(scope="session")
def db_settings(cohort, tmp_path_factory: pytest.TempPathFactory):
    """A workspace with the cohort ingested and its longitudinal record filled."""
    from oncohybrid.config import get_settings
    from oncohybrid.services.ingest import Ingestor

    root, truth = cohort
    settings = get_settings(tmp_path_factory.mktemp("report-home"))
    ing = Ingestor(settings)
    try:
        ing.ingest_paths([root])
    finally:
        ing.close()
    uids = {p["patient_id"]: report_record.populate(settings, p) for p in truth["patients"]}
    return settings, uids
