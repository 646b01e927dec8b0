"""A small ingested phantom cohort (3 patients, 2 PET/CT timepoints, the first assessed),
built once per session; tests make their own studies in it (distinct keys)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from oncohybrid.config import Settings, get_settings


@dataclass
class ResearchWorkspace:
    settings: Settings
    truth: dict[str, Any]
    data_dir: Path

    @property
    def patient_ids(self) -> list[str]:
        return [p["patient_id"] for p in self.truth["patients"]]


@pytest.fixture(scope="session")
def rws(tmp_path_factory: pytest.TempPathFactory) -> ResearchWorkspace:
    from oncohybrid.phantom import generate_cohort
    from oncohybrid.services.assess import assess_patient
    from oncohybrid.services.ingest import Ingestor
    from oncohybrid.services.users import add_user

    home = tmp_path_factory.mktemp("research_home")
    settings = get_settings(home)
    data = home / "phantom"
    truth = generate_cohort(data, patients=3, timepoints=2, vendor="mixed", seed=11,
                            size="small")
    ing = Ingestor(settings)
    try:
        ing.ingest_paths([data])
    finally:
        ing.close()
    assess_patient(truth["patients"][0]["patient_id"], settings=settings)
    for name, role in (("pia", "physician"), ("rita", "researcher"), ("rolf", "researcher"),
                       ("fred", "fellow")):
        add_user(settings, name, f"{name}-strong-pass-42", role, actor="test")
    return ResearchWorkspace(settings, truth, data)
