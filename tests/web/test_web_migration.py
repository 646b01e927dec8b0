"""Migration web0002: case-insensitive user names, sign-in throttle table; refuses to
merge accounts that differ only in case (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import oncohybrid.store.models_web  # noqa: F401 - registers the web tables
from oncohybrid.store.db import alembic_config, get_engine
from oncohybrid.store.models import Base


def _insert(conn, name: str) -> None:
    conn.execute(sa.text(
        "INSERT INTO web_users (username, password_hash, role, active, created_at) "
        "VALUES (:n, 'x', 'physician', :t, CURRENT_TIMESTAMP)"), {"n": name, "t": True})


def test_web0002_refuses_case_duplicates_then_upgrades(backend):
    engine = get_engine()
    url = engine.url.render_as_string(hide_password=False)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diff if "web_" in str(d)] == []
    with engine.begin() as conn:
        command.downgrade(alembic_config(url, conn), "web0002-1")
    assert "web_login_throttle" not in sa.inspect(engine).get_table_names()
    with engine.begin() as conn:
        for name in ("phys", "PHYS", "Phys", "alice"):
            _insert(conn, name)
    dup = r"'phys' / 'PHYS' / 'Phys'.*nothing was changed"
    with pytest.raises(RuntimeError, match=dup), engine.begin() as conn:
        command.upgrade(alembic_config(url, conn), "head")
    assert "web_login_throttle" not in sa.inspect(engine).get_table_names()
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM web_users WHERE username IN ('PHYS', 'Phys')"))
        command.upgrade(alembic_config(url, conn), "head")
    with engine.connect() as conn:
        keys = dict(conn.execute(sa.text("SELECT username, username_key FROM web_users")).all())
    assert keys == {"phys": "phys", "alice": "alice"}
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO web_users (username, username_key, password_hash, role, active, "
            "created_at) VALUES ('PHYS', 'phys', 'x', 'fellow', :t, CURRENT_TIMESTAMP)"),
            {"t": True})
