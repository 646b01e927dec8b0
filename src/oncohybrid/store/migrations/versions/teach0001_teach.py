"""Tables of the teaching file area: cases, revisions, collections, quizzes, answers, trainee
record (issue #14); store/models_teach.py.

Revision ID: teach0001
Revises: board0001
Create Date: 2026-12-06 23:50:00

The seven area migrations (board0001 … fellow0001) were laid down as one linear chain
before the areas were built in parallel, so that each fills its own file and the chain
stays single-headed whatever order they land in.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "teach0001"
down_revision = "board0001"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "teach_cases",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("reviewer", sa.String(length=64), nullable=True),
        sa.Column("history", sa.Text(), nullable=False),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column("diagnosis", sa.Text(), nullable=False),
        sa.Column("certainty", sa.String(length=32), nullable=True),
        sa.Column("discussion", sa.Text(), nullable=False),
        sa.Column("teaching_points", sa.Text(), nullable=False),
        sa.Column("references", sa.Text(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("key_images", sa.JSON(), nullable=False),
        sa.Column("folder", sa.Text(), nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("ground_truth", sa.JSON(), nullable=False),
        sa.Column("source_patient_pk", sa.Integer(),
                  sa.ForeignKey("patients.id", ondelete="SET NULL"), nullable=True),
        _ts("created_at"), _ts("updated_at"), _ts("published_at", True),
        sa.UniqueConstraint("case_id", name="uq_teach_cases_case_id"),
    )
    op.create_index("ix_teach_cases_source_patient_pk", "teach_cases", ["source_patient_pk"])
    op.create_table(
        "teach_revisions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_pk", sa.Integer(), sa.ForeignKey("teach_cases.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        _ts("created_at"),
        sa.UniqueConstraint("case_pk", "number", name="uq_teach_revisions_case_pk"),
    )
    op.create_index("ix_teach_revisions_case_pk", "teach_revisions", ["case_pk"])
    op.create_table(
        "teach_questions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_pk", sa.Integer(), sa.ForeignKey("teach_cases.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("reference", sa.JSON(), nullable=False),
        _ts("created_at"),
    )
    op.create_index("ix_teach_questions_case_pk", "teach_questions", ["case_pk"])
    op.create_table(
        "teach_collections",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        _ts("created_at"),
        sa.UniqueConstraint("name", name="uq_teach_collections_name"),
    )
    op.create_table(
        "teach_collection_items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("collection_pk", sa.Integer(),
                  sa.ForeignKey("teach_collections.id", ondelete="CASCADE"), nullable=False),
        sa.Column("case_pk", sa.Integer(), sa.ForeignKey("teach_cases.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.UniqueConstraint("collection_pk", "case_pk",
                            name="uq_teach_collection_items_collection_pk"),
    )
    op.create_index("ix_teach_collection_items_collection_pk", "teach_collection_items",
                    ["collection_pk"])
    op.create_index("ix_teach_collection_items_case_pk", "teach_collection_items", ["case_pk"])
    op.create_table(
        "teach_quizzes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("question_pks", sa.JSON(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("time_limit_s", sa.Integer(), nullable=True),
        _ts("created_at"), _ts("finished_at", True),
    )
    op.create_index("ix_teach_quizzes_username", "teach_quizzes", ["username"])
    op.create_table(
        "teach_answers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("quiz_pk", sa.Integer(), sa.ForeignKey("teach_quizzes.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("question_pk", sa.Integer(),
                  sa.ForeignKey("teach_questions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("correct", sa.Boolean(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("marked_by", sa.String(length=64), nullable=True),
        _ts("answered_at"),
        sa.UniqueConstraint("quiz_pk", "question_pk", name="uq_teach_answers_quiz_pk"),
    )
    op.create_index("ix_teach_answers_quiz_pk", "teach_answers", ["quiz_pk"])
    op.create_index("ix_teach_answers_question_pk", "teach_answers", ["question_pk"])
    op.create_index("ix_teach_answers_username", "teach_answers", ["username"])
    op.create_table(
        "teach_reviews",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("question_pk", sa.Integer(),
                  sa.ForeignKey("teach_questions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("repetitions", sa.Integer(), nullable=False),
        sa.Column("interval_days", sa.Integer(), nullable=False),
        sa.Column("easiness", sa.Float(), nullable=False),
        sa.Column("due", sa.Date(), nullable=False),
        _ts("updated_at"),
        sa.UniqueConstraint("username", "question_pk", name="uq_teach_reviews_username"),
    )
    op.create_index("ix_teach_reviews_question_pk", "teach_reviews", ["question_pk"])


#: Children first (foreign keys).
_TABLES = ("teach_reviews", "teach_answers", "teach_quizzes", "teach_collection_items",
           "teach_collections", "teach_questions", "teach_revisions", "teach_cases")


def downgrade() -> None:
    for table in _TABLES:
        op.drop_table(table)
