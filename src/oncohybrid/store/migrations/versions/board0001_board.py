"""Tables of the tumour boards area: boards, sessions, cases, decisions, attendance (issue
#15); store/models_board.py.

Revision ID: board0001
Revises: batch0001
Create Date: 2026-12-06 23:50:00

The seven area migrations (board0001 … fellow0001) were laid down as one linear chain
before the areas were built in parallel, so that each fills its own file and the chain
stays single-headed whatever order they land in.
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401 - used by the area's tables
from alembic import op  # noqa: F401

revision = "board0001"
down_revision = "batch0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
