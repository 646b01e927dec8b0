"""Shared data of the AI tests: one small phantom PET/CT timepoint."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def phantom_tp(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(PT dir, CT dir) of one small phantom timepoint."""
    from oncohybrid.phantom import generate_cohort

    root = tmp_path_factory.mktemp("ai-phantom")
    truth = generate_cohort(root, patients=1, timepoints=1, vendor="siemens", seed=5,
                            size="small")
    tp = root / truth["patients"][0]["patient_id"] / "TP0"
    return tp / "PT", tp / "CT"
