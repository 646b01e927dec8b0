"""Read Ultrasound Multi-frame cine loops (PS3.3 A.7) as grey levels with frame times.

Frame times (PS3.3 C.7.6.5 *Cine Module*):

- (0018,1065) *Frame Time Vector*: milliseconds, the first value 0 and each next value the
  interval from the previous frame (C.7.6.5.1.2), so the time of frame i is the cumulative
  sum; its length must equal (0028,0008) *Number of Frames*;
- otherwise (0018,1063) *Frame Time*: the constant interval in milliseconds.

The one named by (0028,0009) *Frame Increment Pointer* is used first when it is present.
Colour handling (C.7.6.3.1.2 *Photometric Interpretation*): MONOCHROME2 as stored,
MONOCHROME1 inverted, RGB and the YBR family (converted to RGB by pydicom) reduced to
luma ``0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601), the grey level of a grey-scale
contrast image stored in colour.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue

from oncohybrid.errors import DicomError

__all__ = ["US_MULTIFRAME_SOP_CLASSES", "CineError", "UsCine", "read_us_cine"]

US_MULTIFRAME_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.3.1": "Ultrasound Multi-frame Image Storage",
    "1.2.840.10008.5.1.4.1.1.3": "Ultrasound Multi-frame Image Storage (Retired)",
}

FRAME_TIME = 0x00181063
FRAME_TIME_VECTOR = 0x00181065


class CineError(DicomError):
    """A file that is not a usable ultrasound cine (names the attribute); exit code 2."""

    exit_code = 2


@dataclass(frozen=True)
class UsCine:
    """Grey levels (frames × rows × columns, float) and frame times of one cine loop."""

    path: Path
    grey: NDArray[np.float64]
    times_s: NDArray[np.float64]
    frame_time_source: str  # "frame_time_vector" | "frame_time"
    photometric: str
    max_grey: float  # 2**(Bits Stored) - 1
    sop_instance_uid: str

    @property
    def rows(self) -> int:
        return int(self.grey.shape[1])

    @property
    def columns(self) -> int:
        return int(self.grey.shape[2])


def _values(value: object) -> list[object]:
    """A data element value as a list (pydicom gives one value bare, several as a list)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return list(value)
    return [value]


def _times(ds: pydicom.Dataset, n: int, path: Path) -> tuple[NDArray[np.float64], str]:
    order = [FRAME_TIME_VECTOR, FRAME_TIME]
    if FRAME_TIME in _values(ds.get("FrameIncrementPointer")):
        order.reverse()
    for tag in order:
        if tag == FRAME_TIME_VECTOR and ds.get("FrameTimeVector") not in (None, ""):
            values = np.asarray([float(v) for v in _values(ds.FrameTimeVector)])
            if values.size != n:
                raise CineError(f"{path}: (0018,1065) Frame Time Vector has {values.size} "
                                f"values for {n} frames")
            if not np.all(np.isfinite(values)) or np.any(values[1:] <= 0):
                raise CineError(f"{path}: (0018,1065) Frame Time Vector has intervals that "
                                "are not positive")
            values[0] = 0.0  # the first value is defined as 0 (C.7.6.5.1.2)
            return np.cumsum(values) / 1000.0, "frame_time_vector"
        if tag == FRAME_TIME and ds.get("FrameTime") not in (None, ""):
            ft = float(ds.FrameTime)
            if not (ft > 0 and np.isfinite(ft)):
                raise CineError(f"{path}: (0018,1063) Frame Time must be positive, got {ft!r}")
            return np.arange(n) * ft / 1000.0, "frame_time"
    raise CineError(f"{path}: no frame timing: neither (0018,1065) Frame Time Vector nor "
                    "(0018,1063) Frame Time is present")


def read_us_cine(path: Path | str) -> UsCine:
    """The grey levels and frame times of an Ultrasound Multi-frame Image file."""
    p = Path(path)
    if not p.is_file():
        raise CineError(f"{p}: no such file")
    try:
        ds = pydicom.dcmread(p)
    except (InvalidDicomError, OSError, ValueError) as exc:
        raise CineError(f"{p}: not a readable DICOM file ({exc})") from None
    sop = str(ds.get("SOPClassUID", ""))
    if sop not in US_MULTIFRAME_SOP_CLASSES:
        raise CineError(f"{p}: (0008,0016) SOP Class UID {sop or '(absent)'} is not an "
                        "Ultrasound Multi-frame Image")
    n = int(ds.get("NumberOfFrames", 1) or 1)
    if n < 2:
        raise CineError(f"{p}: (0028,0008) Number of Frames is {n}; a time-intensity curve "
                        "needs a cine loop")
    if "PixelData" not in ds:
        raise CineError(f"{p}: no (7FE0,0010) Pixel Data")
    times, source = _times(ds, n, p)
    photometric = str(ds.get("PhotometricInterpretation", ""))
    try:
        arr = np.asarray(ds.pixel_array, dtype=np.float64)  # YBR_* arrives as RGB
    except Exception as exc:  # pixel decoders raise many types
        raise CineError(f"{p}: pixel data cannot be decoded ({exc})") from None
    bits = int(ds.get("BitsStored", 8))
    max_grey = float(2**bits - 1)
    if int(ds.get("SamplesPerPixel", 1)) == 3:
        arr = arr @ np.array([0.299, 0.587, 0.114])
    elif photometric == "MONOCHROME1":
        arr = max_grey - arr
    elif photometric not in ("MONOCHROME2", "PALETTE COLOR"):
        raise CineError(f"{p}: (0028,0004) Photometric Interpretation {photometric!r} is not "
                        "supported")
    if photometric == "PALETTE COLOR":
        raise CineError(f"{p}: (0028,0004) Photometric Interpretation PALETTE COLOR: a "
                        "colour-coded image has no echo-power grey scale")
    if arr.ndim != 3 or arr.shape[0] != n:
        raise CineError(f"{p}: pixel data of shape {arr.shape} does not hold {n} frames")
    return UsCine(p, arr, times, source, photometric, max_grey,
                  str(ds.get("SOPInstanceUID", "")))
