"""Tables of the nuclear medicine area: SPECT quantification and dosimetry cycles (issue #20);
store/models_nm.py.

Revision ID: nm0001
Revises: breast0001
Create Date: 2026-12-06 23:50:00

The seven area migrations (board0001 … fellow0001) were laid down as one linear chain
before the areas were built in parallel, so that each fills its own file and the chain
stays single-headed whatever order they land in.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "nm0001"
down_revision = "breast0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nm_dosimetry_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("patient_pk", sa.Integer(),
                  sa.ForeignKey("patients.id", ondelete="CASCADE"), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("fit_request", sa.String(length=16), nullable=False),
        sa.Column("isotope", sa.String(length=16), nullable=False),
        sa.Column("administration", sa.DateTime(), nullable=True),
        sa.Column("injected_mbq", sa.Float(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=False),
    )
    op.create_index("ix_nm_dosimetry_runs_patient_cycle", "nm_dosimetry_runs",
                    ["patient_pk", "cycle"])
    op.create_table(
        "nm_dosimetry_vois",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_pk", sa.Integer(),
                  sa.ForeignKey("nm_dosimetry_runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("mass_g", sa.Float(), nullable=False),
        sa.Column("tia_mbq_h", sa.Float(), nullable=False),
        sa.Column("dose_gy", sa.Float(), nullable=False),
        sa.Column("bed_gy", sa.Float(), nullable=True),
        sa.Column("fit", sa.JSON(), nullable=False),
        sa.Column("dvh", sa.JSON(), nullable=False),
    )
    op.create_index("ix_nm_dosimetry_vois_run_pk", "nm_dosimetry_vois", ["run_pk"])
    op.create_table(
        "nm_calibrations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("station", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=True),
        sa.Column("serial", sa.String(length=64), nullable=True),
        sa.Column("isotope", sa.String(length=16), nullable=False),
        sa.Column("sensitivity_cps_mbq", sa.Float(), nullable=False),
        sa.Column("measured_on", sa.Date(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_nm_calibrations_camera", "nm_calibrations", ["station", "isotope"])


def downgrade() -> None:
    op.drop_index("ix_nm_calibrations_camera", table_name="nm_calibrations")
    op.drop_table("nm_calibrations")
    op.drop_index("ix_nm_dosimetry_vois_run_pk", table_name="nm_dosimetry_vois")
    op.drop_table("nm_dosimetry_vois")
    op.drop_index("ix_nm_dosimetry_runs_patient_cycle", table_name="nm_dosimetry_runs")
    op.drop_table("nm_dosimetry_runs")
