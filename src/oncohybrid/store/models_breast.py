"""Breast imaging tables (issue #21): structured BI-RADS reports and the pathology results
linked to their findings (radiology-pathology correlation).

A :class:`BreastReport` holds the structured findings as validated JSON (the mapping of
:func:`oncohybrid.breast.report.parse_report`), the generated text in English and French,
the overall category and whether it implies a tissue diagnosis; it is a draft until a
physician signs it (then it is frozen and enters the outcome audit). A
:class:`BreastPathology` row is one tissue diagnosis (or surgical result) of a patient,
linked to the report finding it samples when known, with the concordance the physician
recorded.
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
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from oncohybrid.store.models import Base


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class BreastReport(Base):
    """One structured BI-RADS report of one examination."""

    __tablename__ = "breast_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_pk: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    study_pk: Mapped[int | None] = mapped_column(
        ForeignKey("studies.id", ondelete="SET NULL"))
    exam_date: Mapped[dt.date] = mapped_column(Date, index=True)
    #: MG | DBT | CEM | US | MRI
    modality: Mapped[str] = mapped_column(String(8))
    #: screening | diagnostic
    purpose: Mapped[str] = mapped_column(String(16))
    #: overall BI-RADS category 0-6 (4A/4B/4C)
    overall_category: Mapped[str] = mapped_column(String(4))
    biopsy_recommended: Mapped[bool] = mapped_column(Boolean, default=False)
    structured: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    text_en: Mapped[str] = mapped_column(Text, default="")
    text_fr: Mapped[str] = mapped_column(Text, default="")
    #: draft | signed
    status: Mapped[str] = mapped_column(String(16), default="draft")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=_utcnow, server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=_utcnow, server_default=func.now())
    signed_by: Mapped[str | None] = mapped_column(String(64))
    signed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: the signed report's DICOM SR (TID 4200) in the file store, relative path
    sr_path: Mapped[str | None] = mapped_column(Text)


class BreastPathology(Base):
    """One tissue diagnosis of a patient, linked to a report finding when known."""

    __tablename__ = "breast_pathology"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_pk: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    report_pk: Mapped[int | None] = mapped_column(
        ForeignKey("breast_reports.id", ondelete="SET NULL"), index=True)
    #: index of the finding in the report's structured findings
    finding_index: Mapped[int | None] = mapped_column(Integer)
    diagnosis_date: Mapped[dt.date] = mapped_column(Date)
    #: malignant | benign | high-risk
    result: Mapped[str] = mapped_column(String(16))
    #: invasive | dcis | None
    cancer_type: Mapped[str | None] = mapped_column(String(16))
    size_mm: Mapped[float | None] = mapped_column(Float)
    #: positive | negative | None
    nodes: Mapped[str | None] = mapped_column(String(16))
    biopsy_performed: Mapped[bool] = mapped_column(Boolean, default=True)
    histology: Mapped[str] = mapped_column(String(255), default="")
    #: concordant | discordant | None (not yet judged)
    concordance: Mapped[str | None] = mapped_column(String(16))
    concordance_note: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=_utcnow, server_default=func.now())
