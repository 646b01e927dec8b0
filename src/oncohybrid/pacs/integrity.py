"""Check that an encoded dataset received over the network is structurally complete.

pydicom reads a truncated stream without complaint (a short final value is returned
as is), so a sender that transmits a cut-off dataset in a formally complete C-STORE
would otherwise get an acknowledgement for an instance we cannot use. No library
offers this check, so it is written here: a walk over the data elements of PS3.5
§7.1 (explicit VR: 2- or 4-byte lengths per Table 7.1-1/7.1-2; implicit VR: 4-byte
lengths) including undefined-length sequences, items and encapsulated pixel data
(PS3.5 §7.5, Annex A.4), verifying that every declared length fits into the bytes
received and that every undefined length is closed by its delimiter.

:func:`read_header` makes the same walk and also returns the few top-level attributes the
listener's receipt checks need (:mod:`oncohybrid.pacs.receipt`), read from the encoded
bytes, so a received instance is walked once and never decoded by pydicom.
"""

from __future__ import annotations

import functools
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from pydicom.uid import UID
from pydicom.valuerep import STANDARD_VR

from oncohybrid.dicom.header_record import PIXEL_DATA_TAGS, RECORD_TAGS

_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_DELIM = 0xFFFEE00D
_SEQ_DELIM = 0xFFFEE0DD
# VRs with a 2-byte reserved field and a 4-byte length in explicit VR (PS3.5 Table 7.1-1)
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_MAX_DEPTH = 64
_PIXEL_DATA = 0x7FE00010
# SOP Class/Instance UID, Modality, Samples per Pixel, Number of Frames, Rows, Columns,
# Bits Allocated, Pixel Data: what the receipt checks of the listener read
_HEADER_TAGS = frozenset({
    0x00080016, 0x00080018, 0x00080060, 0x00280002, 0x00280008, 0x00280010, 0x00280011,
    0x00280100, _PIXEL_DATA,
})
#: What else the walk notes at the top level for the index record built in the receiver
#: (:mod:`oncohybrid.pacs.header_values`): the ingest record's attributes, (0008,0005)
#: Specific Character Set, (0054,0016) Radiopharmaceutical Information Sequence and the
#: float/double Pixel Data elements.
_FOUND_TAGS = _HEADER_TAGS | frozenset(RECORD_TAGS) | {
    0x00080005, 0x00540016, *PIXEL_DATA_TAGS,
}
#: The VRs of PS3.5 Table 6.2-1; pydicom reads any other explicit VR differently from
#: this walk (as implicit VR, or with a 2-byte length), so the walk notes it.
_STANDARD_VRS = frozenset(str(vr).encode() for vr in STANDARD_VR)
#: Keys of ``found`` that are not tags (tags are below 2**32).
ODD = 1 << 32  # an element the index record is not built from the walk for
UNDEFINED = (1 << 32) + 1  # top-level undefined lengths: [(tag, vr, value position)]
_US_TAGS = frozenset({0x00280002, 0x00280010, 0x00280011, 0x00280100})  # VR US, 2 bytes


class IncompleteDataset(ValueError):
    """The encoded dataset ends before its declared content does."""


def _walk(
    buf: bytes, pos: int, end: int, implicit: bool, little: bool, delimiter: int | None,
    depth: int, found: dict[int, Any] | None = None,
) -> int:
    if depth > _MAX_DEPTH:
        raise IncompleteDataset("sequences nested too deeply")
    hh = "<HH" if little else ">HH"
    ii = "<I" if little else ">I"
    hs = "<H" if little else ">H"
    last = -1  # top level (found): the previous tag, to note elements out of order
    while pos < end:
        if pos + 8 > end:
            raise IncompleteDataset(f"element header cut off at byte {pos}")
        group, elem = struct.unpack_from(hh, buf, pos)
        tag = (group << 16) | elem
        vr = None
        if group == 0xFFFE:  # items and delimiters: tag + 4-byte length, no VR
            (length,) = struct.unpack_from(ii, buf, pos + 4)
            pos += 8
            if tag == delimiter:
                return pos
            if tag != _ITEM:
                raise IncompleteDataset(f"unexpected delimiter ({group:04X},{elem:04X})")
            if found is not None:
                found[ODD] = f"item at the top level, byte {pos - 8}"
            if length == _UNDEFINED:
                pos = _walk(buf, pos, end, implicit, little, _ITEM_DELIM, depth + 1)
                continue
        elif implicit:
            (length,) = struct.unpack_from(ii, buf, pos + 4)
            pos += 8
        else:
            vr = buf[pos + 4 : pos + 6]
            if vr in _LONG_VRS:
                if pos + 12 > end:
                    raise IncompleteDataset(f"element header cut off at byte {pos}")
                (length,) = struct.unpack_from(ii, buf, pos + 8)
                pos += 12
            else:
                (length,) = struct.unpack_from(hs, buf, pos + 6)
                pos += 8
        if found is not None:
            # pydicom's reading of these differs from this walk's, or from the order
            # ingest relies on (PS3.5 §7.1: ascending tags, no command/meta groups)
            if tag <= last or group < 0x0008 or (vr is not None and vr not in _STANDARD_VRS):
                found.setdefault(ODD, f"element ({group:04X},{elem:04X}) at byte {pos}")
            last = tag
            if tag in _FOUND_TAGS:
                found[tag] = (pos, length, vr)
            if length == _UNDEFINED:
                found.setdefault(UNDEFINED, []).append((tag, vr, pos))
        if length == _UNDEFINED:
            # undefined-length SQ/UN or encapsulated pixel data: items up to (FFFE,E0DD)
            pos = _walk(buf, pos, end, implicit, little, _SEQ_DELIM, depth + 1)
            continue
        if pos + length > end:
            raise IncompleteDataset(
                f"element ({group:04X},{elem:04X}) declares {length} bytes, "
                f"{end - pos} received"
            )
        pos += length
    if delimiter is not None:
        raise IncompleteDataset("undefined-length sequence or item is not closed")
    return pos


