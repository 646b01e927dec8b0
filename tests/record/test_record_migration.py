"""The record migration: on the chain, reversible, and the schema equals the models."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import oncohybrid.store.models_record  # noqa: F401 - registers the record tables
from oncohybrid.store.db import alembic_config, get_engine
from oncohybrid.store.models import Base

RECORD_TABLES = {
    "record_timepoints", "record_timepoint_studies", "record_lesions", "record_lesion_roles",
    "record_observations", "record_lesion_lineage", "record_assessments",
}


def _tables(engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_record_migration_matches_models_and_downgrades(backend):
    engine = get_engine()
    assert _tables(engine) >= RECORD_TABLES
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diff if "record_" in str(d)] == []
    url = engine.url.render_as_string(hide_password=False)
    with engine.begin() as conn:
        command.downgrade(alembic_config(url, conn), "record0001-1")
    assert not RECORD_TABLES & _tables(engine)
    with engine.begin() as conn:
        command.upgrade(alembic_config(url, conn), "head")
    assert _tables(engine) >= RECORD_TABLES
