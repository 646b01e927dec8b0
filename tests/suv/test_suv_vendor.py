"""Vendor header vectors, reference-time paths, refusals and overrides of compute_suv.

Positive vectors: the real Siemens/GE/Philips header sets of the calculate-suv samples
(the "real-world vendor header sets" of the PET quantification notes §0/§2.2/§2.3, see
suv_testdata.py) must give calculate-suv's validated SUVbw factor to 1e-9 relative, and take
the reference-time path the notes' decision procedure prescribes. Other expectations are
computed here independently from the closed forms of notes §2.1/§2.3.
"""

from __future__ import annotations

import math
from datetime import datetime, time

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from suv_testdata import VENDOR_VECTORS, pet_series, vendor_series

from oncohybrid.dicom.suv import (
    DecayCorrection,
    Normalisation,
    SUVOverrides,
    Units,
    compute_suv,
)
from oncohybrid.errors import SUVError

F18 = 6586.2
LAM = math.log(2) / F18


def _bw(weight_kg: float, dose_bq: float, uptake_s: float, half_life_s: float = F18) -> float:
    return weight_kg * 1000 / (dose_bq * 2 ** (-uptake_s / half_life_s))


@pytest.mark.parametrize("name", list(VENDOR_VECTORS))
def test_vendor_header_vector_matches_validated_suvbw_factor(name: str) -> None:
    v = VENDOR_VECTORS[name]
    scaling = compute_suv(vendor_series(name))
    # 1e-9: BQML_AC_DT_BEFORE_S_DT differs by 5e-10 because calculate-suv compares times
    # exactly and decays to the acquisition time 5 µs before the series time.
    assert scaling.factor() == pytest.approx(v["expected"], rel=1e-9)
    assert scaling.reference_time_source == v["path"]
    assert scaling.per_slice is None


def test_philips_bqml_ignores_private_factors_and_flags_frame_reference_time() -> None:
    """Notes §2.2/§2.3: BQML on Philips → BQML path; the back-computed time is 21 min early."""
    s = compute_suv(vendor_series("PHILIPS_BQML"))
    assert s.units is Units.BQML
    assert "philips_suv_scale_factor" not in s.provenance["units_path"]
    assert any("disagrees with Series Time" in w and "-1267 s" in w for w in s.warnings)
    back = datetime.fromisoformat(s.provenance["reference_time"]["candidates"]["back_computed"])
    assert (s.reference_time - back).total_seconds() == pytest.approx(1267.4, abs=0.5)


def test_post_processed_series_uses_earliest_acquisition_not_series_time() -> None:
    """Trusting the series time (45 min after acquisition) would inflate SUV by ~1/3."""
    s = compute_suv(vendor_series("CPS_AND_BQML_AC_DT_-_S_DT"))
    series_factor = _bw(69, 388e6, (13 * 3600 + 49 * 60 + 18) - (12 * 3600 + 37))
    assert series_factor / s.factor() == pytest.approx(1.33, abs=0.01)
    assert any("after the earliest acquisition" in w for w in s.warnings)


def test_philips_cnts_factors_are_self_consistent() -> None:
    """Identity SUVSF ≈ ACSF·W/D(series) (notes §2.2), recorded in provenance."""
    s = compute_suv(vendor_series("PHILIPS_CNTS_AND_BQML_SUV"))
    rel = s.provenance["units_path"]["suvsf_vs_acsf_relative_difference"]
    assert abs(rel) < 1e-3
    assert not any("differs by" in w for w in s.warnings)


def test_philips_private_block_resolved_through_its_creator_at_any_slot() -> None:
    """Creator at (7053,0012) ⇒ the SUV scale factor lives at (7053,1200), not (7053,1000)."""
    ds = pet_series(2, Units="CNTS", Manufacturer="Philips Medical Systems",
                    philips={"SUVScaleFactor": "0.000612"}, philips_creator_element=0x12)
    ds[0].add_new(0x70530010, "LO", "SOME OTHER CREATOR")
    ds[0].add_new(0x70531000, "DS", "99")  # belongs to the other creator: must be ignored
    assert 0x70531200 in ds[0]
    assert compute_suv(ds).factor() == 0.000612


