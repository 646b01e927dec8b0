"""Header reading and validation of one DICOM file (no database, no file store).

Each file is parsed with :func:`pydicom.dcmread` restricted to the attributes we index
(``specific_tags``) with large values deferred (``defer_size``), so pixel data is never
read; the (7FE0,0010) *Pixel Data* element header is still seen so truncation can be
detected (its value must end inside the file). A file is refused (:class:`SkipFile`,
with the reason) when it is not DICOM, is truncated, has short native Pixel Data, or
lacks one of the attributes every composite instance must carry to be placed in the
hierarchy (PS3.3 §C.12.1 SOP Common, §C.7.1.1 Patient, §C.7.2.1 General Study, §C.7.3.1
General Series); UIDs must follow PS3.5 §9.1.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Container
from typing import Any, BinaryIO

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_dataset
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

# the record and its decisions are pure, shared with the PACS listener's receivers (#11);
# re-exported here under their old names
from oncohybrid.dicom.header_record import (
    DEFER_SIZE,
    PIXEL_DATA_TAGS,
    REQUIRED_ATTRIBUTES,
    UID_LEN,
    HeaderRecord,
    SkipFile,
    _text,
    pixel_length_clear,
    record_from_values,
)
from oncohybrid.dicom.header_record import (
    FAST_CODECS as _FAST_CODECS,
)
from oncohybrid.dicom.header_record import (
    is_image_storage as _is_image_storage,
)
from oncohybrid.dicom.validate import is_valid_uid, pixel_data_problem

# DEFER_SIZE: values larger are not read from the file (pixel data); header values are
# far smaller, so they are always read (a deferred value cannot be re-read from a stream).
_UNDEFINED_LENGTH = 0xFFFFFFFF
_PIXEL_DATA_TAGS = PIXEL_DATA_TAGS
#: (0028,0002) Samples per Pixel, (0028,0008) Number of Frames, (0028,0010) Rows,
#: (0028,0011) Columns, (0028,0100) Bits Allocated (PS3.3 §C.7.6.3 Image Pixel).
_IMAGE_PIXEL_TAGS = (0x00280002, 0x00280008, 0x00280010, 0x00280011, 0x00280100)

#: Everything read from a file's header; all other elements are skipped unread.
HEADER_TAGS: list[int] = [
    0x00080016,  # SOP Class UID
    0x00080018,  # SOP Instance UID
    0x00080020,  # Study Date
    0x00080021,  # Series Date
    0x00080030,  # Study Time
    0x00080031,  # Series Time
    0x00080050,  # Accession Number
    0x00080060,  # Modality
    0x00080070,  # Manufacturer
    0x00081030,  # Study Description
    0x0008103E,  # Series Description
    0x00081090,  # Manufacturer's Model Name
    0x00100010,  # Patient's Name
    0x00100020,  # Patient ID
    0x00100021,  # Issuer of Patient ID
    0x00100030,  # Patient's Birth Date
    0x00100040,  # Patient's Sex
    0x00180015,  # Body Part Examined
    0x0020000D,  # Study Instance UID
    0x0020000E,  # Series Instance UID
    0x00200010,  # Study ID
    0x00200011,  # Series Number
    0x00200013,  # Instance Number
    0x00200052,  # Frame of Reference UID
    0x00540016,  # Radiopharmaceutical Information Sequence
    0x00541001,  # Units
    *_IMAGE_PIXEL_TAGS,  # to check the length of native Pixel Data
    *_PIXEL_DATA_TAGS,  # read (deferred) only to check the file is complete
]

#: HEADER_TAGS for pydicom's ``read_dataset`` as plain ints: pydicom tests each element's
#: tag against this set, and ``BaseTag`` members made every hit a Python-level ``__eq__`` (#11).
_SPECIFIC_TAGS = [int(Tag(t)) for t in HEADER_TAGS]


def _radiopharmaceutical(ds: Dataset) -> str | None:
    """(0018,0031) *Radiopharmaceutical*, else the code meaning of (0054,0304)."""
    seq = ds.get(0x00540016)
    if seq is None or not seq.value:
        return None
    item = seq.value[0]
    name = _text(_Values(item).get(0x00180031), 128)
    if name:
        return name
    codes = item.get(0x00540304)
    if codes is not None and codes.value:
        return _text(_Values(codes.value[0]).get(0x00080104), 128)
    return None


class _Values:
    """Reads indexed attributes as text, decoding raw bytes directly when possible.

    pydicom's element conversion (value validation, VR classes) costs more than reading
    the header itself; the database only needs the text, so for the common character
    sets the raw value bytes are decoded here, and pydicom converts the rest.
    """

    __slots__ = ("codec", "ds", "elems")

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        # The element dict itself: Dataset.get_item() costs a Tag() conversion per call,
        # which shows in the ingest rate; keys are int tags either way.
        self.elems = ds._dict
        cs = ds.get_item(0x00080005)
        if cs is None:
            self.codec: str | None = "latin-1"
        else:
            value = cs.value
            if isinstance(value, bytes):
                text = value.decode("latin-1").strip(" \x00")
            elif isinstance(value, str):
                text = value.strip()
            else:  # several values: code extensions
                text = "\\"
            self.codec = _FAST_CODECS.get(text)

    def get(self, tag: int) -> Any:
        elem = self.elems.get(tag)  # type: ignore[call-overload]
        if elem is None:
            return None
        value = elem.value
        if isinstance(elem, RawDataElement) and self.codec and isinstance(value, bytes):
            return value.decode(self.codec, "replace")
        try:
            return self.ds[tag].value
        except Exception:  # an undecodable or unreadable (deferred) value: not indexed
            return None


def record_from_dataset(
    ds: Dataset,
    *,
    transfer_syntax_uid: str | None = None,
    known_series: Container[str] = (),
) -> HeaderRecord:
    """Extract the indexed attributes; raise :class:`SkipFile` naming a missing one.

    For a series in ``known_series`` (already read in this run) only the required and
    instance-level attributes are extracted (``full=False``): the patient, study and
    series rows come from the series' first instance.
    """
    return record_from_values(
        _Values(ds).get,
        missing=lambda tag: ds.get_item(tag) is None,
        radiopharmaceutical=lambda: _radiopharmaceutical(ds),
        transfer_syntax_uid=transfer_syntax_uid,
        known_series=known_series,
    )


def _looks_like_raw_dataset(head: bytes) -> bool:
    """Whether a file without ``DICM`` starts like a bare dataset (PS3.5 §7.1).

    A raw dataset written without file meta starts with group 0002 (meta) or 0008
    (identification) encoded little endian; text, images and cut-off files do not.
    """
    if len(head) < 8:
        return False
    group = int.from_bytes(head[0:2], "little")
    return group in (0x0002, 0x0008)


def read_header(fp: BinaryIO, size: int, known_series: Container[str] = ()) -> HeaderRecord:
    """Read and validate the header of one DICOM file of ``size`` bytes from ``fp``.

    Raises :class:`SkipFile` with the reason when the file cannot be ingested. See
    :func:`record_from_dataset` for ``known_series``.
    """
    part10 = True
    fast_ts: str | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            try:
                fast = _read_plain_part10(fp)
                if fast is not None:
                    ds, fast_ts = fast
                else:
                    fp.seek(0)
                    ds = pydicom.dcmread(fp, defer_size=DEFER_SIZE, specific_tags=HEADER_TAGS)
            except InvalidDicomError:
                fp.seek(0)
                if not _looks_like_raw_dataset(fp.read(8)):
                    raise SkipFile(
                        "not a DICOM file: no 'DICM' prefix after the 128-byte preamble "
                        "(PS3.10 §7.1) and no dataset at the start"
                    ) from None
                fp.seek(0)
                part10 = False
                ds = pydicom.dcmread(
                    fp, force=True, defer_size=DEFER_SIZE, specific_tags=HEADER_TAGS
                )
        except SkipFile:
            raise
        except Exception as exc:  # pydicom raises many types on malformed input
            if _at_end(fp, size) or isinstance(exc, struct.error | EOFError):
                # an element header or value cut by the end of the file
                raise SkipFile(
                    f"truncated: the file ends inside an element after {size} bytes "
                    f"({type(exc).__name__}: {exc})"
                ) from None
            raise SkipFile(f"unreadable DICOM: {type(exc).__name__}: {exc}") from None
        end = fp.tell()
    for w in caught:
        msg = str(w.message)
        if "End of file" in msg or "EOF" in msg:
            raise SkipFile(f"truncated: {msg.split(' in file ')[0]}")
    _check_complete(ds, size, end)
    _check_pixel_length(ds)
    meta = getattr(ds, "file_meta", None)
    ts = fast_ts or (meta.get("TransferSyntaxUID") if meta is not None else None)
    if not part10 or ts is None:
        implicit = ds.original_encoding[0]
        ts = ImplicitVRLittleEndian if implicit in (True, None) else ExplicitVRLittleEndian
    try:
        rec = record_from_dataset(ds, transfer_syntax_uid=str(ts), known_series=known_series)
    except SkipFile as exc:
        if not part10:
            raise SkipFile(
                "not a DICOM file: no 'DICM' prefix (PS3.10 §7.1) and the bare dataset has "
                f"no usable header ({exc.reason})"
            ) from None
        cut = _cut_before(ds, exc.missing_tag, size, end)
        if cut is not None:
            raise SkipFile(cut) from None
        raise
    if _is_image_storage(rec.sop_class_uid) and not any(t in ds._dict for t in _PIXEL_DATA_TAGS):
        # Every image IOD has a Pixel Data module (PS3.3 §C.7.6.3): a file that ends
        # cleanly before it was cut at an element boundary.
        raise SkipFile(
            "truncated: image object without (7FE0,0010) Pixel Data (the file ends "
            f"after {size} bytes)"
        )
    rec.part10 = part10
    rec.file_size = size
    return rec


#: The transfer syntaxes of :func:`_read_plain_part10`: (transfer syntax, implicit VR).
_PLAIN_SYNTAXES = {ImplicitVRLittleEndian: True, ExplicitVRLittleEndian: False}
#: Explicit VRs with a 2-byte reserved field and a 4-byte length (PS3.5 §7.1.2).
_LONG_VRS = frozenset(
    (b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV")
)
_SHORT_VRS = frozenset(
    (b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT")
    + (b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US")
)
#: Bytes read at once for the File Meta Information (it is a few hundred bytes).
_META_READ = 2048


def _read_plain_part10(fp: BinaryIO) -> tuple[Dataset, str] | None:
    """The data set of a plain Part 10 file, without pydicom's File Meta parsing.

    Reading the File Meta Information (PS3.10 §7.1) through :func:`pydicom.dcmread` costs
    about a quarter of a header read: it builds and validates a whole
    :class:`~pydicom.dataset.FileMetaDataset`, of which ingest needs one value. Here the
    group is walked on its raw bytes - only when it is unremarkable: the 128-byte
    preamble and ``DICM``, (0002,0000) first, explicit VR little endian elements of
    group 0002 with defined lengths ending exactly where its group length says, and a
    data set in Implicit or Explicit VR Little Endian (PS3.5 §A.1, §A.2) that follows
    directly (no command set). Then the data set is read by pydicom's own
    :func:`~pydicom.filereader.read_dataset` with the arguments ``dcmread`` would pass,
    so the elements, warnings and errors are those of the ``dcmread`` path. Returns
    ``None`` (nothing decided: the caller reads the file with ``dcmread``) otherwise.
    """
    head = fp.read(_META_READ)
    if len(head) < 144 or head[128:132] != b"DICM" or head[132:138] != b"\x02\x00\x00\x00UL":
        return None
    if head[138:140] != b"\x04\x00":
        return None
    end = 144 + int.from_bytes(head[140:144], "little")
    if end + 2 > len(head):
        return None
    ts: str | None = None
    pos = 144
    while pos < end:
        if head[pos : pos + 2] != b"\x02\x00":
            return None
        vr = head[pos + 4 : pos + 6]
        if vr in _SHORT_VRS:
            length = int.from_bytes(head[pos + 6 : pos + 8], "little")
            value = pos + 8
        elif vr in _LONG_VRS and vr != b"SQ" and head[pos + 6 : pos + 8] == b"\x00\x00":
            length = int.from_bytes(head[pos + 8 : pos + 12], "little")
            value = pos + 12
        else:
            return None
        if length == _UNDEFINED_LENGTH or value + length > end:
            return None
        if head[pos + 2 : pos + 4] == b"\x10\x00":  # (0002,0010) Transfer Syntax UID
            ts = head[value : value + length].decode("ascii", "replace").rstrip("\x00 ")
        pos = value + length
    if pos != end or ts not in _PLAIN_SYNTAXES or head[end : end + 2] in (b"\x02\x00", b"\x00\x00"):
        return None
    fp.seek(end)
    implicit = _PLAIN_SYNTAXES[ts]
    ds = read_dataset(fp, implicit, True, defer_size=DEFER_SIZE, specific_tags=_SPECIFIC_TAGS)
    # As dcmread ends (pydicom 3 filereader.read_partial): the encoding from the transfer
    # syntax, and the character set read through the data set - which converts (0008,0005)
    # in place, as the truncation checks expect.
    ds.set_original_encoding(implicit, True, ds._character_set)
    for tag, elem in ds._dict.items():
        # A deferred header value: dcmread's FileDataset could read it later, this
        # data set cannot; leave such a file to dcmread. (The tag test last: comparing
        # a BaseTag with a tuple of ints runs Python code per element, #11.)
        if (isinstance(elem, RawDataElement) and elem.value is None
                and elem.length > DEFER_SIZE and tag not in _PIXEL_DATA_TAGS):
            return None
    return ds, ts


def _at_end(fp: BinaryIO, size: int) -> bool:
    try:
        return fp.tell() >= size
    except (OSError, ValueError):
        return False


def _cut_before(ds: Dataset, missing_tag: int | None, size: int, end: int) -> str | None:
    """The truncation reason when a required attribute is missing because the file ends.

    Elements are stored in ascending tag order (PS3.5 §7.1), so a file read to its end
    that holds no element after the missing one - and no Pixel Data - was cut inside its
    header. An image object (or one whose SOP Class is gone too) is then reported as
    truncated; another object may legitimately end there, so it keeps "missing" and a
    hint.
    """
    if missing_tag is None or end < size or any(t > missing_tag for t in ds._dict):
        return None
    name = next(k for k, t in REQUIRED_ATTRIBUTES if t == missing_tag)
    where = f"the file ends after {size} bytes, before ({missing_tag >> 16:04X},"
    where += f"{missing_tag & 0xFFFF:04X}) {name}"
    sop_class = _text(_Values(ds).get(0x00080016), UID_LEN)
    if sop_class is None or not is_valid_uid(sop_class) or _is_image_storage(sop_class):
        return f"truncated: {where}"
    return f"required attribute {name} missing: {where} (the file may be truncated)"


def _check_complete(ds: Dataset, size: int, end: int) -> None:
    """Raise when the file ends before the last element's value (a truncated file)."""
    if end > size:  # pydicom seeked past the end over a skipped or deferred value
        raise SkipFile(f"truncated: the file has {size} bytes but its elements need {end}")
    elems = ds._dict  # file order; RawDataElements keep their value offset
    for tag in _PIXEL_DATA_TAGS:
        raw = ds.get_item(tag, keep_deferred=True)
        if isinstance(raw, RawDataElement) and raw.length != _UNDEFINED_LENGTH:
            need = raw.value_tell + raw.length
            if need > size:
                raise SkipFile(
                    f"truncated: (7FE0,{tag & 0xFFFF:04X}) Pixel Data needs {raw.length} bytes "
                    f"but the file ends {need - size} bytes early"
                )
    if elems:
        last = next(reversed(elems.values()))
        if isinstance(last, RawDataElement) and last.length != _UNDEFINED_LENGTH:
            need = last.value_tell + last.length
            if need > size:
                raise SkipFile(
                    f"truncated: element {last.tag} needs {last.length} bytes but the file "
                    f"ends {need - size} bytes early"
                )




