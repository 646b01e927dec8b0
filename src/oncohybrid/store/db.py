"""Database engines and sessions; the schema is created and upgraded only by Alembic.

The embedded default is one SQLite file in the workspace (``ONCOHYBRID_HOME``), opened
in write-ahead-log mode so that readers (web, CLI ``ls``) never block the writer
(ingest, storage SCP) — https://sqlite.org/wal.html. A department server uses
PostgreSQL through ``ONCOHYBRID_DATABASE_URL`` (driver psycopg 3,
``postgresql+psycopg://user@host/db``).

The first :func:`get_engine` for a URL runs ``alembic upgrade head`` under a lock (a
file lock for SQLite, an advisory lock for PostgreSQL) so that concurrent first uses
do not race to create tables.
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from oncohybrid.config import Settings, get_settings
from oncohybrid.errors import StoreError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

#: Milliseconds a SQLite connection waits for a lock held by another writer.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Arbitrary constant key of the PostgreSQL advisory lock held while migrating.
_PG_MIGRATION_LOCK_KEY = 0x0C0_4B1D

_engines: dict[str, Engine] = {}
_sessionmakers: dict[str, sessionmaker[Session]] = {}
_engines_lock = threading.Lock()


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given without a driver (``postgresql://``)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 - DBAPI objects
    """Per-connection SQLite settings (https://sqlite.org/pragma.html).

    WAL lets readers run beside one writer; ``synchronous=NORMAL`` is durable across
    application crashes in WAL mode (only a power loss can drop the last commits, never
    corrupt); ``busy_timeout`` makes a second writer wait instead of failing.
    """
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def alembic_config(url: str, connection: sa.Connection | None = None) -> Config:
    """Alembic configuration built in code (the package ships no ``alembic.ini``)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # '%' would be read as interpolation by configparser.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    """The revision the code expects (single head: migrations are kept linear)."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Run ``alembic upgrade head`` on ``engine`` under a cross-process lock."""
    head = head_revision()
    if current_revision(engine) == head:
        return
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "sqlite":
        db_path = engine.url.database
        lock_path = Path(db_path + ".migrate.lock") if db_path else None
        with _file_lock(lock_path), engine.begin() as conn:
            command.upgrade(alembic_config(url, conn), "head")
    elif engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            # Transaction-scoped: released at commit; DDL is transactional in PostgreSQL.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK_KEY})
            command.upgrade(alembic_config(url, conn), "head")
    else:
        with engine.begin() as conn:
            command.upgrade(alembic_config(url, conn), "head")


@contextlib.contextmanager
def _file_lock(path: Path | None) -> Iterator[None]:
    if path is None:  # in-memory SQLite: a single process by definition
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
    return engine


def get_engine(settings: Settings | None = None) -> Engine:
    """The engine for the configured database, cached per URL, schema at Alembic head.

    Raises :class:`StoreError` naming the (password-less) URL when the database cannot
    be reached or migrated.
    """
    settings = settings or get_settings()
    url = normalise_url(settings.database_url)
    engine = _engines.get(url)
    if engine is not None:
        return engine
    with _engines_lock:
        engine = _engines.get(url)
        if engine is not None:
            return engine
        engine = _create_engine(url)
        try:
            upgrade(engine)
        except sa.exc.SQLAlchemyError as exc:
            engine.dispose()
            shown = sa.engine.make_url(url).render_as_string(hide_password=True)
            raise StoreError(f"database {shown}: cannot open or migrate: {exc}") from exc
        _engines[url] = engine
        _sessionmakers[url] = sessionmaker(bind=engine, expire_on_commit=False)
        return engine


def get_sessionmaker(settings: Settings | None = None) -> sessionmaker[Session]:
    settings = settings or get_settings()
    get_engine(settings)
    return _sessionmakers[normalise_url(settings.database_url)]


@contextlib.contextmanager
def session_scope(settings: Settings | None = None) -> Iterator[Session]:
    """A session committed at the end of the block and rolled back on an exception."""
    session = get_sessionmaker(settings)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def dispose_engines() -> None:
    """Close every cached engine (tests, or before forking worker processes)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _sessionmakers.clear()
