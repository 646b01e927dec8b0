"""A workspace of two assessed phantom patients (PET/CT, two timepoints), built once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from oncohybrid.config import Settings, get_settings


@dataclass
class BoardWorkspace:
    home: Path
    settings: Settings
    truth: dict[str, Any]

    @property
    def patient_ids(self) -> list[str]:
        return [p["patient_id"] for p in self.truth["patients"]]


@pytest.fixture(scope="session")
def board_ws(tmp_path_factory: pytest.TempPathFactory) -> BoardWorkspace:
    from oncohybrid.phantom import generate_cohort
    from oncohybrid.services.assess import assess_patient
    from oncohybrid.services.ingest import Ingestor
    from oncohybrid.services.users import add_user

    home = tmp_path_factory.mktemp("boardhome")
    settings = get_settings(home)
    truth = generate_cohort(home / "phantom", patients=2, timepoints=2, vendor="mixed",
                            seed=11, size="small")
    ing = Ingestor(settings)
    try:
        ing.ingest_paths([home / "phantom"])
    finally:
        ing.close()
    for p in truth["patients"]:
        assess_patient(p["patient_id"], settings=settings)
    add_user(settings, "fred", "fred-fellow-pass", "fellow", actor="test")
    add_user(settings, "max", "max-mentor-pass", "mentor", actor="test")
    add_user(settings, "rita", "rita-researcher-pw", "researcher", actor="test")
    return BoardWorkspace(home, settings, truth)


@pytest.fixture
def in_ws(board_ws: BoardWorkspace, monkeypatch: pytest.MonkeyPatch) -> BoardWorkspace:
    """Commands of this test run against the shared board workspace."""
    monkeypatch.setenv("ONCOHYBRID_HOME", str(board_ws.home))
    return board_ws
