"""Independent audit of ``compute_suv`` against the PET quantification notes
(/work/shared/docs/pet-quantification.md, cited as "notes §x").

Every expected factor is computed here by hand from the closed forms of notes §2.1-§2.6
(plain ``math``; nothing from ``oncohybrid`` is used to build an expectation) and compared
to 1e-9 relative, or the case must be refused with the reason the notes give. Headers are
synthesised with ``tests/suv/suv_testdata.pet_series`` (defaults: Siemens, BQML, START,
70 kg, 1.75 m, M, 368.08 MBq F-18 (T½ 6586.2 s) at 10:00, series/acquisition 11:00,
FRT 150 s, duration 300 s — the IBSI DRO design of notes §4.1).
"""

from __future__ import annotations

import math
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "suv"))
from suv_testdata import pet_series  # noqa: E402

from oncohybrid.dicom.suv import DecayCorrection, Normalisation, compute_suv  # noqa: E402
from oncohybrid.errors import SUVError  # noqa: E402

F18 = 6586.2
DOSE = 368.08e6
REL = 1e-9


def d_ref(dose_bq: float, uptake_s: float, half_life_s: float = F18) -> float:
    """Notes §2.1: D_ref = D_adm · 2^(−Δt/T½)."""
    return dose_bq * 2.0 ** (-uptake_s / half_life_s)


def tave(duration_s: float, half_life_s: float = F18) -> float:
    """Notes §2.3: Tave = (1/λ)·ln(λT / (1 − e^(−λT)))."""
    lam = math.log(2) / half_life_s
    return math.log(lam * duration_s / (1 - math.exp(-lam * duration_s))) / lam


def james(w: float, h_cm: float, sex: str, male_b: float = 128.0) -> float:
    return 1.10 * w - male_b * (w / h_cm) ** 2 if sex == "M" else 1.07 * w - 148 * (w / h_cm) ** 2


def janma(w: float, h_cm: float, sex: str) -> float:
    bmi = w / (h_cm / 100) ** 2
    return 9270 * w / (6680 + 216 * bmi) if sex == "M" else 9270 * w / (8780 + 244 * bmi)


def ibw(h_cm: float, sex: str) -> float:
    return 48.0 + 1.06 * (h_cm - 152) if sex == "M" else 45.5 + 0.91 * (h_cm - 152)


def bsa_cm2(w: float, h_cm: float) -> float:
    return 0.007184 * w**0.425 * h_cm**0.725 * 1e4


BASE_BW = 70_000 / d_ref(DOSE, 3600)


# --------------------------------------------------------------------- §2.1 / §4.4 basics


def test_baseline_bqml_start_decays_dose_to_series_time() -> None:
    """Notes §2.1/§4.4: 2^(−3600/6586.2) = 0.6846329; SUVbw factor = W_g / D_ref."""
    assert abs(2 ** (-3600 / F18) - 0.6846329) < 1e-7
    s = compute_suv(pet_series(2))
    assert s.factor() == pytest.approx(70_000 / (DOSE * 0.6846329), rel=1e-6)
    assert s.factor() == pytest.approx(BASE_BW, rel=REL)
    assert s.dose_at_reference_bq == pytest.approx(d_ref(DOSE, 3600), rel=REL)
    assert s.reference_time_source == "series"


def test_rescale_intercept_is_applied_with_a_warning_and_factor_unchanged() -> None:
    """Notes §2.5: intercept ≠ 0 → apply it anyway, warn (the factor itself is unchanged)."""
    s = compute_suv(pet_series(2, RescaleIntercept="3"))
    assert s.factor() == pytest.approx(BASE_BW, rel=REL)
    assert any("Rescale Intercept" in w for w in s.warnings)


# --------------------------------------------------------------------- §2.2 units


def test_gml_without_suv_type_is_already_suvbw() -> None:
    """Notes §2.2 (IBSI DRO_2_0): GML with SUV Type absent ⇒ factor 1, no dose needed."""
    s = compute_suv(pet_series(2, Units="GML", rp={"RadionuclideTotalDose": None}))
    assert s.factor() == 1.0


