"""Migration record0002 (stored lesion masks): on the chain, reversible, equal to the models."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import oncohybrid.store.models_record  # noqa: F401 - registers the record tables
from oncohybrid.store.db import alembic_config, get_engine
from oncohybrid.store.models import Base

MASK_COLUMNS = {("record_timepoints", "mask_seg_path"),
                ("record_timepoints", "mask_seg_sop_uid"),
                ("record_observations", "mask_segment_number")}


def _columns(engine) -> set[tuple[str, str]]:
    insp = sa.inspect(engine)
    return {(t, c["name"]) for t in ("record_timepoints", "record_observations")
            for c in insp.get_columns(t)}


def _in_use_index_is_partial(engine) -> bool:
    """The one-observation-in-use index must survive the migration (still unique+partial)."""
    idx = {i["name"]: i for i in sa.inspect(engine).get_indexes("record_observations")}
    return bool(idx.get("uq_record_observations_in_use", {}).get("unique"))


def test_mask_migration_matches_models_goes_down_and_up(backend):
    engine = get_engine()
    assert _columns(engine) >= MASK_COLUMNS
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diff if "record_" in str(d)] == []
    url = engine.url.render_as_string(hide_password=False)
    with engine.begin() as conn:
        command.downgrade(alembic_config(url, conn), "record0002-1")
    engine.dispose()
    assert not MASK_COLUMNS & _columns(engine)
    assert _in_use_index_is_partial(engine)
    with engine.begin() as conn:
        command.upgrade(alembic_config(url, conn), "head")
    engine.dispose()
    assert _columns(engine) >= MASK_COLUMNS
    assert _in_use_index_is_partial(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diff if "record_" in str(d)] == []
