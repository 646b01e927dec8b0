"""SUV scaling factors for a DICOM PET series, vendor-exact and with provenance.

The factor returned for a slice/frame multiplies its *rescaled* pixel value
``stored × (0028,1053) Rescale Slope + (0028,1052) Rescale Intercept`` (PS3.3 C.8.9.4.1.3,
applied per slice by :func:`oncohybrid.dicom.volume.load_series`) to give SUV:

========  =====================================================================================
Units     factor for normalisation X (size_X in g, or cm² for BSA)
========  =====================================================================================
BQML      ``size_X / D_ref`` with ``D_ref = D_adm · 2^(−(t_ref − t_adm)/T½)``
CNTS      Philips (7053,xx00) *SUV Scale Factor* (× size_X / W), else (7053,xx09) *Activity
          Concentration Scale Factor* × ``size_X / D_ref``; creator "Philips PET Private Group"
GML       SUV already, of the flavour in (0054,1006) *SUV Type* T (absent ⇒ BW): ``size_X/size_T``
CM2ML     SUVbsa already: ``size_X / BSA_cm²``
CPS       with DCAL in (0028,0051) *Corrected Image*: ``1/voxel_ml``, else × (0054,1322) *Dose
          Calibration Factor* ``/voxel_ml``; then as BQML (IBSI SUV manual)
========  =====================================================================================

(0054,1102) *Decay Correction*: ``ADMIN`` ⇒ ``D_ref = D_adm``; ``NONE`` ⇒ per frame
``size_X/D_adm · λT/(1 − e^(−λT)) · e^(λ(t_acq − t_adm))`` (average count rate within a frame
of duration T, (0018,1242) *Actual Frame Duration*); ``START`` ⇒ the reference time is chosen
by the procedure of the project's PET quantification notes (§2.3, QIBA + IBSI + vendor
counter-examples), see :func:`_choose_start_reference`. Every candidate time, the path chosen,
all warnings and user overrides are recorded in :attr:`SUVScaling.provenance`.

References: DICOM PS3.3 C.8.9.1 (PET Series), C.8.9.2 (PET Isotope), C.8.9.4 (PET Image),
C.8.22 (Enhanced PET); QIBA "SUV vendor-neutral pseudo-code" (2013); IBSI SUV computation
manual (Vacha et al.) and its digital reference objects.

Example:
    >>> scaling = compute_suv(read_series("PT/"))          # doctest: +SKIP
    >>> scaling.factor(Normalisation.LBM_JANMA)            # doctest: +SKIP
    0.000512...
    >>> volume, scaling = suv_volume("PT/", normalisation=Normalisation.LBM_JANMA)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from oncohybrid.dicom import bodysize
from oncohybrid.errors import InputError, SUVError, SUVHeaderError

if TYPE_CHECKING:  # pragma: no cover
    import highdicom

__all__ = [
    "SUV_JSON_SCHEMA",
    "PLAUSIBILITY_CHECKS",
    "DecayCorrection",
    "Normalisation",
    "SUVOverrides",
    "SUVScaling",
    "Units",
    "compute_suv",
    "suv_volume",
]

LN2 = math.log(2.0)
PHILIPS_CREATOR = "Philips PET Private Group"
GE_PET_CREATOR = "GEMS_PETD_01"
SIEMENS_PT_CREATOR = "SIEMENS MED PT"
# Z-Rad/MIRP: the day of a TM-only injection cannot be inferred for long-lived nuclides.
_TM_ONLY_MAX_HALF_LIFE_S = 41_400.0
# Z-Rad PR #282: a TM-only injection up to 1 h after the reference clock is not a midnight
# crossing (it gives a negative uptake time, which is refused).
_MIDNIGHT_MIN_OFFSET_S = 3600.0

# Plausible ranges of the SUV inputs (docs/suv.md "Plausibility", with the reasoning). A
# value outside is refused with SUVHeaderError (exit 2) unless its check is named in
# SUVOverrides.allow_implausible; the heuristics (g → kg, cm → m, MBq → Bq) run first.
WEIGHT_RANGE_KG = (0.5, 350.0)  # preterm neonate .. above the largest PET tables (~300 kg)
HEIGHT_RANGE_M = (0.3, 2.75)  # neonate .. tallest recorded human (2.72 m)
DOSE_RANGE_BQ = (1e6, 2e10)  # below paediatric minima (~14 MBq) .. above Lu-177/I-131 therapy
HALF_LIFE_RANGE_S = (60.0, 1e8)  # Rb-82 76 s .. Ge-68 (271 d) / Na-22 QC sources
MAX_UPTAKE_HALF_LIVES = 10.0  # 2^10: under 0.1 % of the activity left at the scan
MIDNIGHT_MAX_HALF_LIVES = 3.0  # previous-day reading of a TM-only start: uptake ≤ 3 T½
# Numbers the arithmetic must never see, even when allowed (no real header is near them).
_HARD_HALF_LIFE_S = (1e-3, 1e12)
_MAX_FRAME_MS = 1e9  # 11.6 days: Frame Reference Time / Actual Frame Duration
PLAUSIBILITY_CHECKS = frozenset({
    "weight", "height", "dose", "half-life", "uptake", "injection-day", "rescale-slope",
    "series-consistency",
})


class Normalisation(StrEnum):
    """SUV normalisation; values are the (0054,1006) *SUV Type* codes (PS3.3 C.8.9.1.1.3)."""

    BW = "BW"
    LBM_JANMA = "LBMJANMA"  # SUL, Janmahasatian 2005: default for PERCIST
    LBM_JAMES128 = "LBMJAMES128"  # James 1976
    LBM_JAMES120 = "LBM"  # "Morgan"/calculate-suv James variant; only by explicit name
    BSA = "BSA"  # Du Bois, cm²
    IBW = "IBW"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def ucum_unit(self) -> str:
        """UCUM unit of the SUV (Slicer RWVM convention)."""
        return "{SUVbsa}cm2/ml" if self is Normalisation.BSA else "{" + _UCUM[self] + "}g/ml"


_LABELS = {
    Normalisation.BW: "SUVbw",
    Normalisation.LBM_JANMA: "SUL (Janmahasatian)",
    Normalisation.LBM_JAMES128: "SUVlbm (James 128)",
    Normalisation.LBM_JAMES120: "SUVlbm (James 120, Morgan)",
    Normalisation.BSA: "SUVbsa",
    Normalisation.IBW: "SUVibw",
}
_UCUM = {
    Normalisation.BW: "SUVbw",
    Normalisation.LBM_JANMA: "SUVlbm",
    Normalisation.LBM_JAMES128: "SUVlbm",
    Normalisation.LBM_JAMES120: "SUVlbm",
    Normalisation.IBW: "SUVibw",
}


class Units(StrEnum):
    """(0054,1001) *Units* values that can be converted to SUV (PS3.3 C.8.9.1.1.3)."""

    BQML = "BQML"
    CNTS = "CNTS"
    GML = "GML"
    CM2ML = "CM2ML"
    CPS = "CPS"


class DecayCorrection(StrEnum):
    """(0054,1102) *Decay Correction* (PS3.3 C.8.9.1.1.6)."""

    START = "START"
    ADMIN = "ADMIN"
    NONE = "NONE"


_REFUSED_UNITS = {
    "PROPCNTS": "proportional to counts (non-quantitative; GE derived/NAC series)",
    "PROPCPS": "proportional to counts per second (Siemens non-quantitative/NAC series)",
    "1CM": "linear attenuation coefficients (µ-map), not activity",
    "NONE": "unitless image",
    "MLMING": "a kinetic-model rate (ml/min/g), not activity",
}


@dataclass(frozen=True)
class SUVOverrides:
    """User-supplied values that replace header values; each is recorded as an override.

    ``injection_time`` may be a full datetime or a time of day (then treated like a TM-only
    (0018,1072), midnight rule included). ``unknown_sex`` decides LBM/IBW for sex O/empty:
    ``"mean"`` of the male and female formulas (IBSI, MIRP) or ``"omit"`` (refuse them).
    """

    dose_bq: float | None = None
    injection_time: datetime | time | None = None
    reference_time: datetime | None = None
    weight_kg: float | None = None
    height_m: float | None = None
    sex: str | None = None
    half_life_s: float | None = None
    unknown_sex: str = "mean"
    time_tolerance_s: float = 2.0
    allow_implausible: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name in ("dose_bq", "weight_kg", "height_m", "half_life_s"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise SUVHeaderError(f"override {name} must be a positive number, got {v!r}")
        if self.sex is not None and self.sex.upper() not in ("M", "F", "O"):
            raise SUVHeaderError(f"override sex must be M, F or O, got {self.sex!r}")
        if self.unknown_sex not in ("mean", "omit"):
            raise SUVHeaderError(
                f"unknown_sex must be 'mean' or 'omit', got {self.unknown_sex!r}")
        object.__setattr__(self, "allow_implausible", frozenset(self.allow_implausible))
        unknown = self.allow_implausible - PLAUSIBILITY_CHECKS - {"all"}
        if unknown:
            raise InputError(
                f"--allow-implausible {', '.join(sorted(unknown))}: not a plausibility check; "
                f"known: all, {', '.join(sorted(PLAUSIBILITY_CHECKS))}")

    def allows(self, check: str) -> bool:
        """True when the user allowed values outside the plausible range of ``check``."""
        return check in self.allow_implausible or "all" in self.allow_implausible

    def given(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("dose_bq", "injection_time", "reference_time", "weight_kg", "height_m",
                     "sex", "half_life_s"):
            v = getattr(self, name)
            if v is not None:
                out[name] = v.isoformat() if isinstance(v, datetime | time) else v
        if self.allow_implausible:
            out["allow_implausible"] = sorted(self.allow_implausible)
        return out


@dataclass(frozen=True)
class SUVScaling:
    """SUV factors of one PET series with everything they were computed from.

    ``factors`` maps each computable normalisation to the factor that multiplies the
    rescaled pixel value. When factors differ between slices/frames (Decay Correction
    NONE, per-slice Philips factors) ``per_slice`` maps (0008,0018) *SOP Instance UID*
    (or the 0-based frame index as a string for one multi-frame object) to per-slice
    factors and ``factors`` holds those of the earliest-acquired slice.
    """

    units: Units
    decay_correction: DecayCorrection
    reference_time: datetime | None
    reference_time_source: str
    injected_dose_bq: float | None
    dose_at_reference_bq: float | None
    half_life_s: float | None
    weight_kg: float | None
    height_m: float | None
    sex: str
    factors: dict[Normalisation, float]
    per_slice: dict[str, dict[Normalisation, float]] | None
    warnings: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    def factor(self, norm: Normalisation = Normalisation.BW,
               sop_instance_uid: str | None = None) -> float:
        """Factor for ``norm`` (and one slice/frame); raises :class:`SUVError` with the reason
        when that normalisation is unavailable (no height, James collapse, ...)."""
        norm = Normalisation(norm)
        if norm not in self.factors:
            reason = self.provenance.get("normalisations", {}).get(norm.value, {}).get(
                "reason", "not computed")
            raise SUVError(f"{norm.label} is not available for this series: {reason}")
        if sop_instance_uid is None:
            if self.per_slice is not None:
                raise SUVError(
                    f"{norm.label} factors differ per slice/frame "
                    f"({self.provenance.get('per_slice_reason', '')}); pass sop_instance_uid"
                )
            return self.factors[norm]
        if self.per_slice is None:
            return self.factors[norm]
        try:
            return self.per_slice[str(sop_instance_uid)][norm]
        except KeyError:
            raise SUVError(
                f"no slice/frame {sop_instance_uid!r} in this series' SUV factors"
            ) from None

    def to_json(self) -> dict[str, Any]:
        """The ``oncohybrid suv --json`` document (schema :data:`SUV_JSON_SCHEMA`), without
        ``suvbw_max`` which needs pixels."""

        def f(norm: Normalisation) -> float | None:
            return self.factors.get(norm)

        per_slice = None
        if self.per_slice is not None:
            per_slice = [
                {"key": key, **{n.value: v for n, v in fs.items()}}
                for key, fs in self.per_slice.items()
            ]
        return {
            "units": self.units.value,
            "decay_correction": self.decay_correction.value,
            "reference_time": _iso(self.reference_time),
            "reference_time_source": self.reference_time_source,
            "injected_dose_bq": self.injected_dose_bq,
            "dose_at_reference_bq": self.dose_at_reference_bq,
            "half_life_s": self.half_life_s,
            "weight_kg": self.weight_kg,
            "height_m": self.height_m,
            "sex": self.sex,
            "suvbw_factor": f(Normalisation.BW),
            "sul_factor": f(Normalisation.LBM_JANMA),
            "suvbsa_factor": f(Normalisation.BSA),
            "suvibw_factor": f(Normalisation.IBW),
            "factors": {n.value: v for n, v in self.factors.items()},
            "per_slice": per_slice,
            "warnings": list(self.warnings),
            "provenance": self.provenance,
        }


_NUM_OR_NULL = {"type": ["number", "null"]}
SUV_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "oncohybrid suv --json",
    "type": "object",
    "required": [
        "units", "decay_correction", "reference_time", "reference_time_source",
        "injected_dose_bq", "dose_at_reference_bq", "suvbw_factor", "sul_factor",
        "suvbsa_factor", "suvibw_factor", "per_slice", "warnings", "provenance",
    ],
    "properties": {
        "units": {"enum": [u.value for u in Units]},
        "decay_correction": {"enum": [d.value for d in DecayCorrection]},
        "reference_time": {"type": ["string", "null"]},
        "reference_time_source": {"type": "string"},
        "injected_dose_bq": _NUM_OR_NULL,
        "dose_at_reference_bq": _NUM_OR_NULL,
        "half_life_s": _NUM_OR_NULL,
        "weight_kg": _NUM_OR_NULL,
        "height_m": _NUM_OR_NULL,
        "sex": {"enum": ["M", "F", "O"]},
        "suvbw_factor": _NUM_OR_NULL,
        "sul_factor": _NUM_OR_NULL,
        "suvbsa_factor": _NUM_OR_NULL,
        "suvibw_factor": _NUM_OR_NULL,
        "suvbw_max": _NUM_OR_NULL,
        "factors": {
            "type": "object",
            "propertyNames": {"enum": [n.value for n in Normalisation]},
            "additionalProperties": {"type": "number"},
        },
        "per_slice": {
            "type": ["array", "null"],
            "items": {"type": "object", "required": ["key"],
                      "properties": {"key": {"type": "string"}}},
        },
        "warnings": {"type": "array", "items": {"type": "string"}},
        "provenance": {"type": "object"},
        "volume_problem": {"type": ["string", "null"]},
    },
}


# ---------------------------------------------------------------------------------------
# Header parsing
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# Time helpers
# ---------------------------------------------------------------------------------------


def _tave_s(duration_s: float, lam: float) -> float:
    """Time of the average count rate within a frame of length T (IBSI SUV manual):
    ``(1/λ)·ln(λT / (1 − e^(−λT)))``."""
    x = lam * duration_s
    return math.log(x / -math.expm1(-x)) / lam if x > 0 else 0.0


def _choose_start_reference(series_dt: datetime | None, frames: list[_Frame],
                            ge_scan_dt: datetime | None, decay_corr_dt: datetime | None,
                            lam: float | None, tol_s: float, warnings: list[str]
                            ) -> tuple[datetime, str, str, dict[str, Any]]:
    """Reference time for Decay Correction START (notes §2.3 decision procedure).

    1. Enhanced PET (0018,9701) *Decay Correction DateTime* when present.
    2. Back-compute per frame ``t_acq + Tave − (0054,1300)/1000`` (FRT > 0, duration > 0);
       consistent within the tolerance ⇒ ``t_bc``.
    3. Series date-time ≤ earliest acquisition + tolerance ⇒ series (QIBA); a disagreeing
       ``t_bc`` is only flagged (Philips frame reference times can be 21 min off).
    4. Otherwise (series after acquisition: post-processed/anonymised): GE private scan
       date-time (0009,xx0D ``GEMS_PETD_01``), else ``t_bc``, else earliest acquisition.
    Returns (time, source, path description, candidates).
    """
    acqs = [f.acq for f in frames if f.acq is not None]
    earliest = min(acqs) if acqs else None
    t_bc = None
    bc_spread = None
    if lam is not None:
        bcs = [
            f.acq + timedelta(seconds=_tave_s(f.duration_ms / 1000.0, lam)
                              - f.frame_ref_ms / 1000.0)
            for f in frames
            if f.acq is not None and f.frame_ref_ms and f.frame_ref_ms > 0
            and f.duration_ms and f.duration_ms > 0
        ]
        if bcs:
            lo, hi = min(bcs), max(bcs)
            bc_spread = (hi - lo).total_seconds()
            if bc_spread <= tol_s:
                t_bc = lo + (hi - lo) / 2
    cand = {
        "series": _iso(series_dt),
        "earliest_acquisition": _iso(earliest),
        "back_computed": _iso(t_bc),
        "back_computed_spread_s": bc_spread,
        "ge_private_scan": _iso(ge_scan_dt),
        "decay_correction_datetime": _iso(decay_corr_dt),
        "tolerance_s": tol_s,
    }

    def off(a: datetime, b: datetime) -> float:
        return (a - b).total_seconds()

    if decay_corr_dt is not None:
        return decay_corr_dt, "decay_correction_datetime", (
            "(0018,9701) Decay Correction DateTime is explicit"), cand
    if series_dt is not None and (earliest is None or off(series_dt, earliest) <= tol_s):
        path = ("Series Date/Time is not after the earliest Acquisition Date/Time: "
                "images are decay-corrected to the series start (QIBA)")
        if t_bc is not None and abs(off(t_bc, series_dt)) > tol_s:
            warnings.append(
                f"back-computed reference time {t_bc.time()} (acquisition + Tave − Frame "
                f"Reference Time) disagrees with Series Time {series_dt.time()} by "
                f"{off(t_bc, series_dt):+.0f} s; Series Time used"
            )
        if ge_scan_dt is not None and abs(off(ge_scan_dt, series_dt)) > tol_s:
            warnings.append(
                f"GE private scan date-time {ge_scan_dt} differs from Series Date/Time "
                f"{series_dt}; Series Date/Time used"
            )
        return series_dt, "series", path, cand
    if series_dt is None and earliest is None and t_bc is None and ge_scan_dt is None:
        raise SUVError(
            "no reference time for Decay Correction START: (0008,0021)/(0008,0031) Series "
            "Date/Time and (0008,0022)/(0008,0032) Acquisition Date/Time are missing"
        )
    lead = (
        f"Series Date/Time {series_dt} is after the earliest acquisition {earliest} "
        "(post-processed or re-exported series)"
        if series_dt is not None else "Series Date/Time missing"
    )
    if ge_scan_dt is not None:
        warnings.append(f"{lead}; GE private scan date-time (0009,xx0D) used")
        return ge_scan_dt, "ge_private_scan_datetime", lead + "; GE private scan date-time", cand
    if t_bc is not None:
        warnings.append(f"{lead}; reference back-computed from Frame Reference Time")
        return t_bc, "back_computed", (
            lead + "; back-computed from acquisition + Tave − Frame Reference Time, "
            "consistent over all frames"), cand
    if bc_spread is not None:
        warnings.append(
            f"back-computed reference times spread over {bc_spread:.1f} s (> {tol_s} s): "
            "not used"
        )
    if earliest is None:
        raise SUVError(f"{lead} and no Acquisition Date/Time to fall back to")
    warnings.append(f"{lead}; earliest Acquisition Date/Time used (QIBA fallback)")
    return earliest, "earliest_acquisition", lead + "; earliest acquisition (QIBA fallback)", cand


# Half-lives by nuclide [recalled from NNDC/DDEP; header (0018,1075) always wins].
_NUCLIDE_HALF_LIFE_S = {
    ("F", 18): 6586.2, ("GA", 68): 4062.6, ("C", 11): 1223.4, ("N", 13): 597.9,
    ("O", 15): 122.24, ("RB", 82): 76.38, ("CU", 64): 45721.1, ("ZR", 89): 282276.0,
}
_ELEMENTS = {"FLUORINE": "F", "GALLIUM": "GA", "CARBON": "C", "NITROGEN": "N",
             "OXYGEN": "O", "RUBIDIUM": "RB", "COPPER": "CU", "ZIRCONIUM": "ZR"}


def _half_life_from_code(item: Dataset) -> tuple[float, str] | None:
    seq = item.get("RadionuclideCodeSequence") or []
    for code in seq:
        meaning = (_text(code.get("CodeMeaning")) or "").upper()
        m = re.search(r"(\d+)", meaning)
        for name, sym in _ELEMENTS.items():
            if m and (name in meaning or re.search(rf"\b{sym}\b", meaning)):
                hl = _NUCLIDE_HALF_LIFE_S.get((sym, int(m.group(1))))
                if hl:
                    return hl, meaning
    return None


# ---------------------------------------------------------------------------------------
# compute_suv
# ---------------------------------------------------------------------------------------


def compute_suv(datasets: Sequence[Dataset], *, overrides: SUVOverrides | None = None
                ) -> SUVScaling:
    """SUV factors for one PET series (headers suffice) with provenance.

    ``datasets`` are the slices of one series (any order) or one Enhanced PET object.
    Raises :class:`SUVError` naming the attribute for refused series: non-quantitative
    Units (PROPCNTS, PROPCPS, 1CM ...), non-attenuation-corrected images (NAC), missing
    weight/dose/half-life where they are needed; :class:`SUVHeaderError` (exit 2) for a
    garbage value, a value outside its plausible range (see ``SUVOverrides.
    allow_implausible``), values that differ between the slices of the series, or a
    negative uptake time.

    >>> s = compute_suv(datasets)                      # doctest: +SKIP
    >>> s.factor(), s.reference_time_source            # doctest: +SKIP
    (0.000427..., 'series')
    """
    try:
        return _compute_suv(datasets, overrides)
    except (OverflowError, ZeroDivisionError) as exc:
        # Last resort: the checks above keep real and implausible-but-allowed headers away
        # from these; a refusal is still better than a traceback.
        raise SUVHeaderError(f"the header values overflow the SUV arithmetic ({exc}); check "
                             "dose, times, half-life and frame durations") from exc


def _compute_suv(datasets: Sequence[Dataset], overrides: SUVOverrides | None
                 ) -> SUVScaling:
    ov = overrides or SUVOverrides()
    tol = ov.time_tolerance_s
    datasets = list(datasets)
    if not datasets:
        raise SUVError("no datasets given")
    first = datasets[0]
    warnings: list[str] = []
    notes: set[str] = set()
    prov: dict[str, Any] = {"overrides": ov.given(), "n_slices": len(datasets)}

    modality = _text(_get(first, 0x00080060))
    if modality is not None and modality != "PT":
        raise SUVError(f"(0008,0060) Modality is {modality!r}, not PT: SUV needs a PET series")
    manufacturer = _text(_get(first, 0x00080070)) or ""
    prov["manufacturer"] = manufacturer

    # --- Units ------------------------------------------------------------------------
    units_s = _text(_get(first, 0x00541001))
    if units_s is None:
        rwvm = first.get("RealWorldValueMappingSequence")
        if rwvm and rwvm[0].get("MeasurementUnitsCodeSequence"):
            code = _text(rwvm[0].MeasurementUnitsCodeSequence[0].get("CodeValue"))
            units_s = {"Bq/ml": "BQML", "{SUVbw}g/ml": "GML"}.get(code or "", code)
    if units_s is None:
        raise SUVError("(0054,1001) Units is missing: cannot tell what the pixel values are")
    units_s = units_s.upper()
    if units_s in _REFUSED_UNITS:
        raise SUVError(f"(0054,1001) Units {units_s} is {_REFUSED_UNITS[units_s]}: "
                      "SUV cannot be computed")
    try:
        units = Units(units_s)
    except ValueError:
        raise SUVError(f"(0054,1001) Units {units_s!r} is not convertible to SUV") from None
    for ds in datasets[1:]:
        u = _text(_get(ds, 0x00541001))
        if u is not None and u.upper() != units_s:
            raise SUVError(f"(0054,1001) Units differ within the series ({units_s} and {u})")

    # --- Corrections ----------------------------------------------------------------
    corrected = first.get("CorrectedImage")
    corr = {str(c).upper() for c in (corrected if isinstance(corrected, Sequence)
                                     and not isinstance(corrected, str) else
                                     [corrected] if corrected else [])}
    prov["corrected_image"] = sorted(corr)
    if corr and "ATTN" not in corr:
        raise SUVError(
            f"(0028,0051) Corrected Image {'/'.join(sorted(corr))} lacks ATTN: the series is "
            "not attenuation-corrected (NAC), SUV would be meaningless; use the AC series"
        )
    if not corr:
        warnings.append("(0028,0051) Corrected Image missing: attenuation/decay correction "
                        "cannot be verified")
    dc_s = _text(_get(first, 0x00541102))
    if dc_s is None and _text(_get(first, 0x00189758)) is not None:  # Enhanced: Decay Corrected
        dc_s = "START" if _text(_get(first, 0x00189758)) == "YES" else "NONE"
    if dc_s is None:
        if corr and not corr & {"DECY", "DECAY"}:
            dc_s = "NONE"
            warnings.append("(0054,1102) Decay Correction missing and no DECY: NONE assumed")
        else:
            dc_s = "START"
            warnings.append("(0054,1102) Decay Correction missing: START assumed")
    try:
        dc = DecayCorrection(dc_s.upper())
    except ValueError:
        raise SUVError(f"(0054,1102) Decay Correction {dc_s!r} is not START, ADMIN or NONE") \
            from None
    if dc is not DecayCorrection.NONE and corr and not corr & {"DECY", "DECAY"}:
        raise SUVError(
            f"(0054,1102) Decay Correction is {dc.value} but (0028,0051) Corrected Image "
            f"{'/'.join(sorted(corr))} lacks DECY: the images are not decay-corrected"
        )
    if dc is DecayCorrection.NONE and corr & {"DECY", "DECAY"}:
        warnings.append("(0028,0051) lists DECY but (0054,1102) Decay Correction is NONE; "
                        "NONE honoured")

    _check_series_consistency(datasets, ov, warnings)

    # --- Patient --------------------------------------------------------------------
    weight_kg, height_m, sex, height_reason = _patient(first, ov, warnings, prov)

    # --- Radiopharmaceutical ----------------------------------------------------------
    rp_seq = first.get("RadiopharmaceuticalInformationSequence") or []
    rp = rp_seq[0] if len(rp_seq) else None
    if len(rp_seq) > 1:
        warnings.append(f"{len(rp_seq)} radiopharmaceutical items; the first is used")
    half_life_s, dose_bq, dose_problem = _isotope(rp, ov, warnings, prov)

    # --- Times --------------------------------------------------------------------------
    tz = _text(_get(first, 0x00080201))
    series_dt = _strict_da_tm(first, 0x00080021, 0x00080031, "(0008,0021) Series Date",
                              "(0008,0031) Series Time")
    series_date = _parse_da(_text(_get(first, 0x00080021)) or "")
    philips_fallback = "PHILIPS" in manufacturer.upper() or not manufacturer
    frames = _frames(datasets, series_date, units is Units.CNTS, philips_fallback, notes)
    _check_slopes(frames, ov, warnings)
    if series_dt is None:
        warnings.append("(0008,0021)/(0008,0031) Series Date/Time missing")
    if any(f.intercept != 0.0 for f in frames):
        warnings.append("(0028,1052) Rescale Intercept ≠ 0 in some slices: applied (IBSI "
                        "never saw this in 3,433 series; check the data)")
    ge_scan_dt = None
    ge_fallback = "GE" in manufacturer.upper() or not manufacturer
    v, note = _private_value(first, 0x0009, GE_PET_CREATOR, 0x0D, ge_fallback)
    if v is not None:
        parsed = _parse_dt(_text(v) or "", tz)
        ge_scan_dt = parsed[0] if parsed else None
        if note:
            notes.add(note)
    siemens_dc = None
    v, _ = _private_value(first, 0x0071, SIEMENS_PT_CREATOR, 0x22, False)
    if v is not None:
        parsed = _parse_dt(_text(v) or "", tz)
        siemens_dc = parsed[0] if parsed else None
    decay_corr_dt = _strict_dt(_get(first, 0x00189701), tz,
                               "(0018,9701) Decay Correction DateTime")

    lam = LN2 / half_life_s if half_life_s else None
    ref_dt: datetime | None = None
    ref_source = "unavailable"
    adm_dt: datetime | None = None
    anchor: datetime | None = None
    time_problem: SUVError | None = None
    try:
        if dc is DecayCorrection.START:
            if ov.reference_time is not None:
                ref_dt, ref_source = ov.reference_time, "override"
                prov["reference_time"] = {"path": "user override", "candidates": {}}
            else:
                ref_dt, ref_source, path, cand = _choose_start_reference(
                    series_dt, frames, ge_scan_dt, decay_corr_dt, lam, tol, warnings)
                cand["siemens_private_decay_correction"] = _iso(siemens_dc)
                prov["reference_time"] = {"path": path, "candidates": cand}
            anchor = ref_dt
        else:
            acqs = [f.acq for f in frames if f.acq is not None]
            anchor = min(acqs) if acqs else series_dt
            if anchor is None:
                raise SUVError("no Acquisition or Series Date/Time to date the injection")
        adm_dt = _administration(rp, ov, anchor, half_life_s, tz, tol, warnings, prov)
        if dc is not DecayCorrection.START:
            ref_dt, ref_source = adm_dt, "administration"
            prov["reference_time"] = {
                "path": "Decay Correction ADMIN: images refer to the administration time"
                if dc is DecayCorrection.ADMIN else
                "Decay Correction NONE: each frame corrected from its acquisition time "
                "to administration (average-count-time factor)",
                "candidates": {"series": _iso(series_dt)},
            }
    except SUVError as exc:
        time_problem = exc

    # --- Body sizes -----------------------------------------------------------------
    sizes, size_reasons = _body_sizes(weight_kg, height_m, sex, ov.unknown_sex, warnings,
                                      height_reason)
    prov["normalisations"] = {
        n.value: ({"size": sizes[n], "size_unit": "cm2" if n is Normalisation.BSA else "g"}
                  if n in sizes else {"reason": size_reasons[n]})
        for n in Normalisation
    }

    # --- Dose at reference ------------------------------------------------------------
    dose_ref = None
    uptake_s = None
    if dose_bq is not None and adm_dt is not None and anchor is not None and lam is not None:
        # START: uptake to the reference time; ADMIN/NONE: to the first acquisition.
        uptake_s = (anchor - adm_dt).total_seconds()
        adm_src = prov.get("administration_time", {}).get("source", "")
        if uptake_s < -tol:
            time_problem = SUVHeaderError(
                f"{'reference' if dc is DecayCorrection.START else 'acquisition'} time "
                f"{anchor} is {-uptake_s:.0f} s before the administration {adm_dt} "
                f"({adm_src}): negative uptake time (check dates/times or override them)"
            )
        else:
            uptake_s = max(uptake_s, 0.0)
            _check_uptake(uptake_s, half_life_s or 0.0, warnings)
            limit = MAX_UPTAKE_HALF_LIVES * (half_life_s or 0.0)
            if uptake_s > limit and dc is not DecayCorrection.ADMIN:
                msg = (f"uptake time {uptake_s / 3600:.1f} h (administration {adm_dt} from "
                       f"{adm_src}, to {anchor}) is more than {MAX_UPTAKE_HALF_LIVES:g} "
                       f"half-lives (T½ {half_life_s:g} s): the SUV would be scaled by "
                       f"2^{uptake_s / (half_life_s or 1.0):.1f}")
                if ov.allows("uptake"):
                    warnings.append(msg + "; allowed by --allow-implausible uptake")
                else:
                    time_problem = SUVHeaderError(
                        msg + "; check the dates (give --injection-time) or pass "
                        "--allow-implausible uptake")
            if time_problem is None:
                dose_ref = (dose_bq * math.exp(-lam * uptake_s)
                            if dc is DecayCorrection.START else dose_bq)
                if not (math.isfinite(dose_ref) and dose_ref > 0):
                    time_problem = SUVHeaderError(
                        f"dose at the reference time underflows to {dose_ref!r} Bq "
                        f"({dose_bq:g} Bq decayed over {uptake_s:.0f} s with T½ "
                        f"{half_life_s:g} s): not a finite positive number")
                    dose_ref = None
    prov["uptake_time_s"] = uptake_s

    def need_dose() -> float:
        problem = dose_problem or time_problem
        if problem is not None:
            raise problem
        if dose_ref is None:
            raise SUVError("dose at reference time unavailable")
        return dose_ref

    # --- Factors per Units ----------------------------------------------------------
    per_frame: list[dict[Normalisation, float]]
    prov_units: dict[str, Any] = {"units": units.value}
    if units is Units.BQML or units is Units.CPS:
        scale = 1.0
        if units is Units.CPS:
            scale = _cps_scale(first, corr, prov_units, warnings)
        per_frame = _activity_factors(frames, sizes, need_dose(), scale, dc, adm_dt, lam,
                                      weight_kg, prov_units)
    elif units is Units.CNTS:
        per_frame = _philips_factors(frames, sizes, need_dose, dc, adm_dt, lam, weight_kg,
                                     ov, manufacturer, first, prov_units, warnings)
    else:
        per_frame = _suv_type_factors(first, units, sizes, size_reasons, len(frames),
                                      prov_units, warnings)
        if time_problem or dose_problem:
            prov_units["dose_time_note"] = (
                f"not needed for {units.value}: {dose_problem or time_problem}")
    prov["units_path"] = prov_units
    for pf in per_frame:
        for n, v in pf.items():
            if not (math.isfinite(v) and v > 0):
                raise SUVHeaderError(
                    f"the {n.label} factor {v!r} is not a finite positive number (dose "
                    f"{dose_bq!r} Bq, T½ {half_life_s!r} s, weight {weight_kg!r} kg, uptake "
                    f"{uptake_s!r} s)")
    if notes:
        prov["notes"] = sorted(notes)
        warnings.extend(n for n in sorted(notes) if "conventional element" in n)

    # per-slice or uniform
    base_idx = 0
    acq_idx = [i for i, f in enumerate(frames) if f.acq is not None]
    if acq_idx:
        base_idx = min(acq_idx, key=lambda i: frames[i].acq)  # type: ignore[arg-type,return-value]
    factors = dict(per_frame[base_idx])
    uniform = all(
        all(abs(pf[n] - factors[n]) <= 1e-12 * abs(factors[n]) for n in factors)
        for pf in per_frame
    )
    per_slice = None
    if not uniform:
        per_slice = {f.key: pf for f, pf in zip(frames, per_frame, strict=True)}
        prov["per_slice_reason"] = prov_units.get("per_slice_reason", "per-slice factors")

    _decay_factor_check(frames, dc, ref_dt, lam, prov)
    return SUVScaling(
        units=units,
        decay_correction=dc,
        reference_time=ref_dt,
        reference_time_source=ref_source,
        injected_dose_bq=dose_bq,
        dose_at_reference_bq=dose_ref,
        half_life_s=half_life_s,
        weight_kg=weight_kg,
        height_m=height_m,
        sex=sex,
        factors=factors,
        per_slice=per_slice,
        warnings=warnings,
        provenance=prov,
    )


def _check_slopes(frames: list[_Frame], ov: SUVOverrides, warnings: list[str]) -> None:
    """(0028,1053) *Rescale Slope* (PS3.3 C.8.9.4.1.3, per slice): 0 is refused whatever
    the overrides (every pixel would be the intercept; a loader taking 0 as 1 gives numbers
    that mean nothing); a negative slope turns activity upside down and is refused unless
    ``rescale-slope`` is allowed."""
    for f in frames:
        if f.slope is None:
            continue
        if f.slope == 0:
            raise SUVHeaderError(f"(0028,1053) Rescale Slope 0 in {f.key}: the pixel values "
                                 "cannot be rescaled to activity (refused, no override)")
        if f.slope < 0:
            msg = (f"(0028,1053) Rescale Slope {f.slope:g} in {f.key} is negative: activity "
                   "would be inverted")
            if not ov.allows("rescale-slope"):
                raise SUVHeaderError(msg + "; pass --allow-implausible rescale-slope if real")
            warnings.append(msg + "; allowed by --allow-implausible rescale-slope")


# Series-level attributes that every slice must repeat (PS3.3 C.7.3.1, C.8.9.1, C.8.9.2):
# (tag, name, kind, the override that makes the header value irrelevant).
_SERIES_ATTRS: tuple[tuple[int, str, str, str | None], ...] = (
    (0x00101030, "(0010,1030) Patient's Weight", "num", "weight_kg"),
    (0x00101020, "(0010,1020) Patient's Size", "num", "height_m"),
    (0x00100040, "(0010,0040) Patient's Sex", "sex", "sex"),
    (0x00541102, "(0054,1102) Decay Correction", "text", None),
    (0x00541006, "(0054,1006) SUV Type", "text", None),
    (0x00080021, "(0008,0021) Series Date", "text", "reference_time"),
    (0x00080031, "(0008,0031) Series Time", "tm", "reference_time"),
)
_RP_ATTRS: tuple[tuple[int, str, str, str | None], ...] = (
    (0x00181074, "(0018,1074) Radionuclide Total Dose", "num", "dose_bq"),
    (0x00181075, "(0018,1075) Radionuclide Half Life", "num", "half_life_s"),
    (0x00181078, "(0018,1078) Radiopharmaceutical Start DateTime", "text", "injection_time"),
    (0x00181072, "(0018,1072) Radiopharmaceutical Start Time", "tm", "injection_time"),
)


def _series_key(value: Any, kind: str) -> Any:
    """Comparable form of a value: "70" and "70.0" are the same weight."""
    t = _text(value)
    if t is None:
        return None
    if kind == "num":
        x = _num(t)
        return float(f"{x:.9g}") if x is not None else t
    if kind == "tm":
        return _parse_tm(t) or t
    if kind == "sex":
        return t.upper() if t.upper() in ("M", "F") else "O"
    return t.upper()


def _check_series_consistency(datasets: Sequence[Dataset], ov: SUVOverrides,
                              warnings: list[str]) -> None:
    """The SUV inputs are read from the first slice; refuse a series whose slices disagree
    on any of them (weight, dose, times ...), naming the attribute, both values and the
    slices, unless the user gave that value or allowed ``series-consistency``."""
    if len(datasets) < 2:
        return
    first = datasets[0]
    rp_raw0 = first.get_item(0x00540016)
    rp0 = None

    def rp_item(ds: Dataset) -> Dataset | None:
        seq = ds.get("RadiopharmaceuticalInformationSequence") or []
        return seq[0] if len(seq) else None

    def report(name: str, v0: Any, v: Any, i: int) -> None:
        msg = (f"{name} differs within the series: {_text(v0)!r} in the first slice "
               f"({_text(_get(first, 0x00080018)) or 1}) but {_text(v)!r} in slice {i + 1} "
               f"({_text(_get(datasets[i], 0x00080018)) or i + 1}); the first slice's value "
               "would be used for every slice")
        if not ov.allows("series-consistency"):
            raise SUVHeaderError(msg + ": give the right value as an override or pass "
                                 "--allow-implausible series-consistency")
        warnings.append(msg + "; allowed by --allow-implausible series-consistency")

    given = ov.given()
    reported: set[str] = set()
    checked = [(tag, name, kind, _get(first, tag)) for tag, name, kind, override
               in _SERIES_ATTRS if override not in given]
    for i, ds in enumerate(datasets[1:], start=1):
        for tag, name, kind, v0 in checked:
            if name in reported:
                continue
            v = _get(ds, tag)
            if v0 != v and _series_key(v0, kind) != _series_key(v, kind):
                reported.add(name)
                report(name, v0, v, i)
        raw = ds.get_item(0x00540016)
        if (isinstance(raw, RawDataElement) and isinstance(rp_raw0, RawDataElement)
                and raw.value == rp_raw0.value):
            continue  # byte-identical sequence: the common case, no parsing needed
        if rp0 is None:
            rp0 = rp_item(first) or Dataset()
        rp = rp_item(ds) or Dataset()
        for tag, name, kind, override in _RP_ATTRS:
            if override in given or name in reported:
                continue
            v0, v = _get(rp0, tag), _get(rp, tag)
            if v0 != v and _series_key(v0, kind) != _series_key(v, kind):
                reported.add(name)
                report(name, v0, v, i)


def _patient(ds: Dataset, ov: SUVOverrides, warnings: list[str], prov: dict[str, Any]
             ) -> tuple[float | None, float | None, str, str | None]:
    """(0010,1030) weight (kg), (0010,1020) size (m), (0010,0040) sex with plausibility
    heuristics (IBSI/MIRP: weight ≥ 1000 is grams; size > 3 is cm), always with a warning,
    then the plausible ranges: a weight outside :data:`WEIGHT_RANGE_KG` is refused; a size
    outside :data:`HEIGHT_RANGE_M` only removes the normalisations that need it (the
    returned reason says why)."""
    hdr_w = _strict_num(ds, 0x00101030, "(0010,1030) Patient's Weight")
    hdr_h = _strict_num(ds, 0x00101020, "(0010,1020) Patient's Size")
    hdr_sex = (_text(_get(ds, 0x00100040)) or "").upper()
    prov["inputs_patient"] = {"weight_header": hdr_w, "size_header": hdr_h,
                              "sex_header": hdr_sex or None}
    if ov.weight_kg is not None:
        w: float | None = ov.weight_kg
    else:
        w = hdr_w if hdr_w and hdr_w > 0 else None
        if w is not None and w >= 1000:
            warnings.append(f"(0010,1030) Patient's Weight {w:g} taken as grams → {w / 1000:g} kg")
            w /= 1000.0
    if ov.height_m is not None:
        h: float | None = ov.height_m
    else:
        h = hdr_h if hdr_h and hdr_h > 0 else None
        if h is not None and h > 3:
            warnings.append(f"(0010,1020) Patient's Size {h:g} taken as cm → {h / 100:g} m")
            h /= 100.0
    sex = (ov.sex or hdr_sex).upper()
    if sex not in ("M", "F"):
        sex = "O"
    if w is not None and not WEIGHT_RANGE_KG[0] <= w <= WEIGHT_RANGE_KG[1]:
        src = (f"--weight-kg {w:g}" if ov.weight_kg is not None else
               f"(0010,1030) Patient's Weight {hdr_w:g}"
               + (f" (read as grams: {w:g} kg)" if hdr_w and hdr_w >= 1000 else " kg"))
        msg = (f"{src} is outside the plausible range {WEIGHT_RANGE_KG[0]:g}–"
               f"{WEIGHT_RANGE_KG[1]:g} kg")
        if not ov.allows("weight"):
            raise SUVHeaderError(msg + ": give the weight with --weight-kg, or pass "
                                 "--allow-implausible weight (e.g. preclinical data)")
        warnings.append(msg + "; allowed by --allow-implausible weight")
    height_reason = None
    if h is not None and not HEIGHT_RANGE_M[0] <= h <= HEIGHT_RANGE_M[1]:
        src = (f"--height-m {h:g}" if ov.height_m is not None else
               f"(0010,1020) Patient's Size {h:g} m")
        msg = (f"{src} is outside the plausible range {HEIGHT_RANGE_M[0]:g}–"
               f"{HEIGHT_RANGE_M[1]:g} m")
        if ov.allows("height"):
            warnings.append(msg + "; allowed by --allow-implausible height")
        else:
            height_reason = (msg + ": normalisations that need the height are refused "
                             "(give --height-m or --allow-implausible height)")
            warnings.append(height_reason)
            h = None
    return w, h, sex, height_reason


def _isotope(rp: Dataset | None, ov: SUVOverrides, warnings: list[str],
             prov: dict[str, Any]) -> tuple[float | None, float | None, SUVError | None]:
    """Half-life (0018,1075) (fallback: Radionuclide Code Sequence) and dose (0018,1074),
    each checked against its plausible range (:data:`HALF_LIFE_RANGE_S`,
    :data:`DOSE_RANGE_BQ`). The problem returned is raised only where the dose is needed
    (GML/CM2ML pixels do not need it)."""
    problem: SUVError | None = None
    if rp is None:
        problem = SUVError("(0054,0016) Radiopharmaceutical Information Sequence is missing: "
                           "no injected dose, administration time or half-life")
        prov["inputs_isotope"] = {}
        hl, dose = ov.half_life_s, ov.dose_bq
        if ov.dose_bq is not None:
            problem = None
    else:
        hl, dose, problem = _isotope_values(rp, ov, warnings, prov)
    if hl is not None and not HALF_LIFE_RANGE_S[0] <= hl <= HALF_LIFE_RANGE_S[1]:
        src = "override half_life_s" if ov.half_life_s is not None else \
            "(0018,1075) Radionuclide Half Life"
        msg = (f"{src} {hl:g} s is outside the plausible range {HALF_LIFE_RANGE_S[0]:g}–"
               f"{HALF_LIFE_RANGE_S[1]:g} s (Rb-82 76 s .. Ge-68 271 d)")
        if ov.allows("half-life") and _HARD_HALF_LIFE_S[0] <= hl <= _HARD_HALF_LIFE_S[1]:
            warnings.append(msg + "; allowed by --allow-implausible half-life")
        else:
            problem = SUVHeaderError(msg + ("" if ov.allows("half-life") else
                                            "; pass --allow-implausible half-life if real"))
            hl = None  # keeps the decay arithmetic away from it
    if dose is not None and problem is None \
            and not DOSE_RANGE_BQ[0] <= dose <= DOSE_RANGE_BQ[1]:
        src = f"--dose-bq {dose:g}" if ov.dose_bq is not None else \
            f"(0018,1074) Radionuclide Total Dose {dose:g} Bq"
        msg = f"{src} is outside the plausible range 1 MBq–20 GBq"
        if ov.allows("dose"):
            warnings.append(msg + "; allowed by --allow-implausible dose")
        else:
            problem = SUVHeaderError(msg + ": give the dose with --dose-bq or pass "
                                     "--allow-implausible dose")
    return hl, dose, problem


def _isotope_values(rp: Dataset, ov: SUVOverrides, warnings: list[str],
                    prov: dict[str, Any]) -> tuple[float | None, float | None, SUVError | None]:
    problem: SUVError | None = None
    hdr_hl = _strict_num(rp, 0x00181075, "(0018,1075) Radionuclide Half Life")
    hdr_dose = _strict_num(rp, 0x00181074, "(0018,1074) Radionuclide Total Dose")
    prov["inputs_isotope"] = {"half_life_header_s": hdr_hl, "dose_header": hdr_dose,
                              "radiopharmaceutical": _text(_get(rp, 0x00180031))}
    if ov.half_life_s is not None:
        hl: float | None = ov.half_life_s
    elif hdr_hl and hdr_hl > 0:
        hl = hdr_hl
    else:
        found = _half_life_from_code(rp)
        if found:
            hl = found[0]
            warnings.append(f"(0018,1075) Radionuclide Half Life missing: {hl:g} s inferred "
                            f"from Radionuclide Code Sequence ({found[1]})")
        else:
            hl = None
            problem = SUVError("(0018,1075) Radionuclide Half Life is missing (and no known "
                               "nuclide code)")
    if ov.dose_bq is not None:
        dose: float | None = ov.dose_bq
    elif hdr_dose and hdr_dose > 0:
        dose = hdr_dose
        if dose < 1e4:  # IBSI: two histogram peaks ~4e2 (MBq) and ~4e8 (Bq)
            warnings.append(f"(0018,1074) Radionuclide Total Dose {dose:g} is implausible in "
                            f"Bq: taken as MBq → {dose * 1e6:g} Bq")
            dose *= 1e6
    else:
        dose = None
        problem = problem or SUVError("(0018,1074) Radionuclide Total Dose is missing or 0")
    return hl, dose, problem


def _administration(rp: Dataset | None, ov: SUVOverrides, anchor: datetime,
                    half_life_s: float | None, tz: str | None, tol: float,
                    warnings: list[str], prov: dict[str, Any]) -> datetime:
    """Administration date-time: (0018,1078) DT preferred over TM-only (0018,1072), which
    gets the anchor's date and goes back one day when that puts it after the anchor
    (midnight; IBSI DRO_4_2). Day inference refused for T½ ≥ 11.5 h (Z-Rad, MIRP)."""
    info: dict[str, Any] = {}
    prov["administration_time"] = info
    if isinstance(ov.injection_time, datetime):
        info.update(source="override", value=ov.injection_time.isoformat())
        return ov.injection_time
    dt_s = _text(_get(rp, 0x00181078)) if rp is not None else None
    tm_s = _text(_get(rp, 0x00181072)) if rp is not None else None
    info.update(start_datetime=dt_s, start_time=tm_s)
    tm_val: time | None = None
    if isinstance(ov.injection_time, time):
        tm_val, info["source"] = ov.injection_time, "override (time of day)"
    elif dt_s is not None:
        parsed = _parse_dt(dt_s, tz)
        if parsed is None:
            raise SUVHeaderError(
                f"(0018,1078) Radiopharmaceutical Start DateTime {dt_s!r} is not a valid "
                "date-time (DT YYYYMMDDHHMM[SS[.FFFFFF]][&ZZXX], a time of day included)")
        adm, dropped = parsed
        if dropped:
            warnings.append("(0018,1078) carries a UTC offset but (0008,0201) does not: "
                            "offset ignored")
        if tm_s is not None:
            t = _parse_tm(tm_s)
            if t is not None and abs((datetime.combine(adm.date(), t) - adm).total_seconds()) \
                    > tol:
                warnings.append(f"(0018,1072) Start Time {tm_s} disagrees with (0018,1078) "
                                f"{dt_s}; the DateTime is used")
        info.update(source="RadiopharmaceuticalStartDateTime", value=adm.isoformat())
        return adm
    elif tm_s is not None:
        tm_val = _parse_tm(tm_s)
        if tm_val is None:
            raise SUVHeaderError(f"(0018,1072) Radiopharmaceutical Start Time {tm_s!r} is not "
                                 "a valid time (TM HHMMSS.FFFFFF)")
        info["source"] = "RadiopharmaceuticalStartTime (TM only)"
    else:
        raise SUVError("(0018,1078) Radiopharmaceutical Start DateTime and (0018,1072) "
                       "Radiopharmaceutical Start Time are both missing: no administration time")
    if half_life_s is not None and half_life_s >= _TM_ONLY_MAX_HALF_LIFE_S:
        raise SUVError(
            f"(0018,1072) gives only a time of day and T½ = {half_life_s:g} s ≥ 11.5 h: the "
            "administration day cannot be inferred; give the injection date-time explicitly"
        )
    adm = datetime.combine(anchor.date(), tm_val)
    # Midnight crossing only when the clock time is more than 1 h after the anchor (Z-Rad
    # PR #282 rule, notes §2.4): a time a few minutes after the scan start is a data error
    # (negative uptake, refused by the caller), not an injection ~24 h earlier.
    if (adm - anchor).total_seconds() > max(tol, _MIDNIGHT_MIN_OFFSET_S):
        after_s = (adm - anchor).total_seconds()
        adm -= timedelta(days=1)
        uptake_s = (anchor - adm).total_seconds()
        # The previous day is an inference: take it only where it gives an ordinary uptake
        # (≤ 3 T½, F-18 5.5 h: a late-evening injection scanned after midnight). Otherwise
        # both readings are implausible (negative uptake, or most of a day of decay).
        if half_life_s is not None and uptake_s > MIDNIGHT_MAX_HALF_LIVES * half_life_s:
            src = ("--injection-time" if isinstance(ov.injection_time, time)
                   else "(0018,1072) Radiopharmaceutical Start Time")
            msg = (f"{src} {tm_s if src[0] == '(' else tm_val} is {after_s / 3600:.1f} h after "
                   f"the reference clock {anchor.time()}: on the scan day the uptake time "
                   f"would be negative, on the previous day {uptake_s / 3600:.1f} h "
                   f"(> {MIDNIGHT_MAX_HALF_LIVES:g} half-lives)")
            if not ov.allows("injection-day"):
                raise SUVHeaderError(msg + "; give the injection date-time (--injection-time)"
                                     " or pass --allow-implausible injection-day")
            warnings.append(msg + "; previous day allowed by --allow-implausible "
                            "injection-day")
        warnings.append(f"administration time {tm_val} is after {anchor.time()} on the scan day: "
                        "taken as the previous day (midnight crossing)")
        info["midnight_crossing"] = True
    info["value"] = adm.isoformat()
    return adm


def _check_uptake(uptake_s: float, half_life_s: float, warnings: list[str]) -> None:
    if half_life_s >= 3600 and uptake_s < 1800:
        warnings.append(f"uptake time {uptake_s / 60:.1f} min is under 30 min")
    if uptake_s > 3 * half_life_s:
        warnings.append(f"uptake time {uptake_s:.0f} s exceeds 3 half-lives")


def _body_sizes(weight_kg: float | None, height_m: float | None, sex: str, unknown_sex: str,
                warnings: list[str], height_reason: str | None = None
                ) -> tuple[dict[Normalisation, float], dict[Normalisation, str]]:
    """Numerator of each normalisation: g (BW, LBM, IBW) or cm² (BSA)."""
    sizes: dict[Normalisation, float] = {}
    reasons: dict[Normalisation, str] = {}
    if weight_kg is None:
        for n in Normalisation:
            reasons[n] = "(0010,1030) Patient's Weight is missing or 0 (give --weight-kg)"
        if height_m is not None:
            sizes[Normalisation.IBW] = 1000.0 * _by_sex(lambda s: bodysize.ibw_kg(height_m, s),
                                                          sex)
            del reasons[Normalisation.IBW]
        return sizes, reasons
    sizes[Normalisation.BW] = weight_kg * 1000.0
    if height_m is None:
        for n in Normalisation:
            if n is not Normalisation.BW:
                reasons[n] = height_reason or (
                    "(0010,1020) Patient's Size is missing: needed for " + n.label)
        return sizes, reasons
    sizes[Normalisation.BSA] = bodysize.bsa_dubois_m2(weight_kg, height_m) * 1e4
    if sex == "O" and unknown_sex == "omit":
        for n in (Normalisation.LBM_JANMA, Normalisation.LBM_JAMES128,
                  Normalisation.LBM_JAMES120, Normalisation.IBW):
            reasons[n] = "(0010,0040) Patient's Sex is not M or F (give --sex)"
        return sizes, reasons
    if sex == "O":
        warnings.append("(0010,0040) Patient's Sex is not M/F: LBM and IBW are the mean of the "
                        "male and female formulas (IBSI, MIRP)")
    sizes[Normalisation.LBM_JANMA] = 1000.0 * _by_sex(
        lambda s: bodysize.janmahasatian_lbm_kg(weight_kg, height_m, s), sex)
    ibw = _by_sex(lambda s: bodysize.ibw_kg(height_m, s), sex)
    sizes[Normalisation.IBW] = 1000.0 * ibw
    if ibw > weight_kg:
        warnings.append(f"IBW {ibw:.1f} kg exceeds body weight {weight_kg:g} kg (not clamped)")
    bmi = bodysize.bmi_kg_m2(weight_kg, height_m)
    for norm, coef in ((Normalisation.LBM_JAMES128, 128.0), (Normalisation.LBM_JAMES120, 120.0)):
        sexes = ("M", "F") if sex == "O" else (sex,)
        peak = min(bodysize.james_peak_bmi_kg_m2(s, male_coefficient=coef) for s in sexes)
        lbm = _by_sex(lambda s, c=coef: bodysize.james_lbm_kg(weight_kg, height_m, s,
                                                               male_coefficient=c), sex)
        if bmi >= peak or lbm <= 0:
            reasons[norm] = (f"James LBM collapses in obesity: BMI {bmi:.1f} ≥ {peak:.1f} where "
                             f"it stops increasing with weight (LBM {lbm:.1f} kg); use SUL "
                             "(Janmahasatian)")
            if norm is Normalisation.LBM_JAMES128:
                warnings.append(reasons[norm])
        else:
            sizes[norm] = 1000.0 * lbm
    return sizes, reasons


def _by_sex(fn: Any, sex: str) -> float:
    if sex == "O":
        return 0.5 * (fn("M") + fn("F"))
    return float(fn(sex))


def _activity_factors(frames: list[_Frame], sizes: dict[Normalisation, float], dose_ref: float,
                      scale: float, dc: DecayCorrection, adm_dt: datetime | None,
                      lam: float | None, weight_kg: float | None, prov_units: dict[str, Any]
                      ) -> list[dict[Normalisation, float]]:
    if weight_kg is None:
        raise SUVError("(0010,1030) Patient's Weight is missing or 0: SUV needs the weight "
                       "(give --weight-kg)")
    base = {n: scale * s / dose_ref for n, s in sizes.items()}
    if dc is not DecayCorrection.NONE:
        prov_units["formula"] = "size / dose_at_reference" + (" × CPS scale" if scale != 1 else "")
        return [base] * len(frames)
    assert adm_dt is not None and lam is not None
    prov_units["formula"] = ("size / dose_admin × λT/(1 − e^(−λT)) × e^(λ(t_acq − t_adm)) "
                             "per frame (Decay Correction NONE)")
    prov_units["per_slice_reason"] = "Decay Correction NONE: each frame decays differently"
    out = []
    for f in frames:
        if f.acq is None or not f.duration_ms:
            raise SUVError(
                f"Decay Correction NONE needs (0008,0032) Acquisition Time and (0018,1242) "
                f"Actual Frame Duration for every frame; missing in {f.key}"
            )
        x = lam * f.duration_ms / 1000.0
        try:
            k = (x / -math.expm1(-x)) * math.exp(lam * (f.acq - adm_dt).total_seconds())
        except (OverflowError, ZeroDivisionError):
            raise SUVHeaderError(
                f"Decay Correction NONE: (0008,0032) Acquisition Time {f.acq} of {f.key} is "
                f"{(f.acq - adm_dt).total_seconds():.3g} s after the administration "
                f"{adm_dt} with (0018,1242) Actual Frame Duration {f.duration_ms:g} ms: the "
                "decay factor overflows") from None
        out.append({n: v * k for n, v in base.items()})
    return out


def _philips_factors(frames: list[_Frame], sizes: dict[Normalisation, float], need_dose: Any,
                     dc: DecayCorrection, adm_dt: datetime | None, lam: float | None,
                     weight_kg: float | None, ov: SUVOverrides, manufacturer: str,
                     first: Dataset, prov_units: dict[str, Any], warnings: list[str]
                     ) -> list[dict[Normalisation, float]]:
    """Philips CNTS (PS3.3 conformance of Philips PET: SUV = (SV·m + b)·(7053,xx00))."""
    suvsf = [f.suvsf if f.suvsf else None for f in frames]
    acsf = [f.acsf if f.acsf else None for f in frames]
    time_overridden = any(x is not None for x in (ov.dose_bq, ov.injection_time,
                                                  ov.reference_time, ov.half_life_s))
    prov_units["philips_suv_scale_factor"] = sorted({x for x in suvsf if x}) or None
    prov_units["philips_activity_concentration_scale_factor"] = sorted(
        {x for x in acsf if x}) or None
    if manufacturer and "PHILIPS" not in manufacturer.upper():
        warnings.append(f"Units CNTS from manufacturer {manufacturer!r}: Philips private "
                        "factors assumed")
    use_suvsf = all(suvsf) and not (time_overridden and all(acsf))
    if use_suvsf:
        hdr_w = _num(_get(first, 0x00101030))
        hdr_w = hdr_w / 1000 if hdr_w and hdr_w >= 1000 else hdr_w
        wscale = 1.0
        if ov.weight_kg is not None and hdr_w:
            wscale = ov.weight_kg / hdr_w  # the scanner used the header weight
            prov_units["weight_override_scale"] = wscale
        if time_overridden:
            raise SUVError("dose/time overrides cannot be applied to the Philips SUV Scale "
                           "Factor (7053,xx00) without an Activity Concentration Scale Factor")
        prov_units["formula"] = "Philips SUV Scale Factor (7053,xx00) × size / weight"
        out = []
        for s in suvsf:
            f_bw = float(s) * wscale  # type: ignore[arg-type]
            if Normalisation.BW in sizes:
                out.append({n: f_bw * v / sizes[Normalisation.BW] for n, v in sizes.items()})
            else:
                out.append({Normalisation.BW: f_bw})
        if all(acsf) and Normalisation.BW in sizes:
            # Consistency identity (notes §2.2): SUVSF ≈ ACSF·W/D(ref); ~0.01% on real data.
            try:
                d = need_dose()
                rel = float(suvsf[0]) / (float(acsf[0]) * sizes[Normalisation.BW] / d) - 1  # type: ignore[arg-type]
                prov_units["suvsf_vs_acsf_relative_difference"] = rel
                if abs(rel) > 0.01:
                    warnings.append(f"Philips SUV Scale Factor differs by {rel:+.1%} from "
                                    "ACSF·W/D(reference): check the reference time")
            except SUVError:
                pass
        if len(set(suvsf)) > 1:
            prov_units["per_slice_reason"] = "Philips SUV Scale Factor differs per slice"
        return out
    if all(acsf):
        if len(set(acsf)) > 1:
            prov_units["per_slice_reason"] = "Philips Activity Concentration Scale Factor " \
                                             "differs per slice"
        out = []
        for a, f in zip(acsf, frames, strict=True):
            pf = _activity_factors([f], sizes, need_dose(), float(a), dc, adm_dt,  # type: ignore[arg-type]
                                   lam, weight_kg, {})
            out.append(pf[0])
        prov_units["formula"] = "Philips ACSF (7053,xx09) × size / dose_at_reference"
        if dc is DecayCorrection.NONE:
            prov_units["formula"] += " × per-frame decay (Decay Correction NONE)"
            prov_units["per_slice_reason"] = "Decay Correction NONE: each frame decays " \
                                             "differently"
        return out
    raise SUVError(
        "(0054,1001) Units CNTS without a usable Philips SUV Scale Factor (7053,xx00) or "
        "Activity Concentration Scale Factor (7053,xx09) (private creator "
        f"'{PHILIPS_CREATOR}'; absent or 0 in some slices): counts cannot be converted to "
        "activity"
    )


def _suv_type_factors(first: Dataset, units: Units, sizes: dict[Normalisation, float],
                      reasons: dict[Normalisation, str], n_frames: int,
                      prov_units: dict[str, Any], warnings: list[str]
                      ) -> list[dict[Normalisation, float]]:
    """GML/CM2ML: pixels are already SUV of the flavour in (0054,1006) *SUV Type*."""
    st = (_text(_get(first, 0x00541006)) or "").upper()
    default = Normalisation.BSA if units is Units.CM2ML else Normalisation.BW
    if not st:
        src = default
    else:
        try:
            src = Normalisation(st)
        except ValueError:
            raise SUVError(f"(0054,1006) SUV Type {st!r} is not a known SUV type") from None
    if units is Units.CM2ML and src is not Normalisation.BSA:
        warnings.append(f"Units CM2ML with SUV Type {src.value}: treated as SUVbsa")
        src = Normalisation.BSA
    prov_units["suv_type"] = src.value
    prov_units["formula"] = f"pixels are {src.label}; factor = size / size_{src.value}"
    if src not in sizes:
        if src is not Normalisation.BW:
            raise SUVError(f"pixels are {src.label} (Units {units.value}, SUV Type "
                           f"{src.value}) but {reasons.get(src, 'its body size is unknown')}")
        return [{Normalisation.BW: 1.0}] * n_frames
    base = {n: v / sizes[src] for n, v in sizes.items()}
    base[src] = 1.0
    return [base] * n_frames


def _cps_scale(first: Dataset, corr: set[str], prov_units: dict[str, Any],
               warnings: list[str]) -> float:
    """CPS → Bq/ml (IBSI SUV manual): with DCAL divide by the voxel volume (ml), else
    multiply by (0054,1322) *Dose Calibration Factor* first."""
    ps_s = _text(_get(first, 0x00280030))
    ps = [_num(v) for v in ps_s.split("\\")] if ps_s else []
    thick = _num(_get(first, 0x00180088)) or _num(_get(first, 0x00180050))
    if not ps or not thick:
        raise SUVError("Units CPS: (0028,0030) Pixel Spacing and slice thickness are needed to "
                       "convert counts per second per voxel to Bq/ml")
    if len(ps) != 2 or not all(v is not None and 0 < v < 1e4 for v in ps) \
            or not 0 < thick < 1e4:
        raise SUVHeaderError(f"Units CPS: (0028,0030) Pixel Spacing {ps_s!r} and slice "
                             f"thickness {thick!r} must be two and one positive numbers of mm")
    voxel_ml = float(ps[0]) * float(ps[1]) * thick / 1000.0  # type: ignore[operator]
    dcf = _num(_get(first, 0x00541322))
    if "DCAL" in corr:
        scale = 1.0 / voxel_ml
    elif dcf:
        scale = dcf / voxel_ml
    else:
        raise SUVError("Units CPS without DCAL in (0028,0051) and without (0054,1322) Dose "
                       "Calibration Factor: not convertible to activity")
    prov_units.update(voxel_ml=voxel_ml, dose_calibration_factor=dcf)
    warnings.append("Units CPS converted to Bq/ml by the IBSI rule (voxel volume"
                    + (", Dose Calibration Factor" if "DCAL" not in corr else "")
                    + "): verify against a BQML series")
    return scale


def _decay_factor_check(frames: list[_Frame], dc: DecayCorrection, ref_dt: datetime | None,
                        lam: float | None, prov: dict[str, Any]) -> None:
    """(0054,1321) *Decay Factor* should be 2^((t_acq + Tave − t_ref)/T½) (notes §2.3 step 7);
    recorded only (synthetic objects write 1.0)."""
    if dc is not DecayCorrection.START or ref_dt is None or lam is None:
        return
    n = ok = 0
    for f in frames:
        if f.decay_factor is None or f.acq is None or not f.duration_ms:
            continue
        n += 1
        t = (f.acq - ref_dt).total_seconds() + _tave_s(f.duration_ms / 1000.0, lam)
        ok += abs(math.exp(lam * t) / f.decay_factor - 1) < 1e-3
    prov["decay_factor_check"] = {"frames": n, "consistent": ok}


# ---------------------------------------------------------------------------------------
# Volume
# ---------------------------------------------------------------------------------------


def suv_volume(source: str | os.PathLike[str] | Iterable[Dataset | str | os.PathLike[str]], *,
               normalisation: Normalisation = Normalisation.BW,
               overrides: SUVOverrides | None = None,
               scaling: SUVScaling | None = None) -> tuple[highdicom.Volume, SUVScaling]:
    """Load a PET series (directory, files or datasets) as a float32 SUV volume.

    Each rescaled slice (:func:`oncohybrid.dicom.volume.load_series`) is multiplied by its
    own factor; per-slice factors are matched to volume slices by position, not order.
    ``scaling`` is the result of :func:`compute_suv` for these datasets when the caller
    already has it (``oncohybrid suv`` reports the factors even if the volume fails).

    >>> vol, scaling = suv_volume("PT/", normalisation=Normalisation.LBM_JANMA)  # doctest: +SKIP
    >>> float(vol.array.max())  # SULmax                                          # doctest: +SKIP
    """
    from oncohybrid.dicom.volume import load_series, read_series

    if isinstance(source, str | os.PathLike):
        datasets = read_series(source)
    else:
        datasets = [d if isinstance(d, Dataset) else pydicom.dcmread(d) for d in source]
    if scaling is None:
        scaling = compute_suv(datasets, overrides=overrides)
    norm = Normalisation(normalisation)
    vol = load_series(datasets, rescale=True, dtype=np.float32)
    arr = vol.array
    if scaling.per_slice is None:
        arr *= np.float32(scaling.factor(norm))
    else:
        scaling.factor(norm, next(iter(scaling.per_slice)))  # raises if norm unavailable
        inv = np.linalg.inv(vol.affine)
        for key, pos in _slice_positions(datasets):
            k = int(round((inv @ np.append(pos, 1.0))[0]))
            arr[k] *= np.float32(scaling.per_slice[key][norm])
    vol.array = arr
    return vol, scaling


def _slice_positions(datasets: Sequence[Dataset]) -> list[tuple[str, np.ndarray]]:
    if len(datasets) == 1 and "PerFrameFunctionalGroupsSequence" in datasets[0]:
        out = []
        for i, fg in enumerate(datasets[0].PerFrameFunctionalGroupsSequence):
            pos = fg.PlanePositionSequence[0].ImagePositionPatient
            out.append((str(i), np.asarray(pos, dtype=float)))
        return out
    return [
        (_text(_get(ds, 0x00080018)) or str(i), np.asarray(ds.ImagePositionPatient, dtype=float))
        for i, ds in enumerate(datasets)
    ]
