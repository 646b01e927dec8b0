"""Tables of the research studies area: studies, cohorts, protocol timepoints, CRFs, data-
access groups (issue #16); store/models_research.py.

Revision ID: research0001
Revises: teach0001
Create Date: 2026-12-06 23:50:00

The seven area migrations (board0001 … fellow0001) were laid down as one linear chain
before the areas were built in parallel, so that each fills its own file and the chain
stays single-headed whatever order they land in.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "research0001"
down_revision = "teach0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "research_studies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=512), nullable=False),
        sa.Column("protocol", sa.JSON(), nullable=True),
        sa.Column("ethics_number", sa.String(length=128), nullable=True),
        sa.Column("ethics_date", sa.Date(), nullable=True),
        sa.Column("ethics_file", sa.Text(), nullable=True),
        sa.Column("ethics_file_sha256", sa.String(length=64), nullable=True),
        sa.Column("dictionary", sa.JSON(), nullable=True),
        sa.Column("repeating", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_research_studies")),
        sa.UniqueConstraint("key", name=op.f("uq_research_studies_key")),
    )
    op.create_table(
        "research_clinical",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_pk", sa.Integer(), nullable=False),
        sa.Column("patient_pk", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_pk"],
            ["patients.id"],
            name=op.f("fk_research_clinical_patient_pk_patients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["study_pk"],
            ["research_studies.id"],
            name=op.f("fk_research_clinical_study_pk_research_studies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_research_clinical")),
        sa.UniqueConstraint("study_pk", "patient_pk", "field", name="uq_research_clinical_field"),
    )
    op.create_index(
        op.f("ix_research_clinical_study_pk"), "research_clinical", ["study_pk"], unique=False
    )
    op.create_table(
        "research_cohorts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_pk", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("query", sa.JSON(), nullable=False),
        sa.Column("flow", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_pk"],
            ["research_studies.id"],
            name=op.f("fk_research_cohorts_study_pk_research_studies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_research_cohorts")),
        sa.UniqueConstraint("study_pk", "name", name="uq_research_cohorts_name"),
    )
    op.create_index(
        op.f("ix_research_cohorts_study_pk"), "research_cohorts", ["study_pk"], unique=False
    )
    op.create_table(
        "research_dags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_pk", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_pk"],
            ["research_studies.id"],
            name=op.f("fk_research_dags_study_pk_research_studies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_research_dags")),
        sa.UniqueConstraint("study_pk", "name", name="uq_research_dags_name"),
    )
    op.create_index(op.f("ix_research_dags_study_pk"), "research_dags", ["study_pk"], unique=False)
    op.create_table(
        "research_exports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_pk", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("deidentified", sa.Boolean(), nullable=False),
        sa.Column("n_patients", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_pk"],
            ["research_studies.id"],
            name=op.f("fk_research_exports_study_pk_research_studies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_research_exports")),
    )
    op.create_index(
        op.f("ix_research_exports_study_pk"), "research_exports", ["study_pk"], unique=False
    )
    op.create_table(
        "research_cohort_patients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cohort_pk", sa.Integer(), nullable=False),
        sa.Column("patient_pk", sa.Integer(), nullable=False),
        sa.Column("included", sa.Boolean(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cohort_pk"],
            ["research_cohorts.id"],
            name=op.f("fk_research_cohort_patients_cohort_pk_research_cohorts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["patient_pk"],
            ["patients.id"],
            name=op.f("fk_research_cohort_patients_patient_pk_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_research_cohort_patients")),
    )
    op.create_index(
        op.f("ix_research_cohort_patients_cohort_pk"),
        "research_cohort_patients",
        ["cohort_pk"],
        unique=False,
    )
    op.create_table(
        "research_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_pk", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("dag_pk", sa.Integer(), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dag_pk"],
            ["research_dags.id"],
            name=op.f("fk_research_members_dag_pk_research_dags"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["study_pk"],
            ["research_studies.id"],
            name=op.f("fk_research_members_study_pk_research_studies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_research_members")),
        sa.UniqueConstraint("study_pk", "username", name="uq_research_members_user"),
    )
    op.create_index(
        op.f("ix_research_members_study_pk"), "research_members", ["study_pk"], unique=False
    )
    op.create_table(
        "research_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_pk", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("patient_pk", sa.Integer(), nullable=True),
        sa.Column("dag_pk", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dag_pk"],
            ["research_dags.id"],
            name=op.f("fk_research_records_dag_pk_research_dags"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["patient_pk"],
            ["patients.id"],
            name=op.f("fk_research_records_patient_pk_patients"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["study_pk"],
            ["research_studies.id"],
            name=op.f("fk_research_records_study_pk_research_studies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_research_records")),
        sa.UniqueConstraint("study_pk", "patient_pk", name="uq_research_records_patient"),
        sa.UniqueConstraint("study_pk", "record_id", name="uq_research_records_id"),
    )
    op.create_index(
        op.f("ix_research_records_study_pk"), "research_records", ["study_pk"], unique=False
    )
    op.create_table(
        "research_crf_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_pk", sa.Integer(), nullable=False),
        sa.Column("form", sa.String(length=64), nullable=False),
        sa.Column("instance", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=True),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_pk"],
            ["research_records.id"],
            name=op.f("fk_research_crf_audit_record_pk_research_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_research_crf_audit")),
    )
    op.create_index(
        op.f("ix_research_crf_audit_record_pk"), "research_crf_audit", ["record_pk"], unique=False
    )
    op.create_table(
        "research_crf_forms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_pk", sa.Integer(), nullable=False),
        sa.Column("form", sa.String(length=64), nullable=False),
        sa.Column("instance", sa.Integer(), nullable=False),
        sa.Column("timepoint_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("locked_by", sa.String(length=64), nullable=True),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signature_sha256", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_pk"],
            ["research_records.id"],
            name=op.f("fk_research_crf_forms_record_pk_research_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_research_crf_forms")),
        sa.UniqueConstraint("record_pk", "form", "instance", name="uq_research_crf_forms_instance"),
    )
    op.create_index(
        op.f("ix_research_crf_forms_record_pk"), "research_crf_forms", ["record_pk"], unique=False
    )
    op.create_table(
        "research_crf_values",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_pk", sa.Integer(), nullable=False),
        sa.Column("form", sa.String(length=64), nullable=False),
        sa.Column("instance", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_pk"],
            ["research_records.id"],
            name=op.f("fk_research_crf_values_record_pk_research_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_research_crf_values")),
        sa.UniqueConstraint(
            "record_pk", "form", "instance", "field", name="uq_research_crf_values_field"
        ),
    )
    op.create_index(
        op.f("ix_research_crf_values_record_pk"), "research_crf_values", ["record_pk"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_research_crf_values_record_pk"), table_name="research_crf_values")
    op.drop_table("research_crf_values")
    op.drop_index(op.f("ix_research_crf_forms_record_pk"), table_name="research_crf_forms")
    op.drop_table("research_crf_forms")
    op.drop_index(op.f("ix_research_crf_audit_record_pk"), table_name="research_crf_audit")
    op.drop_table("research_crf_audit")
    op.drop_index(op.f("ix_research_records_study_pk"), table_name="research_records")
    op.drop_table("research_records")
    op.drop_index(op.f("ix_research_members_study_pk"), table_name="research_members")
    op.drop_table("research_members")
    op.drop_index(
        op.f("ix_research_cohort_patients_cohort_pk"), table_name="research_cohort_patients"
    )
    op.drop_table("research_cohort_patients")
    op.drop_index(op.f("ix_research_exports_study_pk"), table_name="research_exports")
    op.drop_table("research_exports")
    op.drop_index(op.f("ix_research_dags_study_pk"), table_name="research_dags")
    op.drop_table("research_dags")
    op.drop_index(op.f("ix_research_cohorts_study_pk"), table_name="research_cohorts")
    op.drop_table("research_cohorts")
    op.drop_index(op.f("ix_research_clinical_study_pk"), table_name="research_clinical")
    op.drop_table("research_clinical")
    op.drop_table("research_studies")
