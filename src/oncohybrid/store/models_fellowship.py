"""Tables of the fellowship programme (issue #13): applications and their documents,
reviews, interviews, the fellows' year (programme, manual logbook entries, monthly
sign-offs, evaluations, research project), the final report and certificates.

Structured declarations (the applicant's JSON, the rubric scores, the programme plan, the
research milestones) are JSON columns: their shape is the pure package's
(:mod:`oncohybrid.fellowship`) and is validated there before it is stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from oncohybrid.store.models import Base

#: Application states: draft -> submitted -> (shortlisted) -> offered -> accepted |
#: declined; waiting (waiting list), rejected, withdrawn.
APPLICATION_STATES = ("draft", "submitted", "shortlisted", "offered", "accepted", "declined",
                      "waiting", "rejected", "withdrawn")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class FellowshipApplication(Base):
    __tablename__ = "fellowship_applications"
    __table_args__ = (UniqueConstraint("call_id", "username", name="uq_fellowship_app_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), index=True)
    #: The applicant's account (role applicant).
    username: Mapped[str] = mapped_column(String(64), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    eligible: Mapped[bool | None] = mapped_column(Boolean)
    eligibility: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class FellowshipDocument(Base):
    __tablename__ = "fellowship_documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_pk: Mapped[int] = mapped_column(
        ForeignKey("fellowship_applications.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(255))
    #: Path relative to the workspace's private document folder (never under web/).
    stored_name: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class FellowshipReview(Base):
    """One reviewer assigned to one application: COI declaration, then rubric scores."""

    __tablename__ = "fellowship_reviews"
    __table_args__ = (UniqueConstraint("application_pk", "reviewer",
                                       name="uq_fellowship_review"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_pk: Mapped[int] = mapped_column(
        ForeignKey("fellowship_applications.id", ondelete="CASCADE"), index=True)
    reviewer: Mapped[str] = mapped_column(String(64), index=True)
    assigned_by: Mapped[str] = mapped_column(String(64))
    #: None until declared; True = conflict of interest (the reviewer may not score).
    coi: Mapped[bool | None] = mapped_column(Boolean)
    coi_note: Mapped[str | None] = mapped_column(Text)
    scores: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: Weighted total as a decimal string (0-10).
    total: Mapped[str | None] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)
    scored_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class FellowshipInterview(Base):
    """An interview slot of a call: open (no application yet, the applicant picks it) or
    booked for one application."""

    __tablename__ = "fellowship_interviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), index=True)
    application_pk: Mapped[int | None] = mapped_column(
        ForeignKey("fellowship_applications.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    minutes: Mapped[int] = mapped_column(Integer, default=30)
    location: Mapped[str] = mapped_column(String(255), default="video call")
    uid: Mapped[str] = mapped_column(String(128), unique=True)
    booked_by: Mapped[str] = mapped_column(String(64))


class Fellow(Base):
    """A fellow's year: from the accepted application to the certificate."""

    __tablename__ = "fellowship_fellows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Public id of the fellow (the applicant id), e.g. ``APP-001``.
    fellow_id: Mapped[str] = mapped_column(String(64), unique=True)
    call_id: Mapped[str] = mapped_column(String(64))
    application_pk: Mapped[int | None] = mapped_column(
        ForeignKey("fellowship_applications.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200))
    #: The fellow's account on the platform (role fellow), whose work fills the logbook.
    username: Mapped[str | None] = mapped_column(String(64), index=True)
    mentor: Mapped[str | None] = mapped_column(String(64), index=True)
    track: Mapped[str] = mapped_column(String(32))
    start: Mapped[dt.date] = mapped_column(Date)
    end: Mapped[dt.date] = mapped_column(Date)
    #: [{"week": 1, "start": "YYYY-MM-DD", "module": id, "label": text}, ...]
    programme: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: Research project: {"title", "milestones": {stage: {"status", "date", "note"}},
    #: "collaborators": [{"name", "role"}]}
    research: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The fellow's own text of the final report (sections by key).
    report_text: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    report_signed_by: Mapped[str | None] = mapped_column(String(64))
    report_signed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class FellowshipLogEntry(Base):
    """A manual logbook entry (the platform's own entries are derived, not stored)."""

    __tablename__ = "fellowship_log_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fellow_pk: Mapped[int] = mapped_column(ForeignKey("fellowship_fellows.id",
                                                      ondelete="CASCADE"), index=True)
    date: Mapped[dt.date] = mapped_column(Date)
    category: Mapped[str] = mapped_column(String(48))
    title: Mapped[str] = mapped_column(String(255))
    detail: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class FellowshipSignOff(Base):
    """The mentor's sign-off of one month of the logbook."""

    __tablename__ = "fellowship_signoffs"
    __table_args__ = (UniqueConstraint("fellow_pk", "month", name="uq_fellowship_signoff"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fellow_pk: Mapped[int] = mapped_column(ForeignKey("fellowship_fellows.id",
                                                      ondelete="CASCADE"), index=True)
    month: Mapped[str] = mapped_column(String(7))
    mentor: Mapped[str] = mapped_column(String(64))
    entries: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    signed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class FellowshipEvaluation(Base):
    """A periodic evaluation: mentor -> fellow or fellow -> programme."""

    __tablename__ = "fellowship_evaluations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fellow_pk: Mapped[int] = mapped_column(ForeignKey("fellowship_fellows.id",
                                                      ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    period: Mapped[str] = mapped_column(String(32))
    author: Mapped[str] = mapped_column(String(64))
    scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class FellowshipCertificate(Base):
    """An issued certificate: its content as signed, and the code printed on it."""

    __tablename__ = "fellowship_certificates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    fellow_pk: Mapped[int] = mapped_column(ForeignKey("fellowship_fellows.id",
                                                      ondelete="CASCADE"), index=True)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    code: Mapped[str] = mapped_column(String(128), unique=True)
    issued_by: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