def _check_pixel_length(ds: Dataset) -> None:
    """Refuse native Pixel Data shorter than the Image Pixel attributes imply (issue #12).

    The length is the element's declared length (its value is not read; a declared length
    beyond the end of the file was already reported as truncated). PS3.5 §8.1.1: native
    data holds Rows x Columns x Samples x Frames x Bits Allocated / 8 bytes. A quick sum
    on the raw bytes clears the usual complete file; anything else is judged - and
    worded - by :func:`oncohybrid.dicom.validate.pixel_data_problem`, shared with the
    PACS listener. Encapsulated data (undefined length) is not judged.
    """
    raw = ds.get_item(0x7FE00010, keep_deferred=True)
    if raw is None or not isinstance(raw, RawDataElement) or raw.length == _UNDEFINED_LENGTH:
        return
    available = raw.length
    little = ds.original_encoding[1] is not False
    elems = ds._dict

    def get_raw(tag: int) -> Any:
        elem = elems.get(tag)  # type: ignore[call-overload]
        return None if elem is None else elem.value

    if pixel_length_clear(get_raw, available, little):
        return
    try:
        problem = pixel_data_problem(ds, available)
    except Exception:  # a malformed Image Pixel attribute: the length cannot be judged
        return
    if problem:
        raise SkipFile(f"short pixel data: {problem}")
