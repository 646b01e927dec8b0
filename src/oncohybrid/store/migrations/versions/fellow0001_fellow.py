"""Tables of the fellowship programme area: calls, applications, reviews, the year, logbook,
certificates (issue #13); store/models_fellowship.py.

Revision ID: fellow0001
Revises: qc0001
Create Date: 2026-12-06 23:50:00

The seven area migrations (board0001 … fellow0001) were laid down as one linear chain
before the areas were built in parallel, so that each fills its own file and the chain
stays single-headed whatever order they land in.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "fellow0001"
down_revision = "qc0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fellowship_applications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("eligible", sa.Boolean(), nullable=True),
        sa.Column("eligibility", sa.JSON(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fellowship_applications")),
        sa.UniqueConstraint("call_id", "username", name="uq_fellowship_app_user"),
    )
    op.create_index(
        op.f("ix_fellowship_applications_call_id"),
        "fellowship_applications",
        ["call_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_fellowship_applications_username"),
        "fellowship_applications",
        ["username"],
        unique=False,
    )
    op.create_table(
        "fellowship_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_pk", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("stored_name", sa.String(length=255), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_pk"],
            ["fellowship_applications.id"],
            name=op.f("fk_fellowship_documents_application_pk_fellowship_applications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fellowship_documents")),
    )
    op.create_index(
        op.f("ix_fellowship_documents_application_pk"),
        "fellowship_documents",
        ["application_pk"],
        unique=False,
    )
    op.create_table(
        "fellowship_fellows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fellow_id", sa.String(length=64), nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=False),
        sa.Column("application_pk", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("mentor", sa.String(length=64), nullable=True),
        sa.Column("track", sa.String(length=32), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=False),
        sa.Column("programme", sa.JSON(), nullable=False),
        sa.Column("research", sa.JSON(), nullable=False),
        sa.Column("report_text", sa.JSON(), nullable=False),
        sa.Column("report_signed_by", sa.String(length=64), nullable=True),
        sa.Column("report_signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_pk"],
            ["fellowship_applications.id"],
            name=op.f("fk_fellowship_fellows_application_pk_fellowship_applications"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fellowship_fellows")),
        sa.UniqueConstraint("fellow_id", name=op.f("uq_fellowship_fellows_fellow_id")),
    )
    op.create_index(
        op.f("ix_fellowship_fellows_mentor"), "fellowship_fellows", ["mentor"], unique=False
    )
    op.create_index(
        op.f("ix_fellowship_fellows_username"), "fellowship_fellows", ["username"], unique=False
    )
    op.create_table(
        "fellowship_interviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=False),
        sa.Column("application_pk", sa.Integer(), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("location", sa.String(length=255), nullable=False),
        sa.Column("uid", sa.String(length=128), nullable=False),
        sa.Column("booked_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_pk"],
            ["fellowship_applications.id"],
            name=op.f("fk_fellowship_interviews_application_pk_fellowship_applications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fellowship_interviews")),
        sa.UniqueConstraint("uid", name=op.f("uq_fellowship_interviews_uid")),
    )
    op.create_index(
        op.f("ix_fellowship_interviews_application_pk"),
        "fellowship_interviews",
        ["application_pk"],
        unique=False,
    )
    op.create_index(
        op.f("ix_fellowship_interviews_call_id"),
        "fellowship_interviews",
        ["call_id"],
        unique=False,
    )
    op.create_table(
        "fellowship_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_pk", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(length=64), nullable=False),
        sa.Column("assigned_by", sa.String(length=64), nullable=False),
        sa.Column("coi", sa.Boolean(), nullable=True),
        sa.Column("coi_note", sa.Text(), nullable=True),
        sa.Column("scores", sa.JSON(), nullable=True),
        sa.Column("total", sa.String(length=16), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_pk"],
            ["fellowship_applications.id"],
            name=op.f("fk_fellowship_reviews_application_pk_fellowship_applications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fellowship_reviews")),
        sa.UniqueConstraint("application_pk", "reviewer", name="uq_fellowship_review"),
    )
    op.create_index(
        op.f("ix_fellowship_reviews_application_pk"),
        "fellowship_reviews",
        ["application_pk"],
        unique=False,
    )
    op.create_index(
        op.f("ix_fellowship_reviews_reviewer"), "fellowship_reviews", ["reviewer"], unique=False
    )
    op.create_table(
        "fellowship_certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("fellow_pk", sa.Integer(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("issued_by", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["fellow_pk"],
            ["fellowship_fellows.id"],
            name=op.f("fk_fellowship_certificates_fellow_pk_fellowship_fellows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fellowship_certificates")),
        sa.UniqueConstraint("code", name=op.f("uq_fellowship_certificates_code")),
        sa.UniqueConstraint("serial", name=op.f("uq_fellowship_certificates_serial")),
    )
    op.create_index(
        op.f("ix_fellowship_certificates_fellow_pk"),
        "fellowship_certificates",
        ["fellow_pk"],
        unique=False,
    )
    op.create_table(
        "fellowship_evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fellow_pk", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=32), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["fellow_pk"],
            ["fellowship_fellows.id"],
            name=op.f("fk_fellowship_evaluations_fellow_pk_fellowship_fellows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fellowship_evaluations")),
    )
    op.create_index(
        op.f("ix_fellowship_evaluations_fellow_pk"),
        "fellowship_evaluations",
        ["fellow_pk"],
        unique=False,
    )
    op.create_table(
        "fellowship_log_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fellow_pk", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("category", sa.String(length=48), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["fellow_pk"],
            ["fellowship_fellows.id"],
            name=op.f("fk_fellowship_log_entries_fellow_pk_fellowship_fellows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fellowship_log_entries")),
    )
    op.create_index(
        op.f("ix_fellowship_log_entries_fellow_pk"),
        "fellowship_log_entries",
        ["fellow_pk"],
        unique=False,
    )
    op.create_table(
        "fellowship_signoffs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fellow_pk", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("mentor", sa.String(length=64), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["fellow_pk"],
            ["fellowship_fellows.id"],
            name=op.f("fk_fellowship_signoffs_fellow_pk_fellowship_fellows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fellowship_signoffs")),
        sa.UniqueConstraint("fellow_pk", "month", name="uq_fellowship_signoff"),
    )
    op.create_index(
        op.f("ix_fellowship_signoffs_fellow_pk"), "fellowship_signoffs", ["fellow_pk"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_fellowship_signoffs_fellow_pk"), table_name="fellowship_signoffs")
    op.drop_table("fellowship_signoffs")
    op.drop_index(op.f("ix_fellowship_log_entries_fellow_pk"), table_name="fellowship_log_entries")
    op.drop_table("fellowship_log_entries")
    op.drop_index(op.f("ix_fellowship_evaluations_fellow_pk"), table_name="fellowship_evaluations")
    op.drop_table("fellowship_evaluations")
    op.drop_index(
        op.f("ix_fellowship_certificates_fellow_pk"), table_name="fellowship_certificates"
    )
    op.drop_table("fellowship_certificates")
    op.drop_index(op.f("ix_fellowship_reviews_reviewer"), table_name="fellowship_reviews")
    op.drop_index(op.f("ix_fellowship_reviews_application_pk"), table_name="fellowship_reviews")
    op.drop_table("fellowship_reviews")
    op.drop_index(op.f("ix_fellowship_interviews_call_id"), table_name="fellowship_interviews")
    op.drop_index(
        op.f("ix_fellowship_interviews_application_pk"), table_name="fellowship_interviews"
    )
    op.drop_table("fellowship_interviews")
    op.drop_index(op.f("ix_fellowship_fellows_username"), table_name="fellowship_fellows")
    op.drop_index(op.f("ix_fellowship_fellows_mentor"), table_name="fellowship_fellows")
    op.drop_table("fellowship_fellows")
    op.drop_index(op.f("ix_fellowship_documents_application_pk"), table_name="fellowship_documents")
    op.drop_table("fellowship_documents")
    op.drop_index(op.f("ix_fellowship_applications_username"), table_name="fellowship_applications")
    op.drop_index(op.f("ix_fellowship_applications_call_id"), table_name="fellowship_applications")
    op.drop_table("fellowship_applications")
