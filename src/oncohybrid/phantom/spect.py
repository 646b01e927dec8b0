"""Synthetic quantitative SPECT-CT: NM RECON TOMO multi-frame series with known activity,
their CT, VOIs as DICOM SEG, and radionuclide-therapy cycles with known kinetics.

Ground truth by construction:

- Organs are ellipsoids voxelised on the SPECT grid (a SPECT voxel belongs to an organ
  when its centre lies inside), so each organ holds a whole number of SPECT voxels and its
  activity is exactly its concentration × volume; the CT grid divides each SPECT voxel
  into ``ct_factor``³ voxels (aligned boundaries), and the organ's CT number fixes its
  density through :func:`density_g_ml` (ρ = 1 + HU/1000 ≤ 100 HU, the platform's stated
  CT calibration).
- The activity of organ *o* at time *t* after administration follows the kinetics given
  (``("mono-exp", A0_MBq, T_eff_h)``, ``("bi-exp", A0_MBq, T_washout_h, T_uptake_h)`` for
  A0·(e^(−ln2 t/T_w) − e^(−ln2 t/T_u)) or ``("bi-exp-clearance", A1, T1_h, A2, T2_h)`` for
  A1·e^(−ln2 t/T1) + A2·e^(−ln2 t/T2)), scaled by the cycle's administered activity over
  the 7.4 GBq reference; the closed-form integral is the analytic TIA.
- Pixel values are either Bq/ml at acquisition start (``units="bqml"``, (0054,1001)
  ``BQML``) or reconstructed counts (``units="counts"``): counts = A(start) · S ·
  (1 − e^(−λT))/λ with the system sensitivity S (cps/MBq), the acquisition duration T
  (s) of the rotation sequence and physical decay during the acquisition (the tissue
  kinetics over the ~20 min are neglected, as in clinical quantification).
- Each later time point is repositioned by whole SPECT voxels (``shifts_vox``) so that
  the platform must register it to the first CT.

No noise and no blur: the generator checks the arithmetic of the chain (header reading,
calibration, registration, fit, integration, dose), not the camera's physics.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from oncohybrid.phantom.anatomy import AxialGrid
from oncohybrid.phantom.writer import (
    CT_IMAGE_STORAGE,
    common_geometry,
    ct_slices,
    ds_str,
    write_series,
)

__all__ = ["DEFAULT_KINETICS", "NM_IMAGE_STORAGE", "NUCLIDES", "Organ", "PhantomNuclide",
           "SpectCycle", "SpectPhantom", "analytic_tia_mbq_h", "write_nm_dataset",
           "write_spect_patient"]

NM_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.20"
REFERENCE_ACTIVITY_MBQ = 7400.0


@dataclass(frozen=True)
class PhantomNuclide:
    """The phantom's own copy of the few nuclide facts it writes (``phantom`` sits beside
    ``nm`` and may not import it; the tests then compare two transcriptions): half-life
    (h; NNDC NuDat 3, Lu-177 ICRP 107) and photopeaks (keV) for the energy windows."""

    symbol: str
    half_life_h: float
    photopeaks_kev: tuple[float, ...]


NUCLIDES = {n.symbol: n for n in (
    PhantomNuclide("Tc-99m", 6.0067, (140.5,)),
    PhantomNuclide("In-111", 2.8047 * 24, (171.3, 245.4)),
    PhantomNuclide("I-123", 13.2234, (159.0,)),
    PhantomNuclide("I-131", 8.0252 * 24, (364.5,)),
    PhantomNuclide("Lu-177", 6.647 * 24, (112.9, 208.4)),
)}


def density_g_ml(hu: float) -> float:
    """The organ density the phantom states for its CT number: ρ = 1 + HU/1000 up to
    100 HU, 1.1 + 0.00058·(HU − 100) above (the calibration docs/nm.md states)."""
    return 1.0 + hu / 1000.0 if hu <= 100.0 else 1.1 + 0.00058 * (hu - 100.0)


@dataclass(frozen=True)
class Organ:
    """An ellipsoid (centre and semi-axes in mm, x/y/z LPS relative to the body centre)
    with a CT number; ``voi`` says whether it is written as a SEG segment."""

    name: str
    centre_mm: tuple[float, float, float]
    semi_axes_mm: tuple[float, float, float]
    hu: float
    voi: bool = True


#: Body, lungs and spine first: later organs overwrite earlier ones.
DEFAULT_ORGANS: tuple[Organ, ...] = (
    Organ("body", (0, 0, 0), (140, 105, 400), 0.0, voi=False),
    Organ("lung_right", (-65, 0, 85), (45, 55, 40), -750.0, voi=False),
    Organ("lung_left", (65, 0, 85), (45, 55, 40), -750.0, voi=False),
    Organ("spine", (0, 70, 0), (16, 16, 400), 600.0, voi=False),
    Organ("marrow", (0, 68, -20), (9, 9, 60), 250.0),
    Organ("liver", (-62, -10, 15), (55, 50, 42), 55.0),
    Organ("spleen", (75, 25, 20), (25, 22, 35), 45.0),
    Organ("kidney_right", (-55, 45, -50), (25, 20, 42), 30.0),
    Organ("kidney_left", (55, 45, -50), (25, 20, 42), 30.0),
    Organ("tumour_1", (-62, -20, 20), (16, 16, 16), 40.0),
    Organ("tumour_2", (20, -60, -45), (14, 14, 14), 35.0),
)

#: Kinetics per organ for 7.4 GBq of ¹⁷⁷Lu-DOTATATE-like uptake (MBq, hours).
DEFAULT_KINETICS: dict[str, tuple[Any, ...]] = {
    "body": ("mono-exp", 1500.0, 10.0),
    "marrow": ("mono-exp", 4.0, 30.0),
    "liver": ("mono-exp", 150.0, 70.0),
    "spleen": ("bi-exp", 45.0, 60.0, 2.0),
    "kidney_right": ("bi-exp", 110.0, 50.0, 1.5),
    "kidney_left": ("bi-exp", 100.0, 45.0, 1.5),
    "tumour_1": ("bi-exp", 80.0, 90.0, 3.0),
    "tumour_2": ("mono-exp", 30.0, 100.0),
}


def _activity(kin: tuple[Any, ...], t_h: float, scale: float) -> float:
    if kin[0] == "mono-exp":
        return scale * kin[1] * math.exp(-math.log(2) * t_h / kin[2])
    if kin[0] == "bi-exp":
        return scale * kin[1] * (math.exp(-math.log(2) * t_h / kin[2])
                                 - math.exp(-math.log(2) * t_h / kin[3]))
    if kin[0] == "bi-exp-clearance":
        return scale * (kin[1] * math.exp(-math.log(2) * t_h / kin[2])
                        + kin[3] * math.exp(-math.log(2) * t_h / kin[4]))
    raise ValueError(f"kinetics model must be mono-exp, bi-exp or bi-exp-clearance, "
                     f"got {kin[0]!r}")


def analytic_tia_mbq_h(kin: tuple[Any, ...], scale: float = 1.0) -> float:
    """Closed-form ∫₀^∞ A(t) dt of a kinetics tuple (MBq·h)."""
    if kin[0] == "mono-exp":
        return scale * kin[1] * kin[2] / math.log(2)
    if kin[0] == "bi-exp-clearance":
        return scale * (kin[1] * kin[2] + kin[3] * kin[4]) / math.log(2)
    return scale * kin[1] * (kin[2] - kin[3]) / math.log(2)


@dataclass(frozen=True)
class SpectCycle:
    """One administration: when, how much (MBq), and the scan times (h after it)."""

    administration: dt.datetime
    injected_mbq: float = REFERENCE_ACTIVITY_MBQ
    times_h: tuple[float, ...] = (4.0, 24.0, 96.0, 168.0)


@dataclass
class SpectPhantom:
    """Generator settings (see the module docstring)."""

    patient_id: str = "NM-PHANTOM-1"
    isotope: str = "Lu-177"
    radiopharmaceutical: str = "Lu-177-DOTATATE"
    units: str = "bqml"
    sensitivity_cps_mbq: float = 9.2
    frames_in_rotation: int = 60
    frame_duration_ms: int = 20000
    shape: tuple[int, int, int] = (48, 56, 64)
    spacing_mm: float = 4.8
    ct_factor: int = 2
    organs: tuple[Organ, ...] = DEFAULT_ORGANS
    kinetics: dict[str, tuple[Any, ...]] = field(default_factory=lambda: dict(DEFAULT_KINETICS))
    cycles: tuple[SpectCycle, ...] = (SpectCycle(dt.datetime(2026, 3, 2, 9, 0)),)
    shifts_vox: tuple[tuple[int, int, int], ...] = ((0, 0, 0), (1, 0, -1), (0, 1, 2),
                                                    (-1, 0, 1))
    weight_kg: float = 75.0
    seed: int = 7

    @property
    def nuclide(self) -> PhantomNuclide:
        return NUCLIDES[self.isotope]

    @property
    def acquisition_duration_s(self) -> float:
        return self.frames_in_rotation * self.frame_duration_ms / 1000.0

    def grid(self, shift_vox: Sequence[int] = (0, 0, 0)) -> AxialGrid:
        """The SPECT grid in scanner LPS (body centre at 0 when not shifted)."""
        nz, ny, nx = self.shape
        s = self.spacing_mm
        return AxialGrid(self.shape, (s, s, s),
                         (-(nx - 1) / 2 * s, -(ny - 1) / 2 * s, -(nz - 1) / 2 * s))

    def ct_grid(self) -> AxialGrid:
        f = self.ct_factor
        nz, ny, nx = self.shape
        s = self.spacing_mm
        c = s / f
        off = (s - c) / 2
        g = self.grid()
        return AxialGrid((nz * f, ny * f, nx * f), (c, c, c),
                         tuple(o - off for o in g.origin_mm))  # type: ignore[arg-type]

    def labels(self, shift_vox: Sequence[int] = (0, 0, 0)) -> tuple[np.ndarray, list[Organ]]:
        """Label map on the SPECT grid (0 = air, k = organs[k-1]) with the body moved by
        ``shift_vox`` (z, y, x) whole voxels."""
        g = self.grid()
        s = self.spacing_mm
        z = g.axis(2)[:, None, None] - shift_vox[0] * s
        y = g.axis(1)[None, :, None] - shift_vox[1] * s
        x = g.axis(0)[None, None, :] - shift_vox[2] * s
        lab = np.zeros(self.shape, dtype=np.int16)
        for k, o in enumerate(self.organs, start=1):
            inside = (((x - o.centre_mm[0]) / o.semi_axes_mm[0]) ** 2
                      + ((y - o.centre_mm[1]) / o.semi_axes_mm[1]) ** 2
                      + ((z - o.centre_mm[2]) / o.semi_axes_mm[2]) ** 2) <= 1.0
            lab[inside] = k
        return lab, list(self.organs)

    def organ_truth(self) -> dict[str, dict[str, float]]:
        """Voxels, volume (ml), density (g/ml) and mass (g) of every organ (unshifted)."""
        lab, organs = self.labels()
        v_ml = self.spacing_mm**3 / 1000.0
        out = {}
        for k, o in enumerate(organs, start=1):
            n = int((lab == k).sum())
            rho = float(density_g_ml(o.hu))
            out[o.name] = {"voxels": n, "volume_ml": n * v_ml, "density_g_ml": rho,
                           "mass_g": n * v_ml * rho, "hu": o.hu}
        return out


def write_nm_dataset(path: Path, values: np.ndarray, grid: AxialGrid, *, header: Dataset,
                     units: str, isotope: PhantomNuclide, injected_mbq: float,
                     administration: dt.datetime, acquisition: dt.datetime,
                     frames_in_rotation: int, frame_duration_ms: int, series_uid: str,
                     sop_uid: str, radiopharmaceutical: str) -> Path:
    """Write one NM Image Storage RECON TOMO multi-frame file (PS3.3 A.5, C.8.4)."""
    ds = Dataset()
    ds.update(header)
    ds.SOPClassUID = NM_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "NM"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 3
    ds.InstanceNumber = 1
    kind = "QUANT Bq/ml" if units == "bqml" else "OSEM counts"
    ds.SeriesDescription = f"SPECT {isotope.symbol} {kind}"
    ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = acquisition.strftime("%Y%m%d")
    ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = acquisition.strftime("%H%M%S")
    ds.AcquisitionDateTime = acquisition.strftime("%Y%m%d%H%M%S")
    nz, ny, nx = values.shape
    ds.NumberOfFrames = nz
    ds.FrameIncrementPointer = [0x00540080]
    ds.SliceVector = list(range(1, nz + 1))
    ds.NumberOfSlices = nz
    det = Dataset()
    det.ImagePositionPatient = [ds_str(v) for v in grid.origin_mm]
    det.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    det.FocalDistance = "0"
    det.CollimatorGridName = "MEGP" if isotope.symbol in ("Lu-177", "In-111") else "LEHR"
    det.CollimatorType = "PARA"
    ds.DetectorInformationSequence = DicomSequence([det])
    ds.NumberOfDetectors = 1
    windows = []
    for k, peak in enumerate(isotope.photopeaks_kev, start=1):
        w = Dataset()
        r = Dataset()
        r.EnergyWindowLowerLimit = ds_str(peak * 0.9)
        r.EnergyWindowUpperLimit = ds_str(peak * 1.1)
        w.EnergyWindowRangeSequence = DicomSequence([r])
        w.EnergyWindowName = f"EM{k}"
        windows.append(w)
    ds.EnergyWindowInformationSequence = DicomSequence(windows[-1:])
    ds.NumberOfEnergyWindows = 1
    rot = Dataset()
    rot.StartAngle = "0"
    rot.AngularStep = ds_str(360.0 / frames_in_rotation)
    rot.RotationDirection = "CW"
    rot.ScanArc = "360"
    rot.ActualFrameDuration = frame_duration_ms
    rot.NumberOfFramesInRotation = frames_in_rotation
    ds.RotationInformationSequence = DicomSequence([rot])
    ds.NumberOfRotations = 1
    rp = Dataset()
    rp.Radiopharmaceutical = radiopharmaceutical
    rp.RadiopharmaceuticalStartDateTime = administration.strftime("%Y%m%d%H%M%S")
    rp.RadiopharmaceuticalStartTime = administration.strftime("%H%M%S")
    rp.RadionuclideTotalDose = ds_str(injected_mbq)  # MBq for NM (PS3.3 C.8.4.10.1)
    rp.RadionuclideHalfLife = ds_str(isotope.half_life_h * 3600.0)
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator = isotope.symbol.replace("-", ""), "99OHNM"
    code.CodeMeaning = isotope.symbol
    rp.RadionuclideCodeSequence = DicomSequence([code])
    ds.RadiopharmaceuticalInformationSequence = DicomSequence([rp])
    ds.PixelSpacing = [ds_str(grid.spacing_mm[1]), ds_str(grid.spacing_mm[2])]
    ds.SliceThickness = ds_str(grid.spacing_mm[0])
    ds.SpacingBetweenSlices = ds_str(grid.spacing_mm[0])
    ds.Rows, ds.Columns = ny, nx
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    peak = float(values.max())
    slope_str = ds_str(peak / 65535.0) if peak > 0 else "1"
    ds.RescaleSlope = slope_str
    ds.RescaleIntercept = "0"
    stored = np.clip(np.rint(values / float(slope_str)), 0, 65535).astype("<u2")
    if units == "bqml":
        ds.Units = "BQML"
        ds.CorrectedImage = ["ATTN", "SCAT", "DECY"]
        ds.DecayCorrection = "START"
    else:
        ds.CorrectedImage = ["ATTN", "SCAT"]
    ds.PixelData = stored.tobytes()
    ds["PixelData"].VR = "OW"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = NM_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _header(p: SpectPhantom, study_uid: str, for_uid: str, when: dt.datetime,
            accession: str) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = f"Phantom^{p.patient_id}"
    ds.PatientID = p.patient_id
    ds.PatientBirthDate = "19560412"
    ds.PatientSex = "M"
    ds.PatientWeight = ds_str(p.weight_kg)
    ds.PatientSize = "1.78"
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = when.strftime("%Y%m%d")
    ds.StudyTime = when.strftime("%H%M%S")
    ds.StudyID = accession[-4:]
    ds.AccessionNumber = accession
    ds.StudyDescription = f"SPECT-CT {p.radiopharmaceutical} dosimetry"
    ds.ReferringPhysicianName = ""
    ds.Manufacturer = "OncohybridPhantom"
    ds.ManufacturerModelName = "SPECT-CT Phantom"
    ds.StationName = "PHANTOM-SPECT"
    ds.DeviceSerialNumber = "NM0001"
    ds.SoftwareVersions = "1"
    ds.InstitutionName = "Oncohybrid Phantom Hospital"
    ds.FrameOfReferenceUID = for_uid
    ds.PositionReferenceIndicator = ""
    ds.PatientPosition = "HFS"
    ds.BodyPartExamined = "ABDOMEN"
    return ds


def _write_seg(seg_path: Path, ct_dir: Path, ct_labels: np.ndarray, organs: list[Organ]) -> None:
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    from oncohybrid.dicom.volume import sort_slices

    sources = sort_slices([pydicom.dcmread(f) for f in sorted(ct_dir.glob("*.dcm"))])
    chosen = [(k, o) for k, o in enumerate(organs, start=1) if o.voi]
    stack = np.stack([ct_labels == k for k, _ in chosen], axis=-1).astype(np.uint8)
    descriptions = []
    for n, (_, o) in enumerate(chosen, start=1):
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=n, segment_label=o.name,
            segmented_property_category=(codes.SCT.MorphologicallyAbnormalStructure
                                         if o.name.startswith("tumour")
                                         else codes.SCT.AnatomicalStructure),
            segmented_property_type=(codes.SCT.Lesion if o.name.startswith("tumour")
                                     else codes.SCT.Organ),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL))
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=stack,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=50,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="oncohybrid",
        manufacturer_model_name="spect phantom", software_versions="1",
        device_serial_number="0", series_description="Dosimetry VOIs",
        content_label="VOIS", omit_empty_frames=False)
    seg_path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(seg_path)


def write_spect_patient(root: str | Path, phantom: SpectPhantom | None = None, *,
                        seg: bool = True) -> dict[str, Any]:
    """Write every SPECT-CT time point of every cycle of ``phantom`` under ``root``
    (``cycle<N>/tp<K>/{CT,NM}``, VOIs as ``cycle1/tp1/SEG/vois.dcm``) and
    ``ground_truth.json``; returns the ground truth.

    Example:
        >>> truth = write_spect_patient("nm-phantom")  # doctest: +SKIP
        >>> truth["organs"]["kidney_left"]["mass_g"]  # doctest: +SKIP
    """
    p = phantom or SpectPhantom()
    iso = p.nuclide
    if p.units not in ("bqml", "counts"):
        raise ValueError(f"units must be 'bqml' or 'counts', got {p.units!r}")
    out = Path(root)
    out.mkdir(parents=True, exist_ok=True)
    organs_truth = p.organ_truth()
    v_ml = p.spacing_mm**3 / 1000.0
    lam_s = math.log(2) / (iso.half_life_h * 3600.0)
    t_acq = p.acquisition_duration_s
    counting = (1 - math.exp(-lam_s * t_acq)) / lam_s  # s, ∫0^T e^(−λt) dt
    grid = p.grid()
    ct_grid = p.ct_grid()
    f = p.ct_factor
    truth: dict[str, Any] = {
        "patient_id": p.patient_id, "isotope": iso.symbol, "units": p.units,
        "sensitivity_cps_mbq": p.sensitivity_cps_mbq, "acquisition_duration_s": t_acq,
        "spacing_mm": p.spacing_mm, "organs": organs_truth,
        "kinetics": {k: list(v) for k, v in p.kinetics.items()},
        "reference_activity_mbq": REFERENCE_ACTIVITY_MBQ, "cycles": []}
    for c, cycle in enumerate(p.cycles, start=1):
        scale = cycle.injected_mbq / REFERENCE_ACTIVITY_MBQ
        ctruth: dict[str, Any] = {
            "cycle": c, "administration": cycle.administration.isoformat(),
            "injected_mbq": cycle.injected_mbq, "timepoints": [],
            "tia_mbq_h": {k: analytic_tia_mbq_h(v, scale) for k, v in p.kinetics.items()}}
        for k, t_h in enumerate(cycle.times_h, start=1):
            shift = p.shifts_vox[(k - 1) % len(p.shifts_vox)]
            labels, organs = p.labels(shift)
            conc = np.zeros(p.shape, dtype=np.float64)  # Bq/ml at acquisition start
            hu = np.full(p.shape, -1000.0)
            activities = {}
            for idx, o in enumerate(organs, start=1):
                m = labels == idx
                hu[m] = o.hu
                kin = p.kinetics.get(o.name)
                n = int(m.sum())
                if kin is None or n == 0:
                    continue
                a = _activity(kin, t_h, scale)
                activities[o.name] = a
                conc[m] = a * 1e6 / (n * v_ml)
            when = cycle.administration + dt.timedelta(hours=t_h)
            study_uid, for_uid = generate_uid(), generate_uid()
            tp_dir = out / f"cycle{c}" / f"tp{k}"
            header = _header(p, study_uid, for_uid, when, f"NM{c}{k}{p.seed:04d}")
            ct_hu = np.repeat(np.repeat(np.repeat(hu, f, 0), f, 1), f, 2)
            ct = Dataset()
            ct.update(header)
            ct.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
            ct.Modality = "CT"
            ct.SeriesInstanceUID = generate_uid()
            ct.SeriesNumber = 2
            ct.SeriesDescription = "CT low dose for SPECT"
            ct_when = when - dt.timedelta(minutes=2)
            ct.SeriesDate = ct.AcquisitionDate = ct_when.strftime("%Y%m%d")
            ct.SeriesTime = ct.AcquisitionTime = ct_when.strftime("%H%M%S")
            ct.KVP = "120"
            ct.PixelRepresentation = 0
            ct.RescaleIntercept = "-1024"
            ct.RescaleSlope = "1"
            ct.RescaleType = "HU"
            ct.WindowCenter, ct.WindowWidth = "40", "400"
            common_geometry(ct, ct_grid)
            ct_uids = [generate_uid() for _ in range(ct_grid.shape[0])]
            write_series(tp_dir / "CT", grid=ct_grid, shared=ct, sop_class_uid=CT_IMAGE_STORAGE,
                         slices=ct_slices(ct_hu), uid=lambda i, u=ct_uids: u[i])
            if p.units == "bqml":
                values = conc
            else:  # counts per voxel over the acquisition
                values = conc * v_ml / 1e6 * p.sensitivity_cps_mbq * counting
            write_nm_dataset(tp_dir / "NM" / "NM0001.dcm", values, grid, header=header,
                             units=p.units, isotope=iso, injected_mbq=cycle.injected_mbq,
                             administration=cycle.administration, acquisition=when,
                             frames_in_rotation=p.frames_in_rotation,
                             frame_duration_ms=p.frame_duration_ms,
                             series_uid=generate_uid(), sop_uid=generate_uid(),
                             radiopharmaceutical=p.radiopharmaceutical)
            if seg and c == 1 and k == 1:
                ct_labels = np.repeat(np.repeat(np.repeat(labels, f, 0), f, 1), f, 2)
                _write_seg(tp_dir / "SEG" / "vois.dcm", tp_dir / "CT", ct_labels, organs)
            ctruth["timepoints"].append({
                "time_h": t_h, "acquisition": when.isoformat(), "shift_vox": list(shift),
                "activity_mbq": activities, "total_activity_mbq": float(sum(activities.values())),
                "dir": str(tp_dir)})
        truth["cycles"].append(ctruth)
    (out / "ground_truth.json").write_text(json.dumps(truth, indent=1))
    return truth
