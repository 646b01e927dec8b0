"""Study-level queries and their results, shared by C-FIND and QIDO-RS.

The query keys and matching follow PS3.4 Annex C (Study Root, STUDY level): a date
range is the range matching of PS3.4 C.2.2.2.5 (``YYYYMMDD-YYYYMMDD``, either end
open), and *Modalities in Study* (0008,0061) is matched as a single value. QIDO-RS
(PS3.18 §10.6) uses the same keywords as query parameters. Return keys that a PACS
does not send back are left empty: several archives omit optional keys (e.g.
*Number of Study Related Instances*), which must not break a query.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import date

from pydicom.dataset import Dataset

from oncohybrid.errors import InputError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

_DATE_RE = re.compile(r"^\d{4}-?\d{2}-?\d{2}$")


def _norm_date(text: str, where: str) -> str:
    text = text.strip()
    if not _DATE_RE.match(text):
        raise InputError(f"--date {where!r}: expected YYYY-MM-DD (or YYYYMMDD), got {text!r}")
    digits = text.replace("-", "")
    try:
        date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError as exc:
        raise InputError(f"--date {where!r}: {text!r} is not a calendar date") from exc
    return digits


def parse_date_range(text: str) -> str:
    """Turn ``2024-01-01..2024-06-30`` (or one date, or an open end) into DICOM range matching.

    >>> parse_date_range("2024-01-01..2024-06-30")
    '20240101-20240630'
    >>> parse_date_range("2024-01-01..")
    '20240101-'
    >>> parse_date_range("2024-03-05")
    '20240305'
    """
    if ".." not in text:
        return _norm_date(text, text)
    start, _, end = text.partition("..")
    lo = _norm_date(start, text) if start.strip() else ""
    hi = _norm_date(end, text) if end.strip() else ""
    if not lo and not hi:
        raise InputError(f"--date {text!r}: give at least one end of the range")
    if lo and hi and lo > hi:
        raise InputError(f"--date {text!r}: the start is after the end")
    return f"{lo}-{hi}"


@dataclass(frozen=True)
class StudyQuery:
    """Matching keys of a study-level query plus paging (``limit``/``offset``)."""

    patient_id: str | None = None
    study_instance_uid: str | None = None
    accession_number: str | None = None
    modality: str | None = None
    study_date: str | None = None  # DICOM range matching, see parse_date_range
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InputError(f"--limit {self.limit}: must be 1..{MAX_LIMIT}")
        if self.offset < 0:
            raise InputError(f"--offset {self.offset}: must be >= 0")
        if self.modality is not None and not re.match(r"^[A-Z]{1,16}$", self.modality):
            raise InputError(f"--modality {self.modality!r}: expected a code like PT, CT, MR")

    def identifier(self) -> Dataset:
        """The C-FIND identifier (PS3.4 C.6.2.1, Study Root, STUDY level)."""
        ds = Dataset()
        ds.QueryRetrieveLevel = "STUDY"
        ds.StudyInstanceUID = self.study_instance_uid or ""
        ds.PatientID = self.patient_id or ""
        ds.AccessionNumber = self.accession_number or ""
        ds.StudyDate = self.study_date or ""
        ds.ModalitiesInStudy = self.modality or ""
        for keyword in RETURN_KEYS:
            if keyword not in ds:
                setattr(ds, keyword, "")
        return ds

    def qido_filters(self) -> dict[str, str]:
        """Search filters for QIDO-RS ``/studies`` (PS3.18 §10.6.1.2)."""
        filters: dict[str, str] = {}
        if self.patient_id:
            filters["PatientID"] = self.patient_id
        if self.study_instance_uid:
            filters["StudyInstanceUID"] = self.study_instance_uid
        if self.accession_number:
            filters["AccessionNumber"] = self.accession_number
        if self.modality:
            filters["ModalitiesInStudy"] = self.modality
        if self.study_date:
            filters["StudyDate"] = self.study_date
        return filters


# Return keys requested at STUDY level; all optional for the peer.
RETURN_KEYS = (
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyTime",
    "StudyDescription",
    "StudyID",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)


@dataclass(frozen=True)
class StudyResult:
    """One matching study as the peer described it (missing keys are ``None``)."""

    study_instance_uid: str
    patient_id: str | None
    patient_name: str | None
    study_date: str | None
    study_time: str | None
    accession_number: str | None
    modalities: tuple[str, ...]
    description: str | None
    n_series: int | None
    n_instances: int | None

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["modalities"] = list(self.modalities)
        return out


def _text(ds: Dataset, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    return str(value).strip() or None


def _int(ds: Dataset, keyword: str) -> int | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def study_result_from_dataset(ds: Dataset) -> StudyResult | None:
    """A StudyResult from a C-FIND/QIDO response identifier; ``None`` without a Study UID."""
    uid = _text(ds, "StudyInstanceUID")
    if not uid:
        return None
    mods = ds.get("ModalitiesInStudy")
    if mods is None or mods == "":
        modalities: tuple[str, ...] = ()
    elif isinstance(mods, str):
        modalities = tuple(m for m in mods.split("\\") if m)
    else:
        modalities = tuple(str(m) for m in mods if m)
    return StudyResult(
        study_instance_uid=uid,
        patient_id=_text(ds, "PatientID"),
        patient_name=_text(ds, "PatientName"),
        study_date=_text(ds, "StudyDate"),
        study_time=_text(ds, "StudyTime"),
        accession_number=_text(ds, "AccessionNumber"),
        modalities=modalities,
        description=_text(ds, "StudyDescription"),
        n_series=_int(ds, "NumberOfStudyRelatedSeries"),
        n_instances=_int(ds, "NumberOfStudyRelatedInstances"),
    )
