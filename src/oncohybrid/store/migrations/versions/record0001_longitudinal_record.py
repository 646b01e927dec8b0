"""Longitudinal oncology record: timepoints, lesions, roles, observations, lineage, assessments.

Revision ID: record0001
Revises: web0001
Create Date: 2026-11-27 23:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "record0001"
down_revision = "web0001"
branch_labels = None
depends_on = None


def _created(name: str = "created_at") -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "record_timepoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_pk", sa.Integer(), nullable=False),
        sa.Column("tp_index", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=32), nullable=False),
        sa.Column("scan_date", sa.Date(), nullable=False),
        sa.Column("days_since_baseline", sa.Integer(), nullable=False),
        sa.Column("treatment_line", sa.String(length=128), nullable=True),
        sa.Column("treatment_event", sa.String(length=128), nullable=True),
        _created(),
        sa.ForeignKeyConstraint(
            ["patient_pk"], ["patients.id"],
            name=op.f("fk_record_timepoints_patient_pk_patients"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_timepoints")),
        sa.UniqueConstraint(
            "patient_pk", "scan_date", name=op.f("uq_record_timepoints_patient_pk")
        ),
    )
    with op.batch_alter_table("record_timepoints") as b:
        b.create_index(b.f("ix_record_timepoints_patient_pk"), ["patient_pk"], unique=False)

    op.create_table(
        "record_timepoint_studies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("timepoint_pk", sa.Integer(), nullable=False),
        sa.Column("study_pk", sa.Integer(), nullable=True),
        sa.Column("study_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("pet_series_uid", sa.String(length=64), nullable=True),
        sa.Column("ct_series_uid", sa.String(length=64), nullable=True),
        sa.Column("frame_of_reference_uid", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["timepoint_pk"], ["record_timepoints.id"],
            name=op.f("fk_record_timepoint_studies_timepoint_pk_record_timepoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["study_pk"], ["studies.id"],
            name=op.f("fk_record_timepoint_studies_study_pk_studies"), ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_timepoint_studies")),
        sa.UniqueConstraint(
            "timepoint_pk", "study_instance_uid",
            name=op.f("uq_record_timepoint_studies_timepoint_pk"),
        ),
    )
    with op.batch_alter_table("record_timepoint_studies") as b:
        b.create_index(
            b.f("ix_record_timepoint_studies_timepoint_pk"), ["timepoint_pk"], unique=False
        )
        b.create_index(b.f("ix_record_timepoint_studies_study_pk"), ["study_pk"], unique=False)

    op.create_table(
        "record_lesions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_pk", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("tracking_uid", sa.String(length=64), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("nodal", sa.Boolean(), nullable=False),
        sa.Column("first_timepoint_pk", sa.Integer(), nullable=True),
        _created(),
        sa.ForeignKeyConstraint(
            ["patient_pk"], ["patients.id"],
            name=op.f("fk_record_lesions_patient_pk_patients"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["first_timepoint_pk"], ["record_timepoints.id"],
            name=op.f("fk_record_lesions_first_timepoint_pk_record_timepoints"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_lesions")),
        sa.UniqueConstraint("patient_pk", "key", name=op.f("uq_record_lesions_patient_pk")),
        sa.UniqueConstraint("tracking_uid", name=op.f("uq_record_lesions_tracking_uid")),
    )
    with op.batch_alter_table("record_lesions") as b:
        b.create_index(b.f("ix_record_lesions_patient_pk"), ["patient_pk"], unique=False)

    op.create_table(
        "record_lesion_roles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lesion_pk", sa.Integer(), nullable=False),
        sa.Column("criterion", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["lesion_pk"], ["record_lesions.id"],
            name=op.f("fk_record_lesion_roles_lesion_pk_record_lesions"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_lesion_roles")),
        sa.UniqueConstraint(
            "lesion_pk", "criterion", name=op.f("uq_record_lesion_roles_lesion_pk")
        ),
    )
    with op.batch_alter_table("record_lesion_roles") as b:
        b.create_index(b.f("ix_record_lesion_roles_lesion_pk"), ["lesion_pk"], unique=False)

    op.create_table(
        "record_observations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lesion_pk", sa.Integer(), nullable=False),
        sa.Column("timepoint_pk", sa.Integer(), nullable=False),
        sa.Column("study_pk", sa.Integer(), nullable=True),
        sa.Column("study_instance_uid", sa.String(length=64), nullable=True),
        sa.Column("pet_series_uid", sa.String(length=64), nullable=True),
        sa.Column("ct_series_uid", sa.String(length=64), nullable=True),
        sa.Column("label", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("in_use", sa.Boolean(), nullable=False),
        sa.Column("supersedes_pk", sa.Integer(), nullable=True),
        sa.Column("present", sa.Boolean(), nullable=False),
        *(
            sa.Column(name, sa.Float(), nullable=True)
            for name in (
                "ld_mm", "sa_mm", "ppd_mm2", "volume_ml", "hu_mean", "suv_max", "suv_peak",
                "sul_peak", "mtv_ml", "tlg_suv_ml",
            )
        ),
        sa.Column("centroid_lps_mm", sa.JSON(), nullable=True),
        sa.Column("methods", sa.JSON(), nullable=False),
        sa.Column("reader", sa.String(length=128), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["lesion_pk"], ["record_lesions.id"],
            name=op.f("fk_record_observations_lesion_pk_record_lesions"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["timepoint_pk"], ["record_timepoints.id"],
            name=op.f("fk_record_observations_timepoint_pk_record_timepoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["study_pk"], ["studies.id"],
            name=op.f("fk_record_observations_study_pk_studies"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["supersedes_pk"], ["record_observations.id"],
            name=op.f("fk_record_observations_supersedes_pk_record_observations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_observations")),
    )
    with op.batch_alter_table("record_observations") as b:
        b.create_index(b.f("ix_record_observations_lesion_pk"), ["lesion_pk"], unique=False)
        b.create_index(
            b.f("ix_record_observations_timepoint_pk"), ["timepoint_pk"], unique=False
        )
        b.create_index(b.f("ix_record_observations_study_pk"), ["study_pk"], unique=False)
        b.create_index(
            "uq_record_observations_in_use",
            ["lesion_pk", "timepoint_pk"],
            unique=True,
            sqlite_where=sa.text("in_use"),
            postgresql_where=sa.text("in_use"),
        )

    op.create_table(
        "record_lesion_lineage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("parent_pk", sa.Integer(), nullable=False),
        sa.Column("child_pk", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("timepoint_pk", sa.Integer(), nullable=True),
        sa.Column("reader", sa.String(length=128), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        _created(),
        sa.ForeignKeyConstraint(
            ["parent_pk"], ["record_lesions.id"],
            name=op.f("fk_record_lesion_lineage_parent_pk_record_lesions"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["child_pk"], ["record_lesions.id"],
            name=op.f("fk_record_lesion_lineage_child_pk_record_lesions"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["timepoint_pk"], ["record_timepoints.id"],
            name=op.f("fk_record_lesion_lineage_timepoint_pk_record_timepoints"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_lesion_lineage")),
        sa.UniqueConstraint(
            "parent_pk", "child_pk", name=op.f("uq_record_lesion_lineage_parent_pk")
        ),
    )
    with op.batch_alter_table("record_lesion_lineage") as b:
        b.create_index(b.f("ix_record_lesion_lineage_parent_pk"), ["parent_pk"], unique=False)
        b.create_index(b.f("ix_record_lesion_lineage_child_pk"), ["child_pk"], unique=False)

    op.create_table(
        "record_assessments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_pk", sa.Integer(), nullable=False),
        sa.Column("criterion", sa.String(length=32), nullable=False),
        sa.Column("run_uid", sa.String(length=64), nullable=False),
        sa.Column("case_json", sa.JSON(), nullable=False),
        sa.Column("result_json", sa.JSON(), nullable=False),
        sa.Column("best_overall_response", sa.String(length=32), nullable=True),
        sa.Column("software_version", sa.String(length=32), nullable=False),
        _created(),
        sa.ForeignKeyConstraint(
            ["patient_pk"], ["patients.id"],
            name=op.f("fk_record_assessments_patient_pk_patients"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_assessments")),
    )
    with op.batch_alter_table("record_assessments") as b:
        b.create_index(b.f("ix_record_assessments_patient_pk"), ["patient_pk"], unique=False)
        b.create_index(
            "ix_record_assessments_patient_criterion", ["patient_pk", "criterion"], unique=False
        )


def downgrade() -> None:
    for table in (
        "record_assessments",
        "record_lesion_lineage",
        "record_observations",
        "record_lesion_roles",
        "record_lesions",
        "record_timepoint_studies",
        "record_timepoints",
    ):
        op.drop_table(table)
