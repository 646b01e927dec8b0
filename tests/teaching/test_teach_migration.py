"""Migration teach0001: on the single chain, reversible, and the schema equals the models."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import oncohybrid.store.models_teach  # noqa: F401 - registers the teaching tables
from oncohybrid.store.db import alembic_config, get_engine
from oncohybrid.store.models import Base

TABLES = {"teach_cases", "teach_revisions", "teach_questions", "teach_collections",
          "teach_collection_items", "teach_quizzes", "teach_answers", "teach_reviews"}


def test_teach_migration_matches_models_and_downgrades(backend):
    engine = get_engine()
    assert set(sa.inspect(engine).get_table_names()) >= TABLES
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diff if "teach_" in str(d)] == []
    url = engine.url.render_as_string(hide_password=False)
    with engine.begin() as conn:
        command.downgrade(alembic_config(url, conn), "teach0001-1")
    assert not TABLES & set(sa.inspect(engine).get_table_names())
    with engine.begin() as conn:
        command.upgrade(alembic_config(url, conn), "head")
    assert set(sa.inspect(engine).get_table_names()) >= TABLES
