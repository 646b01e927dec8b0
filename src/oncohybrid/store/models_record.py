"""The longitudinal oncology record: timepoints, lesions, observations, assessments.

One patient's imaging course as the criteria see it (docs/record.md):

- :class:`Timepoint` — an imaging visit (baseline, follow-up *n*, days since baseline)
  linking its studies (:class:`TimepointStudy`) and the treatment line/event it relates to.
- :class:`Lesion` — a patient-level identity persisting across timepoints, with a
  (0062,0020) *Tracking UID* for DICOM SR (PS3.3 §C.18.8 / TID 1500), site, nodal flag.
- :class:`LesionRole` — the lesion's role under one criterion (target / non-target /
  new / not-recorded); roles may differ between criteria.
- :class:`Observation` — the lesion at a timepoint: measurements, the method and
  parameters behind each (``methods``), reader and time. Manual edits are new rows
  (``source="manual"``) that point at the automatic row they supersede; both are kept
  and exactly one row per (lesion, timepoint) has ``in_use`` (a partial unique index).
- :class:`LesionLineage` — splits and merges between lesion identities.
- :class:`AssessmentRecord` — the result of one criterion engine run for a patient, with
  its input case, so that the trace can be shown later.

Deleting a study never orphans or loses an observation: the links to studies and series
use ``ON DELETE SET NULL`` and the DICOM UIDs are kept as text, so the numbers stay and
only the link is lost (tested in tests/record). Deleting a patient removes the record.
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
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from oncohybrid.store.models import UID_LEN, Base


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Timepoint(Base):
    """An imaging visit of a patient; ``tp_index`` 0 is the baseline."""

    __tablename__ = "record_timepoints"
    __table_args__ = (UniqueConstraint("patient_pk", "scan_date"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_pk: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    tp_index: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(32))  # "baseline", "follow-up 1", ...
    scan_date: Mapped[dt.date] = mapped_column(Date)
    days_since_baseline: Mapped[int] = mapped_column(Integer)
    treatment_line: Mapped[str | None] = mapped_column(String(128))
    treatment_event: Mapped[str | None] = mapped_column(String(128))
    #: The measured lesion masks of this timepoint: one DICOM SEG (PS3.3 A.51) on the PET
    #: grid, path relative to the workspace's derived store, and its SOP Instance UID.
    #: NULL for records written before masks were stored (outputs then re-derive them).
    mask_seg_path: Mapped[str | None] = mapped_column(Text)
    mask_seg_sop_uid: Mapped[str | None] = mapped_column(String(UID_LEN))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)

    studies: Mapped[list[TimepointStudy]] = relationship(
        back_populates="timepoint", cascade="all, delete-orphan", passive_deletes=True
    )


class TimepointStudy(Base):
    """A study of a timepoint (``kind``: PET/CT, CT, MR) and the series used from it.

    ``study_pk`` becomes NULL when the study is deleted; the UIDs stay.
    """

    __tablename__ = "record_timepoint_studies"
    __table_args__ = (UniqueConstraint("timepoint_pk", "study_instance_uid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    timepoint_pk: Mapped[int] = mapped_column(
        ForeignKey("record_timepoints.id", ondelete="CASCADE"), index=True
    )
    study_pk: Mapped[int | None] = mapped_column(
        ForeignKey("studies.id", ondelete="SET NULL"), index=True
    )
    study_instance_uid: Mapped[str] = mapped_column(String(UID_LEN))
    kind: Mapped[str] = mapped_column(String(16))
    pet_series_uid: Mapped[str | None] = mapped_column(String(UID_LEN))
    ct_series_uid: Mapped[str | None] = mapped_column(String(UID_LEN))
    frame_of_reference_uid: Mapped[str | None] = mapped_column(String(UID_LEN))

    timepoint: Mapped[Timepoint] = relationship(back_populates="studies")


class Lesion(Base):
    """A lesion identity of a patient, stable across timepoints.

    ``key`` is the short name shown to readers (``L1``, ``L3@TP2``); ``tracking_uid`` is
    the (0062,0021) *Tracking UID* of its SR measurement groups (TID 1410/1411).
    """

    __tablename__ = "record_lesions"
    __table_args__ = (UniqueConstraint("patient_pk", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_pk: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(64))
    tracking_uid: Mapped[str] = mapped_column(String(UID_LEN), unique=True)
    site: Mapped[str] = mapped_column(String(64))
    nodal: Mapped[bool] = mapped_column(Boolean, default=False)
    first_timepoint_pk: Mapped[int | None] = mapped_column(
        ForeignKey("record_timepoints.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)

    roles: Mapped[list[LesionRole]] = relationship(
        back_populates="lesion", cascade="all, delete-orphan", passive_deletes=True
    )


class LesionRole(Base):
    """Role of a lesion under one criterion; ``source`` says who decided (auto/manual)."""

    __tablename__ = "record_lesion_roles"
    __table_args__ = (UniqueConstraint("lesion_pk", "criterion"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lesion_pk: Mapped[int] = mapped_column(
        ForeignKey("record_lesions.id", ondelete="CASCADE"), index=True
    )
    criterion: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16))  # target | non-target | new | not-recorded
    source: Mapped[str] = mapped_column(String(16), default="automatic")
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    decided_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)

    lesion: Mapped[Lesion] = relationship(back_populates="roles")


#: Measurement columns of :class:`Observation` (name -> unit), in display order.
MEASUREMENTS: dict[str, str] = {
    "ld_mm": "mm",
    "sa_mm": "mm",
    "ppd_mm2": "mm2",
    "volume_ml": "ml",
    "hu_mean": "HU",
    "suv_max": "SUVbw",
    "suv_peak": "SUVbw",
    "sul_peak": "SUL",
    "mtv_ml": "ml",
    "tlg_suv_ml": "SUVbw.ml",
}


class Observation(Base):
    """A lesion at a timepoint: measurements with provenance.

    ``source`` is ``automatic`` or ``manual``; a manual row names the row it corrects
    in ``supersedes_pk``. ``in_use`` marks the row the criteria read (one per lesion and
    timepoint). ``methods`` maps each measurement name to ``{"method": ..., "parameters":
    {...}}``. ``present=False`` records a lesion looked for and not found (absent).
    """

    __tablename__ = "record_observations"
    __table_args__ = (
        Index(
            "uq_record_observations_in_use",
            "lesion_pk",
            "timepoint_pk",
            unique=True,
            sqlite_where=text("in_use"),
            postgresql_where=text("in_use"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lesion_pk: Mapped[int] = mapped_column(
        ForeignKey("record_lesions.id", ondelete="CASCADE"), index=True
    )
    timepoint_pk: Mapped[int] = mapped_column(
        ForeignKey("record_timepoints.id", ondelete="CASCADE"), index=True
    )
    study_pk: Mapped[int | None] = mapped_column(
        ForeignKey("studies.id", ondelete="SET NULL"), index=True
    )
    study_instance_uid: Mapped[str | None] = mapped_column(String(UID_LEN))
    pet_series_uid: Mapped[str | None] = mapped_column(String(UID_LEN))
    ct_series_uid: Mapped[str | None] = mapped_column(String(UID_LEN))
    label: Mapped[str | None] = mapped_column(String(64))  # detection label in its timepoint
    source: Mapped[str] = mapped_column(String(16), default="automatic")
    in_use: Mapped[bool] = mapped_column(Boolean, default=True)
    supersedes_pk: Mapped[int | None] = mapped_column(
        ForeignKey("record_observations.id", ondelete="SET NULL")
    )
    present: Mapped[bool] = mapped_column(Boolean, default=True)
    ld_mm: Mapped[float | None] = mapped_column(Float)
    sa_mm: Mapped[float | None] = mapped_column(Float)
    ppd_mm2: Mapped[float | None] = mapped_column(Float)
    volume_ml: Mapped[float | None] = mapped_column(Float)
    hu_mean: Mapped[float | None] = mapped_column(Float)
    suv_max: Mapped[float | None] = mapped_column(Float)
    suv_peak: Mapped[float | None] = mapped_column(Float)
    sul_peak: Mapped[float | None] = mapped_column(Float)
    mtv_ml: Mapped[float | None] = mapped_column(Float)
    tlg_suv_ml: Mapped[float | None] = mapped_column(Float)
    centroid_lps_mm: Mapped[list[float] | None] = mapped_column(JSON)
    #: (0062,0004) *Segment Number* of this lesion's measured mask in the timepoint's SEG
    #: (:attr:`Timepoint.mask_seg_path`); NULL when no mask is stored.
    mask_segment_number: Mapped[int | None] = mapped_column(Integer)
    methods: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reader: Mapped[str] = mapped_column(String(128), default="oncohybrid")
    note: Mapped[str | None] = mapped_column(Text)
    measured_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)

    def measurements(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in MEASUREMENTS}


class LesionLineage(Base):
    """A split or merge: ``parent`` became (part of) ``child`` at ``timepoint``.

    Split: one parent, several children. Merge: several parents, one child.
    """

    __tablename__ = "record_lesion_lineage"
    __table_args__ = (UniqueConstraint("parent_pk", "child_pk"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parent_pk: Mapped[int] = mapped_column(
        ForeignKey("record_lesions.id", ondelete="CASCADE"), index=True
    )
    child_pk: Mapped[int] = mapped_column(
        ForeignKey("record_lesions.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(8))  # split | merge
    timepoint_pk: Mapped[int | None] = mapped_column(
        ForeignKey("record_timepoints.id", ondelete="SET NULL")
    )
    reader: Mapped[str] = mapped_column(String(128), default="oncohybrid")
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class AssessmentRecord(Base):
    """One criterion's assessment of a patient: the input case and the engine's JSON."""

    __tablename__ = "record_assessments"
    __table_args__ = (Index("ix_record_assessments_patient_criterion", "patient_pk", "criterion"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_pk: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    criterion: Mapped[str] = mapped_column(String(32))
    run_uid: Mapped[str] = mapped_column(String(UID_LEN))
    case_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    result_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    best_overall_response: Mapped[str | None] = mapped_column(String(32))
    software_version: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
