"""Research studies (issue #16): studies, data-access groups, investigators, cohorts,
records and their CRF data with locking, e-signature and audit trail, exports.

- :class:`ResearchStudy` carries the protocol (schedule of examinations, JSON), the ethics
  approval (number, date, the stored approval file and its SHA-256) and the REDCap data
  dictionary (its rows, JSON) with the repeating instruments.
- A :class:`ResearchRecord` is one study subject (REDCap's record), linked to a stored
  patient and to one data-access group; its CRF values are one row per form instance and
  field (:class:`ResearchCrfValue`), the form instance's state (complete, locked, signed)
  in :class:`ResearchCrfForm`, and every change in :class:`ResearchCrfAudit` (who, when,
  old → new), which is the study's own data log, as REDCap keeps one.
- :class:`ResearchExport` is one export (who, when, format, de-identified or not).
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


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ResearchStudy(Base):
    """One research study."""

    __tablename__ = "research_studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(512))
    protocol: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    ethics_number: Mapped[str | None] = mapped_column(String(128))
    ethics_date: Mapped[dt.date | None] = mapped_column(Date)
    #: the approval file, relative to the workspace's research folder
    ethics_file: Mapped[str | None] = mapped_column(Text)
    ethics_file_sha256: Mapped[str | None] = mapped_column(String(64))
    #: REDCap data-dictionary rows (18 cells each)
    dictionary: Mapped[list[list[str]] | None] = mapped_column(JSON)
    #: form → "timepoint" (one instance per imaging timepoint) or "free"
    repeating: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class ResearchDag(Base):
    """A data-access group (a site): its members see only its records."""

    __tablename__ = "research_dags"
    __table_args__ = (UniqueConstraint("study_pk", "name", name="uq_research_dags_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_pk: Mapped[int] = mapped_column(
        ForeignKey("research_studies.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))


class ResearchMember(Base):
    """An investigator of a study: a web user, a study role and a group (``NULL``: all)."""

    __tablename__ = "research_members"
    __table_args__ = (UniqueConstraint("study_pk", "username",
                                       name="uq_research_members_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_pk: Mapped[int] = mapped_column(
        ForeignKey("research_studies.id", ondelete="CASCADE"), index=True)
    username: Mapped[str] = mapped_column(String(64))
    #: pi | investigator | data-manager | statistician | fellow
    role: Mapped[str] = mapped_column(String(32))
    dag_pk: Mapped[int | None] = mapped_column(ForeignKey("research_dags.id",
                                                          ondelete="SET NULL"))
    added_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class ResearchCohort(Base):
    """A saved cohort query and its last evaluation (flow counts)."""

    __tablename__ = "research_cohorts"
    __table_args__ = (UniqueConstraint("study_pk", "name", name="uq_research_cohorts_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_pk: Mapped[int] = mapped_column(
        ForeignKey("research_studies.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    query: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    flow: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class ResearchCohortPatient(Base):
    """One patient's outcome in a cohort (included or not, and why)."""

    __tablename__ = "research_cohort_patients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cohort_pk: Mapped[int] = mapped_column(
        ForeignKey("research_cohorts.id", ondelete="CASCADE"), index=True)
    patient_pk: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    included: Mapped[bool] = mapped_column(Boolean)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)


class ResearchRecord(Base):
    """A study subject (REDCap record) linked to a stored patient."""

    __tablename__ = "research_records"
    __table_args__ = (
        UniqueConstraint("study_pk", "record_id", name="uq_research_records_id"),
        UniqueConstraint("study_pk", "patient_pk", name="uq_research_records_patient"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_pk: Mapped[int] = mapped_column(
        ForeignKey("research_studies.id", ondelete="CASCADE"), index=True)
    record_id: Mapped[str] = mapped_column(String(64))
    patient_pk: Mapped[int | None] = mapped_column(ForeignKey("patients.id",
                                                              ondelete="SET NULL"))
    dag_pk: Mapped[int | None] = mapped_column(ForeignKey("research_dags.id",
                                                          ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class ResearchClinical(Base):
    """One clinical fact of a patient in a study (tumour type, ECOG, treatment start …)."""

    __tablename__ = "research_clinical"
    __table_args__ = (UniqueConstraint("study_pk", "patient_pk", "field",
                                       name="uq_research_clinical_field"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_pk: Mapped[int] = mapped_column(
        ForeignKey("research_studies.id", ondelete="CASCADE"), index=True)
    patient_pk: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    field: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text)


class ResearchCrfForm(Base):
    """One form instance of a record: state, lock and e-signature."""

    __tablename__ = "research_crf_forms"
    __table_args__ = (UniqueConstraint("record_pk", "form", "instance",
                                       name="uq_research_crf_forms_instance"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_pk: Mapped[int] = mapped_column(
        ForeignKey("research_records.id", ondelete="CASCADE"), index=True)
    form: Mapped[str] = mapped_column(String(64))
    instance: Mapped[int] = mapped_column(Integer, default=1)
    #: the imaging timepoint a timepoint-repeating instance belongs to (its scan date)
    timepoint_date: Mapped[dt.date | None] = mapped_column(Date)
    #: incomplete | complete (REDCap's form status 0/2)
    status: Mapped[str] = mapped_column(String(16), default="incomplete")
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    locked_by: Mapped[str | None] = mapped_column(String(64))
    locked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: SHA-256 of the signed values (the e-signature's content binding)
    signature_sha256: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class ResearchCrfValue(Base):
    """One field's current value in one form instance."""

    __tablename__ = "research_crf_values"
    __table_args__ = (UniqueConstraint("record_pk", "form", "instance", "field",
                                       name="uq_research_crf_values_field"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_pk: Mapped[int] = mapped_column(
        ForeignKey("research_records.id", ondelete="CASCADE"), index=True)
    form: Mapped[str] = mapped_column(String(64))
    instance: Mapped[int] = mapped_column(Integer, default=1)
    field: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text)


class ResearchCrfAudit(Base):
    """One change of CRF data or of a form's lock (the study's data log)."""

    __tablename__ = "research_crf_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_pk: Mapped[int] = mapped_column(
        ForeignKey("research_records.id", ondelete="CASCADE"), index=True)
    form: Mapped[str] = mapped_column(String(64))
    instance: Mapped[int] = mapped_column(Integer, default=1)
    field: Mapped[str | None] = mapped_column(String(64))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    #: entry | import | imaging | calc | lock | unlock | status
    action: Mapped[str] = mapped_column(String(16))
    username: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class ResearchExport(Base):
    """One export of a study."""

    __tablename__ = "research_exports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_pk: Mapped[int] = mapped_column(
        ForeignKey("research_studies.id", ondelete="CASCADE"), index=True)
    username: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(16))
    deidentified: Mapped[bool] = mapped_column(Boolean)
    n_patients: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
