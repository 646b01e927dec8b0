"""Suite-wide fixtures and set-up."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import refdata  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_workspace(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Every test gets its own workspace unless it sets ONCOHYBRID_HOME itself."""
    if "ONCOHYBRID_HOME" not in os.environ:
        monkeypatch.setenv("ONCOHYBRID_HOME", str(tmp_path_factory.mktemp("home")))
    yield


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return refdata.shared_data_dir()


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("CI") and not refdata.shared_data_dir().is_dir():
        raise pytest.UsageError(f"CI: reference data missing at {refdata.shared_data_dir()}")


# One PostgreSQL server per session for every test folder that uses the ``backend`` fixture.
from pg_fixture import backend, pg_server  # noqa: E402, F401
