"""The ingest index record of a received instance, built in the receiver from its bytes.

The receipt walk (:func:`oncohybrid.pacs.integrity.read_header`) already visits every
top-level element of a received data set and notes where the index record's attributes
are. From those positions the record is built here with the function ingest uses
(:func:`oncohybrid.dicom.header_record.record_from_values`), decoding only those values,
so that the listener's indexing need not parse the spooled file again (issue #11).

It must be exactly the record ingest would read from the spooled file
(``services.ingest.headers.read_header``: pydicom's ``read_dataset`` with
``specific_tags``). So it is built only for what both read alike - an Implicit or
Explicit VR Little Endian data set (PS3.5 §A.1, §A.2) of standard VRs (PS3.5 Table
6.2-1) in ascending tag order from group 0008 (PS3.5 §7.1), undefined lengths only for
sequences (PS3.5 §7.5.2) of plain items, header values below ingest's deferral size, a
character set decoded directly (ingest's ``FAST_CODECS``) - and only when ingest would
accept the instance. Anything else returns None: the listener's indexing then reads the
file, as before, and words any refusal itself.
"""

from __future__ import annotations

import functools
import io
import logging
import struct
import warnings
from collections.abc import Callable
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.filereader import read_dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from oncohybrid.dicom.header_record import (
    DEFER_SIZE,
    FAST_CODECS,
    PIXEL_DATA_TAGS,
    HeaderRecord,
    SkipFile,
    _text,
    is_image_storage,
    pixel_length_clear,
    record_from_values,
)
from oncohybrid.pacs.integrity import _STANDARD_VRS, ODD, UNDEFINED

log = logging.getLogger(__name__)

