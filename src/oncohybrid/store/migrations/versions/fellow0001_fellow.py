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

import sqlalchemy as sa  # noqa: F401 - used by the area's tables
from alembic import op  # noqa: F401

revision = "fellow0001"
down_revision = "qc0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
