"""Use-case: the audit log of changes (who, when, what), viewable by administrators.

Entries name their target by opaque keys (database ids, lesion ids, user names), never
by patient names or identifiers, so that the log itself holds no PHI
(HIPAA §164.312(b) audit controls; IHE ATNA keeps PHI out of the message text as well).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from oncohybrid.config import Settings
from oncohybrid.store.db import session_scope
from oncohybrid.store.models_web import AuditEntry

__all__ = ["record", "list_entries", "count_entries"]


def record(settings: Settings | None, username: str, action: str, target: str | None = None,
           details: dict[str, Any] | None = None, client: str | None = None) -> None:
    """Append one entry (its own transaction, so it is kept even if the caller fails later).

    >>> record(settings, "alice", "lesion.role", "lesion:L1", {"role": "target"})  # doctest: +SKIP
    """
    # Column widths (64/64/255): an over-long name typed at sign-in must not make the
    # entry (and the request) fail on PostgreSQL.
    with session_scope(settings) as s:
        s.add(AuditEntry(username=username[:64], action=action[:64],
                         target=target[:255] if target else target,
                         details=details or {}, client=client[:255] if client else client))


def list_entries(settings: Settings | None = None, *, limit: int = 100, offset: int = 0,
                 username: str | None = None, action: str | None = None) -> list[dict[str, Any]]:
    """Newest first, as JSON-ready dictionaries."""
    stmt = sa.select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if username:
        stmt = stmt.where(AuditEntry.username == username)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    with session_scope(settings) as s:
        rows = s.scalars(stmt.limit(limit).offset(offset)).all()
        return [
            {
                "at": e.at.isoformat(timespec="seconds"),
                "username": e.username,
                "action": e.action,
                "target": e.target,
                "details": e.details,
                "client": e.client,
            }
            for e in rows
        ]


def count_entries(settings: Settings | None = None) -> int:
    with session_scope(settings) as s:
        return int(s.scalar(sa.select(sa.func.count(AuditEntry.id))) or 0)
