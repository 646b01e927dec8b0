"""Tables of the tumour boards (multidisciplinary meetings, issue #15).

A :class:`Board` is one recurring meeting (breast, head and neck, GI …) with its weekly
schedule and its members by specialty; a :class:`BoardSession` is one dated meeting of a
board; a :class:`BoardCase` is one patient on a session's agenda with the clinical
question and the preparation checklist; a :class:`BoardDecision` is what the room decided
for that case (consensus recommendation, rationale, dissent, follow-up imaging with its
due date); :class:`BoardAttendance` lists who attended, by specialty (the Commission on
Cancer asks for documented multidisciplinary attendance, CoC Standard 2.5, 2020).

Patients are referenced by their database key (``patients.id``), never by name or
identifier, so that the tables carry no PHI beyond the free-text question and decision.
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

#: Session states: planned (agenda being built), closed (decisions final).
SESSION_STATES = ("planned", "closed")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Board(Base):
    """One recurring multidisciplinary meeting."""

    __tablename__ = "boards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    specialty: Mapped[str] = mapped_column(String(64))
    #: ISO weekday of the weekly meeting (1 = Monday … 7 = Sunday), None when ad hoc.
    weekday: Mapped[int | None] = mapped_column(Integer)
    #: Start time "HH:MM" (local time of the institution).
    start_time: Mapped[str] = mapped_column(String(5), default="08:00")
    minutes_per_case: Mapped[int] = mapped_column(Integer, default=10)
    #: Every how many weeks the board meets (1 weekly, 2 fortnightly).
    every_weeks: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class BoardMember(Base):
    """A standing member of a board: a user of the platform or a named guest."""

    __tablename__ = "board_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    board_pk: Mapped[int] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"),
                                          index=True)
    name: Mapped[str] = mapped_column(String(128))
    username: Mapped[str | None] = mapped_column(String(64))
    specialty: Mapped[str] = mapped_column(String(64))


class BoardSession(Base):
    """One dated meeting of a board."""

    __tablename__ = "board_sessions"
    __table_args__ = (UniqueConstraint("board_pk", "date"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    board_pk: Mapped[int] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"),
                                          index=True)
    date: Mapped[dt.date] = mapped_column(Date)
    start_time: Mapped[str] = mapped_column(String(5), default="08:00")
    status: Mapped[str] = mapped_column(String(16), default="planned")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    closed_by: Mapped[str | None] = mapped_column(String(64))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class BoardCase(Base):
    """One patient on a session's agenda."""

    __tablename__ = "board_cases"
    __table_args__ = (UniqueConstraint("session_pk", "patient_pk"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_pk: Mapped[int] = mapped_column(
        ForeignKey("board_sessions.id", ondelete="CASCADE"), index=True)
    patient_pk: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"),
                                            index=True)
    position: Mapped[int] = mapped_column(Integer)
    question: Mapped[str | None] = mapped_column(Text)
    minutes: Mapped[int | None] = mapped_column(Integer)
    #: Manual checklist ticks {item key: username who ticked}.
    checklist: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class BoardDecision(Base):
    """The room's decision on one case."""

    __tablename__ = "board_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_pk: Mapped[int] = mapped_column(ForeignKey("board_cases.id", ondelete="CASCADE"),
                                         unique=True)
    patient_pk: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"),
                                            index=True)
    recommendation: Mapped[str] = mapped_column(Text)
    consensus: Mapped[bool] = mapped_column(Boolean, default=True)
    rationale: Mapped[str | None] = mapped_column(Text)
    dissent: Mapped[str | None] = mapped_column(Text)
    follow_up_exam: Mapped[str | None] = mapped_column(String(64))
    follow_up_due: Mapped[dt.date | None] = mapped_column(Date, index=True)
    #: Set when the follow-up exam was done (or cancelled) so it leaves the worklist.
    follow_up_done: Mapped[bool] = mapped_column(Boolean, default=False)
    decided_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class BoardAttendance(Base):
    """Who attended a session, by specialty (a user's name when known)."""

    __tablename__ = "board_attendance"
    __table_args__ = (UniqueConstraint("session_pk", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_pk: Mapped[int] = mapped_column(
        ForeignKey("board_sessions.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    username: Mapped[str | None] = mapped_column(String(64))
    specialty: Mapped[str] = mapped_column(String(64))
