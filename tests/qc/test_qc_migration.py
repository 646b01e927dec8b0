"""Migration qc0001: on the single chain, reversible, and the schema equals the models."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import oncohybrid.store.models_qc  # noqa: F401 - registers the QC tables
from oncohybrid.store.db import alembic_config, get_engine
from oncohybrid.store.models import Base

TABLES = {"qc_scanners", "qc_series_links", "qc_results"}


def test_qc_migration_matches_models_and_downgrades(backend):
    engine = get_engine()
    assert set(sa.inspect(engine).get_table_names()) >= TABLES
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diff if "qc_" in str(d)] == []
    url = engine.url.render_as_string(hide_password=False)
    with engine.begin() as conn:
        command.downgrade(alembic_config(url, conn), "qc0001-1")
    assert not TABLES & set(sa.inspect(engine).get_table_names())
    with engine.begin() as conn:
        command.upgrade(alembic_config(url, conn), "head")
    assert set(sa.inspect(engine).get_table_names()) >= TABLES