def test_gml_james128_male_converts_to_suvbw_and_sul() -> None:
    """Notes §2.2/§4.1 DRO_2_1: GML with LBMJAMES128, M 70 kg 1.75 m: LBM 56.52 kg;
    SUVbw = SUVlbm × W/LBM; SUL(Janma) = SUVlbm × Janma/James."""
    s = compute_suv(pet_series(2, Units="GML", SUVType="LBMJAMES128"))
    lbm = james(70, 175, "M")
    assert lbm == pytest.approx(56.52, abs=1e-9)
    assert s.factor(Normalisation.LBM_JAMES128) == 1.0
    assert s.factor() == pytest.approx(70 / lbm, rel=REL)
    assert s.factor(Normalisation.LBM_JANMA) == pytest.approx(janma(70, 175, "M") / lbm, rel=REL)


def test_gml_ibw_sex_o_uses_mean_of_both_formulas() -> None:
    """Notes §2.5/§4.1 DRO_2_2: sex O ⇒ IBW = mean(72.38, 66.43) = 69.405 kg."""
    s = compute_suv(pet_series(2, Units="GML", SUVType="IBW", PatientSex="O"))
    assert s.factor() == pytest.approx(70 / 69.405, rel=REL)


def test_cm2ml_is_suvbsa_in_cm2() -> None:
    """Notes §2.2 (DRO_2_3) and §2.6 unit trap: SUVbw = SUVbsa × W_g / BSA_cm²
    (BSA 1.84814 m² = 18481.4 cm²; not m², not per kBq)."""
    s = compute_suv(pet_series(2, Units="CM2ML"))
    bsa = bsa_cm2(70, 175)
    assert bsa == pytest.approx(18481.4, abs=0.1)
    assert s.factor(Normalisation.BSA) == 1.0
    assert s.factor() == pytest.approx(70_000 / bsa, rel=REL)


def test_philips_cnts_suv_scale_factor_is_suvbw_and_rescaled_for_sul() -> None:
    """Notes §2.2: CNTS with (7053,1000) ⇒ SUVbw = A × SUVSF; other flavours × size/W."""
    ds = pet_series(2, Units="CNTS", Manufacturer="Philips Medical Systems",
                    PatientSex="F", PatientWeight="60", PatientSize="1.65",
                    philips={"SUVScaleFactor": "0.000612"})
    s = compute_suv(ds)
    assert s.factor() == pytest.approx(0.000612, rel=REL)
    assert s.factor(Normalisation.LBM_JANMA) == pytest.approx(
        0.000612 * janma(60, 165, "F") / 60, rel=REL)


def test_philips_cnts_acsf_only_goes_through_bqml_path() -> None:
    """Notes §2.2 (DRO_2_5): ACSF only ⇒ Bq/ml = A × ACSF, then W_g / D_ref."""
    ds = pet_series(2, Units="CNTS", Manufacturer="Philips Medical Systems",
                    philips={"ActivityConcentrationScaleFactor": "0.5"})
    assert compute_suv(ds).factor() == pytest.approx(0.5 * BASE_BW, rel=REL)


def test_philips_bqml_ignores_private_factors() -> None:
    """Notes §2.2: Units BQML on Philips ⇒ BQML path, private factors ignored."""
    ds = pet_series(2, Manufacturer="Philips Medical Systems",
                    philips={"SUVScaleFactor": "0.9", "ActivityConcentrationScaleFactor": "7"})
    assert compute_suv(ds).factor() == pytest.approx(BASE_BW, rel=REL)


def test_cps_with_dose_calibration_factor() -> None:
    """Notes §2.2 (IBSI): CPS without DCAL ⇒ × Dose Calibration Factor / voxel volume (ml)."""
    ds = pet_series(2, Units="CPS", CorrectedImage=["ATTN", "DECY"], DoseCalibrationFactor="2.5")
    voxel_ml = 4 * 4 * 4 / 1000
    assert compute_suv(ds).factor() == pytest.approx(2.5 / voxel_ml * BASE_BW, rel=REL)


@pytest.mark.parametrize(("units", "why"), [
    ("PROPCNTS", "proportional to counts"),
    ("PROPCPS", "proportional to counts per second"),
    ("1CM", "linear attenuation"),
])
def test_non_quantitative_units_refused(units: str, why: str) -> None:
    """Notes §2.2/§8 item 18: PROPCNTS/PROPCPS/1CM are never labelled SUV."""
    with pytest.raises(SUVError, match=why):
        compute_suv(pet_series(2, Units=units))


def test_cnts_without_any_philips_factor_refused() -> None:
    """Notes §2.2: CNTS with neither factor (10% of CNTS series) is not convertible."""
    with pytest.raises(SUVError, match="Units CNTS without a usable Philips"):
        compute_suv(pet_series(2, Units="CNTS", Manufacturer="Philips Medical Systems",
                               philips={"SUVScaleFactor": "0",
                                        "ActivityConcentrationScaleFactor": "0"}))


