"""Comprehensive 3D SR (TID 1500 Measurement Report) of one timepoint's tracked lesions.

Structure (PS3.16 TID 1500, built with highdicom templates):

- one measurement group per lesion: TID 1411 *Volumetric ROI Measurements* referencing
  the lesion's segment in the timepoint's DICOM SEG when there is one, otherwise TID 1501
  *Measurement and Qualitative Evaluation Group*;
- each group carries (112039, DCM) *Tracking Identifier* = lesion id and (112040, DCM)
  *Tracking Unique Identifier* = the lesion's Tracking UID from the longitudinal record
  (identical in every timepoint's SR), TID 1502 *Time Point Context* (time point label,
  type Baseline/Posttreatment, order, (126070, DCM) *Subject Time Point Identifier*),
  finding type Lesion and the SNOMED CT finding site;
- measurements with UCUM units: (103339001, SCT) *Long axis* and (103340004, SCT)
  *Short axis* in mm with method RECIST 1.1, (118565006, SCT) *Volume* in ml, and
  (126401, DCM) *SUVbw* in {SUVbw}g/ml with derivation Maximum / Mean / Peak value within
  ROI (CID 7464). A lesion that has disappeared is recorded with long axis 0 mm, as
  RECIST 1.1 §3.3 records it.

:func:`read_measurements` parses an SR back (``highdicom.sr.srread``) into plain numbers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from oncohybrid.errors import InputError, OncohybridError
from oncohybrid.report.data import LesionInfo, PatientReportData, TimepointInfo
from oncohybrid.report.seg import site_code

__all__ = ["build_measurement_sr", "read_measurements", "SRLesion", "SUVBW", "UNIT_SUVBW",
           "UNIT_ML"]


def _code(value: str, scheme: str, meaning: str):  # noqa: ANN202
    from pydicom.sr.coding import Code

    return Code(value, scheme, meaning)


#: (126401, DCM, "SUVbw"): quantity of the SUV measurements (CID 7180 / TID 1419 usage).
SUVBW = ("126401", "DCM", "SUVbw")
#: UCUM units: SUV body weight is g/ml with the annotation {SUVbw} (CID 85).
UNIT_SUVBW = ("{SUVbw}g/ml", "UCUM", "Standardized Uptake Value body weight")
UNIT_ML = ("ml", "UCUM", "milliliter")
#: (126080, DCM, "RECIST 1.1"): measurement method of the diameters (CID 6147).
RECIST_11 = ("126080", "DCM", "RECIST 1.1")


def _measurements(les: LesionInfo, label: str) -> list[Any]:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    m = les.measurements[label]
    mm = codes.UCUM.Millimeter
    recist = _code(*RECIST_11)
    out: list[Any] = []
    if not m.present:
        out.append(hd.sr.Measurement(name=codes.SCT.LongAxis, value=0.0, unit=mm,
                                     method=recist))
        return out
    if m.ld_mm is not None:
        out.append(hd.sr.Measurement(name=codes.SCT.LongAxis, value=float(m.ld_mm), unit=mm,
                                     method=recist))
    if m.sa_mm is not None:
        out.append(hd.sr.Measurement(name=codes.SCT.ShortAxis, value=float(m.sa_mm), unit=mm,
                                     method=recist))
    if m.volume_ml is not None:
        out.append(hd.sr.Measurement(name=codes.SCT.Volume, value=float(m.volume_ml),
                                     unit=_code(*UNIT_ML)))
    suv_unit = _code(*UNIT_SUVBW)
    for value, derivation in ((m.suv_max, codes.cid7464.Maximum),
                              (m.suv_mean, codes.cid7464.Mean),
                              (m.suv_peak, codes.cid7464.PeakValueWithinROI)):
        if value is not None:
            out.append(hd.sr.Measurement(
                name=_code(*SUVBW), value=float(value), unit=suv_unit, derivation=derivation,
                method=codes.DCM.SUVBodyWeightCalculationMethod,
            ))
    return out


def build_measurement_sr(data: PatientReportData, timepoint: TimepointInfo | str, *,
                         seg: Any | None = None, segment_numbers: dict[str, int] | None = None,
                         series_number: int = 3002, institution: str | None = None):  # noqa: ANN201
    """Build a ``highdicom.sr.Comprehensive3DSR`` of the lesions measured at ``timepoint``.

    ``seg`` (a ``highdicom.seg.Segmentation`` or dataset of the same timepoint) and
    ``segment_numbers`` (lesion id → segment number) make lesion groups reference their
    segment (TID 1411); lesions without a segment get a TID 1501 group. The SR joins the
    timepoint's study (patient and study attributes come from the first evidence object:
    the SEG, else the first PET image).

    Raises :class:`InputError` when the timepoint has no measured lesion or no source
    DICOM objects to take patient/study attributes from.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    tp = timepoint if isinstance(timepoint, TimepointInfo) else next(
        (t for t in data.timepoints if t.label == timepoint), None)
    if tp is None:
        raise InputError(f"SR: unknown timepoint {timepoint!r}; known: "
                         f"{', '.join(t.label for t in data.timepoints)}")
    order = data.timepoints.index(tp)
    lesions = [les for les in data.lesions if tp.label in les.measurements]
    if not lesions:
        raise InputError(f"SR: no lesion is measured at timepoint {tp.label}")
    evidence: list[Any] = []
    if seg is not None:
        evidence.append(seg)
    if tp.images is not None and tp.images.pet_datasets:
        evidence.extend(tp.images.pet_datasets)
    if not evidence:
        raise InputError(f"SR: timepoint {tp.label} has no DICOM source objects (PET or SEG)")
    segment_numbers = segment_numbers or {}
    tp_type = codes.DCM.Baseline if order == 0 else codes.DCM.Posttreatment
    groups: list[Any] = []
    for les in lesions:
        context = hd.sr.TimePointContext(
            time_point=tp.label, time_point_type=tp_type, time_point_order=order + 1,
            subject_time_point_identifier=tp.label,
        )
        tracking = hd.sr.TrackingIdentifier(uid=les.tracking_uid, identifier=les.lesion_id)
        site = site_code(les.site)
        sites = [hd.sr.FindingSite(anatomic_location=site)] if site is not None else None
        common = dict(
            tracking_identifier=tracking, time_point_context=context,
            finding_type=codes.SCT.Lesion, finding_sites=sites,
            measurements=_measurements(les, tp.label),
        )
        number = segment_numbers.get(les.lesion_id)
        if seg is not None and number is not None and tp.pet_series_uid:
            ref = hd.sr.ReferencedSegment(
                sop_class_uid=str(seg.SOPClassUID), sop_instance_uid=str(seg.SOPInstanceUID),
                segment_number=number,
                source_series=hd.sr.SourceSeriesForSegmentation(tp.pet_series_uid),
            )
            groups.append(hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                referenced_segment=ref,
                finding_category=codes.SCT.MorphologicallyAbnormalStructure, **common))
        else:
            groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
                finding_category=codes.SCT.MorphologicallyAbnormalStructure, **common))
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="oncohybrid", manufacturer_name="oncohybrid",
            model_name="oncohybrid report"),
    )
    person = None
    if data.reader:
        person = hd.sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                name=_person_name(data.reader)),
        )
    context = hd.sr.ObservationContext(observer_person_context=person,
                                       observer_device_context=device)
    report = hd.sr.MeasurementReport(
        observation_context=context,
        procedure_reported=codes.cid100.PETCTFDGImagingOfWholeBody,
        imaging_measurements=groups,
        title=codes.cid7021.ImagingMeasurementReport,
    )
    return hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=report,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="oncohybrid",
        institution_name=institution,
        series_description=f"Lesion measurements {tp.label}"[:64],
        is_complete=True,
        is_final=False,  # a draft until the reader signs the clinical report
        is_verified=False,
    )


