"""Write phantom volumes as legacy DICOM CT and PET series (pydicom).

CT: CT Image Storage (PS3.3 A.3), unsigned 16-bit stored values with (0028,1053)
*Rescale Slope* 1 and (0028,1052) *Rescale Intercept* −1024 (HU).
PET: PET Image Storage (PS3.3 A.21), signed 16-bit with a per-slice Rescale Slope chosen
so that each slice's maximum uses the full int16 range (PS3.3 C.8.9.4.1.3), intercept 0;
PET Series (C.8.9.1), PET Isotope (C.8.9.2) and PET Image (C.8.9.4) attributes per slice.

Shared attributes are built once per series; per-slice attributes are added as new data
elements so slices never share mutable elements.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_dataset, write_file_meta_info
from pydicom.tag import BaseTag
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian
from pydicom.valuerep import format_number_as_ds

from oncohybrid.phantom.anatomy import AxialGrid

__all__ = ["CT_IMAGE_STORAGE", "PET_IMAGE_STORAGE", "ds_str", "write_series"]

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"


def ds_str(value: float) -> str:
    """Decimal String (PS3.5 6.2, ≤ 16 characters) with the most precision that fits."""
    return format_number_as_ds(float(value))


def _geometry(ds: Dataset, grid: AxialGrid) -> None:
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.PixelSpacing = [ds_str(grid.spacing_mm[1]), ds_str(grid.spacing_mm[2])]
    ds.SliceThickness = ds_str(grid.spacing_mm[0])
    ds.Rows, ds.Columns = grid.shape[1], grid.shape[2]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15


def _encode(items: Dataset | list) -> bytes:
    """Explicit VR little endian encoding of a dataset or of single data elements."""
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    if isinstance(items, Dataset):
        write_dataset(fp, items)
    else:
        for elem in items:
            write_data_element(fp, elem)
    return fp.getvalue()


class _SeriesEncoder:
    """Encodes the attributes shared by all slices once, as the byte runs between the
    per-slice tags, so each file costs only its own few elements (pydicom does all the
    encoding; this only avoids re-encoding ~80 identical elements per file)."""

    def __init__(self, shared: Dataset, per_slice_tags: list[BaseTag]) -> None:
        self.tags = sorted(set(per_slice_tags))
        chunks = [Dataset() for _ in range(len(self.tags) + 1)]
        for elem in shared:
            i = bisect.bisect_left(self.tags, elem.tag)
            if i < len(self.tags) and self.tags[i] == elem.tag:
                continue
            chunks[i].add(elem)
        self.runs = [_encode(chunk) for chunk in chunks]

    def body(self, per_slice: Dataset) -> bytes:
        parts = []
        for run, tag in zip(self.runs, self.tags, strict=False):
            parts.append(run)
            parts.append(_encode([per_slice[tag]]))
        parts.append(self.runs[-1])
        return b"".join(parts)


def write_series(
    directory: Path,
    *,
    grid: AxialGrid,
    shared: Dataset,
    sop_class_uid: str,
    slices: Callable[[int], tuple[bytes, dict[str, tuple[str, object]]]],
    uid: Callable[[int], str],
) -> list[Path]:
    """Write one file per slice. ``slices(k)`` returns the Pixel Data bytes of array slice
    ``k`` (increasing z) and extra per-slice ``{keyword: (VR, value)}``. Instance numbers
    run from the top (head) slice down, as scanners number them — not in array order."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("IM*.dcm"):  # an earlier run may have had more slices
        stale.unlink()
    nz = grid.shape[0]
    xs0, ys0, z0 = grid.origin_mm
    dz = grid.spacing_mm[0]
    x_str, y_str = ds_str(xs0), ds_str(ys0)
    shared = Dataset(shared)
    shared.SOPClassUID = sop_class_uid
    encoder: _SeriesEncoder | None = None
    paths = []
    for number in range(1, nz + 1):
        k = nz - number  # array slice index (0 = lowest z)
        z = z0 + k * dz
        ds = Dataset()
        sop_uid = uid(k)
        ds.add_new(0x00080018, "UI", sop_uid)
        ds.add_new(0x00200013, "IS", number)
        ds.add_new(0x00200032, "DS", [x_str, y_str, ds_str(z)])
        ds.add_new(0x00201041, "DS", ds_str(z))
        pixels, extra = slices(k)
        for keyword, (vr, value) in extra.items():
            ds.add_new(keyword, vr, value)
        ds.add_new(0x7FE00010, "OW", pixels)
        if encoder is None:
            encoder = _SeriesEncoder(shared, list(ds.keys()))
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class_uid
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = "ONCOHYBRID"
        head = DicomBytesIO()
        head.write(b"\x00" * 128 + b"DICM")
        write_file_meta_info(head, meta, enforce_standard=True)
        path = directory / f"IM{number:04d}.dcm"
        path.write_bytes(head.getvalue() + encoder.body(ds))
        paths.append(path)
    return paths


def ct_slices(hu: np.ndarray) -> Callable[[int], tuple[bytes, dict]]:
    """Stored = HU + 1024 as uint16 (Rescale Intercept −1024, Slope 1)."""
    stored = np.clip(np.rint(hu) + 1024.0, 0, 65535).astype("<u2")

    def get(k: int) -> tuple[bytes, dict]:
        return stored[k].tobytes(), {}

    return get


def pet_slices(values: np.ndarray, per_slice: Callable[[int], dict]
               ) -> Callable[[int], tuple[bytes, dict]]:
    """Signed int16 with a per-slice slope: slope = max / 32767 written as DS and read
    back, so stored × slope reproduces the value to int16 quantisation."""

    def get(k: int) -> tuple[bytes, dict]:
        plane = values[k]
        peak = float(plane.max())
        slope_str = ds_str(peak / 32767.0) if peak > 0 else "1"
        slope = float(slope_str)
        stored = np.clip(np.rint(plane / slope), -32768, 32767).astype("<i2")
        extra = {
            "RescaleSlope": ("DS", slope_str),
            "RescaleIntercept": ("DS", "0"),
            "LargestImagePixelValue": ("SS", int(stored.max())),
            "SmallestImagePixelValue": ("SS", int(stored.min())),
        }
        extra.update(per_slice(k))
        return stored.tobytes(), extra

    return get


def common_geometry(shared: Dataset, grid: AxialGrid) -> None:
    _geometry(shared, grid)
