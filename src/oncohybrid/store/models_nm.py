"""Nuclear medicine tables (issue #20): dosimetry runs per patient and cycle, their VOI
results, and the SPECT cameras' sensitivity calibrations.

A :class:`NmDosimetryRun` is one ``oncohybrid dosimetry`` computation (patient, cycle,
method, fit choice, isotope, administration, the full JSON document as printed);
:class:`NmDosimetryVoi` holds one VOI's mass, time-integrated activity, absorbed dose,
kidney BED, fit and DVH so the reading room can list and sum them across cycles (the latest
run of each cycle and method counts). :class:`NmCalibration` is a camera's tomographic
sensitivity (cps/MBq) for one isotope, used for counts reconstructions when no
``--sensitivity-cps-mbq`` is given.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Date, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from oncohybrid.store.models import Base


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class NmDosimetryRun(Base):
    """One dosimetry computation of a treatment cycle."""

    __tablename__ = "nm_dosimetry_runs"
    __table_args__ = (Index("ix_nm_dosimetry_runs_patient_cycle", "patient_pk", "cycle"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_pk: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    cycle: Mapped[int] = mapped_column(Integer)
    #: local | voxel-s
    method: Mapped[str] = mapped_column(String(16))
    #: auto | mono-exp | bi-exp | trapezoid | hanscheid (as requested)
    fit_request: Mapped[str] = mapped_column(String(16))
    isotope: Mapped[str] = mapped_column(String(16))
    administration: Mapped[dt.datetime | None] = mapped_column(DateTime)
    injected_mbq: Mapped[float | None] = mapped_column(Float)
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    result_json: Mapped[str] = mapped_column(Text)

    vois: Mapped[list[NmDosimetryVoi]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True)


class NmDosimetryVoi(Base):
    """One VOI's result in a run."""

    __tablename__ = "nm_dosimetry_vois"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("nm_dosimetry_runs.id", ondelete="CASCADE"),
                                        index=True)
    name: Mapped[str] = mapped_column(String(64))
    mass_g: Mapped[float] = mapped_column(Float)
    tia_mbq_h: Mapped[float] = mapped_column(Float)
    dose_gy: Mapped[float] = mapped_column(Float)
    bed_gy: Mapped[float | None] = mapped_column(Float)
    fit: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dvh: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    run: Mapped[NmDosimetryRun] = relationship(back_populates="vois")


class NmCalibration(Base):
    """A SPECT camera's sensitivity for one isotope (cps/MBq), keyed by the header fields
    that identify the camera: (0008,1010) *Station Name*, (0018,1000) *Device Serial
    Number*, (0008,1090) *Manufacturer's Model Name*."""

    __tablename__ = "nm_calibrations"
    __table_args__ = (Index("ix_nm_calibrations_camera", "station", "isotope"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station: Mapped[str] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(128))
    serial: Mapped[str | None] = mapped_column(String(64))
    isotope: Mapped[str] = mapped_column(String(16))
    sensitivity_cps_mbq: Mapped[float] = mapped_column(Float)
    measured_on: Mapped[dt.date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
