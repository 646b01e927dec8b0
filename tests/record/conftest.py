"""Reuse the storage tests' SQLite/PostgreSQL ``backend`` fixture for the record tests."""

from store.conftest import backend, pg_server  # noqa: F401 - fixtures
