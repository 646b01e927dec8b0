"""SUV factor arithmetic: body-size numerators (Janmahasatian, James, Du Bois, IBW;
:mod:`oncohybrid.dicom.bodysize`) and the factor per Units (BQML, CPS, Philips CNTS,
GML/CM2ML) and Decay Correction (IBSI SUV manual; QIBA SUV pseudo-code 2013).

The inputs are the values already decided by :mod:`oncohybrid.dicom.suv.decisions`.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from pydicom.dataset import Dataset

from oncohybrid.dicom import bodysize
from oncohybrid.dicom.suv.headers import PHILIPS_CREATOR, _Frame, _get, _num, _text
from oncohybrid.dicom.suv.model import DecayCorrection, Normalisation, SUVOverrides, Units
from oncohybrid.errors import SUVError, SUVHeaderError

LN2 = math.log(2.0)


def _tave_s(duration_s: float, lam: float) -> float:
    """Time of the average count rate within a frame of length T (IBSI SUV manual):
    ``(1/λ)·ln(λT / (1 − e^(−λT)))``."""
    x = lam * duration_s
    return math.log(x / -math.expm1(-x)) / lam if x > 0 else 0.0



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
