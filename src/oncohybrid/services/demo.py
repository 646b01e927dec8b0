"""The main job on the embedded default: a synthetic demo patient, ingested and assessed.

Idempotent: the phantom is generated once under the workspace; re-running ingests nothing
new and re-assesses (automatic observations are updated, manual edits are kept).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oncohybrid.config import Settings, get_settings

#: Criteria the demo assesses: the radiology and the nuclear-medicine standard, and Lugano.
DEMO_CRITERIA = ("recist1.1", "percist", "lugano")


@dataclass
class DemoResult:
    data_dir: Path
    ground_truth: dict[str, Any]
    new: int
    duplicate: int
    skipped: int
    assessments: list[Any] = field(default_factory=list)


def run_demo(
    settings: Settings | None = None,
    *,
    patients: int = 1,
    timepoints: int = 3,
    vendor: str = "siemens",
    seed: int = 7,
    size: str = "clinical",
    criteria: tuple[str, ...] = DEMO_CRITERIA,
) -> DemoResult:
    """Generate the demo phantom (once), ingest it and assess every demo patient."""
    from oncohybrid.phantom import generate_cohort
    from oncohybrid.services.assess import assess_patient
    from oncohybrid.services.ingest import Ingestor

    settings = settings or get_settings()
    data_dir = settings.home / "demo-data"
    truth_file = data_dir / "ground_truth.json"
    if truth_file.exists():
        truth = json.loads(truth_file.read_text())
    else:
        truth = generate_cohort(
            data_dir, patients=patients, timepoints=timepoints, vendor=vendor, seed=seed, size=size
        )
    ingestor = Ingestor(settings)
    try:
        report = ingestor.ingest_paths([data_dir], progress=True)
    finally:
        ingestor.close()
    result = DemoResult(data_dir, truth, report.new, report.duplicate, len(report.skipped))
    for patient in truth["patients"]:
        result.assessments.append(
            assess_patient(patient["patient_id"], list(criteria), settings)
        )
    return result
