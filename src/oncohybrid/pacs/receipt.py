"""Receipt checks of a C-STORE request: is the data set the instance the command announces?

PS3.4 §B.2.3 leaves it to the Storage SCP to refuse what it cannot store as the SOP
class says; Table B.2-1 gives the statuses. The listener acknowledges an instance only
once it is on disk, so whatever it acknowledges must be what the sender meant:

* the data set's (0008,0018) *SOP Instance UID* and (0008,0016) *SOP Class UID* are
  those of the command's (0000,1000) *Affected SOP Instance UID* and (0000,0002)
  *Affected SOP Class UID* (PS3.7 §9.1.1.1, Table 9.1-1: the data set "of the SOP
  Instance to be stored") - otherwise 0xA900 "Data Set does not match SOP Class";
* for the image storage classes whose IOD fixes (0008,0060) *Modality* (CT, PET, MR,
  NM: PS3.3 A.3, A.21 with the PET Series Module C.8.9.1, A.4, A.5 and their enhanced
  and legacy-converted forms), a data set that says it is another of these modalities
  is refused with 0xA900 too (a CT relabelled as PET would otherwise be quantified as
  PET). NM under a PET class and PT under the NM class are let through: converters
  store SPECT reconstructions as PET, and which tracer and criteria apply is decided
  downstream, where the tracer is known, not by refusing the study at the door;
* native (uncompressed) (7FE0,0010) *Pixel Data* must hold the bytes Rows x Columns x
  Samples per Pixel x Number of Frames x Bits Allocated imply (PS3.5 §8.1.1, PS3.3
  C.7.6.3; measured by :func:`oncohybrid.dicom.validate.pixel_data_problem`, the same
  words as at folder ingest) - otherwise a "cannot understand" failure (Cxxx).

Failures carry an (0000,0902) *Error Comment* (at most 64 characters, VR LO) and the
(0000,0901) *Offending Element* tags (PS3.7 C.4.2), so a PACS administrator can read
what was wrong on the sender's side.
"""

from __future__ import annotations

import functools

from pydicom.dataset import Dataset
from pydicom.uid import UID

from oncohybrid.dicom.validate import pixel_data_problem
from oncohybrid.pacs.fastpath import StoreStatus
from oncohybrid.pacs.integrity import ReceivedHeader

STATUS_DOES_NOT_MATCH = 0xA900  # PS3.4 Table B.2-1: Data Set does not match SOP Class
STATUS_PIXEL_DATA_SHORT = 0xC212  # PS3.4 Table B.2-1: Cxxx, cannot understand

_SOP_CLASS = 0x00080016
_SOP_INSTANCE = 0x00080018
_MODALITY = 0x00080060
_PIXEL_DATA = 0x7FE00010
_IMAGE_ATTRIBUTES = (0x00280010, 0x00280011, 0x00280100, 0x00280002, 0x00280008)

_CT, _PT, _MR, _NM = "CT", "PT", "MR", "NM"
#: Storage SOP classes whose IOD fixes the Modality (PS3.4 Table B.5-1, PS3.3 Annex A).
MODALITY_OF_SOP_CLASS: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.2": _CT,  # CT Image
    "1.2.840.10008.5.1.4.1.1.2.1": _CT,  # Enhanced CT Image
    "1.2.840.10008.5.1.4.1.1.2.2": _CT,  # Legacy Converted Enhanced CT Image
    "1.2.840.10008.5.1.4.1.1.128": _PT,  # Positron Emission Tomography Image
    "1.2.840.10008.5.1.4.1.1.128.1": _PT,  # Legacy Converted Enhanced PET Image
    "1.2.840.10008.5.1.4.1.1.130": _PT,  # Enhanced PET Image
    "1.2.840.10008.5.1.4.1.1.4": _MR,  # MR Image
    "1.2.840.10008.5.1.4.1.1.4.1": _MR,  # Enhanced MR Image
    "1.2.840.10008.5.1.4.1.1.4.4": _MR,  # Legacy Converted Enhanced MR Image
    "1.2.840.10008.5.1.4.1.1.20": _NM,  # Nuclear Medicine Image
}
_FIXED_MODALITIES = frozenset(MODALITY_OF_SOP_CLASS.values())
_NUCLEAR = frozenset({_PT, _NM})  # emission imaging either way: not refused at receipt


