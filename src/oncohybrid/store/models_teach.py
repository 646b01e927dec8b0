"""Tables of the teaching file and self-assessment (issue #14, docs/teaching.md).

- :class:`TeachCase` — a de-identified teaching case: authoring fields (history, findings,
  diagnosis with certainty, discussion, teaching points, references, tags, key images),
  the editorial status (draft → in review → published), author and reviewer, the folder
  of its de-identified DICOM copies below ``<home>/teaching/`` and its ground truth (the
  captured record: timepoints, lesions with their mask segments, each criterion's
  assessment with the rule trace), all with shifted dates and replacement UIDs;
- :class:`TeachRevision` — every saved version of the authoring fields (who, when);
- :class:`TeachQuestion` — a question of a case: kind, prompt, parameters, reference;
- :class:`TeachCollection` / :class:`TeachCollectionItem` — courses, "case of the week";
- :class:`TeachQuiz` / :class:`TeachAnswer` — a trainee's quiz (practice, timed exam,
  spaced-repetition review, one unknown case) and the scored answers;
- :class:`TeachReview` — the SM-2 state of a question for a trainee (Wozniak 1990).

``source_patient_pk`` links a captured case to the clinical patient for the capturing
site only (it is never exported); it becomes NULL when the patient is deleted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from oncohybrid.store.models import Base

#: Editorial states of a case, in workflow order.
CASE_STATUSES = ("draft", "in review", "published")
#: Diagnostic certainty (Radiopaedia's levels, anchors-platforms §7).
CERTAINTIES = ("pathology-proven", "clinical follow-up", "imaging only")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TeachCase(Base):
    """A teaching case (see module doc)."""

    __tablename__ = "teach_cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    #: capture | import | tce
    origin: Mapped[str] = mapped_column(String(16), default="capture")
    author: Mapped[str] = mapped_column(String(64))
    reviewer: Mapped[str | None] = mapped_column(String(64))
    history: Mapped[str] = mapped_column(Text, default="")
    findings: Mapped[str] = mapped_column(Text, default="")
    diagnosis: Mapped[str] = mapped_column(Text, default="")
    certainty: Mapped[str | None] = mapped_column(String(32))
    discussion: Mapped[str] = mapped_column(Text, default="")
    teaching_points: Mapped[str] = mapped_column(Text, default="")
    references: Mapped[str] = mapped_column(Text, default="")
    #: "kind:value" strings, e.g. "modality:PET/CT", "tracer:FDG", "criterion:recist1.1"
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: [{"timepoint": n, "orientation": "axial", "index": k, "note": "..."}]
    key_images: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    #: the case folder relative to ``<home>/teaching``
    folder: Mapped[str] = mapped_column(Text)
    pseudonym: Mapped[str] = mapped_column(String(64))
    ground_truth: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source_patient_pk: Mapped[int | None] = mapped_column(
        ForeignKey("patients.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class TeachRevision(Base):
    """One saved version of a case's authoring fields."""

    __tablename__ = "teach_revisions"
    __table_args__ = (UniqueConstraint("case_pk", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_pk: Mapped[int] = mapped_column(ForeignKey("teach_cases.id", ondelete="CASCADE"),
                                         index=True)
    number: Mapped[int] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class TeachQuestion(Base):
    """A question of a case; ``reference`` holds the answer and its explanation."""

    __tablename__ = "teach_questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_pk: Mapped[int] = mapped_column(ForeignKey("teach_cases.id", ondelete="CASCADE"),
                                         index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    prompt: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reference: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class TeachCollection(Base):
    """A named list of cases: a course, "case of the week", a playlist."""

    __tablename__ = "teach_collections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(32), default="course")
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class TeachCollectionItem(Base):
    __tablename__ = "teach_collection_items"
    __table_args__ = (UniqueConstraint("collection_pk", "case_pk"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_pk: Mapped[int] = mapped_column(
        ForeignKey("teach_collections.id", ondelete="CASCADE"), index=True)
    case_pk: Mapped[int] = mapped_column(ForeignKey("teach_cases.id", ondelete="CASCADE"),
                                         index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class TeachQuiz(Base):
    """A trainee's quiz: ``mode`` practice | exam | review | case (one unknown case)."""

    __tablename__ = "teach_quizzes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    mode: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    question_pks: Mapped[list[int]] = mapped_column(JSON, default=list)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    time_limit_s: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class TeachAnswer(Base):
    """A trainee's answer to one question of a quiz; ``score`` NULL until a mentor marks
    a free-text answer."""

    __tablename__ = "teach_answers"
    __table_args__ = (UniqueConstraint("quiz_pk", "question_pk"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    quiz_pk: Mapped[int] = mapped_column(ForeignKey("teach_quizzes.id", ondelete="CASCADE"),
                                         index=True)
    question_pk: Mapped[int] = mapped_column(
        ForeignKey("teach_questions.id", ondelete="CASCADE"), index=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    answer: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    score: Mapped[float | None] = mapped_column(Float)
    correct: Mapped[bool | None] = mapped_column(Boolean)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    marked_by: Mapped[str | None] = mapped_column(String(64))
    answered_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class TeachReview(Base):
    """SM-2 state of one question for one trainee (:mod:`oncohybrid.teaching.sm2`)."""

    __tablename__ = "teach_reviews"
    __table_args__ = (UniqueConstraint("username", "question_pk"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    question_pk: Mapped[int] = mapped_column(
        ForeignKey("teach_questions.id", ondelete="CASCADE"), index=True)
    repetitions: Mapped[int] = mapped_column(Integer, default=0)
    interval_days: Mapped[int] = mapped_column(Integer, default=0)
    easiness: Mapped[float] = mapped_column(Float, default=2.5)
    due: Mapped[dt.date] = mapped_column(Date)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
