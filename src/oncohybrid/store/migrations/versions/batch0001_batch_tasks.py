"""Batch runs and tasks of ``oncohybrid batch`` (issue #17, store/models_batch.py).

Revision ID: batch0001
Revises: deid0001
Create Date: 2026-12-07 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "batch0001"
down_revision = "deid0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("cluster", sa.String(length=255), nullable=True),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "batch_tasks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_pk", sa.Integer(),
                  sa.ForeignKey("batch_runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("unit_key", sa.String(length=128), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("input_hash", sa.String(length=64), nullable=False),
        sa.Column("params_hash", sa.String(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("software_version", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("worker", sa.String(length=255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("result_json", sa.Text(), nullable=True),
        sa.Column("result_location", sa.Text(), nullable=True),
        sa.Column("reused_task_pk", sa.Integer(),
                  sa.ForeignKey("batch_tasks.id", ondelete="SET NULL"), nullable=True),
    )
    op.create_index("ix_batch_tasks_run_pk", "batch_tasks", ["run_pk"])
    op.create_index("ix_batch_tasks_reuse", "batch_tasks",
                    ["kind", "unit_key", "input_hash", "params_hash", "software_version",
                     "status"])


def downgrade() -> None:
    op.drop_index("ix_batch_tasks_reuse", table_name="batch_tasks")
    op.drop_index("ix_batch_tasks_run_pk", table_name="batch_tasks")
    op.drop_table("batch_tasks")
    op.drop_table("batch_runs")
