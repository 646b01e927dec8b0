"""The index record of one instance and the decisions that turn header values into it.

Pure (no file, no database, no network): ingest (:mod:`oncohybrid.services.ingest.headers`,
values read by pydicom from a file) and the PACS listener's receivers
(:mod:`oncohybrid.pacs.header_values`, values found while walking the received bytes)
build the same :class:`HeaderRecord` with the same function, so the two can only differ
in how a value is found, never in what is made of it (issue #11).

An instance is refused (:class:`SkipFile`, with the reason) when it lacks one of the
attributes every composite instance must carry to be placed in the hierarchy (PS3.3
§C.12.1 SOP Common, §C.7.1.1 Patient, §C.7.2.1 General Study, §C.7.3.1 General Series)
or a UID does not follow PS3.5 §9.1.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import operator
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any

from pydicom.multival import MultiValue
from pydicom.uid import UID

from oncohybrid.dicom.validate import is_valid_uid

#: Longest UID (PS3.5 §9.1), the database column width (``store.models.UID_LEN``).
UID_LEN = 64

#: (keyword, tag) of the attributes an instance needs to be placed in the hierarchy.
REQUIRED_ATTRIBUTES: tuple[tuple[str, int], ...] = (
    ("SOPInstanceUID", 0x00080018),
    ("SeriesInstanceUID", 0x0020000E),
    ("StudyInstanceUID", 0x0020000D),
    ("PatientID", 0x00100020),
    ("Modality", 0x00080060),
    ("SOPClassUID", 0x00080016),
)

#: Header values longer than this are deferred by ingest's reader (never read: pixel data);
#: the receivers' records (:mod:`oncohybrid.pacs.header_values`) must defer the same.
DEFER_SIZE = 64 * 1024
#: (7FE0,0010) Pixel Data, (7FE0,0008) Float and (7FE0,0009) Double Float Pixel Data.
PIXEL_DATA_TAGS: tuple[int, ...] = (0x7FE00010, 0x7FE00008, 0x7FE00009)

#: The top-level attributes whose values :func:`record_from_values` reads (besides the
#: (0054,0016) Radiopharmaceutical Information Sequence, read by the caller).
RECORD_TAGS: tuple[int, ...] = (
    0x00080016, 0x00080018, 0x00080020, 0x00080021, 0x00080030, 0x00080031, 0x00080050,
    0x00080060, 0x00080070, 0x00081030, 0x0008103E, 0x00081090, 0x00100010, 0x00100020,
    0x00100021, 0x00100030, 0x00100040, 0x00180015, 0x0020000D, 0x0020000E, 0x00200010,
    0x00200011, 0x00200013, 0x00200052, 0x00541001,
)


class SkipFile(Exception):
    """A file that is reported and skipped; ``reason`` says why."""

    def __init__(self, reason: str, *, missing_tag: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        #: the required attribute that was absent (to tell a cut file from a bad one)
        self.missing_tag = missing_tag


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

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Pickled once per received instance (receiver -> listener, #11): the fields in
        # order for the constructor, instead of the slots dataclass's __getstate__ and
        # __setstate__ (Python functions over fields()): ~3 -> ~1.5 us each way.
        return (HeaderRecord, _FIELDS(self))


_FIELDS = operator.attrgetter(*(f.name for f in dataclasses.fields(HeaderRecord)))


def _text(value: Any, max_len: int) -> str | None:
    """A database-safe string: multi-values joined by '\\', NULs removed, cut to length."""
    if value is None:
        return None
    if type(value) is not str:
        if isinstance(value, list | tuple | MultiValue):
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


#: Python codecs for (0008,0005) *Specific Character Set* values that are decoded
#: directly from the raw bytes (PS3.3 §C.12.1.1.2); other character sets (ISO 2022 code
#: extensions) go through pydicom's full conversion.
FAST_CODECS = {
    "": "latin-1",  # default repertoire; real files often hold Latin-1 without saying so
    "ISO_IR 6": "latin-1",
    "ISO_IR 100": "latin-1",
    "ISO 2022 IR 6": "latin-1",
    "ISO 2022 IR 100": "latin-1",
    "ISO_IR 192": "utf-8",
}


def record_from_values(
    get: Callable[[int], Any],
    *,
    missing: Callable[[int], bool],
    radiopharmaceutical: Callable[[], str | None],
    transfer_syntax_uid: str | None = None,
    known_series: Container[str] = (),
) -> HeaderRecord:
    """The record of one instance from its attribute values; :class:`SkipFile` if unusable.

    ``get(tag)`` returns a top-level value (text, a pydicom value, or None when absent
    or unreadable), ``missing(tag)`` whether the element is absent (to word the refusal),
    ``radiopharmaceutical()`` the (0054,0016) text (called last, as before). For a series
    in ``known_series`` (already read in this run) only the required and instance-level
    attributes are extracted (``full=False``): the patient, study and series rows come
    from the series' first instance.
    """
    values: dict[str, str] = {}
    for keyword, tag in REQUIRED_ATTRIBUTES:
        value = _text(get(tag), 1024)
        if not value:
            absent = missing(tag)
            raise SkipFile(
                f"required attribute ({tag >> 16:04X},{tag & 0xFFFF:04X}) {keyword} "
                f"{'missing' if absent else 'empty'}",
                missing_tag=tag if absent else None,
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
        radiopharmaceutical=radiopharmaceutical(),
        units=_text(get(0x00541001), 32),
        instance_number=_int(get(0x00200013)),
        transfer_syntax_uid=transfer_syntax_uid,
    )


@functools.lru_cache(maxsize=256)
def is_image_storage(sop_class_uid: str) -> bool:
    """Whether a SOP Class is an image storage class (its IOD has Pixel Data)."""
    return UID(sop_class_uid).name.endswith("Image Storage")


def raw_image_int(value: Any, tag: int, little: bool) -> int | None:
    """An Image Pixel US value, or (0028,0008) IS, read from its raw bytes, else None."""
    if not isinstance(value, bytes):
        return None
    if tag == 0x00280008:  # Number of Frames, IS
        text = value.strip(b" \x00")
        return int(text) if text.isdigit() else None
    if len(value) != 2:
        return None
    return int.from_bytes(value, "little" if little else "big")


def pixel_length_clear(get_raw: Callable[[int], Any], available: int, little: bool) -> bool:
    """Whether native Pixel Data of ``available`` bytes surely holds what the Image Pixel
    attributes imply (PS3.5 §8.1.1: Rows x Columns x Samples x Frames x Bits / 8).

    ``get_raw(tag)`` returns the raw value bytes (or None). False means "not decided
    here" (``oncohybrid.dicom.validate.pixel_data_problem`` judges), not "short".
    """
    dims = [raw_image_int(get_raw(t), t, little) for t in (0x00280010, 0x00280011, 0x00280100)]
    if None in dims:
        return False
    spp = raw_image_int(get_raw(0x00280002), 0x00280002, little) or 1
    frames = raw_image_int(get_raw(0x00280008), 0x00280008, little) or 1
    rows, cols, bits = dims
    assert rows is not None and cols is not None and bits is not None
    return available * 8 >= rows * cols * bits * spp * frames
