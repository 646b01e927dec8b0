"""Tables of the scanner QC area (issue #20): the equipment registry, the link of every
stored series to the scanner that acquired it, and QC results per scanner and date.

- :class:`QCScanner`: one imaging system, identified by (0008,0070) *Manufacturer*,
  (0008,1090) *Manufacturer's Model Name* and (0018,1000) *Device Serial Number* (the
  (0008,1010) *Station Name* when the serial is absent); software versions, station and the
  sending AE title as last seen; the reconstruction attributes of its EARL-compliant
  protocol(s), learnt from phantom series that passed EARL.
- :class:`QCSeriesLink`: one row per stored series (``series.id``), with its scanner, the
  acquisition date and the reconstruction attributes compared against the protocol.
- :class:`QCResult`: one QC measurement (IEC phantom, cross-calibration, daily QC), its
  values, tolerances and verdict.
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
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from oncohybrid.store.models import Base

#: Kinds of QC result.
QC_KINDS = ("iec", "calibration", "daily")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class QCScanner(Base):
    """One imaging system of the equipment registry."""

    __tablename__ = "qc_scanners"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: "manufacturer|model|serial" (or "|station:NAME" without a serial), upper case
    key: Mapped[str] = mapped_column(String(255), unique=True)
    manufacturer: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str | None] = mapped_column(String(128))
    serial_number: Mapped[str | None] = mapped_column(String(64))
    station_name: Mapped[str | None] = mapped_column(String(64))
    software_versions: Mapped[str | None] = mapped_column(String(255))
    ae_title: Mapped[str | None] = mapped_column(String(16))
    modalities: Mapped[str | None] = mapped_column(String(64))
    #: {"earl1": {attribute: value}, "earl2": {...}}: reconstruction of the EARL protocol
    earl_protocols: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    first_seen: Mapped[dt.date | None] = mapped_column(Date)
    last_seen: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class QCSeriesLink(Base):
    """The scanner that acquired one stored series."""

    __tablename__ = "qc_series_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_pk: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"),
                                           unique=True)
    study_pk: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"),
                                          index=True)
    scanner_pk: Mapped[int] = mapped_column(ForeignKey("qc_scanners.id", ondelete="CASCADE"),
                                            index=True)
    modality: Mapped[str | None] = mapped_column(String(16))
    acquired_on: Mapped[dt.date | None] = mapped_column(Date)
    #: reconstruction attributes of the series (keyword -> text)
    recon: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class QCResult(Base):
    """One QC measurement of a scanner on a date."""

    __tablename__ = "qc_results"
    __table_args__ = (Index("ix_qc_results_scanner_date", "scanner_pk", "performed_on"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scanner_pk: Mapped[int] = mapped_column(ForeignKey("qc_scanners.id", ondelete="CASCADE"))
    #: iec | calibration | daily
    kind: Mapped[str] = mapped_column(String(16))
    performed_on: Mapped[dt.date] = mapped_column(Date)
    passed: Mapped[bool] = mapped_column(Boolean)
    #: what failed, in words (empty when passed)
    summary: Mapped[str] = mapped_column(Text, default="")
    values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tolerances: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