def test_nac_series_refused() -> None:
    """Notes §2.5/§8 item 18: Corrected Image without ATTN ⇒ refuse (calculate-suv throws
    and breaks the viewer; we refuse with the reason)."""
    with pytest.raises(SUVError, match="lacks ATTN"):
        compute_suv(pet_series(2, CorrectedImage=["NORM", "DECY"]))


# --------------------------------------------------------------------- §2.3 decay modes


def test_dose_in_mbq_heuristic() -> None:
    """Notes §2.5 (DRO_3_0): dose < 1e4 ⇒ MBq, with a warning."""
    s = compute_suv(pet_series(2, rp={"RadionuclideTotalDose": "368.08"}))
    assert s.factor() == pytest.approx(BASE_BW, rel=REL)
    assert any("taken as MBq" in w for w in s.warnings)


def test_decay_correction_admin_means_no_decay() -> None:
    """Notes §2.3 ADMIN (DRO_3_1): D_ref = D_adm (Horos decays anyway: wrong)."""
    s = compute_suv(pet_series(2, DecayCorrection="ADMIN"))
    assert s.decay_correction is DecayCorrection.ADMIN
    assert s.factor() == pytest.approx(70_000 / DOSE, rel=REL)


def test_series_after_acquisition_back_computed_from_frame_reference_time() -> None:
    """Notes §2.3 step 5 / §4.4 (DRO_3_2): series 11:30 after beds at 11:02:30 (FRT 450 s)
    and 11:05:00 (FRT 600 s), 603 s frames ⇒ t_ref = t_acq + Tave − FRT = 10:59:59.906."""
    ds = pet_series(2, SeriesTime="113000", ActualFrameDuration="603000",
                    per_slice=[dict(AcquisitionTime="110230", FrameReferenceTime="450000"),
                               dict(AcquisitionTime="110500", FrameReferenceTime="600000")])
    t = tave(603)
    assert t == pytest.approx(299.906, abs=1e-3)
    want_ref = datetime(2025, 1, 1, 11, 2, 30) + timedelta(seconds=t - 450)
    s = compute_suv(ds)
    assert s.reference_time_source == "back_computed"
    assert abs((s.reference_time - want_ref).total_seconds()) < 1e-5
    uptake = (want_ref - datetime(2025, 1, 1, 10)).total_seconds()
    assert s.factor() == pytest.approx(70_000 / d_ref(DOSE, uptake), rel=REL)
    # calculate-suv's earliest-acquisition answer would be 150 s of decay too much.
    assert s.factor() / (70_000 / d_ref(DOSE, 3750)) == pytest.approx(2 ** (-150.094 / F18),
                                                                     rel=1e-5)


def test_series_after_acquisition_inconsistent_frt_falls_back_to_earliest() -> None:
    """Notes §2.3 step 5: back-computed times spread > tolerance ⇒ earliest acquisition,
    flagged."""
    ds = pet_series(2, SeriesTime="113000", ActualFrameDuration="603000",
                    per_slice=[dict(AcquisitionTime="110230", FrameReferenceTime="450000"),
                               dict(AcquisitionTime="110500", FrameReferenceTime="400000")])
    s = compute_suv(ds)
    assert s.reference_time_source == "earliest_acquisition"
    assert s.factor() == pytest.approx(70_000 / d_ref(DOSE, 3750), rel=REL)
    assert any("spread" in w for w in s.warnings)


def test_series_not_after_acquisition_is_used_even_if_ge_private_differs() -> None:
    """Notes §2.3 step 4 (DRO_3_3 design): series 11:00 ≤ acquisition 11:30 ⇒ series time;
    the GE private scan time 10:55 is only flagged."""
    ds = pet_series(2, Manufacturer="GE MEDICAL SYSTEMS", AcquisitionTime="113000",
                    FrameReferenceTime="0")
    for d in ds:
        d.add_new(0x00090010, "LO", "GEMS_PETD_01")
        d.add_new(0x0009100D, "DT", "20250101105500")
    s = compute_suv(ds)
    assert s.reference_time_source == "series"
    assert s.factor() == pytest.approx(BASE_BW, rel=REL)
    assert any("GE private scan" in w for w in s.warnings)


