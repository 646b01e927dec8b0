"""Tables of the breast imaging area: BI-RADS reports, findings, pathology correlation (issue
#21); store/models_breast.py.

Revision ID: breast0001
Revises: research0001
Create Date: 2026-12-06 23:50:00

The seven area migrations (board0001 … fellow0001) were laid down as one linear chain
before the areas were built in parallel, so that each fills its own file and the chain
stays single-headed whatever order they land in.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "breast0001"
down_revision = "research0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "breast_reports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("patient_pk", sa.Integer(),
                  sa.ForeignKey("patients.id", ondelete="CASCADE"), nullable=False),
        sa.Column("study_pk", sa.Integer(),
                  sa.ForeignKey("studies.id", ondelete="SET NULL"), nullable=True),
        sa.Column("exam_date", sa.Date(), nullable=False),
        sa.Column("modality", sa.String(length=8), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("overall_category", sa.String(length=4), nullable=False),
        sa.Column("biopsy_recommended", sa.Boolean(), nullable=False),
        sa.Column("structured", sa.JSON(), nullable=False),
        sa.Column("text_en", sa.Text(), nullable=False),
        sa.Column("text_fr", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("signed_by", sa.String(length=64), nullable=True),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sr_path", sa.Text(), nullable=True),
    )
    op.create_index("ix_breast_reports_patient_pk", "breast_reports", ["patient_pk"])
    op.create_index("ix_breast_reports_exam_date", "breast_reports", ["exam_date"])
    op.create_table(
        "breast_pathology",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("patient_pk", sa.Integer(),
                  sa.ForeignKey("patients.id", ondelete="CASCADE"), nullable=False),
        sa.Column("report_pk", sa.Integer(),
                  sa.ForeignKey("breast_reports.id", ondelete="SET NULL"), nullable=True),
        sa.Column("finding_index", sa.Integer(), nullable=True),
        sa.Column("diagnosis_date", sa.Date(), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("cancer_type", sa.String(length=16), nullable=True),
        sa.Column("size_mm", sa.Float(), nullable=True),
        sa.Column("nodes", sa.String(length=16), nullable=True),
        sa.Column("biopsy_performed", sa.Boolean(), nullable=False),
        sa.Column("histology", sa.String(length=255), nullable=False),
        sa.Column("concordance", sa.String(length=16), nullable=True),
        sa.Column("concordance_note", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
    )
    op.create_index("ix_breast_pathology_patient_pk", "breast_pathology", ["patient_pk"])
    op.create_index("ix_breast_pathology_report_pk", "breast_pathology", ["report_pk"])


def downgrade() -> None:
    op.drop_index("ix_breast_pathology_report_pk", table_name="breast_pathology")
    op.drop_index("ix_breast_pathology_patient_pk", table_name="breast_pathology")
    op.drop_table("breast_pathology")
    op.drop_index("ix_breast_reports_exam_date", table_name="breast_reports")
    op.drop_index("ix_breast_reports_patient_pk", table_name="breast_reports")
    op.drop_table("breast_reports")
