"""Apply the PS3.15 Annex E Basic Profile and options to one pydicom dataset, in place.

Every element, in every nested sequence item, gets the action of its Table E.1-1 row
(:mod:`oncohybrid.deid.table`) under the chosen options (PS3.15 §E.3: an option's action
replaces the basic one). Compound actions keep the attribute when they can (``X/Z`` → Z,
``X/D``/``Z/D``/``X/Z/D`` → D) so Type 1 and 2 attributes stay present. Dates (DA, DT)
under *Retain Longitudinal Temporal Information with Modified Dates* are shifted by the
patient's whole-day offset and times of day are kept, so every interval — injection to
acquisition, decay correction, hence the SUV — is unchanged (PS3.15 §E.3.6). Attributes
the table does not list are kept, except that as a safety net unlisted person names are
emptied, unlisted non-registered UIDs are replaced, unlisted dates shifted, and unlisted
free text (e.g. (0070,0081) *Content Description* of our own SEGs, "Tracked lesions of
YYYYMMDD") loses the patient's identifiers and any calendar date written in it.

Then (0012,0062) *Patient Identity Removed* = YES, (0012,0063) *De-identification Method*
and (0012,0064) *De-identification Method Code Sequence* (CID 7050), and (0028,0303)
*Longitudinal Temporal Information Modified* are set (PS3.15 §E.1.1, PS3.3 C.7.1.1).

Reference: DICOM PS3.15 Annex E "Attribute Confidentiality Profiles" (2024b).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.errors import BytesLengthException
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import UID_dictionary

from oncohybrid.deid.profile import BASIC_PROFILE_CODE, OPTION_CODES, SAFE_PRIVATE, Option
from oncohybrid.deid.table import ActionTable, load_table

_COMPOUND = {"X/Z": "Z", "X/D": "D", "Z/D": "D", "X/Z/D": "D", "X/Z/U*": "U*"}
_DUMMY_TEXT = "ANONYMIZED"
_TEXT_VRS = {"LO", "SH", "LT", "ST", "UT", "UC", "AE", "CS"}
#: Free-text VRs whose unlisted attributes are scrubbed (codes, CS, are not free text).
_FREE_TEXT_VRS = {"LO", "SH", "LT", "ST", "UT", "UC"}
_NUMBER_DUMMY = {"DS": "0", "IS": "0", "US": 0, "SS": 0, "UL": 0, "SL": 0, "FL": 0.0,
                 "FD": 0.0, "UV": 0, "SV": 0}
#: Modalities whose images commonly carry burned-in text (PS3.15 §E.3.1 and the
#: RSNA CTP/deid filter rules): ultrasound, angiography, fluoroscopy, secondary capture,
#: endoscopy/photography, documents.
BURNED_IN_MODALITIES = frozenset({"US", "XA", "RF", "SC", "OT", "ES", "XC", "GM", "SM",
                                  "DOC", "DX"})
_SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"
_ENCAPSULATED_PREFIX = "1.2.840.10008.5.1.4.1.1.104"
PATIENT_ID = 0x00100020
PATIENT_NAME = 0x00100010


@dataclass(frozen=True)
class PatientKey:
    """What replaces a patient's identity: the pseudonym and the whole-day date shift."""

    pseudonym: str
    date_shift_days: int


@dataclass
class Outcome:
    """What one dataset's de-identification did (no original value anywhere).

    ``changes`` counts (tag text, attribute name, action) triples; ``burned_in`` gives the
    reason pixels may carry identifying text (None when none is known).
    """

    changes: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    burned_in: str | None = None


def shift_date(value: str, days: int) -> str:
    """Shift a DA value (``YYYYMMDD``, also a ``-`` range) by ``days``; '' if unreadable."""
    parts = value.strip().split("-")
    out = []
    for part in parts:
        if not part:
            out.append("")
            continue
        try:
            d = dt.datetime.strptime(part[:8], "%Y%m%d").date()
        except ValueError:
            return ""
        out.append((d + dt.timedelta(days=days)).strftime("%Y%m%d"))
    return "-".join(out)


_DT = re.compile(r"^(\d{8})(.*)$")


def shift_datetime(value: str, days: int) -> str:
    """Shift the date part of a DT value, keeping time of day and UTC offset; '' if unreadable."""
    m = _DT.match(value.strip())
    if m is None:
        return ""
    shifted = shift_date(m.group(1), days)
    return shifted + m.group(2) if shifted else ""


