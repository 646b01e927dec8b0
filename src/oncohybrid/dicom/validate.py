"""Structural checks on received or ingested DICOM headers that pydicom does not make.

Shared by the ingest and the PACS listener, so a file refused by one is refused by the
other with the same words. pydicom reads short Pixel Data and malformed UIDs without
complaint; these two checks are small enough that no library offers them.
"""

from __future__ import annotations

import re

from pydicom.dataset import Dataset

# PS3.5 §9.1: components of digits separated by '.', no leading zero in a component of
# more than one digit, at most 64 characters, no empty component.
_UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def is_valid_uid(uid: object) -> bool:
    """True when `uid` is a UID as PS3.5 §9.1 defines it.

    >>> is_valid_uid("1.2.840.10008.5.1.4.1.1.128")
    True
    >>> is_valid_uid("../../../x"), is_valid_uid(".."), is_valid_uid("1.02.3"), is_valid_uid("")
    (False, False, False, False)
    """
    return isinstance(uid, str) and 0 < len(uid) <= 64 and _UID_RE.match(uid) is not None


def expected_pixel_bytes(ds: Dataset) -> int | None:
    """Bytes native (uncompressed) Pixel Data must hold, or None when it cannot be said.

    PS3.5 §8.1.1 and PS3.3 C.7.6.3: Rows × Columns × Samples per Pixel × Number of Frames
    × Bits Allocated / 8 (bit-packed for Bits Allocated 1), before the even-length pad.

    >>> ds = Dataset(); ds.Rows = ds.Columns = 4; ds.BitsAllocated = 16
    >>> expected_pixel_bytes(ds)
    32
    """
    try:
        rows = int(ds.Rows)
        cols = int(ds.Columns)
        bits = int(ds.BitsAllocated)
        spp = int(ds.get("SamplesPerPixel", 1) or 1)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        return None
    if min(rows, cols, bits, spp, frames) <= 0:
        return None
    total_bits = rows * cols * spp * frames * bits
    return (total_bits + 7) // 8


def pixel_data_problem(ds: Dataset, available_bytes: int | None = None) -> str | None:
    """Describe why native Pixel Data is shorter than the image attributes imply, else None.

    `available_bytes` is the length of (7FE0,0010) *Pixel Data* when the caller knows it
    without loading the value (e.g. a header read with ``stop_before_pixels``); otherwise
    the element in `ds` is measured. Encapsulated (compressed) pixel data is not judged
    here: its length depends on the codec.

    >>> ds = Dataset(); ds.Rows = ds.Columns = 4; ds.BitsAllocated = 16
    >>> ds.PixelData = b"\\0" * 30
    >>> pixel_data_problem(ds).endswith("16 bits imply 32")
    True
    """
    expected = expected_pixel_bytes(ds)
    if expected is None:
        return None
    if available_bytes is None:
        elem = ds.get((0x7FE0, 0x0010))
        if elem is None:
            return None
        if getattr(elem, "is_undefined_length", False):
            return None  # encapsulated
        value = elem.value
        if not isinstance(value, bytes | bytearray):
            return None
        available_bytes = len(value)
    if available_bytes >= expected:
        return None
    return (
        f"Pixel Data (7FE0,0010) holds {available_bytes} bytes; Rows {int(ds.Rows)} x "
        f"Columns {int(ds.Columns)} x Samples {int(ds.get('SamplesPerPixel', 1) or 1)} x "
        f"Frames {int(ds.get('NumberOfFrames', 1) or 1)} x {int(ds.BitsAllocated)} bits "
        f"imply {expected}"
    )