def test_ge_private_element_of_another_creator_is_not_read() -> None:
    """Notes §1: private tags via their creator only; (0009,100D) owned by another creator
    must not be read as the GE scan time ⇒ earliest acquisition (FRT 0)."""
    ds = pet_series(2, Manufacturer="GE MEDICAL SYSTEMS", SeriesTime="120000",
                    AcquisitionTime="110000", FrameReferenceTime="0")
    for d in ds:
        d.add_new(0x00090010, "LO", "GEIIS")
        d.add_new(0x0009100D, "DT", "20250101100500")
    s = compute_suv(ds)
    assert s.reference_time_source == "earliest_acquisition"
    assert s.factor() == pytest.approx(BASE_BW, rel=REL)


def test_series_within_tolerance_after_acquisition_still_uses_series() -> None:
    """Notes §2.3 step 1: compare with a 2 s tolerance, never exact equality."""
    s = compute_suv(pet_series(2, SeriesTime="110001.5", FrameReferenceTime="0"))
    assert s.reference_time_source == "series"
    assert s.factor() == pytest.approx(70_000 / d_ref(DOSE, 3601.5), rel=REL)


def test_series_3_s_after_acquisition_is_post_processed() -> None:
    """Notes §2.3 step 5: beyond the tolerance, without FRT or GE tag ⇒ earliest acquisition."""
    s = compute_suv(pet_series(2, SeriesTime="110003", FrameReferenceTime="0"))
    assert s.reference_time_source == "earliest_acquisition"
    assert s.factor() == pytest.approx(BASE_BW, rel=REL)


def test_decay_correction_none_two_beds_per_frame_factor() -> None:
    """Notes §2.3 NONE (DRO_3_4): factor = W/D_adm · λT/(1−e^(−λT)) · e^(λ(t_acq − t_adm))
    per frame; Corrected Image without DECY is legitimate here (notes §2.5)."""
    ds = pet_series(2, DecayCorrection="NONE", CorrectedImage=["ATTN", "SCAT"],
                    ActualFrameDuration="603000",
                    per_slice=[dict(AcquisitionTime="110000", FrameReferenceTime="300000"),
                               dict(AcquisitionTime="110500", FrameReferenceTime="600000")])
    s = compute_suv(ds)
    lam = math.log(2) / F18
    k = lam * 603 / (1 - math.exp(-lam * 603))
    for d, start in zip(ds, (3600, 3900), strict=True):
        want = 70_000 / DOSE * k * math.exp(lam * start)
        assert s.factor(sop_instance_uid=d.SOPInstanceUID) == pytest.approx(want, rel=REL)
    # equivalently: decay to the frame's average-count time (Tave form of notes §2.3)
    want0 = 70_000 / d_ref(DOSE, 3600 + tave(603)) * (k * math.exp(-lam * tave(603)))
    assert s.factor(sop_instance_uid=ds[0].SOPInstanceUID) == pytest.approx(want0, rel=REL)


def test_start_without_decy_refused_but_decay_spelling_accepted() -> None:
    """Notes §1 table / §2.5: START needs DECY in Corrected Image; "DECAY" also occurs."""
    with pytest.raises(SUVError, match="lacks DECY"):
        compute_suv(pet_series(2, CorrectedImage=["ATTN", "SCAT"]))
    s = compute_suv(pet_series(2, CorrectedImage=["ATTN", "DECAY"]))
    assert s.factor() == pytest.approx(BASE_BW, rel=REL)


def test_decay_factor_consistency_check_recorded() -> None:
    """Notes §2.3 step 7: Decay Factor = 2^((t_acq + Tave − t_ref)/T½) per frame."""
    df = 2 ** (tave(300) / F18)
    s = compute_suv(pet_series(3, DecayFactor=f"{df:.10f}"))
    assert s.provenance["decay_factor_check"] == {"frames": 3, "consistent": 3}


# --------------------------------------------------------------------- §2.4 times and dates


def test_only_start_datetime() -> None:
    """Notes §2.4 (DRO_4_0): TM absent, DT used."""
    s = compute_suv(pet_series(2, rp={"RadiopharmaceuticalStartTime": None}))
    assert s.factor() == pytest.approx(BASE_BW, rel=REL)


def test_only_start_time_tm() -> None:
    """Notes §2.4 (DRO_4_1): DT absent, TM combined with the scan date."""
    s = compute_suv(pet_series(2, rp={"RadiopharmaceuticalStartDateTime": None}))
    assert s.factor() == pytest.approx(BASE_BW, rel=REL)


