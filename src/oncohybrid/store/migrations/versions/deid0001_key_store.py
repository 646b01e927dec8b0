"""De-identification key store: ``deid_patients`` (pseudonym, date shift) and ``deid_uids``.

Issue #16 (docs/deid.md).

Revision ID: deid0001
Revises: store0003
Create Date: 2026-12-06 22:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "deid0001"
down_revision = "store0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deid_patients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("issuer_of_patient_id", sa.String(length=64), nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("date_shift_days", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deid_patients")),
        sa.UniqueConstraint("patient_id", "issuer_of_patient_id",
                            name=op.f("uq_deid_patients_patient_id")),
        sa.UniqueConstraint("pseudonym", name=op.f("uq_deid_patients_pseudonym")),
    )
    op.create_table(
        "deid_uids",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("original_uid", sa.String(length=64), nullable=False),
        sa.Column("replacement_uid", sa.String(length=64), nullable=False),
        sa.Column("deid_patient_pk", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["deid_patient_pk"], ["deid_patients.id"],
                                name=op.f("fk_deid_uids_deid_patient_pk_deid_patients"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deid_uids")),
        sa.UniqueConstraint("original_uid", name=op.f("uq_deid_uids_original_uid")),
        sa.UniqueConstraint("replacement_uid", name=op.f("uq_deid_uids_replacement_uid")),
    )
    op.create_index(op.f("ix_deid_uids_deid_patient_pk"), "deid_uids", ["deid_patient_pk"])


def downgrade() -> None:
    op.drop_index(op.f("ix_deid_uids_deid_patient_pk"), table_name="deid_uids")
    op.drop_table("deid_uids")
    op.drop_table("deid_patients")