_UNDEFINED_LENGTH = 0xFFFFFFFF
_META_READ = 2048  # ingest's plain Part 10 reader reads the file meta from these bytes
_PLAIN = {ImplicitVRLittleEndian: True, ExplicitVRLittleEndian: False}
_RADIOPHARMACEUTICAL_SEQ = 0x00540016
_PIXEL_DATA_TAGS = PIXEL_DATA_TAGS
_ITEM, _ITEM_DELIM, _SEQ_DELIM = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_LONG_VRS = frozenset(
    (b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV")
)
_MAX_DEPTH = 64


class _Unusual(Exception):
    """Something this module does not read exactly as ingest does: leave it to ingest."""


def record_or_none(
    buf: bytes, found: dict[int, Any], transfer_syntax_uid: str, meta_size: int,
    file_size: int,
) -> HeaderRecord | None:
    """:func:`record_from_walk`, and None (ingest reads the file) should it fail: an
    instance already acknowledged is never lost to a fault here."""
    try:
        return record_from_walk(buf, found, transfer_syntax_uid, meta_size, file_size)
    except Exception:
        log.exception("building the index record of a received instance failed")
        return None


def record_from_walk(
    buf: bytes, found: dict[int, Any], transfer_syntax_uid: str, meta_size: int,
    file_size: int,
) -> HeaderRecord | None:
    """The record ingest's ``read_header`` gives for the spooled file, or None (unsure).

    `buf` is the received data set, `found` what :func:`~oncohybrid.pacs.integrity.
    read_header` noted while walking it, `transfer_syntax_uid` the one written to the
    spool file's meta, `meta_size` the bytes before the data set (preamble, prefix, meta)
    and `file_size` that file's size.
    """
    # as ingest reads it back from the file meta (ASCII, padding stripped)
    ts = transfer_syntax_uid.encode("ascii", "replace").decode("ascii").rstrip("\x00 ")
    implicit = _PLAIN.get(ts)  # type: ignore[call-overload]
    if implicit is None or ODD in found or meta_size + 2 > min(_META_READ, file_size):
        return None  # (ingest reads the meta from its first 2 KiB, then the data set)
    for tag, entry in found.items():
        if tag >= ODD or tag in _PIXEL_DATA_TAGS or tag == 0x00080005:
            continue
        if entry[1] != _UNDEFINED_LENGTH and entry[1] > DEFER_SIZE:
            return None  # deferred by ingest's reader: it reads such a file otherwise
    try:
        for tag, vr, pos in found.get(UNDEFINED, ()):
            if not _is_sequence(buf, tag, vr, pos, implicit):
                return None
            _items(buf, pos, len(buf), implicit, _UNDEFINED_LENGTH, 1)
        codec = _codec(buf, found, implicit)
        if codec is None:
            return None
        rec = record_from_values(
            _getter(buf, found, codec),
            missing=lambda tag: tag not in found,
            radiopharmaceutical=lambda: _radiopharmaceutical(buf, found, implicit),
            transfer_syntax_uid=ts,
        )
        if is_image_storage(rec.sop_class_uid) and not any(
            t in found for t in _PIXEL_DATA_TAGS
        ):
            return None  # ingest refuses it (no Pixel Data): its words, from the file
        pixels = found.get(0x7FE00010)
        if pixels is not None and pixels[1] != _UNDEFINED_LENGTH:

            def get_raw(tag: int) -> bytes | None:
                entry = found.get(tag)
                return None if entry is None else buf[entry[0] : entry[0] + entry[1]]

            if not pixel_length_clear(get_raw, pixels[1], True):
                return None  # judged (and maybe refused) by ingest
    except (SkipFile, _Unusual, struct.error, ValueError):
        return None
    rec.part10 = True
    rec.file_size = file_size
    return rec


def _getter(buf: bytes, found: dict[int, Any], codec: str) -> Callable[[int], Any]:
    def get(tag: int) -> str | None:
        entry = found.get(tag)
        if entry is None:
            return None
        pos, length, _vr = entry
        if length == _UNDEFINED_LENGTH or length > DEFER_SIZE:
            raise _Unusual  # a sequence, or a value ingest's reader defers
        if not length:
            return None  # what ingest makes of an empty value (None or "")
        return buf[pos : pos + length].decode(codec, "replace")

    return get


def _codec(buf: bytes, found: dict[int, Any], implicit: bool) -> str | None:
    """The codec ingest decodes raw values with (its ``_Values``), or None."""
    entry = found.get(0x00080005)
    if entry is None:
        return "latin-1"
    pos, length, vr = entry
    if length == _UNDEFINED_LENGTH:
        return None
    head = 8 if implicit or vr not in _LONG_VRS else 12
    return _codec_of(bytes(buf[pos - head : pos + length]), implicit)


@functools.lru_cache(maxsize=64)
def _codec_of(element: bytes, implicit: bool) -> str | None:
    # pydicom converts (0008,0005) as ingest's reader leaves it (the instances of one
    # sender share it: cached); ingest's _Values then picks the codec from its value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = read_dataset(io.BytesIO(element), implicit, True, specific_tags=[0x00080005])
            ds.set_original_encoding(implicit, True, ds._character_set)
            cs = ds.get_item(0x00080005)
        except Exception:
            return None
    if cs is None:
        return "latin-1"
    value = cs.value
    if isinstance(value, bytes):
        text = value.decode("latin-1").strip(" \x00")
    elif isinstance(value, str):
        text = value.strip()
    else:
        return None
    return FAST_CODECS.get(text)


def _is_sequence(buf: bytes, tag: int, vr: bytes | None, pos: int, implicit: bool) -> bool:
    """Whether pydicom reads this undefined-length element as a sequence, as the walk did."""
    if not implicit:
        return vr == b"SQ"
    try:
        return dictionary_VR(tag) == "SQ"
    except KeyError:  # a private tag: pydicom looks ahead for an item
        return int.from_bytes(buf[pos : pos + 2], "little") == 0xFFFE and int.from_bytes(
            buf[pos + 2 : pos + 4], "little"
        ) == 0xE000


def _items(
    buf: bytes, pos: int, end: int, implicit: bool, length: int, depth: int
) -> tuple[list[tuple[int, int]], int]:
    """The (value position, length) of each item of a sequence value at `pos` (PS3.5 §7.5),
    and the end of the value (after the delimiter of an undefined length).

    Raises :class:`_Unusual` unless every item, and every element in it down to the
    last nested sequence, is read by pydicom as it is here.
    """
    if depth > _MAX_DEPTH:
        raise _Unusual
    stop = end if length == _UNDEFINED_LENGTH else pos + length
    if stop > end:
        raise _Unusual
    items: list[tuple[int, int]] = []
    while pos < stop:
        if pos + 8 > stop:
            raise _Unusual
        tag = int.from_bytes(buf[pos : pos + 2], "little") << 16 | int.from_bytes(
            buf[pos + 2 : pos + 4], "little"
        )
        item_length = int.from_bytes(buf[pos + 4 : pos + 8], "little")
        pos += 8
        if tag == _SEQ_DELIM and length == _UNDEFINED_LENGTH:
            return items, pos
        if tag != _ITEM:
            raise _Unusual
        items.append((pos, item_length))
        pos = _elements(buf, pos, stop, implicit, item_length, depth)
    if length == _UNDEFINED_LENGTH or pos != stop:
        raise _Unusual
    return items, pos


def _elements(
    buf: bytes, pos: int, end: int, implicit: bool, length: int, depth: int,
    found: dict[int, tuple[int, int]] | None = None,
) -> int:
    """Walk the elements of one item; its end. Notes `found` tags (value position, length)."""
    stop = end if length == _UNDEFINED_LENGTH else pos + length
    if stop > end:
        raise _Unusual
    last = -1
    while pos < stop:
        if pos + 8 > stop:
            raise _Unusual
        group = int.from_bytes(buf[pos : pos + 2], "little")
        tag = group << 16 | int.from_bytes(buf[pos + 2 : pos + 4], "little")
        if tag == _ITEM_DELIM and length == _UNDEFINED_LENGTH:
            return pos + 8
        if group == 0xFFFE or tag <= last:
            raise _Unusual
        last = tag
        vr: bytes | None = None
        if implicit:
            value_length = int.from_bytes(buf[pos + 4 : pos + 8], "little")
            pos += 8
        else:
            vr = bytes(buf[pos + 4 : pos + 6])
            if vr not in _STANDARD_VRS:
                raise _Unusual
            if vr in _LONG_VRS:
                if buf[pos + 6 : pos + 8] != b"\x00\x00":
                    raise _Unusual
                value_length = int.from_bytes(buf[pos + 8 : pos + 12], "little")
                pos += 12
            else:
                value_length = int.from_bytes(buf[pos + 6 : pos + 8], "little")
                pos += 8
        if value_length == _UNDEFINED_LENGTH:
            if not _is_sequence(buf, tag, vr, pos, implicit):
                raise _Unusual
            after = _items(buf, pos, stop, implicit, _UNDEFINED_LENGTH, depth + 1)[1]
            if found is not None and tag in _ITEM_TAGS:
                found[tag] = (pos, _UNDEFINED_LENGTH)
            pos = after
            continue
        if pos + value_length > stop:
            raise _Unusual
        if found is not None and tag in _ITEM_TAGS:
            found[tag] = (pos, value_length)
        pos += value_length
    if length == _UNDEFINED_LENGTH or pos != stop:
        raise _Unusual
    return pos


#: Read inside the first item of (0054,0016) and of its (0054,0304) Radiopharmaceutical
#: Code Sequence: (0018,0031) Radiopharmaceutical, (0008,0104) Code Meaning; (0008,0005)
#: in an item would change how ingest decodes the item.
_ITEM_TAGS = frozenset({0x00180031, 0x00540304, 0x00080104, 0x00080005})


def _first_item(
    buf: bytes, pos: int, length: int, implicit: bool, depth: int
) -> dict[int, tuple[int, int]] | None:
    """The noted elements of a sequence's first item; None for an empty sequence."""
    items = _items(buf, pos, len(buf), implicit, length, depth)[0]
    if not items:
        return None
    start, item_length = items[0]
    found: dict[int, tuple[int, int]] = {}
    _elements(buf, start, len(buf), implicit, item_length, depth, found)
    if 0x00080005 in found:
        raise _Unusual
    return found


def _item_text(buf: bytes, entry: tuple[int, int] | None) -> str | None:
    # ingest decodes item values as Latin-1 (its _Values of an item without (0008,0005))
    if entry is None:
        return None
    pos, length = entry
    if length == _UNDEFINED_LENGTH or length > DEFER_SIZE:
        raise _Unusual
    return buf[pos : pos + length].decode("latin-1", "replace") if length else None


def _radiopharmaceutical(buf: bytes, found: dict[int, Any], implicit: bool) -> str | None:
    """(0018,0031) *Radiopharmaceutical*, else the code meaning of (0054,0304) (as ingest)."""
    entry = found.get(_RADIOPHARMACEUTICAL_SEQ)
    if entry is None:
        return None
    pos, length, vr = entry
    if vr is not None and vr != b"SQ":
        raise _Unusual
    item = _first_item(buf, pos, length, implicit, 1)
    if item is None:
        return None
    name = _text(_item_text(buf, item.get(0x00180031)), 128)
    if name:
        return name
    codes = item.get(0x00540304)
    if codes is None:
        return None
    code = _first_item(buf, codes[0], codes[1], implicit, 2)
    if code is None:
        return None
    return _text(_item_text(buf, code.get(0x00080104)), 128)