def test_tm_without_seconds() -> None:
    """Notes §8 item 3: "1000" = 10:00 (missing seconds)."""
    s = compute_suv(pet_series(2, rp={"RadiopharmaceuticalStartDateTime": None,
                                      "RadiopharmaceuticalStartTime": "1000"}))
    assert s.factor() == pytest.approx(BASE_BW, rel=REL)


def test_midnight_crossing_tm_only() -> None:
    """Notes §2.4/§4.4 (DRO_4_2): injection 23:30 (TM), series 2025-01-02 00:30 ⇒ Δt 3600 s,
    not −82,800 s (calculate-suv throws here)."""
    ds = pet_series(2, SeriesDate="20250102", SeriesTime="003000", AcquisitionDate="20250102",
                    AcquisitionTime="003000",
                    rp={"RadiopharmaceuticalStartDateTime": None,
                        "RadiopharmaceuticalStartTime": "233000"})
    assert compute_suv(ds).factor() == pytest.approx(BASE_BW, rel=REL)


def test_tm_injection_minutes_after_scan_is_refused_not_shifted_a_day() -> None:
    """Notes §2.3 decay sanity + §2.4 Z-Rad rule (accept offsets ≥ −1 h as they are): an
    injection clock 5 min after the series time is a negative uptake time, refused. Shifting
    it to the previous day (23 h 55 min of decay, ~12.5 half-lives too many)
    was a bug found by this audit."""
    ds = pet_series(2, rp={"RadiopharmaceuticalStartDateTime": None,
                           "RadiopharmaceuticalStartTime": "110500"})
    with pytest.raises(SUVError, match="negative uptake time"):
        compute_suv(ds)


def test_tm_injection_more_than_an_hour_after_clock_is_previous_day() -> None:
    """Notes §2.4 (Z-Rad PR #282): offset < −1 h ⇒ the injection was the day before
    (here 22:00 the previous evening, scan 00:30: 2.5 h uptake)."""
    ds = pet_series(2, SeriesDate="20250102", SeriesTime="003000", AcquisitionDate="20250102",
                    AcquisitionTime="003000",
                    rp={"RadiopharmaceuticalStartDateTime": None,
                        "RadiopharmaceuticalStartTime": "220000"})
    assert compute_suv(ds).factor() == pytest.approx(70_000 / d_ref(DOSE, 9000), rel=REL)


def test_datetime_injection_after_reference_refused() -> None:
    """Notes §2.3: reject negative Δt."""
    with pytest.raises(SUVError, match="negative uptake time"):
        compute_suv(pet_series(2, rp={"RadiopharmaceuticalStartDateTime": "20250101110500"}))


def test_start_datetime_with_offset_converted_to_local_time() -> None:
    """Notes §8 item 3: DT may carry a UTC offset; 10:00+0100 is 09:00 at local UTC+0000
    ⇒ 2 h uptake."""
    ds = pet_series(2, TimezoneOffsetFromUTC="+0000",
                    rp={"RadiopharmaceuticalStartDateTime": "20250101100000+0100"})
    assert compute_suv(ds).factor() == pytest.approx(70_000 / d_ref(DOSE, 7200), rel=REL)


def test_ga68_half_life_from_header() -> None:
    """Notes §4.1 DRO_5_0: Ga-68 T½ 4057.7 s from the header."""
    ds = pet_series(2, rp={"RadionuclideHalfLife": "4057.7"})
    assert compute_suv(ds).factor() == pytest.approx(70_000 / d_ref(DOSE, 3600, 4057.7),
                                                     rel=REL)


def test_philips_half_life_6588_not_corrected() -> None:
    """Notes §2.4: F-18 appears as 6588 s on Philips; use the header value as is."""
    ds = pet_series(2, rp={"RadionuclideHalfLife": "6588"})
    assert compute_suv(ds).factor() == pytest.approx(70_000 / d_ref(DOSE, 3600, 6588), rel=REL)


def test_long_half_life_needs_a_date() -> None:
    """Notes §2.4: Zr-89 (T½ 282,276 s ≥ 41,400 s) with DT three days earlier is fine;
    TM only cannot be dated and is refused (Slicer ignores dates: issue #28)."""
    ds = pet_series(2, rp={"RadionuclideHalfLife": "282276",
                           "RadiopharmaceuticalStartDateTime": "20241229110000",
                           "RadiopharmaceuticalStartTime": None})
    assert compute_suv(ds).factor() == pytest.approx(70_000 / d_ref(DOSE, 3 * 86400, 282276),
                                                     rel=REL)
    tm_only = pet_series(2, rp={"RadionuclideHalfLife": "282276",
                                "RadiopharmaceuticalStartDateTime": None,
                                "RadiopharmaceuticalStartTime": "110000"})
    with pytest.raises(SUVError, match="cannot be inferred"):
        compute_suv(tm_only)


