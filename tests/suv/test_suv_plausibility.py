"""Implausible and garbage SUV headers (issue #12, hostile input 4 and 5): refused with the
attribute and the value named (exit 2 on the command line), each with an explicit override
for the rare real case. Expected factors are closed forms computed here."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import jsonschema
import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.tag import BaseTag
from suv_testdata import pet_series
from typer.testing import CliRunner

from oncohybrid.cli.main import app
from oncohybrid.dicom.suv import SUV_JSON_SCHEMA, SUVOverrides, compute_suv, suv_volume
from oncohybrid.errors import SUVError, SUVHeaderError

HL = 6586.2
DOSE = 368_080_000.0
runner = CliRunner()


def bw(weight_kg: float = 70.0, dose_bq: float = DOSE, uptake_s: float = 3600.0,
       half_life_s: float = HL) -> float:
    """SUVbw factor by hand: W_g / (D_adm · 2^(−Δt/T½))."""
    return weight_kg * 1000.0 / (dose_bq * 2.0 ** (-uptake_s / half_life_s))


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONCOHYBRID_HOME", str(tmp_path / "home"))


def _write(datasets: list[pydicom.Dataset], folder: Path) -> Path:
    folder.mkdir()
    for i, ds in enumerate(datasets):
        pydicom.dcmwrite(folder / f"{i:03d}.dcm", ds, enforce_file_format=True)
    return folder


# --- Rescale Slope --------------------------------------------------------------------


def test_rescale_slope_zero_is_refused_not_taken_as_one() -> None:
    ds = pet_series(3, per_slice=[{}, {"RescaleSlope": "0"}, {}])
    with pytest.raises(SUVHeaderError, match=r"\(0028,1053\) Rescale Slope 0 "):
        compute_suv(ds)
    # no override makes a zero slope usable: every pixel would be the intercept
    with pytest.raises(SUVHeaderError, match="Rescale Slope 0"):
        compute_suv(ds, overrides=SUVOverrides(allow_implausible=frozenset({"all"})))


def test_negative_rescale_slope_refused_unless_allowed() -> None:
    ds = pet_series(2, per_slice=[{}, {"RescaleSlope": "-0.5"}])
    with pytest.raises(SUVHeaderError, match=r"\(0028,1053\) Rescale Slope -0.5 .*negative"):
        compute_suv(ds)
    s = compute_suv(ds, overrides=SUVOverrides(allow_implausible=frozenset({"rescale-slope"})))
    assert s.factor() == pytest.approx(bw(), rel=1e-12)
    assert any("Rescale Slope -0.5" in w for w in s.warnings)


def test_garbage_rescale_slope_is_refused_naming_it() -> None:
    ds = pet_series(2)
    # as read from a file: the raw bytes, converted (and failing) only on access
    ds[1][0x00281053] = RawDataElement(BaseTag(0x00281053), "DS", 4, b"abc ", 0, True, True)
    with pytest.raises(SUVHeaderError, match=r"\(0028,1053\) Rescale Slope 'abc'"):
        compute_suv(ds)


# --- Series consistency ---------------------------------------------------------------


def test_weight_differing_in_the_last_slice_is_refused() -> None:
    ds = pet_series(4, per_slice=[{}, {}, {}, {"PatientWeight": "90"}])
    with pytest.raises(SUVHeaderError, match=r"\(0010,1030\) Patient's Weight differs .*70.*90"):
        compute_suv(ds)
    # the user's value makes the header values irrelevant
    assert compute_suv(ds, overrides=SUVOverrides(weight_kg=80)).factor() == pytest.approx(
        bw(80), rel=1e-12)
    s = compute_suv(ds, overrides=SUVOverrides(allow_implausible=frozenset({"series-consistency"})))
    assert s.factor() == pytest.approx(bw(70), rel=1e-12)  # first slice, with a warning
    assert any("Patient's Weight differs" in w for w in s.warnings)


def test_dose_differing_between_slices_is_refused() -> None:
    ds = pet_series(3)
    ds[2].RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose = "400000000"
    with pytest.raises(SUVHeaderError, match=r"\(0018,1074\) Radionuclide Total Dose differs"):
        compute_suv(ds)
    s = compute_suv(ds, overrides=SUVOverrides(dose_bq=3e8))
    assert s.factor() == pytest.approx(bw(dose_bq=3e8), rel=1e-12)


def test_same_values_written_differently_are_consistent() -> None:
    ds = pet_series(3, per_slice=[{"PatientWeight": "70"}, {"PatientWeight": "70.0"},
                                  {"PatientWeight": "7.0E1"}])
    assert compute_suv(ds).factor() == pytest.approx(bw(), rel=1e-12)


def test_injection_time_differing_between_slices_is_refused() -> None:
    ds = pet_series(2)
    ds[1].RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime = \
        "20250101093000"
    with pytest.raises(SUVHeaderError, match=r"\(0018,1078\) .* differs"):
        compute_suv(ds)


# --- Ranges ---------------------------------------------------------------------------


def test_dose_1e20_bq_is_refused() -> None:
    ds = pet_series(2, rp={"RadionuclideTotalDose": "1e20"})
    with pytest.raises(SUVHeaderError, match=r"\(0018,1074\) Radionuclide Total Dose 1e\+20 Bq"):
        compute_suv(ds)
    s = compute_suv(ds, overrides=SUVOverrides(allow_implausible=frozenset({"dose"})))
    assert s.factor() == pytest.approx(bw(dose_bq=1e20), rel=1e-12)


def test_weight_50_g_is_refused() -> None:
    ds = pet_series(2, PatientWeight="0.05")
    with pytest.raises(SUVHeaderError, match=r"\(0010,1030\) Patient's Weight 0.05 kg"):
        compute_suv(ds)
    s = compute_suv(ds, overrides=SUVOverrides(allow_implausible=frozenset({"weight"})))
    assert s.factor() == pytest.approx(bw(0.05), rel=1e-12)


def test_weight_override_is_range_checked_too() -> None:
    with pytest.raises(SUVHeaderError, match="--weight-kg 400"):
        compute_suv(pet_series(2), overrides=SUVOverrides(weight_kg=400))


def test_injection_three_days_before_the_scan_is_refused() -> None:
    ds = pet_series(2, rp={"RadiopharmaceuticalStartDateTime": "20241229110000"})
    with pytest.raises(SUVHeaderError, match=r"uptake time 72\.0 h .*10 half-lives"):
        compute_suv(ds)
    s = compute_suv(ds, overrides=SUVOverrides(allow_implausible=frozenset({"uptake"})))
    assert s.factor() == pytest.approx(bw(uptake_s=72 * 3600), rel=1e-9)


def test_implausible_height_only_removes_height_normalisations() -> None:
    s = compute_suv(pet_series(2, PatientSize="0.1"))
    assert s.factor() == pytest.approx(bw(), rel=1e-12)
    with pytest.raises(SUVError, match=r"\(0010,1020\) Patient's Size 0.1 m"):
        s.factor("LBMJANMA")


def test_tm_only_start_after_the_scan_is_not_taken_as_the_previous_day() -> None:
    """Scan 11:00, TM-only start 13:00: the previous day would be 22 h of F-18 decay
    (×4,000 in SUV); the previous-day reading is taken only within 3 T½."""
    ds = pet_series(2, rp={"RadiopharmaceuticalStartDateTime": None,
                           "RadiopharmaceuticalStartTime": "130000"})
    with pytest.raises(SUVHeaderError, match=r"\(0018,1072\) Radiopharmaceutical Start Time "
                                             r"130000"):
        compute_suv(ds)
    # 22 h of F-18 is also over 10 half-lives: both checks must be allowed
    with pytest.raises(SUVHeaderError, match="uptake time 22.0 h"):
        compute_suv(ds, overrides=SUVOverrides(allow_implausible=frozenset({"injection-day"})))
    s = compute_suv(ds, overrides=SUVOverrides(
        allow_implausible=frozenset({"injection-day", "uptake"})))
    assert s.factor() == pytest.approx(bw(uptake_s=22 * 3600), rel=1e-9)
    assert s.provenance["administration_time"]["midnight_crossing"] is True


# --- Crashes --------------------------------------------------------------------------


def test_one_second_half_life_is_refused_not_a_zero_division() -> None:
    ds = pet_series(2, rp={"RadionuclideHalfLife": "1"})
    with pytest.raises(SUVHeaderError, match=r"\(0018,1075\) Radionuclide Half Life 1 s"):
        compute_suv(ds)
    # allowed, the arithmetic still cannot divide by zero: 3600 half-lives underflow
    with pytest.raises(SUVHeaderError, match="not a finite positive number|underflow"):
        compute_suv(ds, overrides=SUVOverrides(allow_implausible=frozenset({"all"})))


@pytest.mark.parametrize("value", ["2025XX01100000", "garbage", "20251301100000", "2025"])
def test_garbage_start_datetime_is_refused_naming_it(value: str) -> None:
    ds = pet_series(2, rp={"RadiopharmaceuticalStartDateTime": value})
    with pytest.raises(SUVHeaderError, match=r"\(0018,1078\) Radiopharmaceutical Start "
                                             rf"DateTime '{value}'"):
        compute_suv(ds)


def test_garbage_series_time_is_refused_not_skipped() -> None:
    with pytest.raises(SUVHeaderError, match=r"\(0008,0031\) Series Time '25:61'"):
        compute_suv(pet_series(2, SeriesTime="25:61"))


# --- Command line ---------------------------------------------------------------------


@pytest.mark.parametrize("attrs", [
    dict(rp={"RadionuclideHalfLife": "1"}),
    dict(rp={"RadiopharmaceuticalStartDateTime": "2025XX01100000"}),
    dict(rp={"RadionuclideTotalDose": "1e20"}),
    dict(PatientWeight="0.05"),
    dict(per_slice=[{}, {"RescaleSlope": "0"}]),
])
def test_cli_refuses_implausible_headers_with_exit_2(tmp_path: Path, attrs: dict) -> None:
    series = _write(pet_series(2, pixels=True, **attrs), tmp_path / "pt")
    res = runner.invoke(app, ["suv", str(series), "--json"])
    assert res.exit_code == 2, res.output
    assert res.stdout == ""
    assert "(00" in res.stderr and "Traceback" not in res.output


def test_cli_allow_implausible_flag(tmp_path: Path) -> None:
    series = _write(pet_series(2, pixels=True, PatientWeight="0.05"), tmp_path / "pt")
    res = runner.invoke(app, ["suv", str(series), "--json", "--allow-implausible", "weight"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["suvbw_factor"] == pytest.approx(bw(0.05), rel=1e-12)
    assert out["provenance"]["overrides"]["allow_implausible"] == ["weight"]
    res = runner.invoke(app, ["suv", str(series), "--allow-implausible", "nonsense"])
    assert res.exit_code == 2 and "nonsense" in res.stderr


def test_cli_prints_factors_when_the_volume_cannot_be_built(tmp_path: Path) -> None:
    series = _write(pet_series(2, pixels=True, per_slice=[
        dict(ImageOrientationPatient=[1, 0, 0, 0, 1, 0]),
        dict(ImageOrientationPatient=[1, 0, 0, 0, 0, 1])]), tmp_path / "pt")
    res = runner.invoke(app, ["suv", str(series), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    jsonschema.validate(out, SUV_JSON_SCHEMA)
    assert out["suvbw_factor"] == pytest.approx(bw(), rel=1e-12)
    assert out["suvbw_max"] is None
    assert "mixed orientations" in out["volume_problem"]
    assert out["provenance"]["reference_time"]["path"]
    res = runner.invoke(app, ["suv", str(series)])
    assert res.exit_code == 0, res.output
    assert "suvbw_factor" in res.stdout and "mixed orientations" in res.output
    # a series whose volume builds has no problem to report
    ok = _write(pet_series(2, pixels=True), tmp_path / "ok")
    out = json.loads(runner.invoke(app, ["suv", str(ok), "--json"]).stdout)
    assert out["volume_problem"] is None and math.isfinite(out["suvbw_max"])


def test_suv_volume_accepts_precomputed_scaling() -> None:
    ds = pet_series(2, pixels=True)
    scaling = compute_suv(ds, overrides=SUVOverrides(weight_kg=80))
    vol, same = suv_volume(ds, scaling=scaling)
    assert same is scaling
    assert float(vol.array.max()) == pytest.approx(200 * bw(80), rel=1e-6)


def test_cps_with_a_single_pixel_spacing_value_is_refused_not_a_type_error() -> None:
    """Found by tests/fuzz/test_fuzz_suv.py: (0028,0030) with one value crashed CPS."""
    ds = pet_series(2, Units="CPS", CorrectedImage=["ATTN", "DECY", "DCAL"])
    ds[0][0x00280030] = RawDataElement(BaseTag(0x00280030), "DS", 2, b"4 ", 0, True, True)
    with pytest.raises(SUVHeaderError, match=r"\(0028,0030\) Pixel Spacing '4'"):
        compute_suv(ds)
    # the ordinary two values: 1 / voxel ml (4 × 4 × 4 mm = 0.064 ml) × W / D_ref
    s = compute_suv(pet_series(2, Units="CPS", CorrectedImage=["ATTN", "DECY", "DCAL"]))
    assert s.factor() == pytest.approx(bw() / 0.064, rel=1e-12)


def test_decay_none_with_an_allowed_uptake_of_years_is_refused_not_an_overflow() -> None:
    """Allowed implausible uptake, Decay Correction NONE: e^(λΔt) overflows for 30 years
    of F-18; the refusal names the acquisition time instead of an OverflowError."""
    ds = pet_series(2, DecayCorrection="NONE", CorrectedImage=["ATTN", "SCAT"],
                    rp={"RadiopharmaceuticalStartDateTime": "19950101100000"})
    with pytest.raises(SUVHeaderError, match=r"\(0008,0032\) Acquisition Time .*overflows"):
        compute_suv(ds, overrides=SUVOverrides(allow_implausible=frozenset({"all"})))
    with pytest.raises(SUVHeaderError, match=r"uptake time .* more than 10 half-lives"):
        compute_suv(ds)


def test_previous_day_reading_at_the_three_half_life_bound() -> None:
    """TM-only start after the scan clock: previous day accepted at ≤ 3 T½, refused above."""
    hl = 6586.2
    # scan at 03:00: a start 5.5 h earlier reads 21:3x, a clock time after 03:00
    scan = dict(SeriesDate="20250102", SeriesTime="030000", AcquisitionDate="20250102",
                AcquisitionTime="030000")
    ok_start = (datetime(2025, 1, 2, 3, 0) - timedelta(seconds=3 * hl - 60)).strftime("%H%M%S")
    bad_start = (datetime(2025, 1, 2, 3, 0) - timedelta(seconds=3 * hl + 60)).strftime(
        "%H%M%S")
    ds = pet_series(2, rp={"RadiopharmaceuticalStartDateTime": None,
                           "RadiopharmaceuticalStartTime": ok_start}, **scan)
    uptake = 3 * hl - 60
    assert compute_suv(ds).factor() == pytest.approx(bw(uptake_s=round(uptake)), rel=1e-4)
    ds = pet_series(2, rp={"RadiopharmaceuticalStartDateTime": None,
                           "RadiopharmaceuticalStartTime": bad_start}, **scan)
    with pytest.raises(SUVHeaderError, match="previous day 5.5 h"):
        compute_suv(ds)
