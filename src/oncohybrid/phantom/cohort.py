"""Synthetic multi-vendor FDG PET/CT cohort with ground truth.

``generate_cohort`` writes, for each patient and timepoint, a CT and a PET series sharing
a Frame of Reference, plus per-patient and cohort ground-truth JSON (see docs/phantom.md).
Everything is derived from one seed: UIDs use :func:`pydicom.uid.generate_uid` with
deterministic entropy sources, and all random draws come from seeded NumPy generators.

SUV ground truth follows the project's PET quantification notes §2: the factor is
``weight_g / dose_bq decayed to the reference time``; SUL uses the Janmahasatian (2005)
lean body mass, SUVbsa the Du Bois BSA in cm², SUVibw the Sugawara ideal body weight
(no clamping to body weight). All factors are computed from the values as written to the
headers (parsed back from their DS/TM/DT strings), so a reader can reproduce them exactly.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid
from scipy import ndimage

from oncohybrid.errors import InputError
from oncohybrid.phantom.anatomy import (
    TISSUE_HU,
    AxialGrid,
    Ellipsoid,
    Pose,
    Tissue,
    build_anatomy,
    paint,
)
from oncohybrid.phantom.lesions import LesionPlan, plan_lesions
from oncohybrid.phantom.vendors import VENDORS, VendorProfile
from oncohybrid.phantom.writer import (
    CT_IMAGE_STORAGE,
    PET_IMAGE_STORAGE,
    common_geometry,
    ct_slices,
    ds_str,
    pet_slices,
    write_series,
)

__all__ = ["generate_cohort", "PET_FWHM_MM", "SIZES"]

#: Resolution of the simulated PET (Gaussian FWHM, mm).
PET_FWHM_MM = 6.0
#: Body-frame z range (mm) imaged per size, and CT grid (matrix, pixel mm, slice mm).
SIZES: dict[str, dict[str, Any]] = {
    "clinical": {"z_window": (0.0, 700.0), "ct": (256, 1.953125, 2.5)},
    "small": {"z_window": (190.0, 590.0), "ct": (200, 2.0, 5.0)},
}
VENDOR_CHOICES = ("siemens", "ge", "philips", "mixed")
RADIOPHARMACEUTICAL = "Fluorodeoxyglucose"
_PATTERNS = ("responder", "progressor", "stable", "mixed")


# ---------------------------------------------------------------------------------------
# Body-size normalisations (independent of oncohybrid.dicom.suv on purpose)
# ---------------------------------------------------------------------------------------


def lbm_janmahasatian_kg(weight_kg: float, height_m: float, sex: str) -> float:
    """Janmahasatian et al., Clin Pharmacokinet 2005: 9270·W/(6680+216·BMI) (M),
    9270·W/(8780+244·BMI) (F)."""
    bmi = weight_kg / height_m**2
    if sex == "M":
        return 9270.0 * weight_kg / (6680.0 + 216.0 * bmi)
    return 9270.0 * weight_kg / (8780.0 + 244.0 * bmi)


def bsa_dubois_m2(weight_kg: float, height_m: float) -> float:
    """Du Bois & Du Bois 1916: 0.007184 · W^0.425 · H_cm^0.725 (m²)."""
    return 0.007184 * weight_kg**0.425 * (height_m * 100.0) ** 0.725


def ibw_sugawara_kg(height_m: float, sex: str) -> float:
    """Ideal body weight as used by Slicer/MIRP/IBSI (not clamped to body weight)."""
    h_cm = height_m * 100.0
    return 48.0 + 1.06 * (h_cm - 152.0) if sex == "M" else 45.5 + 0.91 * (h_cm - 152.0)


# ---------------------------------------------------------------------------------------


@dataclass
class _Patient:
    index: int
    patient_id: str
    sex: str
    age: int
    weight_str: str
    height_str: str
    vendor: VendorProfile
    pattern: str
    liver_suv: float
    blood_suv: float
    myocardium_suv: float
    bladder_suv: float
    kidney_suv: float


def _dt(value: datetime) -> str:
    return value.strftime("%Y%m%d%H%M%S")


def _tm(value: datetime) -> str:
    return value.strftime("%H%M%S")


def _da(value: datetime | date) -> str:
    return value.strftime("%Y%m%d")


def _tissue_suv(p: _Patient) -> dict[Tissue, float]:
    return {
        Tissue.AIR: 0.0,
        Tissue.SOFT_TISSUE: 0.75,
        Tissue.FAT: 0.25,
        Tissue.LUNG: 0.3,
        Tissue.LIVER: p.liver_suv,
        Tissue.BLOOD: p.blood_suv,
        Tissue.MYOCARDIUM: p.myocardium_suv,
        Tissue.SPLEEN: 1.8,
        Tissue.KIDNEY: p.kidney_suv,
        Tissue.BLADDER: p.bladder_suv,
        Tissue.BONE: 1.1,
    }


def _grids(vendor: VendorProfile, size: str, pose: Pose, rng: np.random.Generator
           ) -> tuple[AxialGrid, AxialGrid]:
    """CT and PET grids: centred in-plane on the gantry axis, z range following the
    imaged body window (planned on the scout, with a little table jitter)."""
    z0, z1 = SIZES[size]["z_window"]
    z_lo = z0 + pose.shift_mm[2] + rng.uniform(-5.0, 5.0)
    length = z1 - z0
    n_ct, px_ct, dz_ct = SIZES[size]["ct"]
    nz_ct = int(round(length / dz_ct)) + 1
    half_ct = (n_ct - 1) / 2.0 * px_ct
    ct = AxialGrid((nz_ct, n_ct, n_ct), (dz_ct, px_ct, px_ct), (-half_ct, -half_ct, z_lo))
    n_pt = vendor.pet_matrix[size]
    px_pt, dz_pt = vendor.pet_pixel_mm, vendor.pet_slice_mm
    nz_pt = int(round(length / dz_pt)) + 1
    half_pt = (n_pt - 1) / 2.0 * px_pt
    pt = AxialGrid((nz_pt, n_pt, n_pt), (dz_pt, px_pt, px_pt), (-half_pt, -half_pt, z_lo))
    return ct, pt


def _uid_factory(config: str, *parts: object):
    """Deterministic UIDs: SHA-512 of the generator configuration and the object's path
    (pydicom ``generate_uid`` entropy sources), so different cohorts never share UIDs."""

    def uid(*more: object) -> str:
        return generate_uid(entropy_srcs=[config, *map(str, parts), *map(str, more)])

    return uid


def _decay(dose_bq: float, dt_s: float, half_life_s: float) -> float:
    return dose_bq * 2.0 ** (-dt_s / half_life_s)


def _average_count_time_s(duration_s: float, half_life_s: float) -> float:
    """Tave = (1/λ)·ln(λT / (1 − e^(−λT))): decay-weighted mid-frame (notes §2.3)."""
    lam = math.log(2.0) / half_life_s
    return math.log(lam * duration_s / (1.0 - math.exp(-lam * duration_s))) / lam


def _pet_slice_timing(vendor: VendorProfile, grid: AxialGrid, *, scan_start: datetime,
                      series_dt: datetime, reference_dt: datetime, half_life_s: float):
    """Per-slice PET timing attributes (PS3.3 C.8.9.4): beds acquired head → feet, each
    ``bed_duration_s`` long; Frame Reference Time is the offset (ms) from the decay
    reference to the decay-weighted mid-frame, Decay Factor the matching 2^(Δt/T½)."""
    duration_s = vendor.bed_duration_s
    tave_s = _average_count_time_s(duration_s, half_life_s)
    z_top = grid.origin_mm[2] + (grid.shape[0] - 1) * grid.spacing_mm[0]

    def per_slice(k: int) -> dict:
        z = grid.origin_mm[2] + k * grid.spacing_mm[0]
        bed = int((z_top - z) // vendor.bed_length_mm)
        if vendor.key == "philips":
            acq = series_dt  # Philips: Acquisition Time = Series Time on every slice
        else:
            acq = scan_start + timedelta(seconds=bed * duration_s)
        offset_s = (acq - reference_dt).total_seconds() + tave_s
        return {
            "AcquisitionDate": ("DA", _da(acq)),
            "AcquisitionTime": ("TM", _tm(acq)),
            "ImageIndex": ("US", grid.shape[0] - k),
            "FrameReferenceTime": ("DS", ds_str(offset_s * 1000.0)),
            "ActualFrameDuration": ("IS", duration_s * 1000),
            "DecayFactor": ("DS", ds_str(2.0 ** (offset_s / half_life_s))),
        }

    return per_slice


def _make_patients(n: int, vendor: str, seed: int) -> list[_Patient]:
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, 1, i])
        sex = "F" if (i + seed) % 2 else "M"
        if sex == "M":
            weight = rng.uniform(60.0, 120.0)
            height = rng.uniform(1.62, 1.95)
        else:
            weight = rng.uniform(50.0, 100.0)
            height = rng.uniform(1.50, 1.80)
        key = ("siemens", "ge", "philips")[i % 3] if vendor == "mixed" else vendor
        out.append(
            _Patient(
                index=i,
                patient_id=f"PH{seed}-{i + 1:03d}",
                sex=sex,
                age=int(rng.integers(35, 86)),
                weight_str=f"{weight:.1f}",
                height_str=f"{height:.2f}",
                vendor=VENDORS[key],
                pattern=_PATTERNS[i % 4] if i < 4 else str(rng.choice(_PATTERNS)),
                liver_suv=round(float(rng.uniform(2.0, 2.5)), 3),
                blood_suv=round(float(rng.uniform(1.5, 1.8)), 3),
                myocardium_suv=round(float(rng.uniform(3.0, 8.0)), 3),
                bladder_suv=round(float(rng.uniform(8.0, 20.0)), 3),
                kidney_suv=round(float(rng.uniform(2.5, 4.0)), 3),
            )
        )
    return out


def _lesion_items(lesions: list[LesionPlan], t: int, key: str) -> list[tuple[Ellipsoid, float]]:
    items = []
    for les in lesions:
        if les.scale[t] <= 0:
            continue
        value = les.suv[t] if key == "suv" else les.ct_hu
        prim = Ellipsoid(tuple(les.centre_body), tuple(les.semi_mm * les.scale[t]))
        items.append((prim, float(value)))  # type: ignore[arg-type]
    return items


def _render_ct(anatomy, lesions, t, grid, pose, rng, noise_free) -> np.ndarray:
    hu = np.full(grid.shape, TISSUE_HU[Tissue.AIR], dtype=np.float32)
    paint(hu, grid, pose, [(p, TISSUE_HU[tis]) for p, tis in anatomy], soft=False)
    paint(hu, grid, pose, _lesion_items(lesions, t, "hu"), soft=False)
    if not noise_free:
        hu += rng.standard_normal(grid.shape, dtype=np.float32) * np.float32(10.0)
    return hu


def _render_pet_suv(anatomy, lesions, t, grid, pose, rng, noise_free, tissue_suv,
                    liver_suv) -> np.ndarray:
    suv = np.zeros(grid.shape, dtype=np.float32)
    paint(suv, grid, pose, [(p, tissue_suv[tis]) for p, tis in anatomy], soft=True)
    paint(suv, grid, pose, _lesion_items(lesions, t, "suv"), soft=True)
    sigma_mm = PET_FWHM_MM / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    suv = ndimage.gaussian_filter(suv, [sigma_mm / s for s in grid.spacing_mm], mode="constant")
    if not noise_free:
        white = rng.standard_normal(grid.shape, dtype=np.float32)
        corr = ndimage.gaussian_filter(white, 0.7)
        corr /= np.float32(corr.std())
        # Poisson-like: SD grows with sqrt(uptake); ~10% COV in the liver.
        sd = np.float32(0.10) * np.sqrt(np.maximum(suv, 0) * np.float32(liver_suv))
        suv += sd * corr
        np.maximum(suv, 0, out=suv)
    return suv


def _code(value: str, meaning: str, **extra: object) -> Dataset:
    """SNOMED CT coded item (PS3.16 CID 19/21 for patient orientation)."""
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "SCT", meaning
    for keyword, val in extra.items():
        setattr(item, keyword, val)
    return item


def _shared_common(p: _Patient, tp: dict, birth: date) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.StudyDate = tp["study_date"]
    ds.StudyTime = tp["study_time"]
    ds.AccessionNumber = tp["accession"]
    ds.Manufacturer = p.vendor.manufacturer
    ds.ManufacturerModelName = p.vendor.model
    ds.SoftwareVersions = p.vendor.software
    ds.InstitutionName = "Oncohybrid Phantom Hospital"
    ds.StationName = f"PHANTOM-{p.vendor.key.upper()}"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "PET-CT FDG WHOLE BODY"
    ds.PatientName = f"Phantom^{p.patient_id}"
    ds.PatientID = p.patient_id
    ds.PatientBirthDate = _da(birth)
    ds.PatientSex = p.sex
    ds.PatientAge = f"{p.age:03d}Y"
    ds.PatientWeight = p.weight_str
    ds.PatientSize = p.height_str
    ds.StudyInstanceUID = tp["study_uid"]
    ds.StudyID = str(tp["index"] + 1)
    ds.FrameOfReferenceUID = tp["frame_of_reference_uid"]
    ds.PositionReferenceIndicator = ""
    ds.BodyPartExamined = "WHOLEBODY"
    return ds


def generate_cohort(
    out: str | os.PathLike[str],
    *,
    patients: int,
    timepoints: int,
    vendor: str = "mixed",
    seed: int = 0,
    noise_free: bool = False,
    size: str = "clinical",
    progress: Any = None,
) -> dict[str, Any]:
    """Write a synthetic PET/CT cohort under ``out`` and return its ground truth.

    Layout: ``out/<PatientID>/TP<k>/CT/*.dcm``, ``out/<PatientID>/TP<k>/PT/*.dcm``,
    ``out/<PatientID>/ground_truth.json`` and ``out/ground_truth.json``
    (``{"patients": [...]}``). Deterministic for a given seed and arguments.
    ``progress`` (optional) is called with a message after each series is written.

    Example:
        >>> truth = generate_cohort("/tmp/c", patients=1, timepoints=2, vendor="ge",
        ...                         seed=7, size="small")  # doctest: +SKIP
        >>> truth["patients"][0]["timepoints"][0]["suvbw_factor"]  # doctest: +SKIP
    """
    if patients < 1 or timepoints < 1:
        raise InputError(f"patients and timepoints must be ≥ 1, got {patients}, {timepoints}")
    if vendor not in VENDOR_CHOICES:
        raise InputError(f"vendor must be one of {', '.join(VENDOR_CHOICES)}, got {vendor!r}")
    if size not in SIZES:
        raise InputError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    cohort = {
        "generator": "oncohybrid.phantom",
        "schema_version": 1,
        "seed": seed,
        "vendor": vendor,
        "size": size,
        "noise_free": noise_free,
        "pet_fwhm_mm": PET_FWHM_MM,
        "patients": [],
    }
    midnight_patient = patients - 1 if patients >= 2 else None
    for p in _make_patients(patients, vendor, seed):
        truth = _generate_patient(root, p, timepoints, seed, noise_free, size,
                                  midnight=(p.index == midnight_patient), progress=progress)
        (root / p.patient_id / "ground_truth.json").write_text(json.dumps(truth, indent=2))
        cohort["patients"].append(truth)
    (root / "ground_truth.json").write_text(json.dumps(cohort, indent=2))
    return cohort


def _generate_patient(root: Path, p: _Patient, n_tp: int, seed: int, noise_free: bool,
                      size: str, *, midnight: bool, progress: Any) -> dict[str, Any]:
    rng = np.random.default_rng([seed, 2, p.index])
    config = f"oncohybrid-phantom-1|{seed}|{p.vendor.key}|{size}|{int(noise_free)}"
    weight_kg, height_m = float(p.weight_str), float(p.height_str)
    anatomy, landmarks = build_anatomy(weight_kg, p.sex)
    lesions = plan_lesions(
        rng, n_timepoints=n_tp, pattern=p.pattern, anatomy=anatomy, landmarks=landmarks,
        z_window=SIZES[size]["z_window"], force_new=(p.index == 1),
    )
    vendor = p.vendor
    half_life_s = float(vendor.half_life_s)
    lbm_kg = lbm_janmahasatian_kg(weight_kg, height_m, p.sex)
    bsa_m2 = bsa_dubois_m2(weight_kg, height_m)
    ibw_kg = ibw_sugawara_kg(height_m, p.sex)
    baseline = datetime(2024, 1, 8) + timedelta(days=int(rng.integers(0, 300)))
    birth = date(baseline.year - p.age, 1 + int(rng.integers(12)), 1 + int(rng.integers(28)))
    z_table = float(rng.uniform(-1000.0, -600.0))  # scanner z of the pelvic floor
    tissue_suv = _tissue_suv(p)
    acsf_str = ds_str(rng.uniform(2.5, 6.0)) if vendor.units == "CNTS" else None
    tps = []
    for t in range(n_tp):
        tp_rng = np.random.default_rng([seed, 3, p.index, t])
        day = baseline + timedelta(days=int(t * 70 + tp_rng.integers(-10, 11)) if t else 0)
        pose = Pose(
            shift_mm=(float(tp_rng.uniform(-25, 25)), float(tp_rng.uniform(-20, 20)),
                      z_table + float(tp_rng.uniform(-40, 40))),
            rotation_deg=round(float(tp_rng.uniform(-4.0, 4.0)), 3),
        )
        if midnight and t == 0:
            injection = day.replace(hour=23, minute=int(tp_rng.integers(20, 36)),
                                    second=int(tp_rng.integers(60)))
        else:
            injection = day.replace(hour=int(tp_rng.integers(7, 14)),
                                    minute=int(tp_rng.integers(60)),
                                    second=int(tp_rng.integers(60)))
        uptake_s = int(tp_rng.integers(50 * 60, 75 * 60 + 1))
        scan_start = injection + timedelta(seconds=uptake_s)
        if vendor.key == "ge":
            series_dt = scan_start + timedelta(seconds=int(tp_rng.integers(15 * 60, 45 * 60)))
        else:
            series_dt = scan_start
        reference_dt = scan_start  # START: decay-corrected to the scan start
        dose_str = str(int(round(min(max(tp_rng.uniform(2.5, 4.0) * weight_kg, 150.0), 450.0)
                                 * 1e6)))
        dose_bq = float(dose_str)
        decayed_bq = _decay(dose_bq, (reference_dt - injection).total_seconds(), half_life_s)
        pixel_scale = float(acsf_str) if acsf_str else 1.0  # Bq/ml per rescaled pixel unit
        suvbw = weight_kg * 1000.0 / decayed_bq * pixel_scale
        liver_suv = round(p.liver_suv * float(tp_rng.uniform(0.93, 1.07)), 3)
        blood_suv = round(p.blood_suv * float(tp_rng.uniform(0.95, 1.05)), 3)
        tissue_suv[Tissue.LIVER], tissue_suv[Tissue.BLOOD] = liver_suv, blood_suv
        ct_grid, pt_grid = _grids(vendor, size, pose, tp_rng)
        tp_uid = _uid_factory(config, p.patient_id, t)
        tp = {
            "index": t,
            "label": f"TP{t}",
            "date": scan_start.date().isoformat(),
            "study_date": _da(scan_start),
            "study_time": _tm(scan_start - timedelta(minutes=6)),
            "accession": f"A{seed % 1000:03d}{p.index:03d}{t:02d}",
            "study_uid": tp_uid("study"),
            "ct_series_uid": tp_uid("ct"),
            "pt_series_uid": tp_uid("pt"),
            "frame_of_reference_uid": tp_uid("for"),
        }
        ct_dir = root / p.patient_id / f"TP{t}" / "CT"
        pt_dir = root / p.patient_id / f"TP{t}" / "PT"
        shared = _shared_common(p, tp, birth)

        # ---- CT ----
        ct_acq = scan_start - timedelta(minutes=4)
        hu = _render_ct(anatomy, lesions, t, ct_grid, pose, tp_rng, noise_free)
        ct = Dataset()
        ct.update(shared)
        ct.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ct.Modality = "CT"
        ct.SeriesInstanceUID = tp["ct_series_uid"]
        ct.SeriesNumber = 2
        ct.SeriesDescription = "CT WB 2.5mm" if size == "clinical" else "CT WB small"
        ct.SeriesDate, ct.SeriesTime = _da(ct_acq), _tm(ct_acq)
        ct.AcquisitionDate, ct.AcquisitionTime = _da(ct_acq), _tm(ct_acq)
        ct.ContentDate, ct.ContentTime = _da(ct_acq), _tm(ct_acq)
        ct.AcquisitionNumber = 1
        ct.PatientPosition = "HFS"  # (PET uses the orientation code sequences instead)
        ct.KVP = "120"
        ct.ConvolutionKernel = vendor.ct_kernel
        ct.PixelRepresentation = 0
        ct.RescaleIntercept = "-1024"
        ct.RescaleSlope = "1"
        ct.RescaleType = "HU"
        ct.WindowCenter, ct.WindowWidth = "40", "400"
        common_geometry(ct, ct_grid)
        write_series(ct_dir, grid=ct_grid, shared=ct, sop_class_uid=CT_IMAGE_STORAGE,
                     slices=ct_slices(hu), uid=lambda k, u=tp_uid: u("ct", k))
        del hu
        if progress:
            progress(f"{p.patient_id} TP{t} CT")

        # ---- PET ----
        suv = _render_pet_suv(anatomy, lesions, t, pt_grid, pose, tp_rng, noise_free,
                              tissue_suv, liver_suv)
        values = suv / np.float32(suvbw)  # Bq/ml, or CNTS for Philips
        del suv
        pt = Dataset()
        pt.update(shared)
        pt.ImageType = ["ORIGINAL", "PRIMARY"]
        pt.Modality = "PT"
        pt.SeriesInstanceUID = tp["pt_series_uid"]
        pt.SeriesNumber = 4
        pt.SeriesDescription = "PET WB AC"
        pt.SeriesDate, pt.SeriesTime = _da(series_dt), _tm(series_dt)
        pt.PixelRepresentation = 1
        pt.Units = vendor.units
        pt.CountsSource = "EMISSION"
        pt.SeriesType = ["WHOLE BODY", "IMAGE"]
        pt.DecayCorrection = "START"
        pt.CorrectedImage = ["DECY", "ATTN", "SCAT", "DTIM", "RAN", "NORM"] + (
            ["DCAL"] if vendor.units == "BQML" else []
        )
        pt.RandomsCorrectionMethod = "DLYD"
        pt.AttenuationCorrectionMethod = "CT-based"
        pt.ScatterCorrectionMethod = "Model-based"
        pt.ReconstructionMethod = vendor.pet_recon
        pt.NumberOfSlices = pt_grid.shape[0]
        pt.AcquisitionNumber = 1
        pt.ContentDate, pt.ContentTime = _da(series_dt), _tm(series_dt)
        radio = Dataset()
        radio.Radiopharmaceutical = RADIOPHARMACEUTICAL
        radio.RadiopharmaceuticalStartTime = _tm(injection)
        radio.RadiopharmaceuticalStartDateTime = _dt(injection)
        radio.RadionuclideTotalDose = dose_str
        radio.RadionuclideHalfLife = vendor.half_life_s
        radio.RadionuclidePositronFraction = "0.9673"
        nuclide = Dataset()
        nuclide.CodeValue, nuclide.CodingSchemeDesignator = "77004003", "SCT"
        nuclide.CodeMeaning = "^18^Fluorine"
        radio.RadionuclideCodeSequence = DicomSequence([nuclide])
        pharm = Dataset()
        pharm.CodeValue, pharm.CodingSchemeDesignator = "35321007", "SCT"
        pharm.CodeMeaning = "Fluorodeoxyglucose F^18^"
        radio.RadiopharmaceuticalCodeSequence = DicomSequence([pharm])
        pt.RadiopharmaceuticalInformationSequence = DicomSequence([radio])
        pt.CollimatorType = "NONE"
        pt.PatientOrientationCodeSequence = DicomSequence([_code(
            "102538003", "recumbent",
            PatientOrientationModifierCodeSequence=DicomSequence([_code("40199007", "supine")]),
        )])
        pt.PatientGantryRelationshipCodeSequence = DicomSequence([_code("102540008",
                                                                        "headfirst")])
        if vendor.key == "ge":
            block = pt.private_block(0x0009, "GEMS_PETD_01", create=True)
            block.add_new(0x0D, "DT", _dt(scan_start))  # (0009,100D) scan datetime
            block.add_new(0x3B, "DT", _dt(injection))  # (0009,103B) admin datetime
        elif vendor.key == "siemens":
            block = pt.private_block(0x0071, "SIEMENS MED PT", create=True)
            block.add_new(0x22, "DT", _dt(series_dt) + ".000000")  # decay corr. datetime
        else:
            block = pt.private_block(0x7053, "Philips PET Private Group", create=True)
            block.add_new(0x00, "DS", ds_str(suvbw))  # (7053,1000) SUV scale factor
            block.add_new(0x09, "DS", acsf_str)  # (7053,1009) activity conc. scale factor
        common_geometry(pt, pt_grid)
        per_slice = _pet_slice_timing(vendor, pt_grid, scan_start=scan_start,
                                      series_dt=series_dt, reference_dt=reference_dt,
                                      half_life_s=half_life_s)
        write_series(pt_dir, grid=pt_grid, shared=pt, sop_class_uid=PET_IMAGE_STORAGE,
                     slices=pet_slices(values, per_slice), uid=lambda k, u=tp_uid: u("pt", k))
        del values
        if progress:
            progress(f"{p.patient_id} TP{t} PT")

        tps.append(_timepoint_truth(
            tp, p, pose, lesions, t, landmarks, ct_grid, pt_grid, root, ct_dir, pt_dir,
            dose_bq=dose_bq, injection=injection, series_dt=series_dt, scan_start=scan_start,
            reference_dt=reference_dt, half_life_s=half_life_s, decayed_bq=decayed_bq,
            suvbw=suvbw, pixel_scale=pixel_scale, lbm_kg=lbm_kg, bsa_m2=bsa_m2,
            ibw_kg=ibw_kg, liver_suv=liver_suv, blood_suv=blood_suv, acsf_str=acsf_str,
            vendor=vendor,
        ))
    return {
        "patient_id": p.patient_id,
        "patient_name": f"Phantom^{p.patient_id}",
        "sex": p.sex,
        "age_years": p.age,
        "birth_date": birth.isoformat(),
        "weight_kg": weight_kg,
        "height_m": height_m,
        "vendor": vendor.key,
        "manufacturer": vendor.manufacturer,
        "response_pattern": p.pattern,
        "lbm_kg": lbm_kg,
        "bsa_m2": bsa_m2,
        "ibw_kg": ibw_kg,
        "lesion_ids": [les.id for les in lesions],
        "timepoints": tps,
    }


def _timepoint_truth(tp, p, pose, lesions, t, landmarks, ct_grid, pt_grid, root, ct_dir,
                     pt_dir, *, dose_bq, injection, series_dt, scan_start, reference_dt,
                     half_life_s, decayed_bq, suvbw, pixel_scale, lbm_kg, bsa_m2, ibw_kg,
                     liver_suv, blood_suv, acsf_str, vendor) -> dict[str, Any]:
    def lps(point_body) -> list[float]:
        return [round(float(v), 4) for v in pose.to_scanner(np.asarray(point_body, float))]

    def grid_info(grid: AxialGrid) -> dict[str, Any]:
        return {"shape": list(grid.shape), "spacing_mm": list(grid.spacing_mm),
                "origin_lps_mm": [round(v, 4) for v in grid.origin_mm]}

    les_truth = []
    for les in lesions:
        s = les.scale[t]
        semi = np.round(les.semi_mm * s, 4)  # the JSON values; sizes derive from them
        present = s > 0
        les_truth.append({
            "id": les.id,
            "site": les.site,
            "nodal": les.nodal,
            "shape": les.shape,
            "present": bool(present),
            "new": bool(present and t > 0 and les.first_present() == t),
            "centre_lps_mm": lps(les.centre_body),
            "axes_mm": [float(v) for v in semi],
            "axes_kind": "semi-axes along body x, y, z (rotated by rotation_deg about z)",
            "true_suv": (round(float(les.suv[t]), 4) if present else None),
            "volume_ml": float(4.0 / 3.0 * math.pi * np.prod(semi) / 1000.0),
            "ld_mm": float(2.0 * max(semi[0], semi[1])),
            "sa_mm": float(2.0 * min(semi[0], semi[1])),
            "ct_hu": les.ct_hu if present else None,
        })
    weight_g = float(p.weight_str) * 1000.0
    return {
        "index": t,
        "label": tp["label"],
        "date": tp["date"],
        "study_uid": tp["study_uid"],
        "ct_series_uid": tp["ct_series_uid"],
        "pt_series_uid": tp["pt_series_uid"],
        "frame_of_reference_uid": tp["frame_of_reference_uid"],
        "accession_number": tp["accession"],
        "ct_dir": str(ct_dir.relative_to(root)),
        "pt_dir": str(pt_dir.relative_to(root)),
        "shift_mm": [round(v, 4) for v in pose.shift_mm],
        "rotation_deg": pose.rotation_deg,
        "injected_dose_bq": dose_bq,
        "injection_datetime": injection.isoformat(),
        "series_datetime": series_dt.isoformat(),
        "acquisition_datetime": scan_start.isoformat(),
        "decay_reference_datetime": reference_dt.isoformat(),
        "uptake_time_s": (reference_dt - injection).total_seconds(),
        "half_life_s": half_life_s,
        "decayed_dose_bq": decayed_bq,
        "units": vendor.units,
        "activity_concentration_scale_factor": float(acsf_str) if acsf_str else None,
        "suvbw_factor": suvbw,
        "sul_factor": lbm_kg * 1000.0 / decayed_bq * pixel_scale,
        "suvbsa_factor": bsa_m2 * 1e4 / decayed_bq * pixel_scale,
        "suvibw_factor": ibw_kg * 1000.0 / decayed_bq * pixel_scale,
        "suvbw_factor_bqml": weight_g / decayed_bq,
        "liver_suv_mean": liver_suv,
        "blood_pool_suv": blood_suv,
        "liver_reference_centre_lps_mm": lps(landmarks.liver_reference_centre),
        "liver_reference_radius_mm": 15.0,
        "blood_pool_centre_lps_mm": lps(landmarks.blood_pool_centre),
        "aorta_radius_mm": landmarks.aorta_radius_mm,
        "ct_grid": grid_info(ct_grid),
        "pt_grid": grid_info(pt_grid),
        "lesions": les_truth,
    }
