"""Case-insensitive user names (web_users.username_key) and sign-in throttling
(web_login_throttle).

Existing accounts whose names differ only in case (``phys`` and ``PHYS``) are not merged
silently: the upgrade stops and names them, so that an administrator decides which one
stays (rename or delete the others, e.g. ``DELETE FROM web_users WHERE username = 'PHYS'``,
then run ``oncohybrid db upgrade`` again).

Revision ID: web0002
Revises: record0001
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "web0002"
down_revision = "record0001"
branch_labels = None
depends_on = None


class CaseDuplicateUsers(RuntimeError):
    """Accounts whose names differ only in letter case exist; nothing was changed."""


def _check_case_duplicates(conn: sa.Connection) -> None:
    groups: dict[str, list[str]] = defaultdict(list)
    for (name,) in conn.execute(sa.text("SELECT username FROM web_users ORDER BY id")):
        groups[name.lower()].append(name)
    dups = [names for names in groups.values() if len(names) > 1]
    if dups:
        listed = "; ".join(" / ".join(repr(n) for n in names) for names in dups)
        raise CaseDuplicateUsers(
            "web_users: user names must be unique regardless of case, but these accounts "
            f"differ only in case: {listed}. Keep one of each group (delete or rename the "
            "others in the database), then run the upgrade again; nothing was changed."
        )


def upgrade() -> None:
    conn = op.get_bind()
    _check_case_duplicates(conn)
    with op.batch_alter_table("web_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("username_key", sa.String(length=64), nullable=True))
    conn.execute(sa.text("UPDATE web_users SET username_key = lower(username)"))
    with op.batch_alter_table("web_users", schema=None) as batch_op:
        batch_op.alter_column("username_key", existing_type=sa.String(length=64),
                              nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_web_users_username_key"),
                                          ["username_key"])
    op.create_table(
        "web_login_throttle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_login_throttle")),
        sa.UniqueConstraint("scope", "key", name=op.f("uq_web_login_throttle_scope")),
    )


def downgrade() -> None:
    op.drop_table("web_login_throttle")
    with op.batch_alter_table("web_users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_web_users_username_key"), type_="unique")
        batch_op.drop_column("username_key")
