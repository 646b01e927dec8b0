"""Helpers of the browser tests: the served workspace, console watch, sign-in, screenshots."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "e2e"


class ConsoleWatch:
    """Collects console errors and uncaught page errors of one page."""

    def __init__(self, page) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    def check(self, where: str) -> None:
        assert not self.errors, f"{where}: {self.errors}"


def sign_in(page, username: str, password: str) -> None:
    page.goto("/")
    page.wait_for_selector("#username")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_selector("#worklist")


def shot(page, name: str) -> Path:
    """Screenshot ``page`` into the test artifacts once the page has loaded.

    Chromium's ``Page.captureScreenshot`` can fail transiently ("Unable to capture
    screenshot") while a navigation or a compositor frame is in flight on a loaded CI
    machine; the picture is an artifact, not an assertion, so it is retried a few times."""
    from playwright.sync_api import Error

    path = ARTIFACTS / f"{name}.png"
    for attempt in range(4):
        try:
            page.wait_for_load_state("load")
            page.screenshot(path=str(path), full_page=False)
            return path
        except Error as exc:
            if "Unable to capture screenshot" not in str(exc) or attempt == 3:
                raise
            time.sleep(0.5 * (attempt + 1))
    return path


@contextlib.contextmanager
def serve_workspace(home: Path, *, drop_env: tuple[str, ...] = ()) -> Iterator[tuple[str, Path]]:
    """``oncohybrid serve`` on a free loopback port for the workspace ``home``, in a
    subprocess stopped by pid at the end; yields the base URL and the server's log file
    (callers check that the log holds no patient identifier)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, ONCOHYBRID_HOME=str(home))
    for name in drop_env:
        env.pop(name, None)
    exe = Path(sys.executable).with_name("oncohybrid")
    cmd = ([str(exe)] if exe.exists() else
           [sys.executable, "-c", "from oncohybrid.cli.main import app; app()"])
    log_path = Path(home) / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd + ["serve", "--host", "127.0.0.1", "--port", str(port)],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start:\n" + log_path.read_text()[-3000:])
            time.sleep(0.2)
        yield base, log_path
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
