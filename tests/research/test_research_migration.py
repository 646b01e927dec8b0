"""Migration research0001: on the single chain, reversible, and the schema equals the models."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import oncohybrid.store.models_research  # noqa: F401 - registers the research tables
from oncohybrid.store.db import alembic_config, get_engine
from oncohybrid.store.models import Base

TABLES = {"research_studies", "research_dags", "research_members", "research_cohorts",
          "research_cohort_patients", "research_records", "research_clinical",
          "research_crf_forms", "research_crf_values", "research_crf_audit",
          "research_exports"}


def test_research_migration_matches_models_and_downgrades(backend):
    engine = get_engine()
    assert set(sa.inspect(engine).get_table_names()) >= TABLES
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diff if "research_" in str(d)] == []
    url = engine.url.render_as_string(hide_password=False)
    with engine.begin() as conn:
        command.downgrade(alembic_config(url, conn), "research0001-1")
    assert not TABLES & set(sa.inspect(engine).get_table_names())
    with engine.begin() as conn:
        command.upgrade(alembic_config(url, conn), "head")
    assert set(sa.inspect(engine).get_table_names()) >= TABLES
