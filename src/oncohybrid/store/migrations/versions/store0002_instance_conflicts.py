"""Instances received again under a stored SOP Instance UID with other content.

Issue #12 item 16: the conflicting newcomer is kept aside (``conflicts/`` in the
workspace) and recorded here with the SHA-256 of both files; the indexed original stays.

Revision ID: store0002
Revises: web0002
Create Date: 2026-12-06 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "store0002"
down_revision = "web0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instance_conflicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("stored_path", sa.Text(), nullable=False),
        sa.Column("stored_sha256", sa.String(length=64), nullable=False),
        sa.Column("new_sha256", sa.String(length=64), nullable=False),
        sa.Column("file_path", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("ingest_log_pk", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["ingest_log_pk"],
            ["ingest_logs.id"],
            name=op.f("fk_instance_conflicts_ingest_log_pk_ingest_logs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instance_conflicts")),
        sa.UniqueConstraint(
            "sop_instance_uid",
            "new_sha256",
            name=op.f("uq_instance_conflicts_sop_instance_uid"),
        ),
    )
    op.create_index(
        op.f("ix_instance_conflicts_sop_instance_uid"),
        "instance_conflicts",
        ["sop_instance_uid"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_instance_conflicts_sop_instance_uid"), table_name="instance_conflicts")
    op.drop_table("instance_conflicts")
