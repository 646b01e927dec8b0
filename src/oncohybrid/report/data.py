"""Plain data a report is built from: identity, timepoints, tracked lesions, assessments.

The report builders (``report.pdf``, ``report.sr``, ``report.seg``) read only these
classes, never the database: ``services.report`` fills them from the study database and
the longitudinal record, and tests fill them from a phantom and the response engine.

Pseudonymisation (:meth:`PatientReportData.pseudonymised`) follows the spirit of PS3.15
Annex E for a human-readable document: name, patient ID, birth date and accession
numbers are removed, the patient ID is replaced by a keyed hash (HMAC-SHA-256, so that
the same patient gets the same pseudonym in every report of one installation without
the pseudonym being reversible by hashing candidate IDs), and calendar dates are
replaced by days since baseline.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = [
    "PatientIdentity",
    "TimepointInfo",
    "TimepointImages",
    "LesionMeasurement",
    "LesionInfo",
    "PatientReportData",
    "CohortPoint",
    "pseudonym",
]

def pseudonym(patient_id: str, key: bytes) -> str:
    """Stable, non-reversible pseudonym ``PSN-XXXXXXXXXX`` of ``patient_id`` under ``key``."""
    digest = hmac.new(key, patient_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return "PSN-" + digest[:10].upper()


@dataclass(frozen=True)
class PatientIdentity:
    """Header identity: (0010,0010) *Patient's Name*, (0010,0020) *Patient ID* etc."""

    patient_id: str
    name: str | None = None
    sex: str | None = None
    birth_date: dt.date | None = None
    age_years: int | None = None
    pseudonymised: bool = False

    @property
    def display_name(self) -> str:
        """DICOM PN ``Family^Given`` shown as ``FAMILY, Given``."""
        if not self.name:
            return "—"
        parts = [p for p in self.name.split("^") if p]
        if len(parts) >= 2:
            return f"{parts[0].upper()}, {' '.join(parts[1:])}"
        return parts[0] if parts else "—"


@dataclass
class TimepointImages:
    """Images of one visit used for figures and DICOM SEG.

    ``pet_suv`` is a ``highdicom.Volume`` in SUVbw; ``ct`` a ``highdicom.Volume`` in HU
    (its own grid; the figures resample the PET onto it); ``lesion_masks`` maps a lesion
    id to a boolean array on the ``pet_suv`` grid. ``pet_datasets`` are the PET source
    images (pydicom datasets, any order) a DICOM SEG references. ``mask_note`` says
    where the masks come from when they are not the stored measured masks (e.g. re-derived
    for a record written before masks were stored); ``None`` for stored masks.
    """

    pet_suv: Any
    ct: Any | None = None
    lesion_masks: dict[str, np.ndarray] = field(default_factory=dict)
    pet_datasets: list[Any] | None = None
    mask_note: str | None = None


@dataclass
class TimepointInfo:
    """One visit: label (``TP0``…), date, identifiers; ``images`` may be absent."""

    label: str
    date: dt.date | None
    study_uid: str | None = None
    accession_number: str | None = None
    description: str | None = None
    pet_series_uid: str | None = None
    ct_series_uid: str | None = None
    images: TimepointImages | None = None
    #: Primary key of the longitudinal-record timepoint, when read from the database.
    record_pk: int | None = None


@dataclass(frozen=True)
class LesionMeasurement:
    """Measurements of one lesion at one timepoint (``None``: not measured)."""

    present: bool = True
    ld_mm: float | None = None
    sa_mm: float | None = None
    volume_ml: float | None = None
    suv_max: float | None = None
    suv_peak: float | None = None
    suv_mean: float | None = None
    centroid_lps_mm: tuple[float, float, float] | None = None


@dataclass
class LesionInfo:
    """A tracked lesion: patient-level id (the DICOM Tracking Identifier), Tracking UID,
    site, role (target / non-target / new) and measurements keyed by timepoint label."""

    lesion_id: str
    tracking_uid: str
    site: str | None = None
    nodal: bool = False
    role: str = "target"
    measurements: dict[str, LesionMeasurement] = field(default_factory=dict)

    def size_mm(self, label: str) -> float | None:
        """RECIST size: short axis for nodes, long axis otherwise (RECIST 1.1 §3.1)."""
        m = self.measurements.get(label)
        if m is None:
            return None
        if not m.present:
            return 0.0
        return m.sa_mm if self.nodal else m.ld_mm


