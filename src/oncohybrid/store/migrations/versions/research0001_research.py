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
        "teach_collections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teach_collections")),
        sa.UniqueConstraint("name", name=op.f("uq_teach_collections_name")),
    )
    op.create_table(
        "teach_quizzes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("question_pks", sa.JSON(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("time_limit_s", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teach_quizzes")),
    )
    op.create_index(op.f("ix_teach_quizzes_username"), "teach_quizzes", ["username"], unique=False)
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
        "teach_cases",
        sa.Column("id", sa.Integer(), nullable=False),
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
        sa.Column("source_patient_pk", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_patient_pk"],
            ["patients.id"],
            name=op.f("fk_teach_cases_source_patient_pk_patients"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teach_cases")),
        sa.UniqueConstraint("case_id", name=op.f("uq_teach_cases_case_id")),
    )
    op.create_index(
        op.f("ix_teach_cases_source_patient_pk"), "teach_cases", ["source_patient_pk"], unique=False
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
        "teach_collection_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection_pk", sa.Integer(), nullable=False),
        sa.Column("case_pk", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_pk"],
            ["teach_cases.id"],
            name=op.f("fk_teach_collection_items_case_pk_teach_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["collection_pk"],
            ["teach_collections.id"],
            name=op.f("fk_teach_collection_items_collection_pk_teach_collections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teach_collection_items")),
        sa.UniqueConstraint(
            "collection_pk", "case_pk", name=op.f("uq_teach_collection_items_collection_pk")
        ),
    )
    op.create_index(
        op.f("ix_teach_collection_items_case_pk"),
        "teach_collection_items",
        ["case_pk"],
        unique=False,
    )
    op.create_index(
        op.f("ix_teach_collection_items_collection_pk"),
        "teach_collection_items",
        ["collection_pk"],
        unique=False,
    )
    op.create_table(
        "teach_questions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_pk", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("reference", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_pk"],
            ["teach_cases.id"],
            name=op.f("fk_teach_questions_case_pk_teach_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teach_questions")),
    )
    op.create_index(
        op.f("ix_teach_questions_case_pk"), "teach_questions", ["case_pk"], unique=False
    )
    op.create_table(
        "teach_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_pk", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_pk"],
            ["teach_cases.id"],
            name=op.f("fk_teach_revisions_case_pk_teach_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teach_revisions")),
        sa.UniqueConstraint("case_pk", "number", name=op.f("uq_teach_revisions_case_pk")),
    )
    op.create_index(
        op.f("ix_teach_revisions_case_pk"), "teach_revisions", ["case_pk"], unique=False
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
    op.create_table(
        "teach_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("quiz_pk", sa.Integer(), nullable=False),
        sa.Column("question_pk", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("correct", sa.Boolean(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("marked_by", sa.String(length=64), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["question_pk"],
            ["teach_questions.id"],
            name=op.f("fk_teach_answers_question_pk_teach_questions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["quiz_pk"],
            ["teach_quizzes.id"],
            name=op.f("fk_teach_answers_quiz_pk_teach_quizzes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teach_answers")),
        sa.UniqueConstraint("quiz_pk", "question_pk", name=op.f("uq_teach_answers_quiz_pk")),
    )
    op.create_index(
        op.f("ix_teach_answers_question_pk"), "teach_answers", ["question_pk"], unique=False
    )
    op.create_index(op.f("ix_teach_answers_quiz_pk"), "teach_answers", ["quiz_pk"], unique=False)
    op.create_index(op.f("ix_teach_answers_username"), "teach_answers", ["username"], unique=False)
    op.create_table(
        "teach_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("question_pk", sa.Integer(), nullable=False),
        sa.Column("repetitions", sa.Integer(), nullable=False),
        sa.Column("interval_days", sa.Integer(), nullable=False),
        sa.Column("easiness", sa.Float(), nullable=False),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["question_pk"],
            ["teach_questions.id"],
            name=op.f("fk_teach_reviews_question_pk_teach_questions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teach_reviews")),
        sa.UniqueConstraint("username", "question_pk", name=op.f("uq_teach_reviews_username")),
    )
    op.create_index(
        op.f("ix_teach_reviews_question_pk"), "teach_reviews", ["question_pk"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_teach_reviews_question_pk"), table_name="teach_reviews")
    op.drop_table("teach_reviews")
    op.drop_index(op.f("ix_teach_answers_username"), table_name="teach_answers")
    op.drop_index(op.f("ix_teach_answers_quiz_pk"), table_name="teach_answers")
    op.drop_index(op.f("ix_teach_answers_question_pk"), table_name="teach_answers")
    op.drop_table("teach_answers")
    op.drop_index(op.f("ix_research_crf_values_record_pk"), table_name="research_crf_values")
    op.drop_table("research_crf_values")
    op.drop_index(op.f("ix_research_crf_forms_record_pk"), table_name="research_crf_forms")
    op.drop_table("research_crf_forms")
    op.drop_index(op.f("ix_research_crf_audit_record_pk"), table_name="research_crf_audit")
    op.drop_table("research_crf_audit")
    op.drop_index(op.f("ix_teach_revisions_case_pk"), table_name="teach_revisions")
    op.drop_table("teach_revisions")
    op.drop_index(op.f("ix_teach_questions_case_pk"), table_name="teach_questions")
    op.drop_table("teach_questions")
    op.drop_index(
        op.f("ix_teach_collection_items_collection_pk"), table_name="teach_collection_items"
    )
    op.drop_index(op.f("ix_teach_collection_items_case_pk"), table_name="teach_collection_items")
    op.drop_table("teach_collection_items")
    op.drop_index(op.f("ix_research_records_study_pk"), table_name="research_records")
    op.drop_table("research_records")
    op.drop_index(op.f("ix_research_members_study_pk"), table_name="research_members")
    op.drop_table("research_members")
    op.drop_index(
        op.f("ix_research_cohort_patients_cohort_pk"), table_name="research_cohort_patients"
    )
    op.drop_table("research_cohort_patients")
    op.drop_index(op.f("ix_teach_cases_source_patient_pk"), table_name="teach_cases")
    op.drop_table("teach_cases")
    op.drop_index(op.f("ix_research_exports_study_pk"), table_name="research_exports")
    op.drop_table("research_exports")
    op.drop_index(op.f("ix_research_dags_study_pk"), table_name="research_dags")
    op.drop_table("research_dags")
    op.drop_index(op.f("ix_research_cohorts_study_pk"), table_name="research_cohorts")
    op.drop_table("research_cohorts")
    op.drop_index(op.f("ix_research_clinical_study_pk"), table_name="research_clinical")
    op.drop_table("research_clinical")
    op.drop_index(op.f("ix_teach_quizzes_username"), table_name="teach_quizzes")
    op.drop_table("teach_quizzes")
    op.drop_table("teach_collections")
    op.drop_table("research_studies")