def test_philips_factor_without_creator_is_read_with_a_warning() -> None:
    ds = pet_series(2, Units="CNTS", Manufacturer="Philips Medical Systems",
                    philips={"ActivityConcentrationScaleFactor": "0.5"},
                    philips_creator_element=0)
    s = compute_suv(ds)
    assert s.factor() == pytest.approx(0.5 * _bw(70, 368.08e6, 3600), rel=1e-12)
    assert any("conventional element number" in w for w in s.warnings)


def test_philips_element_owned_by_another_creator_is_not_used() -> None:
    ds = pet_series(2, Units="CNTS", Manufacturer="Philips Medical Systems")
    for d in ds:
        d.add_new(0x70530010, "LO", "NOT PHILIPS")
        d.add_new(0x70531000, "DS", "0.0005")
    with pytest.raises(SUVError, match=r"Units CNTS without a usable Philips SUV Scale Factor"):
        compute_suv(ds)


def test_cnts_suv_scale_factor_zero_falls_back_to_acsf() -> None:
    ds = pet_series(2, Units="CNTS", Manufacturer="Philips Medical Systems",
                    philips={"SUVScaleFactor": "0", "ActivityConcentrationScaleFactor": "2.5"})
    assert compute_suv(ds).factor() == pytest.approx(2.5 * _bw(70, 368.08e6, 3600), rel=1e-12)


def test_ge_private_scan_datetime_used_when_series_is_after_acquisition() -> None:
    """GE post-processed series: series 12:00 after acquisition 11:00 ⇒ (0009,xx0D) of
    creator GEMS_PETD_01 (QIBA); here reserved at (0009,0011) ⇒ element (0009,110D)."""
    ds = pet_series(3, Manufacturer="GE MEDICAL SYSTEMS", SeriesTime="120000",
                    AcquisitionTime="110000", FrameReferenceTime="0")
    for d in ds:
        d.add_new(0x00090011, "LO", "GEMS_PETD_01")
        d.add_new(0x0009110D, "DT", "20250101105500")
    s = compute_suv(ds)
    assert s.reference_time_source == "ge_private_scan_datetime"
    assert s.reference_time == datetime(2025, 1, 1, 10, 55)
    assert s.factor() == pytest.approx(_bw(70, 368.08e6, 3300), rel=1e-12)


def test_enhanced_pet_decay_correction_datetime_wins() -> None:
    ds = pet_series(1, SeriesTime="113000", AcquisitionTime="110000")[0]
    ds.add_new(0x00189701, "DT", "20250101104500")  # Decay Correction DateTime
    s = compute_suv([ds])
    assert s.reference_time_source == "decay_correction_datetime"
    assert s.factor() == pytest.approx(_bw(70, 368.08e6, 2700), rel=1e-12)


def test_enhanced_multiframe_none_gives_per_frame_factors() -> None:
    ds = pet_series(1, DecayCorrection="NONE", CorrectedImage=["ATTN", "SCAT"])[0]
    ds.NumberOfFrames = 2
    frames = []
    for start in ("20250101110000", "20250101110500"):
        fg, content = Dataset(), Dataset()
        content.FrameAcquisitionDateTime = start
        content.FrameAcquisitionDuration = 300000
        fg.FrameContentSequence = Sequence([content])
        frames.append(fg)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    s = compute_suv([ds])
    assert set(s.per_slice) == {"0", "1"}
    k = LAM * 300 / (1 - math.exp(-LAM * 300))
    for key, start_s in (("0", 3600), ("1", 3900)):
        want = 70000 / 368.08e6 * k * math.exp(LAM * start_s)
        assert s.factor(Normalisation.BW, key) == pytest.approx(want, rel=1e-12)