@dataclass(frozen=True)
class CohortPoint:
    """One bar of the waterfall: best % change of the sum of diameters of one patient."""

    label: str
    best_change_pct: float
    best_response: str | None = None
    is_current: bool = False


@dataclass
class PatientReportData:
    """Everything one patient's tumour-board report shows.

    ``assessments`` maps a criterion key (``recist1.1``, ``percist`` …) to
    ``Assessment.to_json()``; ``cohort`` is the waterfall of the whole database.
    """

    identity: PatientIdentity
    timepoints: list[TimepointInfo]
    lesions: list[LesionInfo] = field(default_factory=list)
    assessments: dict[str, dict[str, Any]] = field(default_factory=dict)
    cohort: list[CohortPoint] = field(default_factory=list)
    reader: str | None = None
    report_date: dt.date = field(default_factory=dt.date.today)
    institution: str | None = None
    suv_max_display: float = 10.0
    #: Harmonisation warnings (scanner QC, EARL protocol; issue #20), shown under the
    #: identity block; plain sentences without calendar dates.
    quality_notes: list[str] = field(default_factory=list)
    #: Measurements saved in the advanced viewer (MR diffusion ADC, DECT iodine, CEUS TIC;
    #: issue #19): ``{"date": datetime.date | None, "what": str, "values": str}``.
    advanced_measurements: list[dict[str, Any]] = field(default_factory=list)

    @property
    def baseline(self) -> TimepointInfo:
        return self.timepoints[0]

    @property
    def current(self) -> TimepointInfo:
        return self.timepoints[-1]

    def day_offset(self, tp: TimepointInfo) -> int | None:
        if tp.date is None or self.baseline.date is None:
            return None
        return (tp.date - self.baseline.date).days

    def date_text(self, tp: TimepointInfo) -> str:
        """Calendar date, or ``day N`` once pseudonymised."""
        if self.identity.pseudonymised:
            offset = self.day_offset(tp)
            return "—" if offset is None else f"day {offset}"
        return tp.date.isoformat() if tp.date else "—"

    def pseudonymised(self, key: bytes) -> PatientReportData:
        """A copy without direct identifiers (see module docstring)."""
        ident = self.identity
        age = ident.age_years
        if age is None and ident.birth_date is not None and self.baseline.date is not None:
            b, d = ident.birth_date, self.baseline.date
            age = d.year - b.year - ((d.month, d.day) < (b.month, b.day))
        new_ident = PatientIdentity(
            patient_id=pseudonym(ident.patient_id, key),
            name=None,
            sex=ident.sex,
            birth_date=None,
            age_years=age,
            pseudonymised=True,
        )
        tps = [replace(tp, accession_number=None, description=None) for tp in self.timepoints]
        assessments = {k: _strip_dates(v, self) for k, v in self.assessments.items()}
        return replace(
            self, identity=new_ident, timepoints=tps, assessments=assessments, institution=None
        )


def _strip_dates(obj: Any, data: PatientReportData) -> Any:
    """Replace ISO dates of the timepoints inside assessment JSON by ``day N``."""
    mapping = {tp.date.isoformat(): _day(tp, data) for tp in data.timepoints if tp.date}
    return _replace_strings(obj, mapping)


def _day(tp: TimepointInfo, data: PatientReportData) -> str:
    offset = data.day_offset(tp)
    return "—" if offset is None else f"day {offset}"


def _replace_strings(obj: Any, mapping: dict[str, str]) -> Any:
    if isinstance(obj, str):
        for old, new in mapping.items():
            obj = obj.replace(old, new)
        return obj
    if isinstance(obj, dict):
        return {k: _replace_strings(v, mapping) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_replace_strings(v, mapping) for v in obj]
    return obj
