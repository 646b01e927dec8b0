"""SQLAlchemy 2 models of the study database: the DICOM hierarchy and the ingest log.

The hierarchy follows the DICOM information model of PS3.3 §A.1.2 (Patient → Study →
Series → Composite instance) with the attributes a reader filters on. DICOM UIDs are
unique keys but never the primary key: rows are joined by integer surrogate keys so that
later tables (time points, lesions, reports) do not depend on identifiers that
de-identification may rewrite.

Every table is created by the Alembic migrations in ``oncohybrid.store.migrations``
(never by ``Base.metadata.create_all``). Other areas add their tables to the same
``Base`` and add a new migration on top of the current head (keep the chain linear).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Deterministic constraint names so that Alembic migrations can refer to them on both
# SQLite (batch mode) and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Maximum length of a UID, PS3.5 §9.1.
UID_LEN = 64


class Base(DeclarativeBase):
    """Declarative base shared by every table of the platform."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Patient(Base):
    """(0010,0020) *Patient ID* within its (0010,0021) *Issuer of Patient ID*."""

    __tablename__ = "patients"
    __table_args__ = (UniqueConstraint("patient_id", "issuer_of_patient_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64), index=True)
    # Empty string, not NULL, when absent: NULLs never collide in a unique constraint.
    issuer_of_patient_id: Mapped[str] = mapped_column(String(64), default="")
    patient_name: Mapped[str | None] = mapped_column(String(324))
    patient_sex: Mapped[str | None] = mapped_column(String(16))
    patient_birth_date: Mapped[dt.date | None] = mapped_column(Date)
    #: Number of studies and ``max(study_date)`` of the patient, kept by row triggers on
    #: ``studies`` (migration store0003) in the writing transaction; never written here.
    n_studies: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_study_date: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=_utcnow, server_default=func.now()
    )

    studies: Mapped[list[Study]] = relationship(
        back_populates="patient", cascade="all, delete-orphan", passive_deletes=True
    )


# The worklist's order (most recent study first, then key) over patients with studies: a
# page is an index scan with LIMIT instead of an aggregate over every study (index-only on
# PostgreSQL, n_studies included, so a far page's OFFSET and the total skip the heap).
Index("ix_patients_worklist", Patient.last_study_date.desc(), Patient.id,
      postgresql_include=["n_studies"], postgresql_where=Patient.n_studies > 0,
      sqlite_where=Patient.n_studies > 0)


class Study(Base):
    """A study, keyed by (0020,000D) *Study Instance UID*."""

    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_instance_uid: Mapped[str] = mapped_column(String(UID_LEN), unique=True)
    patient_pk: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    study_date: Mapped[dt.date | None] = mapped_column(Date, index=True)
    study_time: Mapped[str | None] = mapped_column(String(32))
    study_description: Mapped[str | None] = mapped_column(String(256))
    accession_number: Mapped[str | None] = mapped_column(String(64))
    study_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=_utcnow, server_default=func.now()
    )

    patient: Mapped[Patient] = relationship(back_populates="studies")
    series: Mapped[list[Series]] = relationship(
        back_populates="study", cascade="all, delete-orphan", passive_deletes=True
    )


class Series(Base):
    """A series, keyed by (0020,000E) *Series Instance UID*.

    ``number_of_instances`` is the number of instances stored (recounted on every
    commit that adds instances), not (0020,1209) from the headers.
    """

    __tablename__ = "series"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_instance_uid: Mapped[str] = mapped_column(String(UID_LEN), unique=True)
    study_pk: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    modality: Mapped[str] = mapped_column(String(16), index=True)
    series_number: Mapped[int | None] = mapped_column(Integer)
    series_date: Mapped[dt.date | None] = mapped_column(Date)
    series_time: Mapped[str | None] = mapped_column(String(32))
    series_description: Mapped[str | None] = mapped_column(String(256))
    body_part_examined: Mapped[str | None] = mapped_column(String(64))
    manufacturer: Mapped[str | None] = mapped_column(String(128))
    manufacturer_model_name: Mapped[str | None] = mapped_column(String(128))
    frame_of_reference_uid: Mapped[str | None] = mapped_column(String(UID_LEN))
    #: (0018,0031) *Radiopharmaceutical* or the code meaning of (0054,0304), PET only.
    radiopharmaceutical: Mapped[str | None] = mapped_column(String(128))
    #: (0054,1001) *Units* of a PET series (BQML, CNTS, ...).
    units: Mapped[str | None] = mapped_column(String(32))
    number_of_instances: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=_utcnow, server_default=func.now()
    )

    study: Mapped[Study] = relationship(back_populates="series")
    instances: Mapped[list[Instance]] = relationship(
        back_populates="series", cascade="all, delete-orphan", passive_deletes=True
    )


