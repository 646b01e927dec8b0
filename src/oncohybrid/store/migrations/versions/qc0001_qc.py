"""Tables of the scanner QC area: equipment registry, phantom results, daily QC log (issue
#20); store/models_qc.py.

Revision ID: qc0001
Revises: nm0001
Create Date: 2026-12-06 23:50:00

The seven area migrations (board0001 … fellow0001) were laid down as one linear chain
before the areas were built in parallel, so that each fills its own file and the chain
stays single-headed whatever order they land in.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "qc0001"
down_revision = "nm0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qc_scanners",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(length=255), nullable=False, unique=True),
        sa.Column("manufacturer", sa.String(length=128), nullable=True),
        sa.Column("model", sa.String(length=128), nullable=True),
        sa.Column("serial_number", sa.String(length=64), nullable=True),
        sa.Column("station_name", sa.String(length=64), nullable=True),
        sa.Column("software_versions", sa.String(length=255), nullable=True),
        sa.Column("ae_title", sa.String(length=16), nullable=True),
        sa.Column("modalities", sa.String(length=64), nullable=True),
        sa.Column("earl_protocols", sa.JSON(), nullable=False),
        sa.Column("first_seen", sa.Date(), nullable=True),
        sa.Column("last_seen", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "qc_series_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("series_pk", sa.Integer(), sa.ForeignKey("series.id", ondelete="CASCADE"),
                  nullable=False, unique=True),
        sa.Column("study_pk", sa.Integer(), sa.ForeignKey("studies.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("scanner_pk", sa.Integer(),
                  sa.ForeignKey("qc_scanners.id", ondelete="CASCADE"), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=True),
        sa.Column("acquired_on", sa.Date(), nullable=True),
        sa.Column("recon", sa.JSON(), nullable=False),
    )
    op.create_index("ix_qc_series_links_study_pk", "qc_series_links", ["study_pk"])
    op.create_index("ix_qc_series_links_scanner_pk", "qc_series_links", ["scanner_pk"])
    op.create_table(
        "qc_results",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("scanner_pk", sa.Integer(),
                  sa.ForeignKey("qc_scanners.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("performed_on", sa.Date(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("tolerances", sa.JSON(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_qc_results_scanner_date", "qc_results", ["scanner_pk", "performed_on"])


def downgrade() -> None:
    op.drop_index("ix_qc_results_scanner_date", table_name="qc_results")
    op.drop_table("qc_results")
    op.drop_index("ix_qc_series_links_scanner_pk", table_name="qc_series_links")
    op.drop_index("ix_qc_series_links_study_pk", table_name="qc_series_links")
    op.drop_table("qc_series_links")
    op.drop_table("qc_scanners")
