"""Fixtures of the browser tests: the reading room served by a real uvicorn process on a
free loopback port (stopped by pid at the end) and Debian's Chromium driven by Playwright.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "web"))

from e2e_browser import ARTIFACTS, ConsoleWatch, serve_workspace  # noqa: E402
from web_workspace import Workspace, build_workspace  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def e2e_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return build_workspace(tmp_path_factory.mktemp("e2ehome"))


@pytest.fixture(scope="session")
def server(e2e_ws: Workspace):
    """``oncohybrid serve`` in a subprocess; yields the base URL."""
    with serve_workspace(e2e_ws.settings.home) as (base, log_path):
        yield base
    # The server log must hold no patient identifiers.
    text = log_path.read_text()
    p = e2e_ws.patient
    for needle in (p["patient_id"], p["patient_name"], p["birth_date"]):
        assert needle not in text, f"server log leaks {needle!r}"


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing (install Debian chromium)")
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=server,
                              accept_downloads=True)
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    pg.watch = ConsoleWatch(pg)
    try:
        yield pg
    finally:
        ctx.close()
