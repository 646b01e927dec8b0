"""Synthetic NEMA NU 2 / IEC 61675-1 body phantom written as PET DICOM (issue #20).

Geometry (NEMA NU 2-2018 §7.2 "image quality phantom", IEC 61675-1 body phantom):

- six fillable spheres of inner diameter 10, 13, 17, 22, 28 and 37 mm, centres in one
  transaxial plane on a circle of 114.4 mm diameter, 60° apart, in order of size;
- a cylindrical lung insert of 50 mm outer diameter on the phantom axis through the centre
  of that circle, filled with low-density material and no activity;
- the body: a cross-section made of a half circle of radius 147 mm (anterior) and a
  rectangle 140 mm wide, 77 mm deep whose posterior corners are quarter circles of radius
  77 mm (224 mm × 294 mm overall, as in the NEMA drawing); the sphere circle lies 35 mm
  anterior of the half circle's centre so that the largest sphere is well inside. The
  phantom is longer than the field of view here (end walls are not imaged). Sphere walls
  (≈1 mm glass) are not modelled.

Image model: the activity distribution (background ``B`` everywhere in the body, ``A`` in
the spheres, 0 in the lung insert) convolved with a point-spread function and sampled at
the voxel centres, optionally with Gaussian noise. The PSF is the difference of two
isotropic Gaussians ``(1 + a)·G(σ₁) − a·G(σ₂)`` (σ₂ > σ₁, ``a ≥ 0``): with ``a = 0`` a
plain Gaussian; with ``a > 0`` its edge response overshoots the true concentration, as
resolution-modelling (PSF) reconstructions do (Gibbs-like edge artefacts; this is why
EARL2's RCmax bands for the large spheres lie above 1, Kaalep et al. EJNMMI Phys 2018).
A uniform sphere of radius ``R`` convolved with ``G(σ)`` is, at distance ``r`` from its
centre (closed form, e.g. Hoffman et al. J Comput Assist Tomogr 1979 for the 2-D case):

    f(r) = ½[erf((R−r)/(σ√2)) + erf((R+r)/(σ√2))]
           − σ/(r√(2π)) · [exp(−(R−r)²/2σ²) − exp(−(R+r)²/2σ²)]

so the spheres are exact; the body and lung insert (far from the spheres compared with
the PSF) are blurred numerically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid
from scipy import ndimage, special

from oncohybrid.errors import InputError
from oncohybrid.phantom.anatomy import AxialGrid
from oncohybrid.phantom.writer import (
    PET_IMAGE_STORAGE,
    common_geometry,
    ds_str,
    pet_slices,
    write_series,
)

__all__ = [
    "F18_HALF_LIFE_S",
    "LUNG_INSERT_RADIUS_MM",
    "RING_RADIUS_MM",
    "SPHERE_DIAMETERS_MM",
    "IECPhantom",
    "PSF",
    "ball_response",
    "write_cylinder_phantom",
    "write_iec_phantom",
]

#: Inner diameters of the six spheres (NEMA NU 2-2018 §7.2; IEC 61675-1).
SPHERE_DIAMETERS_MM: tuple[float, ...] = (10.0, 13.0, 17.0, 22.0, 28.0, 37.0)
#: Sphere centres lie on a circle of 114.4 mm diameter (NEMA NU 2-2018 §7.2).
RING_RADIUS_MM: float = 114.4 / 2.0
#: Lung insert: 50 mm outer diameter (NEMA NU 2-2018 §7.2).
LUNG_INSERT_RADIUS_MM: float = 25.0
#: F-18 half-life 109.77 min (NNDC / DDEP, 1.8288 h) in seconds.
F18_HALF_LIFE_S: float = 109.77 * 60.0
# Body cross-section (see module docstring).
_BODY_HALF_CIRCLE_MM = 147.0
_BODY_REAR_MM = 77.0
_BODY_HALF_WIDTH_FLAT_MM = 70.0
_RING_ANTERIOR_OF_BODY_CENTRE_MM = 35.0


@dataclass(frozen=True)
class PSF:
    """Isotropic point-spread function ``(1 + a)·G(σ₁) − a·G(σ₂)`` given by FWHMs (mm).

    ``overshoot`` = ``a``; 0 gives a plain Gaussian of ``fwhm_mm``."""

    fwhm_mm: float
    overshoot: float = 0.0
    wide_fwhm_mm: float = 0.0

    def __post_init__(self) -> None:
        if not self.fwhm_mm > 0:
            raise InputError(f"PSF fwhm_mm must be positive, got {self.fwhm_mm}")
        if self.overshoot < 0:
            raise InputError(f"PSF overshoot must be ≥ 0, got {self.overshoot}")
        if self.overshoot > 0 and not self.wide_fwhm_mm > self.fwhm_mm:
            raise InputError("PSF wide_fwhm_mm must exceed fwhm_mm when overshoot > 0, got "
                             f"{self.wide_fwhm_mm} ≤ {self.fwhm_mm}")

    def components(self) -> list[tuple[float, float]]:
        """(weight, σ mm) of each Gaussian; weights sum to 1."""
        s1 = self.fwhm_mm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        if self.overshoot == 0:
            return [(1.0, s1)]
        s2 = self.wide_fwhm_mm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        return [(1.0 + self.overshoot, s1), (-self.overshoot, s2)]

    def to_json(self) -> dict[str, float]:
        return {"fwhm_mm": self.fwhm_mm, "overshoot": self.overshoot,
                "wide_fwhm_mm": self.wide_fwhm_mm}


def ball_response(r_mm: np.ndarray, radius_mm: float, psf: PSF) -> np.ndarray:
    """A uniform ball of unit concentration and radius ``radius_mm`` convolved with ``psf``,
    at distances ``r_mm`` from its centre (closed form, module docstring)."""
    r = np.asarray(r_mm, dtype=np.float64)
    out = np.zeros_like(r)
    for w, s in psf.components():
        rr = np.maximum(r, 1e-9)
        k = s * math.sqrt(2.0)
        erf_part = 0.5 * (special.erf((radius_mm - rr) / k) + special.erf((radius_mm + rr) / k))
        gauss = (np.exp(-((radius_mm - rr) ** 2) / (2 * s * s))
                 - np.exp(-((radius_mm + rr) ** 2) / (2 * s * s)))
        val = erf_part - s / (rr * math.sqrt(2.0 * math.pi)) * gauss
        # r → 0 limit: erf(R/(σ√2)) − (2R/(σ√(2π))) exp(−R²/2σ²)
        at0 = (special.erf(radius_mm / k)
               - 2.0 * radius_mm / (s * math.sqrt(2.0 * math.pi))
               * math.exp(-radius_mm**2 / (2 * s * s)))
        out += w * np.where(r < 1e-6, at0, val)
    return out


@dataclass(frozen=True)
class IECPhantom:
    """What was written: geometry in LPS mm, activities and the image model."""

    directory: Path
    sphere_centres_lps_mm: dict[float, tuple[float, float, float]]
    ring_centre_lps_mm: tuple[float, float, float]
    sphere_bq_ml: float
    background_bq_ml: float
    psf: PSF
    spacing_mm: tuple[float, float, float]
    reference_time: datetime
    series_uid: str
    study_uid: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "spheres": [{"diameter_mm": d, "centre_lps_mm": list(c)}
                        for d, c in self.sphere_centres_lps_mm.items()],
            "ring_centre_lps_mm": list(self.ring_centre_lps_mm),
            "sphere_bq_ml": self.sphere_bq_ml,
            "background_bq_ml": self.background_bq_ml,
            "psf": self.psf.to_json(),
            "spacing_mm": list(self.spacing_mm),
            "reference_time": self.reference_time.isoformat(),
            "series_uid": self.series_uid,
            "study_uid": self.study_uid,
            **self.extra,
        }


def _body_mask_2d(x: np.ndarray, y: np.ndarray, cx: float, cy: float) -> np.ndarray:
    """Body cross-section indicator at LPS (x, y); (cx, cy) is the sphere-ring centre."""
    by = cy + _RING_ANTERIOR_OF_BODY_CENTRE_MM  # half-circle centre, posterior of the ring
    dx, dy = x - cx, y - by
    front = (dy <= 0) & (dx * dx + dy * dy <= _BODY_HALF_CIRCLE_MM**2)
    rear_band = (dy > 0) & (dy <= _BODY_REAR_MM)
    flat = rear_band & (np.abs(dx) <= _BODY_HALF_WIDTH_FLAT_MM)
    corner = rear_band & ((np.abs(dx) - _BODY_HALF_WIDTH_FLAT_MM) ** 2 + dy * dy
                          <= _BODY_REAR_MM**2)
    return front | flat | corner


def _fraction_2d(grid: AxialGrid, fn: Any, sub: int = 4) -> np.ndarray:
    """Fraction of each in-plane pixel inside the region ``fn(x, y)`` (sub × sub samples)."""
    xs, ys = grid.axis(0), grid.axis(1)
    dy, dx = grid.spacing_mm[1], grid.spacing_mm[2]
    offs = (np.arange(sub) + 0.5) / sub - 0.5
    acc = np.zeros((len(ys), len(xs)))
    for oy in offs:
        for ox in offs:
            yy, xx = np.meshgrid(ys + oy * dy, xs + ox * dx, indexing="ij")
            acc += fn(xx, yy)
    return acc / (sub * sub)


def _blur(volume: np.ndarray, grid: AxialGrid, psf: PSF) -> np.ndarray:
    out = np.zeros_like(volume)
    for w, s in psf.components():
        sig = [s / sp for sp in grid.spacing_mm]
        out += w * ndimage.gaussian_filter(volume, sig, mode="nearest", truncate=5.0)
    return out


def render_iec(grid: AxialGrid, *, ring_centre_mm: tuple[float, float, float],
               ring_angle_deg: float, clockwise: bool, sphere_bq_ml: float,
               background_bq_ml: float, psf: PSF
               ) -> tuple[np.ndarray, dict[float, tuple[float, float, float]]]:
    """The noise-free image (Bq/ml, array axes z, y, x) and the sphere centres (LPS mm)."""
    cx, cy, cz = ring_centre_mm
    body = _fraction_2d(grid, lambda x, y: _body_mask_2d(x, y, cx, cy))
    lung = _fraction_2d(grid, lambda x, y: (x - cx) ** 2 + (y - cy) ** 2
                        <= LUNG_INSERT_RADIUS_MM**2)
    nz = grid.shape[0]
    # Background everywhere in the body but the lung insert; the spheres are added
    # analytically as (A − B) × (ball ⊛ PSF).
    warm = np.broadcast_to((body - lung)[None], (nz, *body.shape)).astype(np.float64)
    image = background_bq_ml * _blur(np.ascontiguousarray(warm), grid, psf)
    zs, ys, xs = grid.axis(2), grid.axis(1), grid.axis(0)
    zz, yy, xx = np.meshgrid(zs, ys, xs, indexing="ij")
    sign = -1.0 if clockwise else 1.0
    centres: dict[float, tuple[float, float, float]] = {}
    for i, d in enumerate(SPHERE_DIAMETERS_MM):
        ang = math.radians(ring_angle_deg + sign * 60.0 * i)
        c = (cx + RING_RADIUS_MM * math.cos(ang), cy + RING_RADIUS_MM * math.sin(ang), cz)
        centres[d] = c
        r = np.sqrt((xx - c[0]) ** 2 + (yy - c[1]) ** 2 + (zz - c[2]) ** 2)
        near = r < d / 2.0 + 60.0
        image[near] += (sphere_bq_ml - background_bq_ml) * ball_response(r[near], d / 2.0, psf)
    return image, centres


def write_iec_phantom(
    out: str | Path,
    *,
    sphere_bq_ml: float = 20000.0,
    background_bq_ml: float = 2000.0,
    voxel_mm: Sequence[float] = (4.0, 4.0, 4.0),
    psf: PSF = PSF(6.0),
    matrix: int | None = None,
    axial_fov_mm: float = 100.0,
    ring_centre_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ring_angle_deg: float = 0.0,
    clockwise: bool = False,
    noise_cv: float = 0.0,
    seed: int = 0,
    reference_time: datetime = datetime(2026, 11, 2, 8, 0, 0),
    manufacturer: str = "Oncohybrid Phantom Systems",
    model: str = "PhantomPET 1",
    station: str = "PHANTOM-PET1",
    serial: str | None = "PP1-0001",
    software: Sequence[str] = ("PP 1.0",),
    reconstruction: str = "OSEM 3i 21s",
    convolution_kernel: str | None = "GAUSSIAN 6.0mm",
    series_description: str = "IEC NEMA IQ",
    uid_seed: str = "",
) -> IECPhantom:
    """Write the IEC body phantom as a PET Image Storage series in ``out`` (Units BQML,
    Decay Correction START at ``reference_time``, F-18) and return its ground truth.

    ``voxel_mm`` is (slice, row, column); the in-plane matrix covers 320 mm by default;
    ``noise_cv`` adds white Gaussian noise of SD ``noise_cv × B`` (seeded)."""
    dz, dy, dx = (float(v) for v in voxel_mm)
    if min(dz, dy, dx) <= 0:
        raise InputError(f"voxel_mm must be positive, got {tuple(voxel_mm)}")
    if not (sphere_bq_ml > 0 and background_bq_ml >= 0):
        raise InputError("sphere activity must be positive and background activity ≥ 0")
    n = matrix or int(math.ceil(320.0 / dx))
    nz = int(math.ceil(axial_fov_mm / dz)) + 1
    cx, cy, cz = ring_centre_mm
    # The phantom body is centred in the field of view (ring 35 mm anterior of the
    # body's centre of symmetry ≈ 0 mm in y).
    origin = (cx - (n - 1) / 2.0 * dx, cy - (n - 1) / 2.0 * dy, cz - (nz - 1) / 2.0 * dz + 0.3 * dz)
    grid = AxialGrid((nz, n, n), (dz, dy, dx), origin)
    image, centres = render_iec(grid, ring_centre_mm=ring_centre_mm,
                                ring_angle_deg=ring_angle_deg, clockwise=clockwise,
                                sphere_bq_ml=sphere_bq_ml, background_bq_ml=background_bq_ml,
                                psf=psf)
    if noise_cv > 0:
        rng = np.random.default_rng(seed)
        image = image + rng.normal(0.0, noise_cv * background_bq_ml, image.shape)
    image = np.maximum(image, 0.0).astype(np.float32)

    study_uid, series_uid = _write_pet(
        Path(out), image, grid, reference_time=reference_time, manufacturer=manufacturer,
        model=model, station=station, serial=serial, software=software,
        reconstruction=reconstruction, convolution_kernel=convolution_kernel,
        series_description=series_description, study_description="QC NEMA IEC BODY PHANTOM",
        total_bq=background_bq_ml * 9700.0, uid_seed=f"iec|{uid_seed}|{voxel_mm}|{psf}")
    directory = Path(out)
    return IECPhantom(
        directory=directory, sphere_centres_lps_mm=centres,
        ring_centre_lps_mm=(float(cx), float(cy), float(cz)), sphere_bq_ml=sphere_bq_ml,
        background_bq_ml=background_bq_ml, psf=psf, spacing_mm=(dz, dy, dx),
        reference_time=reference_time, series_uid=series_uid, study_uid=study_uid,
        extra={"grid_origin_mm": list(origin), "grid_shape": list(grid.shape)},
    )


#: Uniform cylinder for cross-calibration: 200 mm inner diameter, 200 mm long (the
#: NEMA NU 2 / EARL calibration cylinder size; ~6.3 l).
CYLINDER_DIAMETER_MM: float = 200.0
CYLINDER_LENGTH_MM: float = 200.0


def write_cylinder_phantom(
    out: str | Path,
    *,
    activity_bq_ml: float = 5000.0,
    calibration_error: float = 0.0,
    voxel_mm: Sequence[float] = (4.0, 4.0, 4.0),
    psf: PSF = PSF(6.0),
    noise_cv: float = 0.0,
    seed: int = 0,
    reference_time: datetime = datetime(2026, 11, 2, 8, 0, 0),
    manufacturer: str = "Oncohybrid Phantom Systems",
    model: str = "PhantomPET 1",
    station: str = "PHANTOM-PET1",
    serial: str | None = "PP1-0001",
    software: Sequence[str] = ("PP 1.0",),
    reconstruction: str = "OSEM 3i 21s",
    convolution_kernel: str | None = "GAUSSIAN 6.0mm",
) -> dict[str, Any]:
    """Write a uniform cylinder of ``activity_bq_ml`` (true, at ``reference_time``) whose
    PET values are off by ``calibration_error`` (0.05: the scanner reads 5 % high), as a
    PET series; returns the ground truth."""
    dz, dy, dx = (float(v) for v in voxel_mm)
    if min(dz, dy, dx) <= 0 or not activity_bq_ml > 0:
        raise InputError("voxel_mm and activity_bq_ml must be positive")
    n = int(math.ceil(280.0 / dx))
    nz = int(math.ceil((CYLINDER_LENGTH_MM + 60.0) / dz)) + 1
    origin = (-(n - 1) / 2.0 * dx, -(n - 1) / 2.0 * dy, -(nz - 1) / 2.0 * dz)
    grid = AxialGrid((nz, n, n), (dz, dy, dx), origin)
    r = CYLINDER_DIAMETER_MM / 2.0
    disk = _fraction_2d(grid, lambda x, y: x * x + y * y <= r * r)
    zs = grid.axis(2)
    inside_z = (np.abs(zs) <= CYLINDER_LENGTH_MM / 2.0).astype(np.float64)
    vol = inside_z[:, None, None] * disk[None]
    image = activity_bq_ml * (1.0 + calibration_error) * _blur(vol, grid, psf)
    if noise_cv > 0:
        rng = np.random.default_rng(seed)
        image = image + rng.normal(0.0, noise_cv * activity_bq_ml, image.shape) * (vol > 0.5)
    image = np.maximum(image, 0.0).astype(np.float32)
    volume_ml = math.pi * r * r * CYLINDER_LENGTH_MM / 1000.0
    study_uid, series_uid = _write_pet(
        Path(out), image, grid, reference_time=reference_time, manufacturer=manufacturer,
        model=model, station=station, serial=serial, software=software,
        reconstruction=reconstruction, convolution_kernel=convolution_kernel,
        series_description="CALIBRATION CYLINDER", study_description="QC UNIFORM CYLINDER",
        total_bq=activity_bq_ml * volume_ml,
        uid_seed=f"cyl|{activity_bq_ml}|{calibration_error}|{voxel_mm}|{psf}")
    return {"directory": str(out), "activity_bq_ml": activity_bq_ml,
            "calibration_error": calibration_error, "volume_ml": volume_ml,
            "reference_time": reference_time.isoformat(), "series_uid": series_uid,
            "study_uid": study_uid}


def _write_pet(out: Path, image: np.ndarray, grid: AxialGrid, *, reference_time: datetime,
               manufacturer: str, model: str, station: str, serial: str | None,
               software: Sequence[str], reconstruction: str, convolution_kernel: str | None,
               series_description: str, study_description: str, total_bq: float,
               uid_seed: str) -> tuple[str, str]:
    """Write ``image`` (Bq/ml) as a PET Image Storage series of a QC phantom: Units BQML,
    Decay Correction START at ``reference_time``, F-18 injected one hour before."""
    entropy = f"{uid_seed}|{serial}|{reference_time.isoformat()}"

    def uid(*parts: object) -> str:
        return generate_uid(entropy_srcs=[entropy, *map(str, parts)])

    study_uid, series_uid = uid("study"), uid("series")
    half = F18_HALF_LIFE_S
    injection = reference_time - timedelta(minutes=60)
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.Modality = "PT"
    ds.Manufacturer = manufacturer
    ds.ManufacturerModelName = model
    ds.StationName = station
    if serial:
        ds.DeviceSerialNumber = serial
    ds.SoftwareVersions = list(software) if len(software) > 1 else software[0]
    ds.InstitutionName = "Oncohybrid Phantom Hospital"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = reference_time.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = reference_time.strftime("%H%M%S")
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = study_description
    ds.SeriesDescription = series_description
    ds.PatientName = "QC^IEC-PHANTOM"
    ds.PatientID = f"QC-{serial or station}"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.PatientWeight = "9.7"  # background volume ≈ 9.7 l
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.AcquisitionNumber = 1
    ds.FrameOfReferenceUID = uid("for")
    ds.PositionReferenceIndicator = ""
    ds.PixelRepresentation = 1
    ds.Units = "BQML"
    ds.CountsSource = "EMISSION"
    ds.SeriesType = ["STATIC", "IMAGE"]
    ds.DecayCorrection = "START"
    ds.CorrectedImage = ["DECY", "ATTN", "SCAT", "DTIM", "RAN", "NORM", "DCAL"]
    ds.ReconstructionMethod = reconstruction
    if convolution_kernel:
        ds.ConvolutionKernel = convolution_kernel
    ds.AttenuationCorrectionMethod = "CT-based"
    ds.ScatterCorrectionMethod = "Model-based"
    ds.RandomsCorrectionMethod = "DLYD"
    ds.NumberOfSlices = nz = grid.shape[0]
    radio = Dataset()
    radio.Radiopharmaceutical = "Fluorodeoxyglucose"
    radio.RadiopharmaceuticalStartTime = injection.strftime("%H%M%S")
    radio.RadiopharmaceuticalStartDateTime = injection.strftime("%Y%m%d%H%M%S")
    radio.RadionuclideTotalDose = ds_str(total_bq * 2.0 ** (60 * 60 / half))
    radio.RadionuclideHalfLife = ds_str(half)
    radio.RadionuclidePositronFraction = "0.9673"
    nuclide = Dataset()
    nuclide.CodeValue, nuclide.CodingSchemeDesignator = "77004003", "SCT"
    nuclide.CodeMeaning = "^18^Fluorine"
    radio.RadionuclideCodeSequence = DicomSequence([nuclide])
    ds.RadiopharmaceuticalInformationSequence = DicomSequence([radio])
    common_geometry(ds, grid)

    def per_slice(k: int) -> dict:
        return {
            "AcquisitionDate": ("DA", reference_time.strftime("%Y%m%d")),
            "AcquisitionTime": ("TM", reference_time.strftime("%H%M%S")),
            "ImageIndex": ("US", nz - k),
            "FrameReferenceTime": ("DS", "0"),
            "ActualFrameDuration": ("IS", 600000),
            "DecayFactor": ("DS", "1"),
        }

    write_series(out, grid=grid, shared=ds, sop_class_uid=PET_IMAGE_STORAGE,
                 slices=pet_slices(image, per_slice), uid=lambda k: uid("sop", k))
    return study_uid, series_uid
