"""Configured DICOM / DICOMweb nodes (pacs_node).

Revision ID: pacs0001
Revises: 0001
Create Date: 2026-11-27 23:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "pacs0001"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pacs_node",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("ae_title", sa.String(length=16), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("url", sa.String(length=2048), nullable=True),
        sa.Column("auth", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=True),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("secret_env", sa.String(length=255), nullable=True),
        sa.Column("accept_store", sa.Boolean(), nullable=False),
        sa.Column("retrieve", sa.String(length=8), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pacs_node")),
        sa.UniqueConstraint("name", name=op.f("uq_pacs_node_name")),
    )


def downgrade() -> None:
    op.drop_table("pacs_node")
