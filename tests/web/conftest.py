"""Fixtures of the web tests: one assessed phantom workspace per session, HTTP clients."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from web_workspace import PASSWORDS, Workspace, build_workspace, login_client  # noqa: E402


@pytest.fixture(scope="session")
def web_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return build_workspace(tmp_path_factory.mktemp("webhome"))


@pytest.fixture(scope="session")
def web_app(web_ws: Workspace):
    from oncohybrid.web.app import create_app

    return create_app(web_ws.settings)


def _login(app, username: str, password: str):
    return login_client(app, username, password)


@pytest.fixture
def login(web_app, web_ws: Workspace):
    def do(username: str):
        pw = web_ws.demo[1] if username == web_ws.demo[0] else PASSWORDS[username][1]
        return _login(web_app, username, pw)

    return do
