"""Tables of the tumour boards area: boards, sessions, cases, decisions, attendance (issue
#15); store/models_board.py.

Revision ID: board0001
Revises: batch0001
Create Date: 2026-12-06 23:50:00

The seven area migrations (board0001 … fellow0001) were laid down as one linear chain
before the areas were built in parallel, so that each fills its own file and the chain
stays single-headed whatever order they land in.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "board0001"
down_revision = "batch0001"
branch_labels = None
depends_on = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "boards",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("specialty", sa.String(length=64), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=True),
        sa.Column("start_time", sa.String(length=5), nullable=False),
        sa.Column("minutes_per_case", sa.Integer(), nullable=False),
        sa.Column("every_weeks", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
    )
    op.create_table(
        "board_members",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("board_pk", sa.Integer(), sa.ForeignKey(
            "boards.id", ondelete="CASCADE", name="fk_board_members_board_pk_boards"),
            nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("specialty", sa.String(length=64), nullable=False),
    )
    op.create_index("ix_board_members_board_pk", "board_members", ["board_pk"])
    op.create_table(
        "board_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("board_pk", sa.Integer(), sa.ForeignKey(
            "boards.id", ondelete="CASCADE", name="fk_board_sessions_board_pk_boards"),
            nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("start_time", sa.String(length=5), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.Column("closed_at", _utc(), nullable=True),
        sa.UniqueConstraint("board_pk", "date", name="uq_board_sessions_board_pk"),
    )
    op.create_index("ix_board_sessions_board_pk", "board_sessions", ["board_pk"])
    op.create_table(
        "board_cases",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("session_pk", sa.Integer(), sa.ForeignKey(
            "board_sessions.id", ondelete="CASCADE",
            name="fk_board_cases_session_pk_board_sessions"), nullable=False),
        sa.Column("patient_pk", sa.Integer(), sa.ForeignKey(
            "patients.id", ondelete="CASCADE", name="fk_board_cases_patient_pk_patients"),
            nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("question", sa.Text(), nullable=True),
        sa.Column("minutes", sa.Integer(), nullable=True),
        sa.Column("checklist", sa.JSON(), nullable=False),
        sa.Column("added_by", sa.String(length=64), nullable=False),
        sa.Column("added_at", _utc(), nullable=False),
        sa.UniqueConstraint("session_pk", "patient_pk", name="uq_board_cases_session_pk"),
    )
    op.create_index("ix_board_cases_session_pk", "board_cases", ["session_pk"])
    op.create_index("ix_board_cases_patient_pk", "board_cases", ["patient_pk"])
    op.create_table(
        "board_decisions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_pk", sa.Integer(), sa.ForeignKey(
            "board_cases.id", ondelete="CASCADE", name="fk_board_decisions_case_pk_board_cases"),
            nullable=False),
        sa.Column("patient_pk", sa.Integer(), sa.ForeignKey(
            "patients.id", ondelete="CASCADE", name="fk_board_decisions_patient_pk_patients"),
            nullable=False),
        sa.Column("recommendation", sa.Text(), nullable=False),
        sa.Column("consensus", sa.Boolean(), nullable=False),
        sa.Column("rationale", sa.Text(), nullable=True),
        sa.Column("dissent", sa.Text(), nullable=True),
        sa.Column("follow_up_exam", sa.String(length=64), nullable=True),
        sa.Column("follow_up_due", sa.Date(), nullable=True),
        sa.Column("follow_up_done", sa.Boolean(), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=False),
        sa.Column("decided_at", _utc(), nullable=False),
        sa.UniqueConstraint("case_pk", name="uq_board_decisions_case_pk"),
    )
    op.create_index("ix_board_decisions_patient_pk", "board_decisions", ["patient_pk"])
    op.create_index("ix_board_decisions_follow_up_due", "board_decisions", ["follow_up_due"])
    op.create_table(
        "board_attendance",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("session_pk", sa.Integer(), sa.ForeignKey(
            "board_sessions.id", ondelete="CASCADE",
            name="fk_board_attendance_session_pk_board_sessions"), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("specialty", sa.String(length=64), nullable=False),
        sa.UniqueConstraint("session_pk", "name", name="uq_board_attendance_session_pk"),
    )
    op.create_index("ix_board_attendance_session_pk", "board_attendance", ["session_pk"])


def downgrade() -> None:
    op.drop_index("ix_board_attendance_session_pk", table_name="board_attendance")
    op.drop_table("board_attendance")
    op.drop_index("ix_board_decisions_follow_up_due", table_name="board_decisions")
    op.drop_index("ix_board_decisions_patient_pk", table_name="board_decisions")
    op.drop_table("board_decisions")
    op.drop_index("ix_board_cases_patient_pk", table_name="board_cases")
    op.drop_index("ix_board_cases_session_pk", table_name="board_cases")
    op.drop_table("board_cases")
    op.drop_index("ix_board_sessions_board_pk", table_name="board_sessions")
    op.drop_table("board_sessions")
    op.drop_index("ix_board_members_board_pk", table_name="board_members")
    op.drop_table("board_members")
    op.drop_table("boards")
