"""Migration deid0001 (key store): on the chain, reversible, equal to the models."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import oncohybrid.store.models_deid  # noqa: F401 - registers the key-store tables
from oncohybrid.store.db import alembic_config, get_engine
from oncohybrid.store.models import Base

TABLES = {"deid_patients", "deid_uids"}


def _diff(engine) -> list:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    return [d for d in diff if "deid_" in str(d)]


def test_key_store_migration_matches_models_goes_down_and_up(backend):
    engine = get_engine()
    assert set(sa.inspect(engine).get_table_names()) >= TABLES
    assert _diff(engine) == []
    url = engine.url.render_as_string(hide_password=False)
    with engine.begin() as conn:
        command.downgrade(alembic_config(url, conn), "deid0001-1")
    engine.dispose()
    assert not TABLES & set(sa.inspect(engine).get_table_names())
    with engine.begin() as conn:
        command.upgrade(alembic_config(url, conn), "head")
    engine.dispose()
    assert set(sa.inspect(engine).get_table_names()) >= TABLES
    assert _diff(engine) == []
