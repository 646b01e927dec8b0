"""The de-identification key store: per-patient pseudonym and date shift, and the UID map.

Issue #16: a patient's pseudonym, whole-day date shift and every replaced UID are kept so
that a second run (or the clinical-data export) gives the same values. The rows are the
re-identification key: whoever can read them can link pseudonyms back to patients.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKey, Integer, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from oncohybrid.store.models import UID_LEN, Base


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class DeidPatient(Base):
    """One patient's pseudonym and date shift, keyed by (0010,0020) and its issuer."""

    __tablename__ = "deid_patients"
    __table_args__ = (UniqueConstraint("patient_id", "issuer_of_patient_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64))
    issuer_of_patient_id: Mapped[str] = mapped_column(String(64), default="")
    pseudonym: Mapped[str] = mapped_column(String(64), unique=True)
    date_shift_days: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=_utcnow, server_default=func.now()
    )


class DeidUid(Base):
    """An original UID and its replacement (a ``2.25.`` UUID-derived UID, PS3.5 §B.2)."""

    __tablename__ = "deid_uids"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    original_uid: Mapped[str] = mapped_column(String(UID_LEN), unique=True)
    replacement_uid: Mapped[str] = mapped_column(String(UID_LEN), unique=True)
    deid_patient_pk: Mapped[int] = mapped_column(
        ForeignKey("deid_patients.id", ondelete="CASCADE"), index=True
    )
