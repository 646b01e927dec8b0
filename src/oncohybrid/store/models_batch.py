"""Batch runs and their tasks: one row per unit of work of ``oncohybrid batch`` (issue #17).

A :class:`BatchRun` is one invocation (kind, parameters, where it ran); a
:class:`BatchTask` is one unit of work in it (one patient for ``assess``, one PET study for
``quantify``) with what decides whether a later run may reuse it — the inputs' content
hash, the parameters' hash and the software version — and what happened: status,
attempts, timings, the worker that ran it, the error, and the result (its JSON text as the
command prints it, and where it lies in the file store).

A task is written ``done`` together with its result in one transaction, so a worker that
dies leaves it ``running`` (never half-written); a rerun does it again. A task skipped
because an earlier ``done`` task had the same inputs, parameters and version points at
that task (``reused_task_pk``) and shows its stored result (docs/scale.md).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from oncohybrid.store.models import Base

#: Task states: queued (waiting or waiting for a retry), running, done, failed (after its
#: last attempt), skipped (an earlier done task is reused), cancelled.
TASK_STATES = ("queued", "running", "done", "failed", "skipped", "cancelled")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class BatchRun(Base):
    """One ``oncohybrid batch`` invocation."""

    __tablename__ = "batch_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    #: running | finished | cancelled
    status: Mapped[str] = mapped_column(String(16), default="running")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: "serial", "local:N" or the scheduler address
    cluster: Mapped[str | None] = mapped_column(String(255))
    retries: Mapped[int] = mapped_column(Integer, default=0)
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class BatchTask(Base):
    """One unit of work of a batch run."""

    __tablename__ = "batch_tasks"
    __table_args__ = (
        Index("ix_batch_tasks_reuse", "kind", "unit_key", "input_hash", "params_hash",
              "software_version", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("batch_runs.id", ondelete="CASCADE"),
                                        index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    #: the unit: the Patient ID (assess) or the PET Series Instance UID (quantify)
    unit_key: Mapped[str] = mapped_column(String(128))
    patient_id: Mapped[str] = mapped_column(String(64))
    input_hash: Mapped[str] = mapped_column(String(64))
    params_hash: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    software_version: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    queued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: wall-clock seconds of the last attempt
    seconds: Mapped[float | None] = mapped_column(Float)
    worker: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)
    #: the result JSON text exactly as the single-unit command prints it (NULL until done)
    result_json: Mapped[str | None] = mapped_column(Text)
    #: the same result in the file store (path relative to the workspace's derived store)
    result_location: Mapped[str | None] = mapped_column(Text)
    #: skipped: the done task whose result this one shows
    reused_task_pk: Mapped[int | None] = mapped_column(
        ForeignKey("batch_tasks.id", ondelete="SET NULL"))