def clean_text(text: str, identifiers: Iterable[str]) -> str:
    """``text`` with every identifier (case-insensitive) and long digit run removed."""
    out = text
    for ident in sorted({i for i in identifiers if len(i) >= 2}, key=len, reverse=True):
        out = re.sub(re.escape(ident), "", out, flags=re.IGNORECASE)
    return re.sub(r"\d{5,}", "", out).strip()


#: Calendar dates as people write them in free text (also what researchers' pages withhold,
#: web/areas.py and web/boards.py): 20261106, 2026-11-06, 2026.11.06,
#: 2026/11/06, 06/11/2026, 06.11.2026, 06-11-2026.
TEXT_DATES = re.compile(
    r"(?<!\d)(?:(?:19|20)\d{2}(?:[-./]?)(?:0[1-9]|1[0-2])(?:[-./]?)(?:0[1-9]|[12]\d|3[01])"
    r"|(?:0?[1-9]|[12]\d|3[01])[-./](?:0?[1-9]|1[0-2])[-./](?:19|20)\d{2})(?!\d)")


def scrub_unlisted_text(text: str, identifiers: Iterable[str]) -> str:
    """``text`` of an attribute Table E.1-1 does not list, without the patient's identifiers
    (as whole words, so "Fluorodeoxyglucose" survives a patient called "Gluck"), calendar
    dates in any common spelling, or digit runs of 5 or more; spaces tidied."""
    out = TEXT_DATES.sub("", text)
    for ident in sorted({i for i in identifiers if len(i) >= 2}, key=len, reverse=True):
        out = re.sub(r"(?<![0-9A-Za-z])" + re.escape(ident) + r"(?![0-9A-Za-z])", "", out,
                     flags=re.IGNORECASE)
    out = re.sub(r"\d{5,}", "", out)
    out = re.sub(r"\(\s*[,;]?\s*\)", "", out)  # brackets left empty
    return re.sub(r"\s{2,}", " ", out).strip(" ,;")


