"""Header-time decisions of the SUV: which units and corrections, which reference time
(Decay Correction START, notes §2.3), which administration time and day, which dose and
half-life, which patient size and sex, and the plausibility checks on each (QIBA SUV
pseudo-code 2013, IBSI SUV manual, Z-Rad/MIRP conventions, vendor quirks).

Each decision records its reason in the provenance or a warning; the arithmetic that
uses the chosen values is :mod:`oncohybrid.dicom.suv.factors`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from oncohybrid.dicom.suv.factors import _tave_s
from oncohybrid.dicom.suv.headers import (
    _Frame,
    _get,
    _iso,
    _num,
    _parse_dt,
    _parse_tm,
    _strict_num,
    _text,
)
from oncohybrid.dicom.suv.model import DecayCorrection, SUVOverrides, Units
from oncohybrid.errors import SUVError, SUVHeaderError

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

_REFUSED_UNITS = {
    "PROPCNTS": "proportional to counts (non-quantitative; GE derived/NAC series)",
    "PROPCPS": "proportional to counts per second (Siemens non-quantitative/NAC series)",
    "1CM": "linear attenuation coefficients (µ-map), not activity",
    "NONE": "unitless image",
    "MLMING": "a kinetic-model rate (ml/min/g), not activity",
}


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



def _units(datasets: Sequence[Dataset]) -> Units:
    """(0054,1001) *Units* of the series (PS3.3 C.8.9.1.1.3; Enhanced PET: the Real World
    Value Mapping units code), the same in every slice; non-quantitative units refused."""
    first = datasets[0]
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
    return units


def _corrections(first: Dataset, warnings: list[str], prov: dict[str, Any]
                 ) -> tuple[set[str], DecayCorrection]:
    """(0028,0051) *Corrected Image* and (0054,1102) *Decay Correction* (PS3.3 C.8.9.4.1.2,
    C.8.9.1.1.6; Enhanced PET (0018,9758) *Decay Corrected*): NAC series and decay
    corrections the image flags contradict are refused."""
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
    return corr, dc


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

