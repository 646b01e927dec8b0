"""Synthetic single-frame and enhanced multi-frame series with known geometry."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"


def _base(modality: str, sop_class: str, series_uid: str, for_uid: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.Modality = modality
    ds.PatientID = "TEST"
    ds.StudyInstanceUID = "1.2.3.4"
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = for_uid
    ds.SeriesNumber = 7
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    return ds


def build_series(
    *,
    n: int = 12,
    rows: int = 20,
    cols: int = 24,
    iop: Sequence[float] = (1, 0, 0, 0, 1, 0),
    pixel_spacing: Sequence[float] = (0.8, 0.9),
    dz: float = 2.5,
    origin: Sequence[float] = (-10.0, -12.0, 30.0),
    positions: np.ndarray | None = None,
    slopes: Sequence[float] | None = None,
    intercept: float = 0.0,
    shuffle: bool = True,
    modality: str = "CT",
    seed: int = 0,
) -> list[Dataset]:
    """Single-frame images; InstanceNumber is random when ``shuffle``."""
    rng = np.random.default_rng(seed)
    iop_a = np.asarray(iop, float)
    normal = np.cross(iop_a[:3], iop_a[3:])
    if positions is None:
        positions = np.asarray(origin, float) + np.outer(np.arange(n) * dz, normal)
    n = len(positions)
    series_uid, for_uid = generate_uid(), generate_uid()
    numbers = rng.permutation(n) + 1 if shuffle else np.arange(n) + 1
    out = []
    for i, pos in enumerate(positions):
        ds = _base(modality, CT_STORAGE, series_uid, for_uid)
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = int(numbers[i])
        ds.ImagePositionPatient = [f"{v:.6f}" for v in pos]
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in iop_a]
        ds.PixelSpacing = [str(v) for v in pixel_spacing]
        ds.SliceThickness = str(dz)
        ds.Rows, ds.Columns = rows, cols
        ds.RescaleSlope = f"{slopes[i]:.8g}" if slopes is not None else "1"
        ds.RescaleIntercept = str(intercept)
        pix = rng.integers(-2000, 30000, size=(rows, cols), dtype=np.int16)
        pix[0, 0] = i  # marks the true slice index
        ds.PixelData = pix.tobytes()
        out.append(ds)
    return out


def write_series(datasets: Sequence[Dataset], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, ds in enumerate(datasets):
        path = directory / f"im{k:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def build_enhanced(singles: Sequence[Dataset], *, shuffle_seed: int = 1) -> Dataset:
    """One enhanced CT holding the planes of ``singles`` in random frame order, with
    per-frame Plane Position and Pixel Value Transformation (PS3.3 C.7.6.16)."""
    rng = np.random.default_rng(shuffle_seed)
    order = rng.permutation(len(singles))
    first = singles[0]
    ds = _base(first.Modality, ENHANCED_CT_STORAGE, generate_uid(), first.FrameOfReferenceUID)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Rows, ds.Columns = first.Rows, first.Columns
    ds.NumberOfFrames = len(singles)
    shared = Dataset()
    orient = Dataset()
    orient.ImageOrientationPatient = first.ImageOrientationPatient
    shared.PlaneOrientationSequence = DicomSequence([orient])
    meas = Dataset()
    meas.PixelSpacing = first.PixelSpacing
    meas.SliceThickness = first.SliceThickness
    shared.PixelMeasuresSequence = DicomSequence([meas])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    per_frame = []
    data = []
    for i in order:
        src = singles[int(i)]
        fg = Dataset()
        pos = Dataset()
        pos.ImagePositionPatient = src.ImagePositionPatient
        fg.PlanePositionSequence = DicomSequence([pos])
        pvt = Dataset()
        pvt.RescaleSlope = src.RescaleSlope
        pvt.RescaleIntercept = src.RescaleIntercept
        pvt.RescaleType = "US"
        fg.PixelValueTransformationSequence = DicomSequence([pvt])
        per_frame.append(fg)
        data.append(src.PixelData)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    ds.PixelData = b"".join(data)
    return ds


@pytest.fixture
def series_factory() -> Callable[..., list[Dataset]]:
    return build_series


@pytest.fixture
def series_writer() -> Callable[[Sequence[Dataset], Path], list[Path]]:
    return write_series


@pytest.fixture
def enhanced_factory() -> Callable[..., Dataset]:
    return build_enhanced