def identifiers_of(ds: Dataset) -> list[str]:
    """The patient's identifying strings (name parts, IDs, birth date, accession)."""
    found: list[str] = []
    for kw in ("PatientID", "AccessionNumber", "PatientBirthDate", "OtherPatientIDs",
               "PatientName", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName"):
        value = ds.get(kw)
        if value is None:
            continue
        values = value if isinstance(value, MultiValue) else [value]
        for v in values:
            s = str(v)
            found.append(s)
            found.extend(p for p in re.split(r"[\^=\s,]+", s) if len(p) >= 3)
    return [f for f in found if f]


def burned_in_reason(ds: Dataset) -> str | None:
    """Why pixels may hold burned-in text: (0028,0301) YES, or modality/SOP class rules."""
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        return "(0028,0301) Burned In Annotation is YES"
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class.startswith(_ENCAPSULATED_PREFIX):
        return "encapsulated document: its content is not cleaned"
    if "PixelData" not in ds and "FloatPixelData" not in ds:
        return None
    if sop_class.startswith(_SECONDARY_CAPTURE_PREFIX):
        return "secondary capture images often carry burned-in text"
    modality = str(ds.get("Modality", "")).upper()
    if modality in BURNED_IN_MODALITIES and str(ds.get("BurnedInAnnotation", "")).upper() != "NO":
        return f"modality {modality} without (0028,0301) NO"
    return None


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _is_registered_uid(uid: str) -> bool:
    return uid in UID_dictionary or uid.startswith("1.2.840.10008.")


class Deidentifier:
    """De-identifies datasets of one patient under a set of options.

    ``uid_map`` returns the replacement of an original UID (consistent per UID: the
    service keeps the map in its key store).
    """

    def __init__(self, key: PatientKey, uid_map: Callable[[str], str],
                 options: frozenset[Option], *, table: ActionTable | None = None,
                 identifiers: Iterable[str] = ()) -> None:
        self.key = key
        self.uid_map = uid_map
        self.options = options
        self.columns = frozenset(o.column for o in options)
        self.table = table or load_table()
        self.identifiers = list(identifiers)
        self.modified_dates = Option.RETAIN_LONGITUDINAL_MODIFIED_DATES in options
        self.full_dates = Option.RETAIN_LONGITUDINAL_FULL_DATES in options

    # -- public -----------------------------------------------------------------------
    def apply(self, ds: Dataset) -> Outcome:
        """De-identify ``ds`` in place (file meta included) and return what was done."""
        outcome = Outcome(burned_in=burned_in_reason(ds))
        ids = self.identifiers + identifiers_of(ds)
        self._dataset(ds, outcome, ids)
        self._record_method(ds)
        meta = getattr(ds, "file_meta", None)
        if meta is not None and "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        return outcome

    # -- recursion --------------------------------------------------------------------
    def _dataset(self, ds: Dataset, outcome: Outcome, ids: list[str]) -> None:
        _decode_or_un(ds)
        keep_private = self._safe_private_tags(ds) if Option.RETAIN_SAFE_PRIVATE in \
            self.options else {}
        for elem in list(ds):
            tag = int(elem.tag)
            if elem.tag.is_private:
                self._private(ds, elem, keep_private, outcome)
                continue
            if tag >> 16 == 0x0002:
                continue
            self._standard(ds, elem, outcome, ids)

    def _safe_private_tags(self, ds: Dataset) -> dict[int, str]:
        """Private tags of ``ds`` on the safe list (creator elements included) → VR."""
        kept: dict[int, str] = {}
        for elem in ds:
            tag = int(elem.tag)
            group, el = tag >> 16, tag & 0xFFFF
            if not (group % 2 and 0x10 <= el <= 0xFF):
                continue
            creator = elem.value.decode("ascii", "replace") if isinstance(elem.value, bytes) \
                else str(elem.value)
            creator = creator.strip().rstrip("\x00").strip()
            for (g, c, offset), vr in SAFE_PRIVATE.items():
                if g == group and c == creator:
                    target = (group << 16) | (el << 8) | offset
                    if target in ds:
                        kept[target] = vr
                        kept[tag] = "LO"
        return kept

    def _private(self, ds: Dataset, elem: DataElement, keep: dict[int, str],
                 outcome: Outcome) -> None:
        tag = int(elem.tag)
        label = (_tag_text(tag), "private", "X")
        if tag not in keep:
            del ds[tag]
            outcome.changes[label] += 1
            return
        vr = keep[tag]
        if vr in ("DT", "DA") and not self.full_dates:
            raw = elem.value.decode("ascii", "replace") if isinstance(elem.value, bytes) \
                else str(elem.value)
            raw = raw.strip().rstrip("\x00").strip()
            new = (shift_datetime(raw, self.key.date_shift_days) if vr == "DT"
                   else shift_date(raw, self.key.date_shift_days)) if self.modified_dates else ""
            if isinstance(elem.value, bytes):
                enc = new.encode("ascii")
                elem.value = enc + b" " * (len(enc) % 2)
            else:
                elem.value = new
            outcome.changes[(_tag_text(tag), "safe private", "C")] += 1
        else:
            outcome.changes[(_tag_text(tag), "safe private", "K")] += 1

    def _standard(self, ds: Dataset, elem: DataElement, outcome: Outcome,
                  ids: list[str]) -> None:
        tag = int(elem.tag)
        rule = self.table.rule_for(tag)
        name = rule.name if rule else (keyword_for_tag(tag) or "unknown")
        if rule is None:
            action = self._unlisted_action(elem)
        else:
            action = rule.action(self.columns)
            action = _COMPOUND.get(action, action)
        if tag in (PATIENT_ID, PATIENT_NAME) and action != "K":
            elem.value = self.key.pseudonym
            outcome.changes[(_tag_text(tag), name, "D")] += 1
            return
        if action == "scrub":
            scrubbed = _each(elem.value, lambda v: scrub_unlisted_text(v, ids))
            if scrubbed != elem.value:  # else kept as it was, and not reported as a change
                elem.value = scrubbed
                outcome.changes[(_tag_text(tag), name, action)] += 1
            return
        if action in ("K", "keep"):
            if elem.VR == "SQ":
                for item in elem.value:
                    self._dataset(item, outcome, ids)
            if rule is not None:
                outcome.changes[(_tag_text(tag), name, "K")] += 1
            return
        outcome.changes[(_tag_text(tag), name, action)] += 1
        if action == "X":
            del ds[tag]
        elif action == "Z":
            elem.value = Sequence() if elem.VR == "SQ" else None
            if elem.VR in _NUMBER_DUMMY or elem.VR in ("AT", "OB", "OW", "UN"):
                elem.value = None
        elif action == "D":
            self._dummy(elem, outcome, ids)
        elif action in ("U", "U*"):
            if elem.VR == "SQ":
                for item in elem.value:
                    self._dataset(item, outcome, ids)
            else:
                self._map_uids(elem)
        elif action == "C":
            self._clean(elem, outcome, ids)
        else:  # pragma: no cover - the table holds only the codes above
            del ds[tag]

    def _unlisted_action(self, elem: DataElement) -> str:
        """Safety net for attributes Table E.1-1 does not list."""
        if elem.VR == "PN":
            return "Z"
        if elem.VR in ("DA", "DT") and not self.full_dates:
            return "C" if self.modified_dates else "keep"
        if elem.VR == "UI":
            values = elem.value if isinstance(elem.value, MultiValue) else [elem.value]
            if any(v and not _is_registered_uid(str(v)) for v in values):
                return "U"
        if elem.VR in _FREE_TEXT_VRS:
            return "scrub"
        return "keep"

    def _map_uids(self, elem: DataElement) -> None:
        if elem.value in (None, ""):
            return
        if isinstance(elem.value, MultiValue):
            elem.value = [self.uid_map(str(v)) if not _is_registered_uid(str(v)) else str(v)
                          for v in elem.value]
        elif not _is_registered_uid(str(elem.value)):
            elem.value = self.uid_map(str(elem.value))

    def _dummy(self, elem: DataElement, outcome: Outcome, ids: list[str]) -> None:
        vr = elem.VR
        if vr == "SQ":
            for item in elem.value:
                self._dataset(item, outcome, ids)
        elif vr == "UI":
            self._map_uids(elem)
        elif vr == "DA":
            elem.value = "19000101"
        elif vr == "DT":
            elem.value = "19000101000000"
        elif vr == "TM":
            elem.value = "000000"
        elif vr == "PN":
            elem.value = _DUMMY_TEXT
        elif vr == "AS":
            elem.value = "000Y"
        elif vr in _NUMBER_DUMMY:
            elem.value = _NUMBER_DUMMY[vr]
        elif vr in _TEXT_VRS:
            elem.value = _DUMMY_TEXT
        else:
            elem.value = None

    def _clean(self, elem: DataElement, outcome: Outcome, ids: list[str]) -> None:
        """C: dates shifted (times of day kept), text cleaned of identifiers, sequences
        cleaned item by item, person names emptied; numbers, codes and ages kept."""
        vr = elem.VR
        days = self.key.date_shift_days
        if vr == "SQ":
            for item in elem.value:
                self._dataset(item, outcome, ids)
        elif vr == "DA":
            elem.value = _each(elem.value, lambda v: shift_date(v, days))
        elif vr == "DT":
            elem.value = _each(elem.value, lambda v: shift_datetime(v, days))
        elif vr == "TM":
            pass  # whole-day shift: the time of day is unchanged
        elif vr == "PN":
            elem.value = ""
        elif vr in _TEXT_VRS and elem.value not in (None, ""):
            elem.value = _each(elem.value, lambda v: clean_text(v, ids))
        elif vr in ("OB", "OW", "UN"):
            elem.value = None

    def _record_method(self, ds: Dataset) -> None:
        ds.PatientIdentityRemoved = "YES"
        ordered = sorted(self.options, key=lambda o: OPTION_CODES[o][0])
        # LO is 64 characters at most: one value per option (VM 1-n).
        ds.DeidentificationMethod = [f"oncohybrid PS3.15 {self.table.edition} Basic Profile",
                                     *(o.value for o in ordered)]
        codes = []
        for value, meaning in [BASIC_PROFILE_CODE, *(OPTION_CODES[o] for o in ordered)]:
            item = Dataset()
            item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
            codes.append(item)
        ds.DeidentificationMethodCodeSequence = Sequence(codes)
        if self.modified_dates:
            ds.LongitudinalTemporalInformationModified = "MODIFIED"
        elif not self.full_dates:
            ds.LongitudinalTemporalInformationModified = "REMOVED"
        else:
            ds.LongitudinalTemporalInformationModified = "UNMODIFIED"


def _decode_or_un(ds: Dataset) -> None:
    """Decode every element of ``ds``; one whose bytes do not fit the VR pydicom assigns it
    (e.g. Philips (01F1,1026) written as text in implicit VR while the private dictionary
    says FD) becomes UN with its bytes unchanged, so the profile's action applies to it
    like any other element instead of the whole file failing."""
    for tag in list(ds.keys()):
        try:
            ds[tag]
        except (BytesLengthException, ValueError, TypeError):
            raw = ds.get_item(tag)
            ds[tag] = DataElement(tag, "UN", bytes(raw.value or b""))


def _each(value: object, fn: Callable[[str], str]) -> object:
    if isinstance(value, MultiValue):
        return [fn(str(v)) for v in value]
    if value in (None, ""):
        return value
    return fn(str(value))
