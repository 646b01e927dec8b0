"""Fixtures of the fellowship tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def write_applicant(tmp_path: Path):
    def write(data: dict[str, Any] | str, name: str = "applicant.json") -> Path:
        p = tmp_path / name
        p.write_text(data if isinstance(data, str) else json.dumps(data))
        return p

    return write