def _person_name(reader: str) -> str:
    """Reader display name → DICOM PN (``Family^Given``); keeps an existing PN."""
    if "^" in reader:
        return reader
    parts = reader.replace("Dr ", "").replace("Dr. ", "").split()
    if len(parts) >= 2:
        return f"{parts[-1]}^{' '.join(parts[:-1])}"
    return reader


@dataclass
class SRLesion:
    """One measurement group read back from an SR."""

    tracking_id: str
    tracking_uid: str
    time_point: str | None
    finding_site: str | None
    referenced_segment: int | None
    values: dict[str, float] = field(default_factory=dict)


def read_measurements(path: str | os.PathLike[str]) -> list[SRLesion]:
    """Parse a TID 1500 SR written by :func:`build_measurement_sr` into plain numbers.

    ``values`` keys: ``ld_mm``, ``sa_mm``, ``volume_ml``, ``suv_max``, ``suv_mean``,
    ``suv_peak`` (those present).
    """
    import highdicom as hd

    try:
        sr = hd.sr.srread(path)
    except (OSError, ValueError, AttributeError) as exc:
        raise OncohybridError(f"{path}: cannot read SR: {exc}") from exc
    content = sr.content
    groups = [*content.get_volumetric_roi_measurement_groups(),
              *content.get_image_measurement_groups()]
    out: list[SRLesion] = []
    for g in groups:
        values: dict[str, float] = {}
        for meas in g.get_measurements():
            key = _value_key(meas)
            if key is not None:
                values[key] = float(meas.value)
        ref = getattr(g, "referenced_segment", None)
        sites = g.finding_sites
        tp = None
        for item in g[0].ContentSequence:
            if item.ConceptNameCodeSequence[0].CodeValue == "C2348792":  # Time Point, TID 1502
                tp = str(item.TextValue)
        out.append(SRLesion(
            tracking_id=str(g.tracking_identifier), tracking_uid=str(g.tracking_uid),
            time_point=tp, finding_site=sites[0].value.meaning if sites else None,
            referenced_segment=_segment_number(ref) if ref is not None else None,
            values=values))
    return out


def _segment_number(ref: Any) -> int | None:
    for item in ref:
        nums = getattr(item, "ReferencedSOPSequence", None)
        if nums:
            seg = getattr(nums[0], "ReferencedSegmentNumber", None)
            if seg is not None:
                return int(seg if not isinstance(seg, list | tuple) else seg[0])
    return None


def _value_key(meas: Any) -> str | None:
    name = meas.name.value
    if name == "103339001":
        return "ld_mm"
    if name == "103340004":
        return "sa_mm"
    if name == "118565006":
        return "volume_ml"
    if name == SUVBW[0]:
        derivation = meas.derivation
        d = derivation.value if derivation is not None else None
        return {"56851009": "suv_max", "373098007": "suv_mean"}.get(d, "suv_peak")
    return None
