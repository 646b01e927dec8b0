"""Synthetic dual-source dual-energy CT phantom with known iodine inserts.

A water cylinder (0 HU at every spectrum) in air holds cylindrical rods of iodine solution
(known mg/ml) on a water or soft-tissue base (known water-equivalent density ``w``). Each
spectrum ``k`` has a known iodine contrast ``S_k`` (HU per mg/ml) so that, as in the
two-material model of ``oncohybrid.quant.dect`` (McCollough et al., Radiology
2015;276:637), ``HU_k = 1000 · (w − 1) + S_k · c`` plus Gaussian noise of a stated SD.

Written as two CT Image Storage series (PS3.3 A.3) of one study and frame of reference,
as a dual-source scanner exports them: tube A at the low kV (0018,0060) *KVP* and tube B
at the high kV with a tin filter ((0018,7050) *Filter Material* ``TIN``, "Sn" in the
series description), Siemens-style (0008,0008) *Image Type* with a ``DUAL`` token.

The default inserts (:data:`DEFAULT_INSERTS`) are split into a calibration set (written
to the inserts JSON of ``oncohybrid dect calibrate``) and a test set the calibration never
sees, plus an "aorta" and a "lesion" on soft tissue for NIC and VNC checks.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

__all__ = [
    "DEFAULT_INSERTS",
    "DectInsert",
    "DectPhantom",
    "SPECTRA",
    "write_dect_phantom",
]

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"

#: Spectrum pairs: (low kV, low tin, high kV, high tin) and the phantom's iodine contrast
#: in HU per mg/ml (values typical of a third-generation dual-source scanner).
SPECTRA: dict[str, tuple[float, bool, float, bool, float, float]] = {
    "80/Sn150": (80.0, False, 150.0, True, 39.0, 14.0),
    "100/Sn150": (100.0, False, 150.0, True, 30.5, 14.0),
}


@dataclass(frozen=True)
class DectInsert:
    """A cylindrical rod along z: centre (x, y) in LPS mm, radius, iodine, base density."""

    name: str
    centre_xy_mm: tuple[float, float]
    radius_mm: float
    iodine_mg_ml: float
    water_g_ml: float = 1.0
    role: str = "calibration"  # calibration | test | aorta | lesion

    @property
    def vnc_hu(self) -> float:
        return 1000.0 * (self.water_g_ml - 1.0)


def _ring(i: int, n: int, r: float) -> tuple[float, float]:
    a = 2 * np.pi * i / n
    return (round(float(r * np.cos(a)), 3), round(float(r * np.sin(a)), 3))


DEFAULT_INSERTS: tuple[DectInsert, ...] = tuple(
    [DectInsert(f"cal{c:g}", _ring(i, 5, 55.0), 10.0, c) for i, c in
     enumerate((0.0, 2.0, 5.0, 10.0, 15.0))]
    + [DectInsert(f"test{c:g}", _ring(i, 5, 28.0), 8.0, c, role="test") for i, c in
       enumerate((0.5, 1.0, 3.0, 7.5, 12.0))]
    + [DectInsert("aorta", (0.0, 0.0), 9.0, 12.0, 1.045, "aorta"),
       DectInsert("lesion", _ring(1, 10, 76.0), 7.0, 2.5, 1.040, "lesion")]
)


@dataclass(frozen=True)
class DectPhantom:
    """What was written: directories, spectra and the truth maps (z, y, x)."""

    low_dir: Path
    high_dir: Path
    kvp_low: float
    kvp_high: float
    iodine_low_hu_per_mg_ml: float
    iodine_high_hu_per_mg_ml: float
    inserts: tuple[DectInsert, ...]
    iodine_mg_ml: np.ndarray = field(repr=False)
    water_g_ml: np.ndarray = field(repr=False)
    inserts_json: Path | None = None


def _ds(v: float) -> str:
    from pydicom.valuerep import format_number_as_ds

    return format_number_as_ds(float(v))


def _write_ct(directory: Path, hu: np.ndarray, *, kvp: float, tin: bool, tube: str,
              study: dict[str, str], series_number: int, pixel_mm: float, slice_mm: float,
              origin: tuple[float, float, float]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    series_uid = generate_uid()
    nz, ny, nx = hu.shape
    stored = np.clip(np.rint(hu) + 1024.0, 0, 4095).astype("<u2")
    label = f"{'Sn' if tin else ''}{kvp:g}kV"
    for k in range(nz):
        sop = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
        meta.MediaStorageSOPInstanceUID = sop
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "CT_SOM5 SPI DUAL"]
        ds.SOPClassUID = CT_IMAGE_STORAGE
        ds.SOPInstanceUID = sop
        ds.StudyDate = study["date"]
        ds.SeriesDate = study["date"]
        ds.StudyTime = "101500"
        ds.SeriesTime = "101500"
        ds.AccessionNumber = ""
        ds.Modality = "CT"
        ds.Manufacturer = "SIEMENS"
        ds.ManufacturerModelName = "SOMATOM Force"
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = "DECT iodine phantom"
        ds.SeriesDescription = f"DE phantom 1.5 Qr40 {tube}_{label}"
        ds.PatientName = "DECT^PHANTOM"
        ds.PatientID = "DECT-PHANTOM"
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.BodyPartExamined = "ABDOMEN"
        ds.SliceThickness = _ds(slice_mm)
        ds.KVP = _ds(kvp)
        if tin:
            ds.FilterMaterial = "TIN"
        ds.ConvolutionKernel = "Qr40"
        ds.PatientPosition = "HFS"
        ds.StudyInstanceUID = study["study_uid"]
        ds.SeriesInstanceUID = series_uid
        ds.StudyID = "1"
        ds.SeriesNumber = series_number
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = k + 1
        z = origin[2] + k * slice_mm
        ds.ImagePositionPatient = [_ds(origin[0]), _ds(origin[1]), _ds(z)]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.FrameOfReferenceUID = study["for_uid"]
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = _ds(z)
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ny
        ds.Columns = nx
        ds.PixelSpacing = [_ds(pixel_mm), _ds(pixel_mm)]
        ds.BitsAllocated = 16
        ds.BitsStored = 12
        ds.HighBit = 11
        ds.PixelRepresentation = 0
        ds.WindowCenter = "40"
        ds.WindowWidth = "400"
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.PixelData = stored[k].tobytes()
        ds.save_as(directory / f"IM{k + 1:04d}.dcm", enforce_file_format=True)


def write_dect_phantom(directory: str | Path, *, spectra: str = "80/Sn150",
                       noise_hu: tuple[float, float] = (10.0, 8.0), seed: int = 0,
                       shape: tuple[int, int, int] = (4, 128, 128), pixel_mm: float = 1.5,
                       slice_mm: float = 3.0,
                       inserts: Sequence[DectInsert] = DEFAULT_INSERTS) -> DectPhantom:
    """Write ``LOW/`` and ``HIGH/`` CT series and ``inserts.json`` (the calibration
    inserts, in the format of ``oncohybrid dect calibrate --inserts``) under ``directory``.

    Example:
        >>> ph = write_dect_phantom(tmp_path, spectra="100/Sn150")  # doctest: +SKIP
        >>> ph.kvp_low, ph.kvp_high  # doctest: +SKIP
        (100.0, 150.0)
    """
    if spectra not in SPECTRA:
        raise ValueError(f"spectra must be one of {sorted(SPECTRA)}, got {spectra!r}")
    kv_lo, tin_lo, kv_hi, tin_hi, s_lo, s_hi = SPECTRA[spectra]
    out = Path(directory)
    nz, ny, nx = shape
    origin = (-(nx - 1) * pixel_mm / 2, -(ny - 1) * pixel_mm / 2, 0.0)
    x = origin[0] + pixel_mm * np.arange(nx)
    y = origin[1] + pixel_mm * np.arange(ny)
    yy, xx = np.meshgrid(y, x, indexing="ij")
    r_body = 0.45 * min(nx, ny) * pixel_mm
    water = np.where(xx**2 + yy**2 <= r_body**2, 1.0, 0.0)
    iodine = np.zeros_like(water)
    for ins in inserts:
        m = (xx - ins.centre_xy_mm[0]) ** 2 + (yy - ins.centre_xy_mm[1]) ** 2 <= ins.radius_mm**2
        water[m] = ins.water_g_ml
        iodine[m] = ins.iodine_mg_ml
    water3 = np.broadcast_to(water, shape).copy()
    iodine3 = np.broadcast_to(iodine, shape).copy()
    rng = np.random.default_rng(seed)
    base = 1000.0 * (water3 - 1.0)
    hu_lo = base + s_lo * iodine3 + rng.normal(0.0, noise_hu[0], shape)
    hu_hi = base + s_hi * iodine3 + rng.normal(0.0, noise_hu[1], shape)
    study = {"study_uid": generate_uid(), "for_uid": generate_uid(),
             "date": _dt.date(2026, 1, 15).strftime("%Y%m%d")}
    common = dict(study=study, pixel_mm=pixel_mm, slice_mm=slice_mm, origin=origin)
    _write_ct(out / "LOW", hu_lo, kvp=kv_lo, tin=tin_lo, tube="A", series_number=2, **common)
    _write_ct(out / "HIGH", hu_hi, kvp=kv_hi, tin=tin_hi, tube="B", series_number=3, **common)
    z_mid = origin[2] + (nz - 1) * slice_mm / 2
    cal = [{"name": i.name, "centre_lps_mm": [i.centre_xy_mm[0], i.centre_xy_mm[1], z_mid],
            "radius_mm": i.radius_mm - 2.0, "iodine_mg_ml": i.iodine_mg_ml}
           for i in inserts if i.role == "calibration"]
    inserts_json = out / "inserts.json"
    inserts_json.write_text(json.dumps({"inserts": cal}, indent=2))
    return DectPhantom(low_dir=out / "LOW", high_dir=out / "HIGH", kvp_low=kv_lo,
                       kvp_high=kv_hi, iodine_low_hu_per_mg_ml=s_lo,
                       iodine_high_hu_per_mg_ml=s_hi, inserts=tuple(inserts),
                       iodine_mg_ml=iodine3, water_g_ml=water3, inserts_json=inserts_json)
