"""Fixtures of the teaching-file tests: one assessed phantom workspace (the web tests'
demo patient: 2 timepoints, 4 lesions, RECIST 1.1 / PERCIST / Lugano assessed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "web"))

from web_workspace import Workspace, build_workspace  # noqa: E402


@pytest.fixture(scope="session")
def teach_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = build_workspace(tmp_path_factory.mktemp("teachhome"))
    assert ws.assessed, "the record/assess services are needed for teaching cases"
    return ws


@pytest.fixture
def in_ws(teach_ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """The workspace as ``ONCOHYBRID_HOME`` (for the CLI)."""
    monkeypatch.setenv("ONCOHYBRID_HOME", str(teach_ws.settings.home))
    return teach_ws
