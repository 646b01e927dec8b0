"""``compute_suv``: one PET series' headers → :class:`SUVScaling` (read → decide →
compute factors → check), see the package docstring for the formulas."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydicom.dataset import Dataset

from oncohybrid.dicom.suv.decisions import (
    MAX_UPTAKE_HALF_LIVES,
    _administration,
    _check_series_consistency,
    _check_slopes,
    _check_uptake,
    _choose_start_reference,
    _corrections,
    _isotope,
    _patient,
    _units,
)
from oncohybrid.dicom.suv.factors import (
    LN2,
    _activity_factors,
    _body_sizes,
    _cps_scale,
    _decay_factor_check,
    _philips_factors,
    _suv_type_factors,
)
from oncohybrid.dicom.suv.headers import (
    GE_PET_CREATOR,
    SIEMENS_PT_CREATOR,
    _frames,
    _get,
    _iso,
    _parse_da,
    _parse_dt,
    _private_value,
    _strict_da_tm,
    _strict_dt,
    _text,
)
from oncohybrid.dicom.suv.model import (
    DecayCorrection,
    Normalisation,
    SUVOverrides,
    SUVScaling,
    Units,
)
from oncohybrid.errors import SUVError, SUVHeaderError


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

    units = _units(datasets)
    corr, dc = _corrections(first, warnings, prov)

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
