"""Helpers of the browser tests: console watch, sign-in, screenshots."""

from __future__ import annotations

from pathlib import Path

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
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