class StudySeriesKey(Base):
    """The series of a study per key: ``kind`` ``'modality'`` (``value`` = the modality) or
    ``'tracer'`` (``value`` = ``lower(radiopharmaceutical)``), ``n_series`` of them.

    Kept by triggers on ``series`` and ``studies`` (migration store0004); never written
    from Python.
    """

    __tablename__ = "study_series_keys"

    study_pk: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"),
                                          primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(128), primary_key=True)
    n_series: Mapped[int] = mapped_column(Integer, server_default="0")


class PatientSeriesSummary(Base):
    """Per patient and key (as :class:`StudySeriesKey`): how many of the patient's studies
    have a series with that key and the latest of their dates, what the worklist's
    modality and tracer filters used to aggregate (issue #11).

    Kept by triggers on ``series`` and ``studies`` (migration store0004); never written
    from Python.
    """

    __tablename__ = "patient_series_summary"

    patient_pk: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"),
                                            primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(128), primary_key=True)
    n_studies: Mapped[int] = mapped_column(Integer, server_default="0")
    last_study_date: Mapped[dt.date | None] = mapped_column(Date)


# The worklist's order within one key (a modality or tracer filter's page is an index scan).
Index("ix_patient_series_worklist", PatientSeriesSummary.kind, PatientSeriesSummary.value,
      PatientSeriesSummary.last_study_date.desc(), PatientSeriesSummary.patient_pk,
      postgresql_include=["n_studies"], postgresql_where=PatientSeriesSummary.n_studies > 0,
      sqlite_where=PatientSeriesSummary.n_studies > 0)


class Instance(Base):
    """A stored composite instance, keyed by (0008,0018) *SOP Instance UID*.

    ``file_path`` is absolute; ``in_place`` says whether it points at the user's file
    (``--in-place``) or at a copy inside the workspace file store.
    """

    __tablename__ = "instances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(UID_LEN), unique=True)
    series_pk: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    sop_class_uid: Mapped[str] = mapped_column(String(UID_LEN))
    instance_number: Mapped[int | None] = mapped_column(Integer)
    transfer_syntax_uid: Mapped[str | None] = mapped_column(String(UID_LEN))
    file_path: Mapped[str] = mapped_column(Text)
    file_size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    in_place: Mapped[bool] = mapped_column(Boolean, default=False)
    ingest_log_pk: Mapped[int | None] = mapped_column(
        ForeignKey("ingest_logs.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=_utcnow, server_default=func.now()
    )

    series: Mapped[Series] = relationship(back_populates="instances")


class IngestLog(Base):
    """One row per ingest run (a CLI/folder ingest, or one network receiving session).

    ``status`` is ``running`` while the run goes on, ``completed`` at its end and stays
    ``running`` if the process died (see :meth:`Ingestor.adopt_orphans`).
    ``skipped`` is a JSON list of ``{"path": ..., "reason": ...}``.
    """

    __tablename__ = "ingest_logs"
    __table_args__ = (Index("ix_ingest_logs_started_at", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))  # "files" | "network" | ...
    in_place: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    n_new: Mapped[int] = mapped_column(Integer, default=0)
    n_duplicate: Mapped[int] = mapped_column(Integer, default=0)
    n_skipped: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)


class InstanceConflict(Base):
    """An instance received again under a stored (0008,0018) *SOP Instance UID* with other content.

    PS3.4 §B.4.1 leaves a re-sent SOP Instance to the SCP; two data sets that share a
    SOP Instance UID but differ are an error of the sender (or a forged file), so the
    indexed original is kept and the newcomer is stored aside, as received, under the
    workspace's ``conflicts/`` folder (``file_path``) for review. ``stored_sha256`` and
    ``new_sha256`` are SHA-256 digests of the whole stored and received files. One row
    per distinct received content.
    """

    __tablename__ = "instance_conflicts"
    __table_args__ = (UniqueConstraint("sop_instance_uid", "new_sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(UID_LEN), index=True)
    stored_path: Mapped[str] = mapped_column(Text)
    stored_sha256: Mapped[str] = mapped_column(String(64))
    new_sha256: Mapped[str] = mapped_column(String(64))
    file_path: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)  # where it came from (path, zip!member)
    ingest_log_pk: Mapped[int | None] = mapped_column(
        ForeignKey("ingest_logs.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=_utcnow, server_default=func.now()
    )
