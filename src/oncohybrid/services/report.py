"""Use-case: tumour-board reports (PDF, meeting pack) and DICOM SR/SEG/Encapsulated PDF.

Reads the study database and the longitudinal record (``store.models_record``:
timepoints, tracked lesions, observations in use, roles, stored assessments), loads the
baseline and current PET (as SUVbw) and CT for the figures, and hands plain
:class:`~oncohybrid.report.data.PatientReportData` to the builders in
:mod:`oncohybrid.report`.

Without a longitudinal record (nothing assessed yet) the report still shows the
patient's PET/CT studies as timepoints with their MIPs; the lesion table and the
response sections are then empty.

Lesion masks (for the key-slice contours and the DICOM SEG) are the masks the lesions
were measured in, stored by the record as one DICOM SEG per timepoint
(:mod:`oncohybrid.services.masks`). Only for records written before masks were stored
are they re-derived from each observation's centroid on that timepoint's PET: the
connected region ≥ 41 % of the local SUVmax around the centroid (the EANM 41 % isocontour,
Boellaard et al., EJNMMI 2015 §"Tumour volume"), restricted to a box of the lesion's
size; the report's contour caption then says so (``TimepointImages.mask_note``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from oncohybrid.config import Settings, get_settings
from oncohybrid.errors import DicomError, InputError, StoreError
from oncohybrid.report.data import (
    CohortPoint,
    LesionInfo,
    LesionMeasurement,
    PatientIdentity,
    PatientReportData,
    TimepointImages,
    TimepointInfo,
)

__all__ = [
    "build_patient_report",
    "build_meeting_pack",
    "load_report_data",
    "write_dicom_outputs",
    "write_patient_outputs",
    "pseudonym_key",
    "lesion_mask",
]

#: Criterion whose lesion roles and sums drive the lesion table, spider and waterfall.
PRIMARY_CRITERION = "recist1.1"
#: Fraction of the local SUVmax that delimits a re-derived lesion mask (EANM 41 %).
MASK_FRACTION = 0.41


def pseudonym_key(settings: Settings) -> bytes:
    """The installation's secret key for pseudonyms, shared with the web application."""
    from oncohybrid.services.users import pseudonym_key as shared_key

    return shared_key(settings)