def test_decay_correction_none_per_slice_and_factor_requires_slice() -> None:
    ds = pet_series(2, DecayCorrection="NONE", CorrectedImage=["ATTN", "SCAT"],
                    per_slice=[dict(AcquisitionTime="110000"), dict(AcquisitionTime="110500")],
                    ActualFrameDuration="603000")
    s = compute_suv(ds)
    assert s.decay_correction is DecayCorrection.NONE
    k = LAM * 603 / (1 - math.exp(-LAM * 603))
    late = 70000 / 368.08e6 * k * math.exp(LAM * 3900)
    assert s.factor(sop_instance_uid=ds[1].SOPInstanceUID) == pytest.approx(late, rel=1e-12)
    assert s.factors[Normalisation.BW] == pytest.approx(late * math.exp(-LAM * 300), rel=1e-12)
    with pytest.raises(SUVError, match="differ per slice"):
        s.factor()


def test_tm_only_injection_after_scan_clock_is_previous_day() -> None:
    ds = pet_series(2, SeriesDate="20250102", SeriesTime="003000",
                    AcquisitionDate="20250102", AcquisitionTime="003000",
                    rp={"RadiopharmaceuticalStartDateTime": None,
                        "RadiopharmaceuticalStartTime": "233000"})
    s = compute_suv(ds)
    assert s.provenance["uptake_time_s"] == 3600
    assert s.provenance["administration_time"]["midnight_crossing"] is True


def test_start_datetime_preferred_over_tm() -> None:
    ds = pet_series(2, rp={"RadiopharmaceuticalStartDateTime": "20250101100000",
                           "RadiopharmaceuticalStartTime": "101000"})
    s = compute_suv(ds)
    assert s.provenance["uptake_time_s"] == 3600
    assert any("disagrees with (0018,1078)" in w for w in s.warnings)


def test_implausible_weight_height_dose_are_converted_with_warnings() -> None:
    ds = pet_series(2, PatientWeight="70000", PatientSize="175", rp={
        "RadionuclideTotalDose": "368.08"})
    s = compute_suv(ds)
    assert (s.weight_kg, s.height_m, s.injected_dose_bq) == (70.0, 1.75, 368.08e6)
    assert s.factor() == pytest.approx(_bw(70, 368.08e6, 3600), rel=1e-12)
    text = " ".join(s.warnings)
    assert "taken as grams" in text and "taken as cm" in text and "taken as MBq" in text


def test_overrides_replace_header_values_and_are_recorded() -> None:
    ds = pet_series(2, PatientWeight=None)
    ov = SUVOverrides(dose_bq=300e6, injection_time=datetime(2025, 1, 1, 9, 30),
                      weight_kg=80.0)
    s = compute_suv(ds, overrides=ov)
    assert s.factor() == pytest.approx(_bw(80, 300e6, 5400), rel=1e-12)
    assert s.provenance["overrides"] == {
        "dose_bq": 300e6, "injection_time": "2025-01-01T09:30:00", "weight_kg": 80.0}
    assert s.provenance["administration_time"]["source"] == "override"
    tm = compute_suv(ds, overrides=SUVOverrides(weight_kg=80.0, injection_time=time(9, 30)))
    assert tm.factor() == pytest.approx(_bw(80, 368.08e6, 5400), rel=1e-12)


def test_reference_time_override() -> None:
    s = compute_suv(pet_series(2), overrides=SUVOverrides(
        reference_time=datetime(2025, 1, 1, 11, 30)))
    assert s.reference_time_source == "override"
    assert s.factor() == pytest.approx(_bw(70, 368.08e6, 5400), rel=1e-12)


def test_half_life_inferred_from_radionuclide_code_with_warning() -> None:
    ds = pet_series(2, rp={"RadionuclideHalfLife": None})
    for d in ds:
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = \
            "C-111A1", "SRT", "^18^Fluorine"
        d.RadiopharmaceuticalInformationSequence[0].RadionuclideCodeSequence = Sequence([code])
    s = compute_suv(ds)
    assert s.half_life_s == F18
    assert any("inferred from Radionuclide Code Sequence" in w for w in s.warnings)


