"""What the study database holds, for the edge (CLI, web): listings and database status.

The command line and the web application reach the database only through services
(docs/architecture.md, enforced by import-linter). This module is that door for the plain
read queries of ``store.queries`` and for the schema revision; it adds no logic of its own.
"""

from __future__ import annotations

from oncohybrid.config import Settings
from oncohybrid.store.db import current_revision, get_engine
from oncohybrid.store.queries import Filters, list_patients, list_series, list_studies

__all__ = [
    "Filters",
    "database_revision",
    "open_database",
    "list_patients",
    "list_series",
    "list_studies",
]


def database_revision(settings: Settings | None = None) -> str | None:
    """Open (and migrate, on first use) the database; return its Alembic revision."""
    return current_revision(get_engine(settings))


def open_database(settings: Settings | None = None) -> None:
    """Open the database, creating or migrating its schema (Alembic) on first use, so that
    a server fails at start-up, not at its first request, when the database is unusable."""
    get_engine(settings)