def report_file_prefix(patient_id: str) -> str:
    """File-name prefix of a patient's reports in ``derived/reports`` (the worklist's
    "reported" status looks for it)."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in patient_id) + "-"


# --------------------------------------------------------------------------------------
# Database → PatientReportData
# --------------------------------------------------------------------------------------


def _find_patient(session: Any, patient: str | int) -> Any:
    from oncohybrid.store.models import Patient

    if isinstance(patient, int):
        row = session.get(Patient, patient)
        if row is None:
            raise StoreError(f"patient #{patient}: not in the study database")
        return row
    rows = session.scalars(sa.select(Patient).where(Patient.patient_id == patient)).all()
    if not rows:
        raise StoreError(f"patient {patient}: not in the study database")
    if len(rows) > 1:
        issuers = ", ".join(r.issuer_of_patient_id or "(none)" for r in rows)
        raise StoreError(f"patient {patient}: ambiguous, issuers {issuers}")
    return rows[0]


def _timepoints_from_record(session: Any, patient_pk: int) -> list[TimepointInfo]:
    from oncohybrid.store.models import Study
    from oncohybrid.store.models_record import Timepoint

    out: list[TimepointInfo] = []
    tps = session.scalars(sa.select(Timepoint).where(Timepoint.patient_pk == patient_pk)
                          .order_by(Timepoint.tp_index)).all()
    for tp in tps:
        pet = next((s for s in tp.studies if s.pet_series_uid), None)
        ct = next((s for s in tp.studies if s.ct_series_uid), None)
        main = pet or ct or (tp.studies[0] if tp.studies else None)
        study = session.get(Study, main.study_pk) if main and main.study_pk else None
        desc = tp.label + (f" · {tp.treatment_line}" if tp.treatment_line else "")
        out.append(TimepointInfo(
            label=f"TP{tp.tp_index}", date=tp.scan_date,
            study_uid=main.study_instance_uid if main else None,
            accession_number=study.accession_number if study else None,
            description=desc,
            pet_series_uid=pet.pet_series_uid if pet else None,
            ct_series_uid=ct.ct_series_uid if ct else None,
            record_pk=tp.id,
        ))
    return out


def _timepoints_from_studies(session: Any, patient_pk: int) -> list[TimepointInfo]:
    """One timepoint per PET (or CT) study when no longitudinal record exists."""
    from oncohybrid.store.models import Series, Study

    studies = session.scalars(sa.select(Study).where(Study.patient_pk == patient_pk)
                              .order_by(Study.study_date, Study.id)).all()
    out: list[TimepointInfo] = []
    for st in studies:
        series = session.scalars(sa.select(Series).where(Series.study_pk == st.id)
                                 .order_by(Series.series_number, Series.id)).all()
        pet = next((s for s in series if s.modality == "PT"), None)
        ct = next((s for s in series if s.modality == "CT"), None)
        if pet is None and ct is None:
            continue
        out.append(TimepointInfo(
            label=f"TP{len(out)}", date=st.study_date, study_uid=st.study_instance_uid,
            accession_number=st.accession_number, description=st.study_description,
            pet_series_uid=pet.series_instance_uid if pet else None,
            ct_series_uid=ct.series_instance_uid if ct else None,
        ))
    return out


def _lesions_from_record(session: Any, patient_pk: int, tps: list[TimepointInfo]
                         ) -> list[LesionInfo]:
    from oncohybrid.store.models_record import Lesion, LesionRole, Observation

    label_of = {tp.record_pk: tp.label for tp in tps}
    lesions = session.scalars(sa.select(Lesion).where(Lesion.patient_pk == patient_pk)
                              .order_by(Lesion.id)).all()
    out: list[LesionInfo] = []
    for les in lesions:
        roles = {r.criterion: r.role for r in session.scalars(
            sa.select(LesionRole).where(LesionRole.lesion_pk == les.id))}
        role = roles.get(PRIMARY_CRITERION) or next(iter(roles.values()), "non-target")
        info = LesionInfo(lesion_id=les.key, tracking_uid=les.tracking_uid, site=les.site,
                          nodal=bool(les.nodal), role=role)
        for obs in session.scalars(sa.select(Observation).where(
                Observation.lesion_pk == les.id, Observation.in_use.is_(True))):
            label = label_of.get(obs.timepoint_pk)
            if label is None:
                continue
            centroid = tuple(obs.centroid_lps_mm) if obs.centroid_lps_mm else None
            info.measurements[label] = LesionMeasurement(
                present=bool(obs.present), ld_mm=obs.ld_mm, sa_mm=obs.sa_mm,
                volume_ml=obs.volume_ml if obs.volume_ml is not None else obs.mtv_ml,
                suv_max=obs.suv_max, suv_peak=obs.suv_peak, centroid_lps_mm=centroid,
            )
        if info.measurements:
            out.append(info)
    order = {"target": 0, "non-target": 1, "new": 2}
    out.sort(key=lambda les: (order.get(les.role, 3), _natural(les.lesion_id)))
    return out


def _natural(key: str) -> tuple[int, str]:
    """``L2`` before ``L10``; keys like ``L3@TP2`` sort by their first number."""
    import re

    match = re.search(r"\d+", key)
    return (int(match.group()) if match else 0, key)


def _assessments(session: Any, patient_pk: int) -> dict[str, dict[str, Any]]:
    from oncohybrid.store.models_record import AssessmentRecord

    rows = session.scalars(sa.select(AssessmentRecord).where(
        AssessmentRecord.patient_pk == patient_pk).order_by(AssessmentRecord.id)).all()
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:  # later runs replace earlier ones
        latest[row.criterion] = row.result_json
    ordered = {k: latest[k] for k in (PRIMARY_CRITERION,) if k in latest}
    ordered.update({k: v for k, v in latest.items() if k not in ordered})
    return ordered


def _cohort(session: Any, current_pk: int) -> list[CohortPoint]:
    """Best % change of the RECIST 1.1 sum per patient over the whole database."""
    from oncohybrid.store.models_record import AssessmentRecord

    rows = session.scalars(sa.select(AssessmentRecord).where(
        AssessmentRecord.criterion == PRIMARY_CRITERION).order_by(AssessmentRecord.id)).all()
    latest: dict[int, dict[str, Any]] = {}
    for row in rows:
        latest[row.patient_pk] = row.result_json
    points = []
    for pk, result in sorted(latest.items()):
        changes = [t.get("change_from_baseline_pct") for t in result.get("timepoints") or []]
        changes = [float(c) for c in changes if isinstance(c, int | float)]
        if changes:
            points.append(CohortPoint(label=f"#{pk}", best_change_pct=min(changes),
                                      best_response=result.get("best_overall_response"),
                                      is_current=(pk == current_pk)))
    return points


def _age(birth: dt.date | None, on: dt.date | None) -> int | None:
    if birth is None or on is None:
        return None
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def load_report_data(patient: str | int, settings: Settings | None = None, *,
                     images: bool = True, reader: str | None = None,
                     progress: Callable[[str], None] | None = None) -> PatientReportData:
    """Everything one patient's report shows, from the database (see module docstring).

    ``patient`` is a (0010,0020) *Patient ID* (str) or the database key (int).
    """
    from oncohybrid.store.db import session_scope

    settings = settings or get_settings()
    step = progress or (lambda _m: None)
    with session_scope(settings) as s:
        p = _find_patient(s, patient)
        patient_pk = p.id
        lesions: list[LesionInfo] = []
        assessments: dict[str, dict[str, Any]] = {}
        cohort: list[CohortPoint] = []
        tps = _timepoints_from_record(s, p.id)
        if tps:
            lesions = _lesions_from_record(s, p.id, tps)
            assessments = _assessments(s, p.id)
            cohort = _cohort(s, p.id)
        if not tps:
            tps = _timepoints_from_studies(s, p.id)
        if not tps:
            raise InputError(f"patient {p.patient_id}: no PET or CT study to report on")
        identity = PatientIdentity(
            patient_id=p.patient_id, name=p.patient_name, sex=p.patient_sex,
            birth_date=p.patient_birth_date, age_years=_age(p.patient_birth_date, tps[0].date),
        )
    data = PatientReportData(identity=identity, timepoints=tps, lesions=lesions,
                             assessments=assessments, cohort=cohort, reader=reader)
    from oncohybrid.services import (
        qc,  # scanner QC / EARL harmonisation notes (#20)
        viewer_advanced,  # ADC/iodine/TIC measurements (#19)
    )

    data.advanced_measurements = viewer_advanced.report_rows(settings, patient_pk)
    data.quality_notes = qc.report_notes(settings, patient_pk,
                                         {tp.study_uid: tp.label for tp in tps if tp.study_uid})
    if images:
        wanted = [tps[0]] if len(tps) == 1 else [tps[0], tps[-1]]
        for tp in wanted:
            step(f"images {tp.label}")
            tp.images = _load_images(tp, settings)
            if tp.images is not None:
                _lesion_masks(tp, lesions, settings)
    return data


def _load_images(tp: TimepointInfo, settings: Settings) -> TimepointImages | None:
    """PET as SUVbw, CT in HU and the PET headers; ``None`` when the PET is unusable."""
    import pydicom

    from oncohybrid.dicom.suv import suv_volume
    from oncohybrid.dicom.volume import load_series
    from oncohybrid.store.queries import series_files

    if not tp.pet_series_uid:
        return None
    try:
        pet_files = series_files(tp.pet_series_uid, settings)
        pet, _scaling = suv_volume(pet_files)
    except (StoreError, DicomError):
        # No SUV (e.g. missing dose): the report still lists the timepoint, without images.
        return None
    ct = None
    if tp.ct_series_uid:
        try:
            ct = load_series(series_files(tp.ct_series_uid, settings))
        except (StoreError, DicomError):
            ct = None
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in pet_files]
    return TimepointImages(pet_suv=pet, ct=ct, pet_datasets=headers)


def lesion_mask(pet: Any, centroid_lps_mm: Sequence[float], size_mm: float | None,
                fraction: float = MASK_FRACTION) -> np.ndarray | None:
    """Connected region ≥ ``fraction`` × local SUVmax around a lesion centroid.

    The search box spans the lesion size + 10 mm each side of the centroid; the seed is
    the hottest voxel within half the size (≥ 6 mm) of the centroid.
    """
    from scipy import ndimage

    arr = np.asarray(pet.array)
    inv = np.linalg.inv(np.asarray(pet.affine, dtype=float))
    ijk = (inv @ np.array([*centroid_lps_mm, 1.0]))[:3]
    spacing = np.asarray(pet.spacing, dtype=float)
    half = (size_mm or 20.0) + 10.0
    lo = np.maximum(np.floor(ijk - half / spacing).astype(int), 0)
    hi = np.minimum(np.ceil(ijk + half / spacing).astype(int) + 1, arr.shape)
    if np.any(hi <= lo):
        return None
    box = arr[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    grid = np.indices(box.shape).reshape(3, -1).T + lo
    dist = np.linalg.norm((grid - ijk) * spacing, axis=1).reshape(box.shape)
    near = dist <= max((size_mm or 12.0) / 2.0, 6.0)
    if not near.any():
        return None
    seed = np.unravel_index(np.argmax(np.where(near, box, -np.inf)), box.shape)
    peak = float(box[seed])
    if peak <= 0:
        return None
    labels, _n = ndimage.label(box >= fraction * peak)
    region = labels == labels[seed]
    mask = np.zeros(arr.shape, dtype=bool)
    mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = region
    return mask


#: Caption note of contours re-derived for a record without stored masks.
DERIVED_MASK_NOTE = ("contours re-derived (41 % of the local SUVmax around the centroid): "
                     "this record has no stored measured masks; re-run assess to store them")


def _lesion_masks(tp: TimepointInfo, lesions: Sequence[LesionInfo], settings: Settings) -> None:
    """The stored measured masks of the timepoint; re-derived (with a note) without them."""
    from oncohybrid.services.masks import stored_masks

    assert tp.images is not None
    stored = None
    if tp.record_pk is not None and tp.images.pet_datasets:
        stored = stored_masks(settings, tp.record_pk, tp.images.pet_datasets)
    if stored is not None:
        tp.images.lesion_masks.update(stored)
        return
    _derive_masks(tp, lesions)
    if tp.images.lesion_masks:
        tp.images.mask_note = DERIVED_MASK_NOTE


def _derive_masks(tp: TimepointInfo, lesions: Sequence[LesionInfo]) -> None:
    assert tp.images is not None
    for les in lesions:
        m = les.measurements.get(tp.label)
        if m is None or not m.present or m.centroid_lps_mm is None:
            continue
        mask = lesion_mask(tp.images.pet_suv, m.centroid_lps_mm, m.ld_mm)
        if mask is not None and mask.any():
            tp.images.lesion_masks[les.lesion_id] = mask


# --------------------------------------------------------------------------------------
# Use-cases
# --------------------------------------------------------------------------------------


def _default_out(settings: Settings, data: PatientReportData, suffix: str) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"{report_file_prefix(data.identity.patient_id)}{stamp}{suffix}"
    return settings.derived_dir / "reports" / name


def build_patient_report(patient_id: str | int, settings: Settings | None = None, *,
                         out: str | os.PathLike[str] | None = None, pseudonymise: bool = False,
                         reader: str | None = None, dpi: int = 110,
                         progress: Callable[[str], None] | None = None) -> Path:
    """Write the tumour-board PDF of one patient and return its path.

    ``patient_id`` is a (0010,0020) *Patient ID* or the database key (int, as the web
    app passes it). Without ``out`` the PDF goes to ``<home>/derived/reports/``.
    ``pseudonymise`` removes name, ID, birth date, accession numbers and calendar dates
    (see :mod:`oncohybrid.report.data`).

    Example:
        >>> build_patient_report("PH7-001", out="PH7-001.pdf")  # doctest: +SKIP
    """
    return write_patient_outputs(patient_id, settings, out=out, pseudonymise=pseudonymise,
                                 reader=reader, dpi=dpi, progress=progress)["pdf"]


def write_patient_outputs(patient_id: str | int, settings: Settings | None = None, *,
                          out: str | os.PathLike[str] | None = None,
                          sr: str | os.PathLike[str] | None = None,
                          seg: str | os.PathLike[str] | None = None,
                          encapsulated: str | os.PathLike[str] | None = None,
                          timepoint: str | None = None, pseudonymise: bool = False,
                          reader: str | None = None, dpi: int = 110,
                          progress: Callable[[str], None] | None = None) -> dict[str, Path]:
    """The PDF and, on request, the DICOM SEG / SR / Encapsulated PDF of one patient.

    Returns the written paths keyed ``pdf``, ``seg``, ``sr``, ``encapsulated``. DICOM
    outputs belong to the patient's record and are refused with ``pseudonymise``.
    """
    from oncohybrid.report.pdf import render_patient_report

    settings = settings or get_settings()
    wants_dicom = any(x is not None for x in (sr, seg, encapsulated))
    if pseudonymise and wants_dicom:
        raise InputError("--pseudonymise applies to the PDF only: DICOM SR/SEG/Encapsulated "
                         "PDF belong to the patient's record; write them in a separate run")
    data = load_report_data(patient_id, settings, reader=reader, progress=progress)
    written: dict[str, Path] = {}
    if wants_dicom:
        if progress:
            progress("DICOM")
        written.update(write_dicom_outputs(patient_id, settings, sr=sr, seg=seg,
                                           encapsulated=encapsulated, timepoint=timepoint,
                                           data=data))
    if pseudonymise:
        data = data.pseudonymised(pseudonym_key(settings))
    path = Path(out) if out is not None else _default_out(settings, data, ".pdf")
    if progress:
        progress("PDF")
    written["pdf"] = render_patient_report(data, path, dpi=dpi)
    return written


def build_meeting_pack(patient_ids: Sequence[str | int], settings: Settings | None = None, *,
                       out: str | os.PathLike[str], title: str = "Tumour board",
                       meeting_date: dt.date | None = None, pseudonymise: bool = False,
                       reader: str | None = None, dpi: int = 110,
                       progress: Callable[[str], None] | None = None) -> Path:
    """Write one PDF for a tumour-board session: cover agenda + one section per patient."""
    from oncohybrid.report.pdf import render_meeting_pack

    if not patient_ids:
        raise InputError("--meeting: no patient given")
    settings = settings or get_settings()
    key = pseudonym_key(settings) if pseudonymise else None
    datas = []
    for pid in patient_ids:
        if progress:
            progress(f"patient {len(datas) + 1}/{len(patient_ids)}")
        data = load_report_data(pid, settings, reader=reader)
        datas.append(data.pseudonymised(key) if key is not None else data)
    return render_meeting_pack(datas, out, title=title, meeting_date=meeting_date, dpi=dpi)


def write_dicom_outputs(patient_id: str | int, settings: Settings | None = None, *,
                        sr: str | os.PathLike[str] | None = None,
                        seg: str | os.PathLike[str] | None = None,
                        encapsulated: str | os.PathLike[str] | None = None,
                        timepoint: str | None = None, reader: str | None = None,
                        data: PatientReportData | None = None) -> dict[str, Path]:
    """Write the DICOM SEG, TID 1500 SR and/or Encapsulated PDF of one timepoint.

    The timepoint is the current (last) one unless ``timepoint`` names another label
    (``TP0``…). The SR references the SEG's segments when both are written.
    """
    from oncohybrid.report.encapsulated import build_encapsulated_pdf
    from oncohybrid.report.pdf import render_patient_pdf_bytes
    from oncohybrid.report.seg import build_lesion_seg, segment_order, write_dataset
    from oncohybrid.report.sr import build_measurement_sr

    settings = settings or get_settings()
    if data is None:
        data = load_report_data(patient_id, settings, images=False, reader=reader)
    if data.identity.pseudonymised:
        raise InputError("DICOM outputs belong to the patient's record and cannot be "
                         "pseudonymised; write them without --pseudonymise")
    tp = data.current if timepoint is None else next(
        (t for t in data.timepoints if t.label == timepoint), None)
    if tp is None:
        raise InputError(f"--timepoint {timepoint!r}: unknown; known: "
                         f"{', '.join(t.label for t in data.timepoints)}")
    if tp.images is None:
        tp.images = _load_images(tp, settings)
        if tp.images is not None:
            _lesion_masks(tp, data.lesions, settings)
    if tp.images is None:
        raise InputError(f"{tp.label}: no usable PET series to reference")
    written: dict[str, Path] = {}
    seg_obj = None
    numbers: dict[str, int] = {}
    if seg is not None:
        # The SR references segments only when their SEG is written beside it.
        seg_obj = build_lesion_seg(tp.images, data.lesions)
        numbers = segment_order(tp.images, data.lesions)
        written["seg"] = write_dataset(seg_obj, seg)
    if sr is not None:
        obj = build_measurement_sr(data, tp, seg=seg_obj, segment_numbers=numbers)
        written["sr"] = write_dataset(obj, sr)
    if encapsulated is not None:
        pdf = render_patient_pdf_bytes(data)
        source = tp.images.pet_datasets[0] if tp.images.pet_datasets else None
        if source is None:
            raise InputError(f"{tp.label}: no PET header to take the study from")
        obj = build_encapsulated_pdf(pdf, source, title="Tumour-board report")
        written["encapsulated"] = write_dataset(obj, encapsulated)
    return written

