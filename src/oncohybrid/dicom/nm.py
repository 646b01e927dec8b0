"""Read NM tomographic series (NM Image Storage, RECON TOMO) into a volume with the
acquisition facts that quantitative SPECT needs.

NM Image IOD (PS3.3 A.5) as one multi-frame instance per reconstruction:

- (0008,0008) *Image Type* value 3 ``RECON TOMO`` or ``RECON GATED TOMO`` (C.8.4.6.1.1);
  projections (``TOMO``, ``STATIC`` …) are refused.
- Frames run along (0054,0080) *Slice Vector* ((0028,0009) *Frame Increment Pointer*,
  C.8.4.8); the position and orientation of the first frame are in the
  (0054,0022) *Detector Information Sequence* (NM Detector module, C.8.4.11) or, as many
  vendors write them, at the top level; slices are (0018,0088) *Spacing Between Slices*
  apart (NM Reconstruction module, C.8.4.14) along the normal (row × column cosines) of the
  orientation, or against it when the spacing is negative (as some NM software writes it).
- (0054,0012) *Energy Window Information Sequence* (C.8.4.10): name and the (0054,0013)
  ranges (0054,0014)/(0054,0015) in keV.
- (0054,0052) *Rotation Information Sequence* (C.8.4.12): (0054,0053) *Number of Frames
  in Rotation* × (0018,1242) *Actual Frame Duration* (ms) per rotation gives the
  acquisition duration (either value read at the top level when an item lacks it; else
  (0018,9073) *Acquisition Duration* in s); (0018,1143) *Scan Arc*, (0018,1140) *Rotation
  Direction*.
- (0054,0016) *Radiopharmaceutical Information Sequence* (NM Isotope module, C.8.4.10):
  (0018,1074) *Radionuclide Total Dose* — **in MBq for NM** (PS3.3 C.8.4.10.1), unlike PET's
  Bq — at (0018,1078) *Radiopharmaceutical Start DateTime*; (0018,1075) *Radionuclide Half
  Life* (s); (0054,0300) *Radionuclide Code Sequence*.
- Pixel units: quantitative reconstructions say Bq/ml in (0054,1001) *Units* ``BQML``
  (e.g. Siemens xSPECT Quant) or in a (0040,9096) *Real World Value Mapping Sequence*
  whose (0040,08EA) *Measurement Units Code Sequence* is UCUM ``Bq/ml``; otherwise the
  values are reconstructed counts. (0028,1053) *Rescale Slope* / (0028,1052) *Intercept*
  are applied when present (vendors write them although the NM IOD does not list them).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset

from oncohybrid.errors import DicomError, InputError

__all__ = ["NM_IMAGE_STORAGE", "EnergyWindow", "NmSeries", "read_nm", "read_nm_dataset"]

NM_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.20"
_RECON = ("RECON TOMO", "RECON GATED TOMO")


@dataclass(frozen=True)
class EnergyWindow:
    """One (0054,0012) item: name and [lower, upper] keV ranges."""

    name: str
    ranges_kev: tuple[tuple[float, float], ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ranges_kev": [list(r) for r in self.ranges_kev]}


@dataclass(frozen=True)
class NmSeries:
    """A reconstructed SPECT volume (stored values × rescale) and its acquisition facts.

    ``pixel_units`` is ``"BQML"`` (quantitative reconstruction) or ``"COUNTS"``;
    ``acquisition_duration_s`` is Σ frames in rotation × actual frame duration over the
    rotations (None when the rotation sequence lacks them); ``injected_mbq`` at
    ``administration`` (None when absent); ``label`` names the file for messages.
    """

    volume: hd.Volume
    pixel_units: str
    units_source: str
    radionuclide: str | None
    radionuclide_half_life_s: float | None
    radiopharmaceutical: str | None
    injected_mbq: float | None
    administration: dt.datetime | None
    acquisition_start: dt.datetime | None
    acquisition_duration_s: float | None
    energy_windows: tuple[EnergyWindow, ...]
    rotations: tuple[dict[str, Any], ...]
    detectors: int
    patient_weight_kg: float | None
    patient_id: str
    study_uid: str
    series_uid: str
    manufacturer: str
    model: str
    station: str
    label: str
    image_type: tuple[str, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: (0054,1102) *Decay Correction* when present (``START``, ``ADMIN``, ``NONE``).
    decay_correction: str | None = None

    @property
    def voxel_ml(self) -> float:
        return float(np.prod(self.volume.spacing)) / 1000.0


def _dt(date: object, time: object) -> dt.datetime | None:
    d, t = str(date or "").strip(), str(time or "").strip()
    if len(d) < 8 or not t:
        return None
    return _parse_dt(d[:8] + t)


def _parse_dt(text: str) -> dt.datetime | None:
    text = str(text or "").strip()
    if not text:
        return None
    for sep in ("+", "-"):
        if sep in text[8:]:
            text = text[: 8 + text[8:].index(sep)]
    main, _, frac = text.partition(".")
    fmt = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}.get(len(main))
    if fmt is None:
        return None
    try:
        value = dt.datetime.strptime(main, fmt)
    except ValueError:
        return None
    if frac:
        value += dt.timedelta(seconds=float("0." + frac))
    return value


def _float(value: object) -> float | None:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


def _units(ds: Dataset) -> tuple[str, str, float, float]:
    """(pixel units, where they came from, slope, intercept)."""
    slope = _float(ds.get("RescaleSlope", 1)) or 1.0
    intercept = _float(ds.get("RescaleIntercept", 0)) or 0.0
    units = str(ds.get("Units", "") or "").strip().upper()
    if units == "BQML":
        return "BQML", "(0054,1001) Units BQML", slope, intercept
    for item in ds.get("RealWorldValueMappingSequence", []) or []:
        codes = item.get("MeasurementUnitsCodeSequence", []) or []
        code = str(codes[0].get("CodeValue", "")) if codes else ""
        if code.lower() in ("bq/ml", "bq/cm3"):
            s = _float(item.get("RealWorldValueSlope", 1.0))
            b = _float(item.get("RealWorldValueIntercept", 0.0))
            return ("BQML", "(0040,9096) Real World Value Mapping, unit Bq/ml",
                    1.0 if s is None else s, 0.0 if b is None else b)
    if units and units not in ("CNTS", "COUNTS", "NONE"):
        raise DicomError(f"(0054,1001) Units {units!r}: not Bq/ml and not counts; the "
                         "SPECT values cannot be converted to activity")
    return "COUNTS", "no Bq/ml in (0054,1001) Units or a Real World Value Mapping", slope, intercept


def _geometry(ds: Dataset, label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    det = (ds.get("DetectorInformationSequence") or [None])[0]
    pos = ds.get("ImagePositionPatient") or (det.get("ImagePositionPatient") if det else None)
    ori = (ds.get("ImageOrientationPatient")
           or (det.get("ImageOrientationPatient") if det else None))
    if pos is None or ori is None:
        raise DicomError(f"{label}: (0020,0032) Image Position / (0020,0037) Orientation "
                         "missing at the top level and in the Detector Information Sequence")
    row, col = np.asarray(ori[:3], float), np.asarray(ori[3:6], float)
    if abs(np.linalg.norm(row) - 1) > 1e-3 or abs(np.linalg.norm(col) - 1) > 1e-3:
        raise DicomError(f"{label}: (0020,0037) Image Orientation is not two unit vectors")
    spacing = ds.get("PixelSpacing")
    if spacing is None or len(spacing) != 2:
        raise DicomError(f"{label}: (0028,0030) Pixel Spacing missing")
    dz = _float(ds.get("SpacingBetweenSlices")) or _float(ds.get("SliceThickness"))
    if not dz:
        raise DicomError(f"{label}: (0018,0088) Spacing Between Slices missing or zero; the "
                         "slice positions of a RECON TOMO cannot be placed")
    # a negative spacing (written by some NM software) runs the frames against the normal
    return (np.asarray(pos, float), np.stack([row, col]),
            np.array([float(spacing[0]), float(spacing[1])]), float(dz))


def read_nm_dataset(ds: Dataset, label: str | None = None) -> NmSeries:
    """Read one NM multi-frame RECON TOMO dataset (see the module docstring)."""
    label = label or str(getattr(ds, "filename", "") or "NM dataset")
    if str(ds.get("Modality", "")) != "NM":
        raise DicomError(f"{label}: (0008,0060) Modality {ds.get('Modality')!r}, expected NM")
    image_type = tuple(str(v).upper() for v in (ds.get("ImageType") or []))
    kind = image_type[2] if len(image_type) > 2 else ""
    if kind not in _RECON:
        raise DicomError(f"{label}: (0008,0008) Image Type value 3 is {kind!r}; only "
                         f"reconstructed tomography ({' or '.join(_RECON)}) is a volume")
    pos, cosines, spacing, dz = _geometry(ds, label)
    try:
        pixels = np.asarray(ds.pixel_array, dtype=np.float64)
    except Exception as exc:  # pydicom raises several types for pixel data
        raise DicomError(f"{label}: pixel data cannot be decoded: {exc}") from exc
    if pixels.ndim == 2:
        pixels = pixels[None]
    n = int(ds.get("NumberOfFrames", pixels.shape[0]) or pixels.shape[0])
    if pixels.shape[0] != n:
        raise DicomError(f"{label}: (0028,0008) Number of Frames {n} but "
                         f"{pixels.shape[0]} frames of pixel data")
    notes: list[str] = []
    order = np.arange(n)
    vec = ds.get("SliceVector")
    if vec is not None:
        sv = np.asarray([int(v) for v in vec])
        if sv.size != n:
            raise DicomError(f"{label}: (0054,0080) Slice Vector has {sv.size} values for "
                             f"{n} frames")
        order = np.argsort(sv, kind="stable")
        if not np.array_equal(sv[order], np.arange(1, n + 1)):
            raise DicomError(f"{label}: (0054,0080) Slice Vector is not 1…{n}")
    pixel_units, units_source, slope, intercept = _units(ds)
    values = pixels[order] * slope + intercept
    row, col = cosines
    normal = np.cross(row, col)
    affine = np.eye(4)
    affine[:3, 0] = normal * dz
    affine[:3, 1] = col * spacing[0]
    affine[:3, 2] = row * spacing[1]
    affine[:3, 3] = pos
    volume = hd.Volume(array=values, affine=affine, coordinate_system="PATIENT",
                       frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")) or None)

    windows = []
    for item in ds.get("EnergyWindowInformationSequence", []) or []:
        ranges = tuple((float(r.get("EnergyWindowLowerLimit", 0)),
                        float(r.get("EnergyWindowUpperLimit", 0)))
                       for r in item.get("EnergyWindowRangeSequence", []) or [])
        windows.append(EnergyWindow(str(item.get("EnergyWindowName", "") or ""), ranges))
    rotations = []
    duration = 0.0
    complete = True
    top_frames = _float(ds.get("NumberOfFramesInRotation"))
    top_ms = _float(ds.get("ActualFrameDuration"))
    for item in ds.get("RotationInformationSequence", []) or []:
        # per rotation; a vendor that writes them once at the top level is read there
        frames = _float(item.get("NumberOfFramesInRotation")) or top_frames
        ms = _float(item.get("ActualFrameDuration")) or top_ms
        rotations.append({"frames": frames, "frame_duration_ms": ms,
                          "scan_arc_deg": _float(item.get("ScanArc")),
                          "start_angle_deg": _float(item.get("StartAngle")),
                          "angular_step_deg": _float(item.get("AngularStep")),
                          "direction": str(item.get("RotationDirection", "") or "")})
        if frames and ms:
            duration += frames * ms / 1000.0
        else:
            complete = False
    acq_duration = duration if rotations and complete and duration > 0 else None
    if acq_duration is None and (_float(ds.get("AcquisitionDuration")) or 0) > 0:
        acq_duration = _float(ds.get("AcquisitionDuration"))
        notes.append("acquisition duration from (0018,9073) Acquisition Duration")
    rp = (ds.get("RadiopharmaceuticalInformationSequence") or [None])[0]
    nuclide = None
    half_life = None
    pharm = None
    injected = None
    admin = None
    if rp is not None:
        codes = rp.get("RadionuclideCodeSequence") or []
        if codes:
            nuclide = str(codes[0].get("CodeMeaning", "") or "") or None
        half_life = _float(rp.get("RadionuclideHalfLife"))
        pharm = str(rp.get("Radiopharmaceutical", "") or "") or None
        injected = _float(rp.get("RadionuclideTotalDose"))
        admin = _parse_dt(str(rp.get("RadiopharmaceuticalStartDateTime", "") or ""))
        if admin is None:
            admin = _dt(ds.get("SeriesDate") or ds.get("StudyDate"),
                        rp.get("RadiopharmaceuticalStartTime"))
            if admin is not None:
                notes.append("administration time from (0018,1072) with the series date")
    if injected is not None and injected > 1e5:
        raise DicomError(f"{label}: (0018,1074) Radionuclide Total Dose {injected:g} is in "
                         "MBq for NM (PS3.3 C.8.4.10.1); more than 100 GBq looks like Bq")
    start = (_parse_dt(str(ds.get("AcquisitionDateTime", "") or ""))
             or _dt(ds.get("AcquisitionDate") or ds.get("SeriesDate"),
                    ds.get("AcquisitionTime") or ds.get("SeriesTime")))
    weight = _float(ds.get("PatientWeight"))
    return NmSeries(
        volume=volume, pixel_units=pixel_units, units_source=units_source,
        radionuclide=nuclide, radionuclide_half_life_s=half_life, radiopharmaceutical=pharm,
        injected_mbq=injected, administration=admin, acquisition_start=start,
        acquisition_duration_s=acq_duration, energy_windows=tuple(windows),
        rotations=tuple(rotations),
        detectors=len(ds.get("DetectorInformationSequence", []) or []),
        patient_weight_kg=weight if weight and weight > 0 else None,
        patient_id=str(ds.get("PatientID", "")), study_uid=str(ds.get("StudyInstanceUID", "")),
        series_uid=str(ds.get("SeriesInstanceUID", "")),
        manufacturer=str(ds.get("Manufacturer", "") or ""),
        model=str(ds.get("ManufacturerModelName", "") or ""),
        station=str(ds.get("StationName", "") or ""), label=label, image_type=image_type,
        notes=tuple(notes),
        decay_correction=str(ds.get("DecayCorrection", "") or "").strip().upper() or None)


def read_nm(source: str | os.PathLike[str]) -> NmSeries:
    """Read the one NM RECON TOMO instance in a file or a folder.

    A folder holding several reconstructions (or none) raises :class:`InputError` naming
    them; a folder may also hold the CT of the SPECT-CT, which is skipped.

    Example:
        >>> spect = read_nm("SPECT/")  # doctest: +SKIP
        >>> spect.pixel_units, spect.volume.spacing  # doctest: +SKIP
    """
    p = Path(source)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    found: list[tuple[Path, Dataset]] = []
    for f in files:
        try:
            head = pydicom.dcmread(f, stop_before_pixels=True)
        except Exception:  # not DICOM: skip
            continue
        if str(head.get("Modality", "")) != "NM":
            continue
        types = [str(v).upper() for v in (head.get("ImageType") or [])]
        if len(types) > 2 and types[2] in _RECON:
            found.append((f, head))
    if not found:
        raise InputError(f"{p}: no NM reconstructed tomography (RECON TOMO) instance found")
    if len(found) > 1:
        names = ", ".join(str(f.name) for f, _ in found[:5])
        raise InputError(f"{p}: {len(found)} NM reconstructions ({names}); give one file")
    path = found[0][0]
    return read_nm_dataset(pydicom.dcmread(path), label=str(path))