def test_first_of_several_radiopharmaceutical_items_with_warning() -> None:
    """Notes §1 table: the item 0 of (0054,0016); multi-tracer studies may have more."""
    ds = pet_series(2)
    for d in ds:
        other = Dataset()
        other.RadionuclideTotalDose = "1"
        other.RadionuclideHalfLife = "100"
        d.RadiopharmaceuticalInformationSequence = Sequence(
            [d.RadiopharmaceuticalInformationSequence[0], other])
    s = compute_suv(ds)
    assert s.factor() == pytest.approx(BASE_BW, rel=REL)
    assert any("radiopharmaceutical items" in w for w in s.warnings)


# --------------------------------------------------------------------- §2.6 body size


def _sizes_case(w: float, h_m: float, sex: str):
    return compute_suv(pet_series(2, PatientWeight=str(w), PatientSize=str(h_m), PatientSex=sex))


@pytest.mark.parametrize("sex", ["M", "F"])
def test_every_normalisation_by_hand_75kg_185cm(sex: str) -> None:
    """Notes §2.6/§4.3: James 128 vs 120 ("Morgan", calculate-suv), Janmahasatian, IBW
    (not clamped to W, MIRP/MITK), Du Bois BSA in cm²."""
    s = _sizes_case(75, 1.85, sex)
    dr = d_ref(DOSE, 3600)
    want = {
        Normalisation.BW: 75_000,
        Normalisation.LBM_JAMES128: james(75, 185, sex) * 1000,
        Normalisation.LBM_JAMES120: james(75, 185, sex, 120) * 1000,
        Normalisation.LBM_JANMA: janma(75, 185, sex) * 1000,
        Normalisation.IBW: ibw(185, sex) * 1000,
        Normalisation.BSA: bsa_cm2(75, 185),
    }
    printed = {"M": (61.4627, 62.7776, 60.9153, 82.980), "F": (55.9257, 55.9257, 49.2144, 75.530)}
    for got, norm in zip(printed[sex], (Normalisation.LBM_JAMES128, Normalisation.LBM_JAMES120,
                                        Normalisation.LBM_JANMA, Normalisation.IBW), strict=True):
        assert want[norm] / 1000 == pytest.approx(got, abs=1e-4)
    for norm, size in want.items():
        assert s.factor(norm) == pytest.approx(size / dr, rel=REL), norm
    assert any("not clamped" in w for w in s.warnings)  # IBW 82.98 / 75.53 > 75 kg


def test_sex_o_james_is_mean_of_both() -> None:
    """Notes §2.5/§4.3: 70 kg, 175 cm, O ⇒ James128 mean(56.52, 51.22) = 53.87 kg."""
    s = _sizes_case(70, 1.75, "O")
    assert s.factor(Normalisation.LBM_JAMES128) == pytest.approx(
        53870 / d_ref(DOSE, 3600), rel=REL)


def test_james_collapse_female_refused_janmahasatian_kept() -> None:
    """Notes §2.6: James (F) peaks at BMI ≈ 36; 150 kg, 160 cm (BMI 58.6) gives 30.4 kg
    (criteria P-07) ⇒ refused; Janmahasatian 60.26 kg is used."""
    s = _sizes_case(150, 1.60, "F")
    with pytest.raises(SUVError, match="James LBM collapses"):
        s.factor(Normalisation.LBM_JAMES128)
    assert janma(150, 160, "F") == pytest.approx(60.26, abs=0.005)
    assert s.factor(Normalisation.LBM_JANMA) == pytest.approx(
        janma(150, 160, "F") * 1000 / d_ref(DOSE, 3600), rel=REL)


def test_weight_grams_height_cm_heuristics() -> None:
    """Notes §2.5: weight ≥ 1000 ⇒ g; height > 3 ⇒ cm; with warnings."""
    s = compute_suv(pet_series(2, PatientWeight="82500", PatientSize="180", PatientSex="M"))
    assert s.factor(Normalisation.LBM_JANMA) == pytest.approx(
        janma(82.5, 180, "M") * 1000 / d_ref(DOSE, 3600), rel=REL)
    text = " ".join(s.warnings)
    assert "taken as grams" in text and "taken as cm" in text
