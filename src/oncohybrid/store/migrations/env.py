"""Alembic environment of the study database, configured in code by ``store.db``.

There is no ``alembic.ini``: :func:`oncohybrid.store.db.alembic_config` builds the
configuration and passes an open connection in ``config.attributes["connection"]``.
"""

from __future__ import annotations

import contextlib
import importlib

from alembic import context
from sqlalchemy import create_engine

from oncohybrid.store.models import Base

# Every model module, so autogenerate sees all tables (each area keeps its own module).
for _mod in ("models_pacs", "models_web", "models_record", "models_deid", "models_batch",
             "models_board", "models_teach", "models_research", "models_breast", "models_nm",
             "models_qc", "models_fellowship"):
    with contextlib.suppress(ModuleNotFoundError):  # area absent in this checkout
        importlib.import_module(f"oncohybrid.store.{_mod}")

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade --sql``)."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url"))
        with engine.connect() as conn:
            _run(conn)
        engine.dispose()
    else:
        _run(connection)


def _run(connection) -> None:  # noqa: ANN001 - alembic passes a Connection
    # render_as_batch: SQLite cannot ALTER most things; batch mode rebuilds tables.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
