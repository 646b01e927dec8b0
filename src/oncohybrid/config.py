"""Workspace settings: where the database and file store live.

``ONCOHYBRID_HOME`` (default ``~/.oncohybrid``) holds the embedded SQLite database
(``oncohybrid.db``) and the file store (``store/``). ``ONCOHYBRID_DATABASE_URL`` points
at another database (e.g. ``postgresql+psycopg://user@host/db``) for a department server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str

    @property
    def store_dir(self) -> Path:
        return self.home / "store"

    @property
    def derived_dir(self) -> Path:
        return self.home / "derived"


def get_settings(home: str | os.PathLike[str] | None = None) -> Settings:
    """Settings from the environment (or an explicit home), creating the workspace."""
    root = Path(home or os.environ.get("ONCOHYBRID_HOME") or Path.home() / ".oncohybrid")
    root = root.expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    url = os.environ.get("ONCOHYBRID_DATABASE_URL") or f"sqlite:///{root / 'oncohybrid.db'}"
    return Settings(home=root, database_url=url)
