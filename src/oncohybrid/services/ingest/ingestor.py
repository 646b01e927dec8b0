"""Ingest DICOM files, folders, ``.zip`` archives and network datasets into the study database.

The use-case behind ``oncohybrid ingest`` and the DICOM Storage SCP:

* **Headers only.** Each file is parsed with :func:`pydicom.dcmread` restricted to the
  attributes we index (``specific_tags``) with large values deferred (``defer_size``), so
  pixel data is never read; the (7FE0,0010) *Pixel Data* element header is still seen
  so truncation can be detected (its value must end inside the file).
* **Validation.** A file is skipped — and reported with its path and the reason — when
  it is not DICOM, is truncated, or lacks one of the attributes every composite
  instance must carry to be placed in the hierarchy (PS3.3 §C.12.1 SOP Common, §C.7.1.1
  Patient, §C.7.2.1 General Study, §C.7.3.1 General Series). A file without the 128-byte
  preamble and ``DICM`` prefix (PS3.10 §7.1) is accepted when it starts like a raw
  dataset (group 0002 or 0008) and has all required attributes: such files are stored
  as conformant Part 10 files, never referenced in place.
* **Idempotent.** An instance is a duplicate when its (0008,0018) *SOP Instance UID* is
  already stored; duplicates never rewrite the stored file.
* **Crash-consistent and streaming.** Files are handled in batches (500 per database
  transaction): each batch's files are written (atomically) and their folders synced
  before the transaction that inserts their rows commits. A crash leaves at most files
  without rows ("orphans"); the next ingest of the same instance adopts the file at its
  final path, and :meth:`Ingestor.adopt_orphans` indexes all of them. Only one batch of
  small header records is held in memory, never datasets.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import socket
import stat
import struct
import threading
import warnings
import zipfile
from collections.abc import Container, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pydicom
import sqlalchemy as sa
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filewriter import dcmwrite
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from sqlalchemy.orm import Session

from oncohybrid.config import Settings, get_settings
from oncohybrid.dicom.validate import is_valid_uid, pixel_data_problem
from oncohybrid.errors import InputError, OncohybridError, StoreError
from oncohybrid.store.db import get_engine, get_sessionmaker
from oncohybrid.store.filestore import FileStore
from oncohybrid.store.models import (
    UID_LEN,
    IngestLog,
    Instance,
    InstanceConflict,
    Patient,
    Series,
    Study,
)
from oncohybrid.textsafe import printable

#: Files per database transaction.
BATCH_SIZE = 500
#: Values larger than this are not read from the file (pixel data); header values are
#: far smaller, so they are always read (a deferred value cannot be re-read from a stream).
DEFER_SIZE = 64 * 1024
_UNDEFINED_LENGTH = 0xFFFFFFFF
_PIXEL_DATA_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)
#: (0028,0002) Samples per Pixel, (0028,0008) Number of Frames, (0028,0010) Rows,
#: (0028,0011) Columns, (0028,0100) Bits Allocated (PS3.3 §C.7.6.3 Image Pixel).
_IMAGE_PIXEL_TAGS = (0x00280002, 0x00280008, 0x00280010, 0x00280011, 0x00280100)

#: (keyword, tag) of the attributes an instance needs to be placed in the hierarchy.
REQUIRED_ATTRIBUTES: tuple[tuple[str, int], ...] = (
    ("SOPInstanceUID", 0x00080018),
    ("SeriesInstanceUID", 0x0020000E),
    ("StudyInstanceUID", 0x0020000D),
    ("PatientID", 0x00100020),
    ("Modality", 0x00080060),
    ("SOPClassUID", 0x00080016),
)

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


class SkipFile(Exception):
    """A file that is reported and skipped; ``reason`` says why."""

    def __init__(self, reason: str, *, missing_tag: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        #: the required attribute that was absent (to tell a cut file from a bad one)
        self.missing_tag = missing_tag


@dataclass
class IngestOutcome:
    """Result of ingesting one dataset (network) or file."""

    status: str  # "new" | "duplicate" | "conflict" | "skipped"
    path: str | None = None  # stored file (new/duplicate), copy kept aside (conflict), source
    reason: str | None = None  # why it was skipped
    sop_instance_uid: str | None = None
    study_instance_uid: str | None = None  # set by ingest_files_batch (completion tracking)


@dataclass
class IngestReport:
    """Summary of one ingest run; ``skipped`` lists (path, reason)."""

    new: int = 0
    duplicate: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ingest_id: int | None = None
    elapsed_s: float = 0.0
    #: same SOP Instance UID as a stored instance, other content: one dict per file with
    #: ``path``, ``sop_instance_uid``, ``stored_path``, ``stored_sha256``, ``new_sha256``
    #: and ``kept_as`` (the copy kept for review); never counted as duplicates.
    conflicts: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ingest_id": self.ingest_id,
            "new": self.new,
            "duplicate": self.duplicate,
            "n_conflicts": len(self.conflicts),
            "conflicts": list(self.conflicts),
            "n_skipped": len(self.skipped),
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "elapsed_s": round(self.elapsed_s, 3),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


@dataclass(slots=True)
class HeaderRecord:
    """The indexed attributes of one instance (a few hundred bytes, never a dataset)."""

    sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str
    series_instance_uid: str
    patient_id: str
    modality: str
    issuer_of_patient_id: str = ""
    patient_name: str | None = None
    patient_sex: str | None = None
    patient_birth_date: dt.date | None = None
    study_date: dt.date | None = None
    study_time: str | None = None
    study_description: str | None = None
    accession_number: str | None = None
    study_id: str | None = None
    series_number: int | None = None
    series_date: dt.date | None = None
    series_time: str | None = None
    series_description: str | None = None
    body_part_examined: str | None = None
    manufacturer: str | None = None
    manufacturer_model_name: str | None = None
    frame_of_reference_uid: str | None = None
    radiopharmaceutical: str | None = None
    units: str | None = None
    instance_number: int | None = None
    transfer_syntax_uid: str | None = None
    part10: bool = True  # has preamble + DICM + file meta
    file_size: int = 0  # bytes of the source file
    full: bool = True  # False: patient/study/series attributes not read (known series)


# --------------------------------------------------------------------------- headers


def _text(value: Any, max_len: int) -> str | None:
    """A database-safe string: multi-values joined by '\\', NULs removed, cut to length."""
    if value is None:
        return None
    if type(value) is not str:
        if isinstance(value, list | tuple | pydicom.multival.MultiValue):
            value = "\\".join(str(v) for v in value)
        value = str(value)
    text = value.replace("\x00", "").strip()
    return text[:max_len] or None


def _date(value: Any) -> dt.date | None:
    """A DA value (PS3.5 §6.2, ``YYYYMMDD``; legacy ``YYYY.MM.DD``) or ``None``."""
    text = _text(value, 16)
    if not text:
        return None
    text = text.replace(".", "").replace("-", "")
    try:
        return dt.date(int(text[0:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    text = _text(value, 32)
    if text is None:
        return None
    try:
        number = int(float(text.split("\\")[0]))
    except ValueError:
        return None
    return number if -(2**31) <= number < 2**31 else None


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


#: Python codecs for (0008,0005) *Specific Character Set* values that are decoded here
#: directly from the raw bytes (PS3.3 §C.12.1.1.2); other character sets (ISO 2022 code
#: extensions) go through pydicom's full conversion.
_FAST_CODECS = {
    "": "latin-1",  # default repertoire; real files often hold Latin-1 without saying so
    "ISO_IR 6": "latin-1",
    "ISO_IR 100": "latin-1",
    "ISO 2022 IR 6": "latin-1",
    "ISO 2022 IR 100": "latin-1",
    "ISO_IR 192": "utf-8",
}


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
    get = _Values(ds).get
    values: dict[str, str] = {}
    for keyword, tag in REQUIRED_ATTRIBUTES:
        value = _text(get(tag), 1024)
        if not value:
            missing = ds.get_item(tag) is None
            raise SkipFile(
                f"required attribute ({tag >> 16:04X},{tag & 0xFFFF:04X}) {keyword} "
                f"{'missing' if missing else 'empty'}",
                missing_tag=tag if missing else None,
            )
        if keyword.endswith("UID") and not is_valid_uid(value):
            # PS3.5 §9.1: digits and dots only; anything else ('..', '/', letters) is
            # refused, so no header value ever reaches a path or a query unchecked.
            shown = value if len(value) <= 80 else value[:77] + "..."
            why = f"longer than {UID_LEN} characters" if len(value) > UID_LEN else "not a UID"
            raise SkipFile(
                f"invalid ({tag >> 16:04X},{tag & 0xFFFF:04X}) {keyword} {shown!r}: {why} "
                "(PS3.5 §9.1: components of digits without leading zeros, separated by '.')"
            )
        if keyword == "PatientID" and len(value) > 64:
            raise SkipFile("invalid (0010,0020) PatientID: longer than 64 characters")
        values[keyword] = value

    if values["SeriesInstanceUID"] in known_series:
        return HeaderRecord(
            sop_instance_uid=values["SOPInstanceUID"],
            sop_class_uid=values["SOPClassUID"],
            study_instance_uid=values["StudyInstanceUID"],
            series_instance_uid=values["SeriesInstanceUID"],
            patient_id=values["PatientID"],
            modality=values["Modality"][:16],
            instance_number=_int(get(0x00200013)),
            transfer_syntax_uid=transfer_syntax_uid,
            full=False,
        )
    return HeaderRecord(
        sop_instance_uid=values["SOPInstanceUID"],
        sop_class_uid=values["SOPClassUID"],
        study_instance_uid=values["StudyInstanceUID"],
        series_instance_uid=values["SeriesInstanceUID"],
        patient_id=values["PatientID"],
        modality=values["Modality"][:16],
        issuer_of_patient_id=_text(get(0x00100021), 64) or "",
        patient_name=_text(get(0x00100010), 324),
        patient_sex=_text(get(0x00100040), 16),
        patient_birth_date=_date(get(0x00100030)),
        study_date=_date(get(0x00080020)),
        study_time=_text(get(0x00080030), 32),
        study_description=_text(get(0x00081030), 256),
        accession_number=_text(get(0x00080050), 64),
        study_id=_text(get(0x00200010), 64),
        series_number=_int(get(0x00200011)),
        series_date=_date(get(0x00080021)),
        series_time=_text(get(0x00080031), 32),
        series_description=_text(get(0x0008103E), 256),
        body_part_examined=_text(get(0x00180015), 64),
        manufacturer=_text(get(0x00080070), 128),
        manufacturer_model_name=_text(get(0x00081090), 128),
        frame_of_reference_uid=_text(get(0x00200052), UID_LEN),
        radiopharmaceutical=_radiopharmaceutical(ds),
        units=_text(get(0x00541001), 32),
        instance_number=_int(get(0x00200013)),
        transfer_syntax_uid=transfer_syntax_uid,
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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            try:
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
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
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


@functools.lru_cache(maxsize=256)
def _is_image_storage(sop_class_uid: str) -> bool:
    """Whether a SOP Class is an image storage class (its IOD has Pixel Data)."""
    return UID(sop_class_uid).name.endswith("Image Storage")


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


def _raw_int(ds: Dataset, tag: int, little: bool) -> int | None:
    """An US or IS value read from the raw bytes (no pydicom conversion), else None."""
    elem = ds._dict.get(tag)  # type: ignore[call-overload]
    if elem is None:
        return None
    value = elem.value
    if not isinstance(value, bytes):
        return None
    if tag == 0x00280008:  # Number of Frames, IS
        text = value.strip(b" \x00")
        return int(text) if text.isdigit() else None
    if len(value) != 2:
        return None
    return int.from_bytes(value, "little" if little else "big")


def _same_file(a: _Source, b: _Source) -> bool:
    """Whether two sources are one file on disk (an in-place row, a hard link)."""
    if a.path is None or b.path is None or a.zip_info is not None or b.zip_info is not None:
        return False
    try:
        return os.path.samefile(a.path, b.path)
    except OSError:
        return False


def _digests(fh: BinaryIO) -> tuple[str, str]:
    """SHA-256 of the whole file and of its data set (what follows the file meta).

    The File Meta Information group ends where its (0002,0000) *File Meta Information
    Group Length* says (PS3.10 §7.1); a bare dataset is all data set.
    """
    whole = hashlib.sha256()
    data = hashlib.sha256()
    head = fh.read(144)
    whole.update(head)
    skip = 0  # bytes of file meta still to leave out of the data set digest
    if head[128:132] == b"DICM" and head[132:136] == b"\x02\x00\x00\x00" and len(head) == 144:
        skip = int.from_bytes(head[140:144], "little")
    else:
        data.update(head)
    while chunk := fh.read(1 << 20):
        whole.update(chunk)
        if skip >= len(chunk):
            skip -= len(chunk)
            continue
        data.update(chunk[skip:])
        skip = 0
    return whole.hexdigest(), data.hexdigest()


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
    dims = [_raw_int(ds, t, little) for t in (0x00280010, 0x00280011, 0x00280100)]
    if None not in dims:
        spp = _raw_int(ds, 0x00280002, little) or 1
        frames = _raw_int(ds, 0x00280008, little) or 1
        rows, cols, bits = dims
        assert rows is not None and cols is not None and bits is not None
        if available * 8 >= rows * cols * bits * spp * frames:
            return
    try:
        problem = pixel_data_problem(ds, available)
    except Exception:  # a malformed Image Pixel attribute: the length cannot be judged
        return
    if problem:
        raise SkipFile(f"short pixel data: {problem}")


# --------------------------------------------------------------------------- sources


@dataclass(slots=True)
class _Source:
    display: str  # what reports show: a path, or 'archive.zip!member'
    path: str | None  # a real file on disk, or None for an archive member
    zip_file: zipfile.ZipFile | None = None
    zip_info: zipfile.ZipInfo | None = None
    st_size: int = -1  # from the fstat of the last open (saves a second one)

    def open(self) -> BinaryIO:
        """Open the member or file; raise :class:`SkipFile` for anything but a regular file.

        The file is opened with ``O_NONBLOCK`` and checked with ``fstat`` on the open
        descriptor: a named pipe put in place of a file after the folder was listed
        cannot block the run (opening a FIFO for reading otherwise waits for a writer).
        """
        if self.zip_file is not None and self.zip_info is not None:
            return self.zip_file.open(self.zip_info)  # type: ignore[return-value]
        assert self.path is not None
        fd = os.open(self.path, _OPEN_FLAGS)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise SkipFile(_not_regular(st.st_mode))
            self.st_size = st.st_size
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    def size(self, fh: BinaryIO) -> int:
        if self.zip_info is not None:
            return self.zip_info.file_size
        if self.st_size >= 0:
            return self.st_size
        return os.fstat(fh.fileno()).st_size


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)

_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a folder"),
)


def _not_regular(mode: int) -> str:
    """The skip reason for a directory entry that is not a regular file."""
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return f"not a regular file: {kind}; only regular files are read"


def _is_zip(path: str) -> bool:
    return path.lower().endswith(".zip")


def _walk_files(root: str) -> Iterator[tuple[str, str | None]]:
    """``(path, None)`` for each regular file below ``root``; ``(path, reason)`` for the rest.

    Sorted, a folder's files before its sub-folders (as :func:`os.walk`). Named pipes,
    sockets and devices are reported, never opened (a FIFO blocks a reader forever).
    Symbolic links are followed only to a regular file inside ``root``'s tree; links to
    folders (loops, duplicate trees) and links leading outside the tree are reported.
    ``root`` itself, named by the user, may be a link.
    """
    try:
        st = os.stat(root)
    except OSError as exc:
        yield root, f"cannot read: {exc.strerror}"
        return
    if stat.S_ISREG(st.st_mode):
        yield root, None
        return
    if not stat.S_ISDIR(st.st_mode):
        yield root, _not_regular(st.st_mode)
        return
    real_root = os.path.realpath(root)
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield folder, f"cannot list folder: {exc.strerror}"
            continue
        subdirs = []
        for entry in entries:
            try:
                if entry.is_file(follow_symlinks=False):
                    yield entry.path, None
                elif entry.is_dir(follow_symlinks=False):
                    subdirs.append(entry.path)
                elif entry.is_symlink():
                    yield entry.path, _symlink_problem(entry.path, real_root)
                else:
                    yield entry.path, _not_regular(entry.stat(follow_symlinks=False).st_mode)
            except OSError as exc:
                yield entry.path, f"cannot read: {exc.strerror}"
        stack.extend(reversed(subdirs))


def _symlink_problem(path: str, real_root: str) -> str | None:
    """None when the link at ``path`` leads to a regular file inside ``real_root``."""
    target = os.path.realpath(path)
    if os.path.commonpath([target, real_root]) != real_root:
        return f"symbolic link to {target}, outside the input folder: not followed"
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return f"broken symbolic link (to {target})"
    if stat.S_ISDIR(mode):
        return "symbolic link to a folder: not followed (link the files, or name the folder)"
    if not stat.S_ISREG(mode):
        return f"symbolic link to {_not_regular(mode)}"
    return None


def count_files(paths: Iterable[str | Path]) -> int:
    """Number of regular files below ``paths`` (archives count as one), for progress bars."""
    return sum(1 for p in paths for _, problem in _walk_files(os.fspath(p)) if problem is None)


# --------------------------------------------------------------------------- ingestor


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Ingestor:
    """Index DICOM instances into the study database and the workspace file store.

    One instance serves a whole CLI run or the lifetime of a Storage SCP;
    :meth:`ingest_dataset` may be called from several threads at once.
    """

    def __init__(self, settings: Settings | None = None, *, in_place: bool = False) -> None:
        self.settings = settings or get_settings()
        self.in_place = in_place
        self.engine = get_engine(self.settings)
        self._sessionmaker = get_sessionmaker(self.settings)
        self.store = FileStore(self.settings.store_dir)
        self._dialect = self.engine.dialect.name
        self._db_lock = threading.RLock()  # serialises this object's write transactions
        self._inflight: set[str] = set()  # SOP UIDs being stored by a network thread
        self._inflight_cv = threading.Condition()
        # Known surrogate keys; only filled after a commit so a rollback cannot leave
        # a key that does not exist.
        self._patients: dict[tuple[str, str], int] = {}
        self._studies: dict[str, int] = {}
        self._series: dict[str, int] = {}
        self._network_log_pk: int | None = None
        # Series whose first instance was read (fully) in the current file run.
        self._run_series: set[str] = set()

    # ------------------------------------------------------------------ public API

    def ingest_paths(self, paths: Iterable[str | Path], *, progress: bool = False) -> IngestReport:
        """Ingest files, folders (recursively) and ``.zip`` archives; stream, batch, report."""
        roots = [os.path.abspath(os.fspath(p)) for p in paths]
        for root in roots:
            if not os.path.exists(root):
                raise InputError(f"ingest: {printable(root)}: no such file or folder")
        return self._run(roots, source="files", in_place=self.in_place, progress=progress)

    def adopt_orphans(self, *, progress: bool = False) -> IngestReport:
        """Index files of the file store that have no database row (left by a crash).

        Temporary files of unfinished writes (``.*.tmp``; not those of a write in
        progress, see :meth:`FileStore.sweep_temp`) are removed before and after the
        run, also when the run fails.
        """
        self.store.sweep_temp()
        if not self.store.root.is_dir():
            return IngestReport()
        try:
            return self._run(
                [str(self.store.root)],
                source="adopt",
                in_place=True,
                progress=progress,
                rows_in_place=False,
            )
        finally:
            self.store.sweep_temp()

    def ingest_dataset(self, ds: Dataset, *, source: str = "network") -> IngestOutcome:
        """Store and index one dataset received over the network (thread-safe).

        ``ds`` may lack file meta: it is built from (0008,0016) *SOP Class UID*,
        (0008,0018) *SOP Instance UID* and the transfer syntax (PS3.10 §7.1).
        """
        meta = getattr(ds, "file_meta", None)
        ts = meta.get("TransferSyntaxUID") if meta is not None else None
        if ts is None:
            implicit = getattr(ds, "original_encoding", (None, None))[0]
            ts = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
        try:
            rec = record_from_dataset(ds, transfer_syntax_uid=str(ts))
            try:
                problem = pixel_data_problem(ds)
            except Exception:  # malformed Image Pixel attributes: cannot be judged
                problem = None
            if problem:
                raise SkipFile(f"short pixel data: {problem}")
        except SkipFile as exc:
            sop = _text(_Values(ds).get(0x00080018), UID_LEN)
            self._log_network(source, skipped=(f"{source}:{sop or '?'}", exc.reason))
            return IngestOutcome("skipped", None, exc.reason, sop)
        sop = rec.sop_instance_uid
        with self._claim(sop):
            existing = self._existing_paths([sop])
            if sop in existing:
                self._log_network(source, duplicate=1)
                return IngestOutcome("duplicate", existing[sop], None, sop)
            dest = self.store.path_for(rec.study_instance_uid, rec.series_instance_uid, sop)
            if not dest.exists():  # else: an orphan of a crash, adopted as it is
                out = _with_file_meta(ds, rec, str(ts))
                size = self.store.write_atomic(
                    dest, lambda fh: dcmwrite(fh, out, enforce_file_format=True)
                )
                self.store.sync_dirs([dest.parent])
            else:
                size = dest.stat().st_size
            row = _instance_row(rec, str(dest), size, in_place=False)
            inserted = self._commit_batch([(rec, row)], log_pk=self._network_log(source))
        if sop not in inserted:
            return IngestOutcome("duplicate", str(dest), None, sop)
        return IngestOutcome("new", str(dest), None, sop)

    def ingest_files_batch(
        self, paths: Sequence[str | Path], *, source: str = "network", link: bool = False
    ) -> list[IngestOutcome]:
        """Store and index Part 10 files (e.g. a Storage SCP's spool) as one batch.

        Thread-safe, like :meth:`ingest_dataset`, and with the same duplicate rules, but
        through the file-ingest path: headers only are read (:func:`read_header`), files
        are copied as they are (fsync-ed) - or, with ``link``, hard-linked into the store
        (:meth:`FileStore.link_atomic`; for finished files nobody rewrites) - their
        folders synced once, and all rows go in one transaction, logged in this
        Ingestor's network ingest log. Returns one outcome per path, in order; the
        source files are left in place.
        """
        outcomes: list[IngestOutcome | None] = [None] * len(paths)
        batch: list[tuple[_Source, HeaderRecord]] = []
        where: list[int] = []
        report = IngestReport()
        for i, p in enumerate(paths):
            path = os.fspath(p)
            src = _Source(path, path)
            try:
                # no known series: another thread's batch may not have committed yet
                with src.open() as fh:
                    rec = read_header(fh, src.size(fh))
            except OSError as exc:
                outcomes[i] = IngestOutcome("skipped", path, f"cannot read: {exc.strerror}")
            except SkipFile as exc:
                outcomes[i] = IngestOutcome("skipped", path, exc.reason)
            else:
                batch.append((src, rec))
                where.append(i)
                continue
            report.skipped.append((f"{source}:{os.path.basename(path)}", outcomes[i].reason))
        log_pk = self._network_log(source)
        sops = sorted({rec.sop_instance_uid for _src, rec in batch})
        with ExitStack() as claims:
            for sop in sops:  # a global order: two batches never wait on each other
                claims.enter_context(self._claim(sop))
            inserted = self._flush(batch, report, log_pk, False, None, 0, link=link)
            stored = self._existing_paths(sops)
        conflicts = {c["path"]: c for c in report.conflicts}
        first: set[str] = set()
        for i, (src, rec) in zip(where, batch, strict=True):
            sop = rec.sop_instance_uid
            new = sop in inserted and sop not in first
            first.add(sop)
            conflict = None if new else conflicts.get(src.display)
            if conflict is not None:
                outcomes[i] = IngestOutcome(
                    "conflict",
                    conflict["kept_as"],
                    f"SOP Instance UID {sop} is stored with other content "
                    f"({conflict['stored_path']}); this copy is kept for review",
                    sop,
                    rec.study_instance_uid,
                )
                continue
            outcomes[i] = IngestOutcome(
                "new" if new else "duplicate",
                stored.get(sop),
                None,
                sop,
                rec.study_instance_uid,
            )
        return [o for o in outcomes if o is not None]

    def close(self) -> None:
        """Mark the network ingest log as completed (the engine stays cached)."""
        if self._network_log_pk is not None:
            with self._db_lock, self._session() as s:
                s.execute(
                    sa.update(IngestLog)
                    .where(IngestLog.id == self._network_log_pk)
                    .values(status="completed", finished_at=_now())
                )
                s.commit()
            self._network_log_pk = None

    def __enter__(self) -> Ingestor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ file runs

    def _session(self) -> Session:
        return self._sessionmaker()

    def _run(
        self,
        roots: list[str],
        *,
        source: str,
        in_place: bool,
        progress: bool,
        rows_in_place: bool | None = None,
    ) -> IngestReport:
        started = _now()
        self._run_series = set()
        report = IngestReport()
        log_pk = self._open_log(source, in_place)
        report.ingest_id = log_pk
        bar = _progress_bar(roots) if progress else None
        batch: list[tuple[_Source, HeaderRecord]] = []
        skipped_written = 0
        status = "interrupted"
        try:
            with bar if bar is not None else nullcontext():
                for src in self._iter_sources(roots, report):
                    if src.zip_info is _LAST:
                        # End of an archive: store its members while it is still open.
                        if batch:
                            self._flush(
                                batch, report, log_pk, in_place, rows_in_place, skipped_written
                            )
                            skipped_written = len(report.skipped)
                            batch.clear()
                        if bar is not None:
                            bar.advance()
                        continue
                    try:
                        rec = self._read(src)
                    except SkipFile as exc:
                        report.skipped.append((src.display, exc.reason))
                    else:
                        batch.append((src, rec))
                    if bar is not None and src.zip_info is None:
                        bar.advance()
                    if len(batch) >= BATCH_SIZE:
                        self._flush(batch, report, log_pk, in_place, rows_in_place, skipped_written)
                        skipped_written = len(report.skipped)
                        batch.clear()
                if batch or len(report.skipped) != skipped_written:
                    self._flush(batch, report, log_pk, in_place, rows_in_place, skipped_written)
                    batch.clear()
            status = "completed"
        finally:
            report.elapsed_s = (_now() - started).total_seconds()
            self._close_log(log_pk, report, status)
        return report

    def _iter_sources(self, roots: list[str], report: IngestReport) -> Iterator[_Source]:
        for root in roots:
            for path, problem in _walk_files(root):
                if problem is not None:
                    report.skipped.append((path, problem))
                    continue
                if not _is_zip(path):
                    yield _Source(path, path)
                    continue
                try:
                    zf = zipfile.ZipFile(path)
                except (zipfile.BadZipFile, OSError) as exc:
                    report.skipped.append((path, f"unreadable .zip archive: {exc}"))
                    continue
                with zf:
                    members = [i for i in zf.infolist() if not i.is_dir()]
                    for info in members:
                        if info.filename.lower().endswith(".zip"):
                            report.skipped.append(
                                (f"{path}!{info.filename}", "nested .zip archive: extract it first")
                            )
                            continue
                        yield _Source(f"{path}!{info.filename}", None, zf, info)
                    yield _Source(path, None, zf, _LAST)  # marks the archive done (progress)

    def _read(self, src: _Source) -> HeaderRecord:
        try:
            with src.open() as fh:
                rec = read_header(fh, src.size(fh), self._run_series)
        except OSError as exc:
            raise SkipFile(f"cannot read: {exc.strerror or exc}") from None
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError) as exc:
            raise SkipFile(f"cannot read archive member: {exc}") from None
        if rec.full:
            self._run_series.add(rec.series_instance_uid)
        return rec

    def _flush(
        self,
        batch: list[tuple[_Source, HeaderRecord]],
        report: IngestReport,
        log_pk: int,
        in_place: bool,
        rows_in_place: bool | None,
        skipped_written: int,
        *,
        link: bool = False,
    ) -> set[str]:
        """Store one batch: files first (synced), then one transaction for the rows.

        Returns the SOP Instance UIDs whose rows this batch inserted (the others were
        duplicates).
        """
        # One SOP Instance UID twice in the batch: the second is a duplicate of the first
        # (or a conflict with it); one already stored: of the stored file.
        unique: dict[str, tuple[_Source, HeaderRecord]] = {}
        repeats: list[tuple[_Source, HeaderRecord]] = []
        for src, rec in batch:
            if rec.sop_instance_uid in unique:
                repeats.append((src, rec))
            else:
                unique[rec.sop_instance_uid] = (src, rec)
        existing = self._existing_paths(list(unique))
        stored = {sop: _Source(path, path) for sop, path in existing.items()}
        again = [(src, rec, stored[sop]) for sop, (src, rec) in unique.items() if sop in stored]
        again += [
            (src, rec, stored.get(rec.sop_instance_uid) or unique[rec.sop_instance_uid][0])
            for src, rec in repeats
        ]
        conflicts = self._find_conflicts(again)
        n_dup = len(again) - len(conflicts)
        rows: list[tuple[HeaderRecord, dict[str, Any]]] = []
        dirs: set[Path] = set()
        for sop, (src, rec) in unique.items():
            if sop in existing:
                continue
            if in_place and src.path is not None and rec.part10:
                row_in_place = True if rows_in_place is None else rows_in_place
                rows.append(
                    (rec, _instance_row(rec, src.path, rec.file_size, in_place=row_in_place))
                )
                continue
            dest = self.store.path_for(rec.study_instance_uid, rec.series_instance_uid, sop)
            if dest.exists():  # an orphan left by an interrupted run: adopt it
                size = dest.stat().st_size
            elif link and src.path is not None and rec.part10:
                size = self.store.link_atomic(Path(src.path), dest)
                dirs.add(dest.parent)
            else:
                size = self._copy_into_store(src, rec, dest)
                dirs.add(dest.parent)
            rows.append((rec, _instance_row(rec, str(dest), size, in_place=False)))
        if link and dirs:
            self.store.sync_all()  # the linked files and their folders, in one call
        else:
            self.store.sync_dirs(dirs)
        new_skips = report.skipped[skipped_written:]
        inserted = self._commit_batch(rows, log_pk=log_pk, dup_extra=n_dup, new_skips=new_skips)
        report.new += len(inserted)
        report.duplicate += n_dup + (len(rows) - len(inserted))
        if conflicts:
            self._record_conflicts(conflicts, log_pk)
            report.conflicts.extend(conflicts)
        return inserted

    def _find_conflicts(
        self, again: list[tuple[_Source, HeaderRecord, _Source]]
    ) -> list[dict[str, str]]:
        """Keep aside every instance whose data set differs from the stored one's.

        The data sets are compared after the File Meta Information (PS3.10 §7.1), so a
        copy re-sent with other meta (another implementation, a bare dataset) is a
        plain duplicate; the same file (in place, a hard link) is not read at all.
        Returns one report entry per conflict; its copy is stored (synced) under
        ``conflicts/`` before the entry is returned.
        """
        found: list[dict[str, str]] = []
        dirs: set[Path] = set()
        for src, rec, stored in again:
            try:
                if _same_file(src, stored):
                    continue
                with stored.open() as fh:
                    stored_whole, stored_data = _digests(fh)
                with src.open() as fh:
                    new_whole, new_data = _digests(fh)
            except (OSError, SkipFile, zipfile.BadZipFile):
                continue  # the stored file is gone or unreadable: nothing to compare
            if new_data == stored_data:
                continue
            kept = self.store.conflict_path(rec.sop_instance_uid, new_whole)
            if not kept.exists():
                with src.open() as fh:
                    self.store.copy_atomic(fh, kept)
                dirs.add(kept.parent)
            found.append(
                {
                    "path": src.display,
                    "sop_instance_uid": rec.sop_instance_uid,
                    "stored_path": stored.display,
                    "stored_sha256": stored_whole,
                    "new_sha256": new_whole,
                    "kept_as": str(kept),
                }
            )
        self.store.sync_dirs(dirs)
        return found

    def _record_conflicts(self, conflicts: list[dict[str, str]], log_pk: int | None) -> None:
        """One ``instance_conflicts`` row per distinct received content (idempotent)."""
        values = [
            {
                "sop_instance_uid": c["sop_instance_uid"],
                "stored_path": c["stored_path"],
                "stored_sha256": c["stored_sha256"],
                "new_sha256": c["new_sha256"],
                "file_path": c["kept_as"],
                "source": c["path"],
                "ingest_log_pk": log_pk,
                "created_at": _now(),
            }
            for c in conflicts
        ]
        with self._db_lock, self._session() as s, s.begin():
            s.execute(
                self._insert(InstanceConflict).on_conflict_do_nothing(
                    index_elements=["sop_instance_uid", "new_sha256"]
                ),
                values,
            )

    def _copy_into_store(self, src: _Source, rec: HeaderRecord, dest: Path) -> int:
        if rec.part10:
            with src.open() as fh:
                return self.store.copy_atomic(fh, dest)
        # A bare dataset: store it as a conformant Part 10 file with file meta.
        with src.open() as fh:
            ds = pydicom.dcmread(fh, force=True)
        out = _with_file_meta(ds, rec, rec.transfer_syntax_uid or ImplicitVRLittleEndian)
        return self.store.write_atomic(dest, lambda f: dcmwrite(f, out, enforce_file_format=True))

    # ------------------------------------------------------------------ database

    def _existing_paths(self, sops: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        if not sops:
            return found
        with self._session() as s:
            for i in range(0, len(sops), 500):
                chunk = sops[i : i + 500]
                found.update(
                    s.execute(
                        sa.select(Instance.sop_instance_uid, Instance.file_path).where(
                            Instance.sop_instance_uid.in_(chunk)
                        )
                    ).all()
                )
        return found

    def _insert(self, table: Any) -> Any:
        if self._dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif self._dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:  # pragma: no cover - only the two supported back ends
            raise OncohybridError(f"unsupported database dialect {self._dialect}")
        return insert(table)

    def _commit_batch(
        self,
        rows: list[tuple[HeaderRecord, dict[str, Any]]],
        *,
        log_pk: int | None,
        dup_extra: int = 0,
        new_skips: list[tuple[str, str]] | None = None,
    ) -> set[str]:
        """Insert the hierarchy and instance rows in one transaction; return inserted UIDs."""
        with self._db_lock:
            for attempt in range(2):
                pending_p: dict[tuple[str, str], int] = {}
                pending_st: dict[str, int] = {}
                pending_se: dict[str, int] = {}
                try:
                    with self._session() as s, s.begin():
                        inserted = self._insert_rows(
                            s,
                            rows,
                            log_pk,
                            dup_extra,
                            new_skips or [],
                            pending_p,
                            pending_st,
                            pending_se,
                        )
                except sa.exc.IntegrityError:
                    # A concurrent writer removed a parent row: forget the cached keys
                    # and try once more from the database.
                    self._patients.clear()
                    self._studies.clear()
                    self._series.clear()
                    if attempt:
                        raise
                    continue
                # Only committed keys enter the caches.
                self._patients.update(pending_p)
                self._studies.update(pending_st)
                self._series.update(pending_se)
                return inserted
        raise AssertionError("unreachable")

    def _insert_rows(
        self,
        s: Session,
        rows: list[tuple[HeaderRecord, dict[str, Any]]],
        log_pk: int | None,
        dup_extra: int,
        new_skips: list[tuple[str, str]],
        pending_p: dict[tuple[str, str], int],
        pending_st: dict[str, int],
        pending_se: dict[str, int],
    ) -> set[str]:
        values = []
        for rec, row in rows:
            series_pk = self._series_pk(s, rec, pending_p, pending_st, pending_se)
            values.append({**row, "series_pk": series_pk, "ingest_log_pk": log_pk})
        inserted: set[str] = set()
        if values:
            # Core table (not the ORM class): a plain executemany without the ORM's
            # per-row bulk-insert bookkeeping.
            table = Instance.__table__
            stmt = (
                self._insert(table)
                .on_conflict_do_nothing(index_elements=["sop_instance_uid"])
                .returning(table.c.sop_instance_uid)
            )
            inserted = set(s.connection().execute(stmt, values).scalars().all())
            _recount(s, {v["series_pk"] for v in values})
        n_dup = dup_extra + len(values) - len(inserted)
        self._update_log(s, log_pk, len(inserted), n_dup, new_skips)
        return inserted

    def _series_pk(
        self,
        s: Session,
        rec: HeaderRecord,
        pending_p: dict[tuple[str, str], int],
        pending_st: dict[str, int],
        pending_se: dict[str, int],
    ) -> int:
        uid = rec.series_instance_uid
        pk = self._series.get(uid) or pending_se.get(uid)
        if pk:
            return pk
        if not rec.full:
            # The series' first instance of this run created the row (earlier in this
            # batch or committed), or was a duplicate of a stored instance.
            pk = s.scalar(sa.select(Series.id).where(Series.series_instance_uid == uid))
            if pk is None:
                raise StoreError(
                    f"series {uid}: its first instance was not indexed; run the ingest again"
                )
            pending_se[uid] = pk
            return pk
        study_pk = self._study_pk(s, rec, pending_p, pending_st)
        s.execute(
            self._insert(Series)
            .values(
                series_instance_uid=uid,
                study_pk=study_pk,
                modality=rec.modality,
                series_number=rec.series_number,
                series_date=rec.series_date,
                series_time=rec.series_time,
                series_description=rec.series_description,
                body_part_examined=rec.body_part_examined,
                manufacturer=rec.manufacturer,
                manufacturer_model_name=rec.manufacturer_model_name,
                frame_of_reference_uid=rec.frame_of_reference_uid,
                radiopharmaceutical=rec.radiopharmaceutical,
                units=rec.units,
                number_of_instances=0,
                created_at=_now(),
            )
            .on_conflict_do_nothing(index_elements=["series_instance_uid"])
        )
        pk = s.scalar(sa.select(Series.id).where(Series.series_instance_uid == uid))
        assert pk is not None
        pending_se[uid] = pk
        return pk

    def _study_pk(
        self,
        s: Session,
        rec: HeaderRecord,
        pending_p: dict[tuple[str, str], int],
        pending_st: dict[str, int],
    ) -> int:
        uid = rec.study_instance_uid
        pk = self._studies.get(uid) or pending_st.get(uid)
        if pk:
            return pk
        patient_pk = self._patient_pk(s, rec, pending_p)
        s.execute(
            self._insert(Study)
            .values(
                study_instance_uid=uid,
                patient_pk=patient_pk,
                study_date=rec.study_date,
                study_time=rec.study_time,
                study_description=rec.study_description,
                accession_number=rec.accession_number,
                study_id=rec.study_id,
                created_at=_now(),
            )
            .on_conflict_do_nothing(index_elements=["study_instance_uid"])
        )
        pk = s.scalar(sa.select(Study.id).where(Study.study_instance_uid == uid))
        assert pk is not None
        pending_st[uid] = pk
        return pk

    def _patient_pk(
        self, s: Session, rec: HeaderRecord, pending_p: dict[tuple[str, str], int]
    ) -> int:
        key = (rec.patient_id, rec.issuer_of_patient_id)
        pk = self._patients.get(key) or pending_p.get(key)
        if pk:
            return pk
        s.execute(
            self._insert(Patient)
            .values(
                patient_id=key[0],
                issuer_of_patient_id=key[1],
                patient_name=rec.patient_name,
                patient_sex=rec.patient_sex,
                patient_birth_date=rec.patient_birth_date,
                created_at=_now(),
            )
            .on_conflict_do_nothing(index_elements=["patient_id", "issuer_of_patient_id"])
        )
        pk = s.scalar(
            sa.select(Patient.id).where(
                Patient.patient_id == key[0], Patient.issuer_of_patient_id == key[1]
            )
        )
        assert pk is not None
        pending_p[key] = pk
        return pk

    def _open_log(self, source: str, in_place: bool) -> int:
        with self._db_lock, self._session() as s, s.begin():
            log = IngestLog(
                source=source,
                in_place=in_place,
                status="running",
                started_at=_now(),
                n_new=0,
                n_duplicate=0,
                n_skipped=0,
                skipped=[],
                host=socket.gethostname()[:255],
                pid=os.getpid(),
            )
            s.add(log)
            s.flush()
            return log.id

    def _update_log(
        self,
        s: Session,
        log_pk: int | None,
        n_new: int,
        n_dup: int,
        new_skips: list[tuple[str, str]],
    ) -> None:
        if log_pk is None:
            return
        values: dict[str, Any] = {
            "n_new": IngestLog.n_new + n_new,
            "n_duplicate": IngestLog.n_duplicate + n_dup,
        }
        if new_skips:
            current = s.scalar(sa.select(IngestLog.skipped).where(IngestLog.id == log_pk)) or []
            current = list(current) + [{"path": p, "reason": r} for p, r in new_skips]
            values["skipped"] = current
            values["n_skipped"] = len(current)
        s.execute(sa.update(IngestLog).where(IngestLog.id == log_pk).values(**values))

    def _close_log(self, log_pk: int, report: IngestReport, status: str) -> None:
        with self._db_lock, self._session() as s, s.begin():
            s.execute(
                sa.update(IngestLog)
                .where(IngestLog.id == log_pk)
                .values(
                    status=status,
                    finished_at=_now(),
                    n_skipped=len(report.skipped),
                    skipped=[{"path": p, "reason": r} for p, r in report.skipped],
                )
            )

    def _network_log(self, source: str) -> int:
        """The ingest log row of this Ingestor's network datasets (created once, committed)."""
        with self._db_lock:
            if self._network_log_pk is None:
                self._network_log_pk = self._open_log(source, False)
            return self._network_log_pk

    def _log_network(
        self, source: str, *, duplicate: int = 0, skipped: tuple[str, str] | None = None
    ) -> None:
        pk = self._network_log(source)
        with self._db_lock, self._session() as s, s.begin():
            self._update_log(s, pk, 0, duplicate, [skipped] if skipped else [])

    @contextmanager
    def _claim(self, sop: str) -> Iterator[None]:
        """Let one thread at a time store a given SOP Instance UID."""
        with self._inflight_cv:
            while sop in self._inflight:
                self._inflight_cv.wait()
            self._inflight.add(sop)
        try:
            yield
        finally:
            with self._inflight_cv:
                self._inflight.discard(sop)
                self._inflight_cv.notify_all()


_LAST = zipfile.ZipInfo("__end_of_archive__")


def _recount(s: Session, series_pks: set[int]) -> None:
    """Set ``number_of_instances`` from the stored rows (robust to concurrent writers)."""
    count = (
        sa.select(sa.func.count(Instance.id))
        .where(Instance.series_pk == Series.id)
        .scalar_subquery()
    )
    s.execute(
        sa.update(Series).where(Series.id.in_(sorted(series_pks))).values(number_of_instances=count)
    )


def _instance_row(rec: HeaderRecord, path: str, size: int, *, in_place: bool) -> dict[str, Any]:
    return {
        "sop_instance_uid": rec.sop_instance_uid,
        "sop_class_uid": rec.sop_class_uid,
        "instance_number": rec.instance_number,
        "transfer_syntax_uid": rec.transfer_syntax_uid,
        "file_path": path,
        "file_size_bytes": size,
        "in_place": in_place,
        "created_at": _now(),
    }


def _with_file_meta(ds: Dataset, rec: HeaderRecord, transfer_syntax_uid: str) -> Dataset:
    """A shallow copy of ``ds`` with File Meta Information (PS3.10 §7.1).

    The caller's dataset is not modified.
    """
    import copy

    out = copy.copy(ds)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = rec.sop_class_uid
    meta.MediaStorageSOPInstanceUID = rec.sop_instance_uid
    meta.TransferSyntaxUID = transfer_syntax_uid
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    out.file_meta = meta
    return out


def _progress_bar(roots: list[str]) -> Any:
    """A rich progress bar on stderr over the number of files (archives count as one)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    total = count_files(roots)
    progress = Progress(
        TextColumn("ingest"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    task = progress.add_task("ingest", total=total)

    class _Bar:
        def __enter__(self) -> _Bar:
            progress.start()
            return self

        def __exit__(self, *exc: object) -> None:
            progress.stop()

        def advance(self) -> None:
            progress.advance(task)

    return _Bar()


__all__ = [
    "BATCH_SIZE",
    "HeaderRecord",
    "IngestOutcome",
    "IngestReport",
    "Ingestor",
    "SkipFile",
    "read_header",
    "record_from_dataset",
]
