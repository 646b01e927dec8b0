"""Reading the PET header values the SUV needs, strictly (PS3.5 Table 6.2-1 DA/TM/DT
forms, DS/IS numbers, private elements through their creator, PS3.5 7.8.1), and the
per-slice/frame times and scale factors (PS3.3 C.8.9.4, C.7.6.16.2.2).

Nothing here decides anything: a present but invalid value raises
:class:`~oncohybrid.errors.SUVHeaderError` naming the attribute; an absent one is ``None``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from oncohybrid.errors import SUVHeaderError

PHILIPS_CREATOR = "Philips PET Private Group"
GE_PET_CREATOR = "GEMS_PETD_01"
SIEMENS_PT_CREATOR = "SIEMENS MED PT"
_MAX_FRAME_MS = 1e9  # 11.6 days: Frame Reference Time / Actual Frame Duration


def _iso(v: datetime | None) -> str | None:
    return v.isoformat() if v is not None else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):  # private elements read as UN
        value = value.decode("ascii", "replace").strip("\x00 ")
    elif isinstance(value, MultiValue | list | tuple):  # converted VM > 1: DICOM's form
        value = "\\".join(str(v) for v in value)
    s = str(value).strip()
    return s or None


def _num(value: Any) -> float | None:
    s = _text(value)
    if s is None:
        return None
    if "\\" in s:
        s = s.split("\\", 1)[0]
    try:
        x = float(s)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _get(ds: Dataset, tag: int) -> Any:
    """Element value; a not-yet-converted (raw) element of a text VR comes back as its
    bytes, which :func:`_text`/:func:`_num` decode. ``Dataset.get_item`` skips pydicom's
    per-element conversion (~17 µs each), the dominant cost on a 400-slice series."""
    el = ds.get_item(tag)
    if el is None:
        return None
    if isinstance(el, RawDataElement) and el.VR in _TEXT_VRS:
        return el.value
    return ds[tag].value


_TEXT_VRS = frozenset({"DS", "IS", "TM", "DA", "DT", "CS", "LO", "SH", "UI"})


# Strict PS3.5 Table 6.2-1 forms: pydicom's DT/TM accept a valid prefix ("2025XX…" read as
# 2025-01-01 00:00), which silently moved an injection by hours.
_TM_RE = re.compile(r"(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,6}))?)?)?")
_DA_RE = re.compile(r"\d{8}")
# A time (not just a date) is needed wherever a DT is used here: at least YYYYMMDDHHMM.
_DT_RE = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(?:(\d{2})(?:\.(\d{1,6}))?)?"
                    r"([+-]\d{4})?")
_TZ_RE = re.compile(r"([+-])(\d{2})(\d{2})")


@lru_cache(maxsize=4096)
def _parse_tm(s: str) -> time | None:
    m = _TM_RE.fullmatch(s.replace(":", ""))  # ACR-NEMA "HH:MM:SS" still occurs
    if m is None:
        return None
    h, mi, se, frac = m.groups()
    try:
        return time(int(h), int(mi or 0), int(se or 0), int((frac or "0").ljust(6, "0")))
    except ValueError:
        return None


@lru_cache(maxsize=1024)
def _parse_da(s: str) -> date | None:
    s = s.replace(".", "").replace("-", "")
    if _DA_RE.fullmatch(s) is None:
        return None
    try:
        return datetime.strptime(s, "%Y%m%d").date()
    except ValueError:
        return None


def _tz(offset: str | None) -> timezone | None:
    m = _TZ_RE.fullmatch(offset or "")
    if m is None or int(m.group(2)) > 14 or int(m.group(3)) > 59:
        return None
    delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
    return timezone(-delta if m.group(1) == "-" else delta)


@lru_cache(maxsize=4096)
def _parse_dt(s: str, tz_offset: str | None) -> tuple[datetime, bool] | None:
    """DT → naive local datetime; a UTC offset is converted to (0008,0201) *Timezone Offset
    From UTC* when known, else dropped. Returns (datetime, had_offset_dropped)."""
    m = _DT_RE.fullmatch(s)
    if m is None:
        return None
    y, mo, d, h, mi, se, frac, off = m.groups()
    tzinfo = None
    if off is not None:
        tzinfo = _tz(off)
        if tzinfo is None:
            return None
    try:
        dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(se or 0),
                      int((frac or "0").ljust(6, "0")), tzinfo)
    except ValueError:
        return None
    if tzinfo is None:
        return dt, False
    local = _tz(tz_offset)
    if local is not None:
        try:
            return dt.astimezone(local).replace(tzinfo=None), False
        except OverflowError:
            return None
    return dt.replace(tzinfo=None), True


def _strict_da_tm(ds: Dataset, da_tag: int, tm_tag: int, da_name: str, tm_name: str,
                  fallback_date: date | None = None) -> datetime | None:
    """Date + time of day; ``None`` when either is absent, :class:`SUVHeaderError` naming the
    attribute when one is present but not a valid DA/TM."""
    da_s, tm_s = _text(_get(ds, da_tag)), _text(_get(ds, tm_tag))
    d = None
    if da_s is not None:
        d = _parse_da(da_s)
        if d is None:
            raise SUVHeaderError(f"{da_name} {da_s!r} is not a valid date (DA YYYYMMDD)")
    t = None
    if tm_s is not None:
        t = _parse_tm(tm_s)
        if t is None:
            raise SUVHeaderError(f"{tm_name} {tm_s!r} is not a valid time (TM HHMMSS.FFFFFF)")
    d = d or fallback_date
    return datetime.combine(d, t) if d is not None and t is not None else None


def _strict_dt(value: Any, tz: str | None, name: str) -> datetime | None:
    s = _text(value)
    if s is None:
        return None
    parsed = _parse_dt(s, tz)
    if parsed is None:
        raise SUVHeaderError(f"{name} {s!r} is not a valid date-time (DT "
                             "YYYYMMDDHHMM[SS[.FFFFFF]][&ZZXX], a time of day included)")
    return parsed[0]


def _strict_num(ds: Dataset, tag: int, name: str) -> float | None:
    """Numeric (DS/IS) value; ``None`` when absent, :class:`SUVHeaderError` when present
    but not a finite number."""
    raw = _text(_get(ds, tag))
    if raw is None:
        return None
    x = _num(raw)
    if x is None:
        raise SUVHeaderError(f"{name} {raw!r} is not a finite number")
    return x


def _private_value(ds: Dataset, group: int, creator: str, offset: int,
                   allow_fallback: bool, slot_cache: dict[tuple[int, str], int] | None = None
                   ) -> tuple[Any, str | None]:
    """Value of private element (gggg,xxOO) of ``creator`` via pydicom's private block.

    ``slot_cache`` remembers the block slot xx found by :meth:`Dataset.private_block` for
    one slice; the next slice is checked with one look-up of its (gggg,00xx) creator and
    only falls back to a full ``private_block`` search when that differs.
    When no creator element reserves the block but (gggg,10OO) is present and
    ``allow_fallback`` (the manufacturer matches or is unknown), the conventional element
    number is used and a note returned (IBSI DRO_2_4/2_5/3_3 carry no creator).
    """
    key = (group, creator)
    slot = slot_cache.get(key) if slot_cache is not None else None
    if slot is None or _text(_get(ds, (group << 16) | slot)) != creator:
        try:
            slot = ds.private_block(group, creator).block_start >> 8
        except KeyError:
            slot = None
        if slot is not None and slot_cache is not None:
            slot_cache[key] = slot
    if slot is not None:
        return _get(ds, (group << 16) | (slot << 8) | offset), None
    tag = (group << 16) | 0x1000 | offset
    if allow_fallback and tag in ds and ((group << 16) | 0x0010) not in ds:
        return _get(ds, tag), (
            f"({group:04X},{0x1000 | offset:04X}) read by its conventional element number: "
            f"no private creator '{creator}' in the file"
        )
    return None, None


# ---------------------------------------------------------------------------------------
# Per-slice/frame headers
# ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Frame:
    key: str
    acq: datetime | None
    frame_ref_ms: float | None
    duration_ms: float | None
    decay_factor: float | None
    intercept: float
    slope: float | None = None
    suvsf: float | None = None
    acsf: float | None = None


def _frames(datasets: Sequence[Dataset], series_date: date | None, need_philips: bool,
            philips_fallback: bool, notes: set[str]) -> list[_Frame]:
    if len(datasets) == 1 and int(_num(_get(datasets[0], 0x00280008)) or 1) > 1 \
            and "PerFrameFunctionalGroupsSequence" in datasets[0]:
        return _enhanced_frames(datasets[0], notes)
    out: list[_Frame] = []
    slots: dict[tuple[int, str], int] = {}
    for i, ds in enumerate(datasets):
        acq = _strict_dt(_get(ds, 0x0008002A), _text(_get(ds, 0x00080201)),
                         "(0008,002A) Acquisition DateTime")
        if acq is None:
            acq = _strict_da_tm(ds, 0x00080022, 0x00080032, "(0008,0022) Acquisition Date",
                                "(0008,0032) Acquisition Time", series_date)
        uid = _text(_get(ds, 0x00080018)) or str(i)
        fr = _Frame(
            key=uid,
            acq=acq,
            frame_ref_ms=_frame_ms(ds, 0x00541300, "(0054,1300) Frame Reference Time", uid),
            duration_ms=_frame_ms(ds, 0x00181242, "(0018,1242) Actual Frame Duration", uid),
            decay_factor=_num(_get(ds, 0x00541321)),
            intercept=_strict_num(ds, 0x00281052, "(0028,1052) Rescale Intercept") or 0.0,
            slope=_strict_num(ds, 0x00281053, "(0028,1053) Rescale Slope"),
        )
        if need_philips:
            v, note = _private_value(ds, 0x7053, PHILIPS_CREATOR, 0x00, philips_fallback, slots)
            fr.suvsf = _num(v)
            if note:
                notes.add(note)
            v, note = _private_value(ds, 0x7053, PHILIPS_CREATOR, 0x09, philips_fallback, slots)
            fr.acsf = _num(v)
            if note:
                notes.add(note)
        out.append(fr)
    return out


def _frame_ms(ds: Dataset, tag: int, name: str, key: str) -> float | None:
    v = _strict_num(ds, tag, name)
    if v is not None and abs(v) > _MAX_FRAME_MS:
        raise SUVHeaderError(f"{name} {v:g} ms in {key} is over {_MAX_FRAME_MS:g} ms "
                             "(11.6 days): not a PET frame")
    return v


def _enhanced_frames(ds: Dataset, notes: set[str]) -> list[_Frame]:
    """Frames of an Enhanced PET object (PS3.3 C.7.6.16.2.2 Frame Content, C.8.22)."""
    shared = (ds.get("SharedFunctionalGroupsSequence") or [Dataset()])[0]
    tz = _text(_get(ds, 0x00080201))
    out: list[_Frame] = []
    for i, fg in enumerate(ds.PerFrameFunctionalGroupsSequence):
        content = (fg.get("FrameContentSequence") or [Dataset()])[0]
        pvt = (fg.get("PixelValueTransformationSequence")
               or shared.get("PixelValueTransformationSequence") or [Dataset()])[0]
        acq = _strict_dt(_get(content, 0x00189074), tz,
                         f"(0018,9074) Frame Acquisition DateTime of frame {i + 1}")
        out.append(_Frame(
            key=str(i),
            acq=acq,
            frame_ref_ms=None,  # enhanced PET gives Frame Reference DateTime instead
            duration_ms=_frame_ms(content, 0x00189220, "(0018,9220) Frame Acquisition "
                                  "Duration", f"frame {i + 1}"),
            decay_factor=None,
            intercept=_strict_num(pvt, 0x00281052, "(0028,1052) Rescale Intercept") or 0.0,
            slope=_strict_num(pvt, 0x00281053, "(0028,1053) Rescale Slope"),
        ))
    notes.add("enhanced multi-frame object: per-frame times from Frame Content Sequence")
    return out