@dataclass(frozen=True)
class ReceivedHeader:
    """Top-level attributes of a received data set that the receipt checks need.

    Values are read from the encoded bytes during the completeness walk (no pydicom
    decoding); ``pixel_data_bytes`` is the declared length of (7FE0,0010) *Pixel Data*,
    None when absent or of undefined length (encapsulated, PS3.5 §A.4).
    """

    sop_class_uid: str | None
    sop_instance_uid: str | None
    modality: str | None
    rows: int | None
    columns: int | None
    bits_allocated: int | None
    samples_per_pixel: int | None
    number_of_frames: str | None
    pixel_data_bytes: int | None


def read_header(
    data: bytes, transfer_syntax: str | UID, found: dict[int, Any] | None = None
) -> ReceivedHeader:
    """Check that `data` (a data set without file meta) is whole and read its key attributes.

    Raises :class:`IncompleteDataset` as :func:`check_complete` does. A `found` dict is
    filled with what the walk noted at the top level: ``tag: (value position, length,
    explicit VR or None)`` for the receipt's and the index record's attributes, and the
    :data:`ODD` and :data:`UNDEFINED` notes (:mod:`oncohybrid.pacs.header_values`).
    """
    if found is None:
        found = {}
    buf = _checked(data, transfer_syntax, found)
    order = "little" if _encoding(str(transfer_syntax))[1] else "big"
    texts: dict[int, str] = {}
    shorts: dict[int, int] = {}
    for tag in _HEADER_TAGS.intersection(found):
        pos, length, _vr = found[tag]
        if length == _UNDEFINED or tag == _PIXEL_DATA:
            continue
        if tag in _US_TAGS:
            if length >= 2:
                shorts[tag] = int.from_bytes(buf[pos : pos + 2], order)
        else:
            texts[tag] = buf[pos : pos + length].decode("ascii", "replace").strip("\x00 ")
    pixels = found.get(_PIXEL_DATA)
    return ReceivedHeader(
        sop_class_uid=texts.get(0x00080016),
        sop_instance_uid=texts.get(0x00080018),
        modality=texts.get(0x00080060),
        rows=shorts.get(0x00280010),
        columns=shorts.get(0x00280011),
        bits_allocated=shorts.get(0x00280100),
        samples_per_pixel=shorts.get(0x00280002),
        number_of_frames=texts.get(0x00280008),
        pixel_data_bytes=None if pixels is None or pixels[1] == _UNDEFINED else pixels[1],
    )


def check_complete(data: bytes, transfer_syntax: str | UID) -> None:
    """Raise :class:`IncompleteDataset` unless `data` (a dataset without file meta) is whole.

    >>> check_complete(b"\\x10\\x00\\x20\\x00\\x04\\x00\\x00\\x00ABCD", "1.2.840.10008.1.2")
    >>> check_complete(b"\\x10\\x00\\x20\\x00\\x08\\x00\\x00\\x00ABCD", "1.2.840.10008.1.2")
    ... # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ...
    oncohybrid.pacs.integrity.IncompleteDataset: element (0010,0020) declares 8 bytes, 4 received
    """
    _checked(data, transfer_syntax, None)


def _checked(
    data: bytes, transfer_syntax: str | UID, found: dict[int, Any] | None
) -> bytes:
    """The walked (inflated, for deflate) bytes of `data`; IncompleteDataset if cut short."""
    if _is_deflated(str(transfer_syntax)):
        try:
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            data = inflater.decompress(data) + inflater.flush()
        except zlib.error as exc:
            raise IncompleteDataset(f"deflated dataset cannot be inflated: {exc}") from exc
        if not inflater.eof:
            raise IncompleteDataset("deflated dataset stream is cut off")
    implicit, little = _encoding(str(transfer_syntax))
    buf = bytes(data)
    _walk(buf, 0, len(buf), implicit, little, None, 0, found)
    return buf


@functools.lru_cache(maxsize=64)
def _is_deflated(transfer_syntax: str) -> bool:
    return UID(transfer_syntax).is_deflated


@functools.lru_cache(maxsize=64)
def _encoding(transfer_syntax: str) -> tuple[bool, bool]:
    """(implicit VR, little endian) of a transfer syntax; unknown ones read as explicit LE."""
    ts = UID(transfer_syntax)
    if not ts.is_transfer_syntax:
        return False, True
    return ts.is_implicit_VR, ts.is_little_endian
