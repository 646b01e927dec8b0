"""Table of configured DICOM/DICOMweb nodes (``pacs_node``).

Read and written only through :mod:`oncohybrid.services.pacs`; the domain object is
:class:`oncohybrid.pacs.node.PacsNode`. Created by the Alembic migration
``*_pacs_nodes.py``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from oncohybrid.store.models import Base


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class PacsNodeRecord(Base):
    """One remote node: DIMSE (AE title, host, port) or DICOMweb (URL + authentication).

    ``secret`` holds a stored password/token only when the administrator chose to store
    it; ``secret_env`` names an environment variable read at use time instead.
    """

    __tablename__ = "pacs_node"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    ae_title: Mapped[str | None] = mapped_column(String(16))
    host: Mapped[str | None] = mapped_column(String(255))
    port: Mapped[int | None] = mapped_column(Integer)
    url: Mapped[str | None] = mapped_column(String(2048))
    auth: Mapped[str] = mapped_column(String(16), default="none")
    username: Mapped[str | None] = mapped_column(String(255))
    secret: Mapped[str | None] = mapped_column(Text)
    secret_env: Mapped[str | None] = mapped_column(String(255))
    accept_store: Mapped[bool] = mapped_column(Boolean, default=False)
    retrieve: Mapped[str] = mapped_column(String(8), default="move")
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
