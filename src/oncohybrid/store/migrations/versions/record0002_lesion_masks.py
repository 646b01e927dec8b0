"""Stored lesion masks: each timepoint's DICOM SEG and each observation's segment number.

Issue #11: the measured masks are kept (a SEG per timepoint in the derived store) so the
report, the SEG output and the web contours show what was measured (docs/record.md).

Revision ID: record0002
Revises: store0002
Create Date: 2026-12-06 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "record0002"
down_revision = "store0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD/DROP COLUMN (SQLite >= 3.35): a batch rebuild of record_observations could
    # lose the WHERE of its partial unique index (one observation in use).
    op.add_column("record_timepoints", sa.Column("mask_seg_path", sa.Text(), nullable=True))
    op.add_column("record_timepoints",
                  sa.Column("mask_seg_sop_uid", sa.String(length=64), nullable=True))
    op.add_column("record_observations",
                  sa.Column("mask_segment_number", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("record_observations", "mask_segment_number")
    op.drop_column("record_timepoints", "mask_seg_sop_uid")
    op.drop_column("record_timepoints", "mask_seg_path")