def test_james_collapse_refused_and_sul_still_available() -> None:
    """Notes §2.6: H 170 cm, W 200 kg (BMI 69): James128 M = 42.8 kg, past its peak."""
    s = compute_suv(pet_series(2, PatientWeight="200", PatientSize="1.70", PatientSex="M"))
    with pytest.raises(SUVError, match="James LBM collapses in obesity"):
        s.factor(Normalisation.LBM_JAMES128)
    janma_g = 9270 * 200 / (6680 + 216 * 200 / 1.7**2) * 1000
    assert s.factor(Normalisation.LBM_JANMA) == pytest.approx(
        janma_g / (368.08e6 * 2 ** (-3600 / F18)), rel=1e-12)


def test_all_normalisations_named_and_consistent() -> None:
    s = compute_suv(pet_series(2, PatientWeight="75", PatientSize="1.85", PatientSex="F"))
    d_ref = 368.08e6 * 2 ** (-3600 / F18)
    want = {
        Normalisation.BW: 75000,
        Normalisation.LBM_JANMA: 9270 * 75 / (8780 + 244 * 75 / 1.85**2) * 1000,
        Normalisation.LBM_JAMES128: (1.07 * 75 - 148 * (75 / 185) ** 2) * 1000,
        Normalisation.LBM_JAMES120: (1.07 * 75 - 148 * (75 / 185) ** 2) * 1000,
        Normalisation.IBW: (45.5 + 0.91 * (185 - 152)) * 1000,
        Normalisation.BSA: 0.007184 * 75**0.425 * 185**0.725 * 1e4,
    }
    for norm, size in want.items():
        assert s.factor(norm) == pytest.approx(size / d_ref, rel=1e-12), norm
    out = s.to_json()
    assert out["sul_factor"] == s.factor(Normalisation.LBM_JANMA)
    assert out["suvbsa_factor"] == s.factor(Normalisation.BSA)


def test_unknown_sex_omit_refuses_sex_dependent_normalisations() -> None:
    s = compute_suv(pet_series(2, PatientSex="O"), overrides=SUVOverrides(unknown_sex="omit"))
    with pytest.raises(SUVError, match=r"\(0010,0040\) Patient's Sex"):
        s.factor(Normalisation.LBM_JANMA)
    assert Normalisation.BSA in s.factors


def test_missing_height_only_drops_size_normalisations() -> None:
    s = compute_suv(pet_series(2, PatientSize=None))
    assert set(s.factors) == {Normalisation.BW}
    with pytest.raises(SUVError, match=r"\(0010,1020\) Patient's Size is missing"):
        s.factor(Normalisation.BSA)


def _without_rp(**kw):
    return pet_series(2, no_rp=True, **kw)


