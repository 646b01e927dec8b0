"""Tables of the reading-room web application: accounts, sign-in sessions, audit log.

Created by the Alembic migrations ``web0001_users_audit.py`` and
``web0002_user_keys_throttle.py`` (case-insensitive user names, sign-in throttling).
Read and written only
through :mod:`oncohybrid.services.users` and :mod:`oncohybrid.services.audit`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from oncohybrid.store.models import Base


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class WebUser(Base):
    """A local account; ``password_hash`` is an Argon2id PHC string (RFC 9106)."""

    __tablename__ = "web_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    #: ``username.lower()``, unique: ``phys`` and ``PHYS`` are one account (user names
    #: are ASCII, so lower-casing is case folding).
    username_key: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    #: physician | fellow | researcher | admin (see services.users.Role)
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class WebSession(Base):
    """A signed-in browser session. Only the SHA-256 of the cookie token is stored, so a
    copy of the database cannot be replayed as cookies; ``csrf_token`` is the per-session
    synchroniser token (OWASP CSRF Prevention Cheat Sheet)."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_pk: Mapped[int] = mapped_column(
        ForeignKey("web_users.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """One change made through the platform: who, when, what (never PHI values)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    #: Opaque target: "patient:<pk>", "lesion:<id>", "user:<name>" ...
    target: Mapped[str | None] = mapped_column(String(255))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    client: Mapped[str | None] = mapped_column(Text)


class LoginThrottle(Base):
    """Failed sign-ins of one account (``scope`` "user", key = case-folded user name,
    known or not) or one client address (``scope`` "client"), kept in the database so
    that the back-off survives restarts and holds across worker processes
    (OWASP Authentication Cheat Sheet, "Protect against automated attacks")."""

    __tablename__ = "web_login_throttle"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(8))
    key: Mapped[str] = mapped_column(String(255))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