def _short(uid: str | None) -> str:
    """A UID short enough for a 64-character Error Comment."""
    if uid is None:
        return "none"
    return uid if len(uid) <= 24 else uid[:10] + "..." + uid[-10:]


def check_received(
    sop_class_uid: str, sop_instance_uid: str, transfer_syntax_uid: str, header: ReceivedHeader
) -> StoreStatus | None:
    """The failure to answer for this C-STORE, or None when the data set may be stored.

    `sop_class_uid`/`sop_instance_uid` come from the command, `header` from the data set
    (:func:`oncohybrid.pacs.integrity.read_header`).

    >>> from oncohybrid.pacs.integrity import ReceivedHeader
    >>> h = ReceivedHeader("1.2.840.10008.5.1.4.1.1.2", "1.2.3", "CT", 2, 2, 16, 1, None, 8)
    >>> check_received("1.2.840.10008.5.1.4.1.1.2", "1.2.3", "1.2.840.10008.1.2.1", h) is None
    True
    >>> check_received("1.2.840.10008.5.1.4.1.1.2", "1.2.4", "1.2.840.10008.1.2.1", h).status
    43264
    """
    if header.sop_instance_uid != sop_instance_uid:
        return StoreStatus(
            STATUS_DOES_NOT_MATCH,
            f"data set SOP Instance UID {_short(header.sop_instance_uid)} != command's"[:64],
            (_SOP_INSTANCE,),
        )
    if header.sop_class_uid != sop_class_uid:
        return StoreStatus(
            STATUS_DOES_NOT_MATCH,
            f"data set SOP Class UID {_short(header.sop_class_uid)} != command's"[:64],
            (_SOP_CLASS,),
        )
    implied = MODALITY_OF_SOP_CLASS.get(sop_class_uid)
    if (
        implied is not None
        and header.modality in _FIXED_MODALITIES
        and header.modality != implied
        and not {header.modality, implied} <= _NUCLEAR
    ):
        return StoreStatus(
            STATUS_DOES_NOT_MATCH,
            f"Modality {header.modality} under a SOP class for {implied} images",
            (_MODALITY,),
        )
    if header.pixel_data_bytes is not None and not _encapsulated(transfer_syntax_uid):
        problem = _pixel_problem(header)
        if problem is not None:
            return StoreStatus(
                STATUS_PIXEL_DATA_SHORT,
                f"Pixel Data {header.pixel_data_bytes} bytes, attributes imply more"[:64],
                (_PIXEL_DATA, *_IMAGE_ATTRIBUTES),
                detail=problem,
            )
    return None


def _pixel_problem(header: ReceivedHeader) -> str | None:
    if header.rows is None or header.columns is None or header.bits_allocated is None:
        return None  # not an image the attributes describe: nothing to measure against
    return _pixel_problem_of(header.rows, header.columns, header.bits_allocated,
                             header.samples_per_pixel, header.number_of_frames,
                             header.pixel_data_bytes)


@functools.lru_cache(maxsize=256)
def _pixel_problem_of(
    rows: int, columns: int, bits_allocated: int, samples_per_pixel: int | None,
    number_of_frames: str | None, pixel_data_bytes: int | None,
) -> str | None:
    # the instances of a series share these values: a pydicom Dataset per instance cost
    # three times the rest of the receipt checks, one per distinct geometry does not
    ds = Dataset()
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = bits_allocated
    if samples_per_pixel is not None:
        ds.SamplesPerPixel = samples_per_pixel
    if number_of_frames:
        try:
            ds.NumberOfFrames = int(number_of_frames)
        except ValueError:
            return None  # an unreadable IS: ingest reports it, not a length question
    return pixel_data_problem(ds, available_bytes=pixel_data_bytes)


@functools.lru_cache(maxsize=64)
def _encapsulated(transfer_syntax_uid: str) -> bool:
    ts = UID(transfer_syntax_uid)
    # unknown syntaxes are read as explicit VR little endian elsewhere: judge them native
    return bool(ts.is_transfer_syntax and ts.is_encapsulated)