# Negative cases: each must refuse, naming the attribute and the reason (notes §2.2, §2.5, §8).
REFUSALS = {
    "PROPCNTS": (dict(Units="PROPCNTS"), r"Units PROPCNTS is proportional to counts"),
    "PROPCPS": (dict(Units="PROPCPS"), r"Units PROPCPS is proportional to counts per second"),
    "mu-map-1CM": (dict(Units="1CM"), r"Units 1CM is linear attenuation"),
    "units-missing": (dict(Units=None), r"\(0054,1001\) Units is missing"),
    "NAC-no-ATTN": (dict(CorrectedImage=["NORM", "DECY", "SCAT"]),
                    r"lacks ATTN: the series is not attenuation-corrected \(NAC\)"),
    "START-without-DECY": (dict(CorrectedImage=["ATTN", "SCAT"]),
                           r"Decay Correction is START but .* lacks DECY"),
    "not-PET": (dict(Modality="CT"), r"Modality is 'CT', not PT"),
    "weight-missing": (dict(PatientWeight=None), r"\(0010,1030\) Patient's Weight is missing"),
    "weight-zero": (dict(PatientWeight="0"), r"\(0010,1030\) Patient's Weight is missing"),
    "dose-missing": (dict(rp={"RadionuclideTotalDose": None}),
                     r"\(0018,1074\) Radionuclide Total Dose is missing"),
    "half-life-missing": (dict(rp={"RadionuclideHalfLife": None}),
                          r"\(0018,1075\) Radionuclide Half Life is missing"),
    "injection-time-missing": (dict(rp={"RadiopharmaceuticalStartDateTime": None,
                                        "RadiopharmaceuticalStartTime": None}),
                               r"\(0018,1078\) .* and \(0018,1072\) .* are both missing"),
    "negative-uptake": (dict(rp={"RadiopharmaceuticalStartDateTime": "20250101120000"}),
                        r"before the administration .* negative uptake time"),
    "negative-uptake-ADMIN": (dict(DecayCorrection="ADMIN", rp={
        "RadiopharmaceuticalStartDateTime": "20250101120000"}),
        r"acquisition time .* before the administration .* negative uptake time"),
    "CNTS-no-factors": (dict(Units="CNTS", Manufacturer="Philips Medical Systems"),
                        r"Units CNTS without a usable Philips SUV Scale Factor"),
    "CPS-no-calibration": (dict(Units="CPS", CorrectedImage=["ATTN", "DECY"]),
                           r"Units CPS without DCAL .* Dose Calibration Factor"),
    "long-half-life-TM-only": (dict(rp={"RadiopharmaceuticalStartDateTime": None,
                                        "RadionuclideHalfLife": "282276"}),
                               r"T½ = 282276 s ≥ 11.5 h: the administration day cannot"),
    "GML-unknown-SUV-type": (dict(Units="GML", SUVType="XYZ"),
                             r"\(0054,1006\) SUV Type 'XYZ' is not a known SUV type"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusal_names_attribute_and_reason(case: str) -> None:
    kwargs, message = REFUSALS[case]
    with pytest.raises(SUVError, match=message):
        compute_suv(pet_series(2, **kwargs))


def test_radiopharmaceutical_sequence_missing_is_refused() -> None:
    with pytest.raises(SUVError, match=r"\(0054,0016\) Radiopharmaceutical Information "
                                       r"Sequence is missing"):
        compute_suv(_without_rp())


def test_gml_needs_no_dose_and_converts_between_suv_types() -> None:
    """GML with SUV Type IBW: the factor to SUVbw is W / IBW; dose problems don't matter."""
    ds = _without_rp(Units="GML", SUVType="IBW", PatientSex="M")
    s = compute_suv(ds)
    assert s.factor(Normalisation.IBW) == 1.0
    assert s.factor(Normalisation.BW) == pytest.approx(70 / (48 + 1.06 * (175 - 152)), rel=1e-12)
    assert "not needed for GML" in s.provenance["units_path"]["dose_time_note"]


def test_cps_with_dcal_divides_by_voxel_volume() -> None:
    ds = pet_series(2, Units="CPS", CorrectedImage=["ATTN", "DECY", "DCAL"])
    s = compute_suv(ds)
    voxel_ml = 4 * 4 * 4 / 1000
    assert s.factor() == pytest.approx(_bw(70, 368.08e6, 3600) / voxel_ml, rel=1e-12)
    assert any("Units CPS converted" in w for w in s.warnings)


def test_start_datetime_utc_offset_converted_to_series_timezone() -> None:
    """DT 09:00+0000 with (0008,0201) Timezone Offset From UTC +0100 is 10:00 local."""
    ds = pet_series(2, TimezoneOffsetFromUTC="+0100",
                    rp={"RadiopharmaceuticalStartDateTime": "20250101090000+0000"})
    s = compute_suv(ds)
    assert s.provenance["uptake_time_s"] == 3600
    assert s.factor() == pytest.approx(_bw(70, 368.08e6, 3600), rel=1e-12)


def test_mixed_units_in_one_series_are_refused() -> None:
    ds = pet_series(2, per_slice=[{}, dict(Units="CNTS")])
    with pytest.raises(SUVError, match=r"Units differ within the series \(BQML and CNTS\)"):
        compute_suv(ds)
