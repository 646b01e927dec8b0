"""Synthetic cohort: files agree with the ground truth, vendor headers, determinism."""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from scipy import ndimage
from typer.testing import CliRunner

from oncohybrid.dicom.volume import load_series, read_series, sort_slices
from oncohybrid.phantom import generate_cohort


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort")
    truth = generate_cohort(out, patients=3, timepoints=2, vendor="mixed", seed=11, size="small")
    return out, truth


@pytest.fixture(scope="module")
def noise_free(tmp_path_factory):
    out = tmp_path_factory.mktemp("nf")
    truth = generate_cohort(out, patients=1, timepoints=1, vendor="siemens", seed=5,
                            size="small", noise_free=True)
    return out, truth


def timepoints(truth):
    for patient in truth["patients"]:
        for tp in patient["timepoints"]:
            yield patient, tp


def headers(directory: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(directory.glob("*.dcm"))]


def private_value(ds, group: int, creator: str, offset: int):
    block = ds.private_block(group, creator)  # raises KeyError if the creator is absent
    return block[offset].value


def parse_dt(value: str) -> datetime:
    return datetime.strptime(str(value).split(".")[0], "%Y%m%d%H%M%S")


def expected_factors(ds) -> dict[str, float]:
    """SUV factors from header values only (independent of the generator's code)."""
    radio = ds.RadiopharmaceuticalInformationSequence[0]
    injection = parse_dt(radio.RadiopharmaceuticalStartDateTime)
    if "GE" in ds.Manufacturer:
        reference = parse_dt(private_value(ds, 0x0009, "GEMS_PETD_01", 0x0D))
    else:
        reference = parse_dt(ds.SeriesDate + ds.SeriesTime)
    half_life = float(radio.RadionuclideHalfLife)
    dose = float(radio.RadionuclideTotalDose) * 2 ** (
        -(reference - injection).total_seconds() / half_life
    )
    w, h_cm, sex = float(ds.PatientWeight), float(ds.PatientSize) * 100, ds.PatientSex
    scale = 1.0
    if ds.Units == "CNTS":
        scale = float(private_value(ds, 0x7053, "Philips PET Private Group", 0x09))
    bmi = w / (h_cm / 100) ** 2
    lbm = 9270 * w / ((6680 + 216 * bmi) if sex == "M" else (8780 + 244 * bmi))
    ibw = 48.0 + 1.06 * (h_cm - 152) if sex == "M" else 45.5 + 0.91 * (h_cm - 152)
    bsa_cm2 = 71.84 * w**0.425 * h_cm**0.725
    return {
        "suvbw_factor": w * 1000 / dose * scale,
        "sul_factor": lbm * 1000 / dose * scale,
        "suvbsa_factor": bsa_cm2 / dose * scale,
        "suvibw_factor": ibw * 1000 / dose * scale,
    }


def test_layout_and_cohort_json(cohort):
    out, truth = cohort
    on_disk = json.loads((out / "ground_truth.json").read_text())
    assert on_disk == json.loads(json.dumps(truth))
    for patient in truth["patients"]:
        per_patient = json.loads((out / patient["patient_id"] / "ground_truth.json").read_text())
        assert per_patient["patient_id"] == patient["patient_id"]
        for tp in patient["timepoints"]:
            assert any((out / tp["ct_dir"]).glob("*.dcm"))
            assert (out / tp["pt_dir"]) == out / patient["patient_id"] / f"TP{tp['index']}" / "PT"
    assert {p["vendor"] for p in truth["patients"]} == {"siemens", "ge", "philips"}


def test_uids_unique_and_frame_of_reference_shared_per_timepoint(cohort):
    out, truth = cohort
    sop_uids, fors = set(), set()
    n_files = 0
    for _patient, tp in timepoints(truth):
        ct, pt = headers(out / tp["ct_dir"]), headers(out / tp["pt_dir"])
        for ds in ct + pt:
            assert ds.StudyInstanceUID == tp["study_uid"]
            assert ds.FrameOfReferenceUID == tp["frame_of_reference_uid"]
            sop_uids.add(ds.SOPInstanceUID)
            n_files += 1
        assert {ds.SeriesInstanceUID for ds in ct} == {tp["ct_series_uid"]}
        assert {ds.SeriesInstanceUID for ds in pt} == {tp["pt_series_uid"]}
        assert ct[0].SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
        assert pt[0].SOPClassUID == "1.2.840.10008.5.1.4.1.1.128"
        fors.add(tp["frame_of_reference_uid"])
    assert len(sop_uids) == n_files
    assert len(fors) == 6


def test_vendor_flavours_in_pet_headers(cohort):
    out, truth = cohort
    for patient, tp in timepoints(truth):
        pt = headers(out / tp["pt_dir"])
        first = pt[0]
        assert first.DecayCorrection == "START"
        assert {"ATTN", "DECY"} <= set(first.CorrectedImage)
        radio = first.RadiopharmaceuticalInformationSequence[0]
        assert float(radio.RadionuclideTotalDose) == tp["injected_dose_bq"] > 1e8
        assert radio.RadiopharmaceuticalStartTime and radio.RadiopharmaceuticalStartDateTime
        slopes = {float(ds.RescaleSlope) for ds in pt}
        assert len(slopes) > len(pt) // 2  # per-slice slopes
        assert all(float(ds.RescaleIntercept) == 0 for ds in pt)
        acq = min(parse_dt(ds.AcquisitionDate + ds.AcquisitionTime) for ds in pt)
        series = parse_dt(first.SeriesDate + first.SeriesTime)
        if patient["vendor"] == "siemens":
            assert first.Units == "BQML" and series == acq
        elif patient["vendor"] == "ge":
            assert first.Units == "BQML" and series > acq
            assert parse_dt(private_value(first, 0x0009, "GEMS_PETD_01", 0x0D)) == acq
            assert parse_dt(private_value(first, 0x0009, "GEMS_PETD_01", 0x3B)) == parse_dt(
                radio.RadiopharmaceuticalStartDateTime)
        else:
            assert first.Units == "CNTS"
            assert float(radio.RadionuclideHalfLife) == 6588
            suv_sf = float(private_value(first, 0x7053, "Philips PET Private Group", 0x00))
            assert suv_sf == pytest.approx(tp["suvbw_factor"], rel=1e-9)
        ct = headers(out / tp["ct_dir"])
        assert {(float(ds.RescaleSlope), float(ds.RescaleIntercept)) for ds in ct} == {(1, -1024)}


def test_suv_factors_from_headers_reproduce_ground_truth(cohort):
    out, truth = cohort
    for _patient, tp in timepoints(truth):
        ds = headers(out / tp["pt_dir"])[0]
        for key, value in expected_factors(ds).items():
            assert tp[key] == pytest.approx(value, rel=1e-9), key


@pytest.mark.parametrize("vendor_index", [0, 1, 2], ids=["siemens", "ge", "philips"])
def test_volume_geometry_equals_simpleitk(cohort, vendor_index):
    out, truth = cohort
    tp = truth["patients"][vendor_index]["timepoints"][1]
    for sub in (tp["ct_dir"], tp["pt_dir"]):
        volume = load_series(out / sub)
        reader = sitk.ImageSeriesReader()
        image = sitk.ReadImage(reader.GetGDCMSeriesFileNames(str(out / sub)), sitk.sitkFloat32)
        sz, sy, sx = volume.spacing
        np.testing.assert_allclose(image.GetSpacing(), (sx, sy, sz), atol=1e-4)
        np.testing.assert_allclose(image.GetOrigin(), volume.position, atol=1e-4)
        np.testing.assert_allclose(
            np.reshape(image.GetDirection(), (3, 3))[:, ::-1], volume.direction, atol=1e-6
        )
        arr = sitk.GetArrayFromImage(image)
        scale = float(np.abs(arr).max())
        np.testing.assert_allclose(volume.array, arr, rtol=1e-5, atol=1e-6 * scale)
    grid = tp["pt_grid"]
    assert list(volume.spatial_shape) == grid["shape"]
    np.testing.assert_allclose(volume.position, grid["origin_lps_mm"], atol=1e-3)


def suv_volume(out, tp):
    pet = load_series(out / tp["pt_dir"])
    return pet.with_array(pet.array * np.float32(tp["suvbw_factor"]))


def sphere_mean(volume, centre, radius_mm):
    k = volume.map_reference_to_indices(np.asarray(centre)[None], round_output=True)[0]
    r = np.ceil(radius_mm / np.asarray(volume.spacing)).astype(int) + 1
    lo = np.maximum(k - r, 0)
    idx = np.indices(2 * r + 1).reshape(3, -1).T + lo
    idx = idx[np.all(idx < volume.spatial_shape, axis=1)]
    pts = volume.map_indices_to_reference(idx)
    inside = np.linalg.norm(pts - np.asarray(centre), axis=1) <= radius_mm
    return float(volume.array[tuple(idx[inside].T)].mean())


def test_pet_is_hot_and_ct_dense_at_lesion_centres(cohort):
    out, truth = cohort
    checked = 0
    for _patient, tp in timepoints(truth):
        suv = suv_volume(out, tp)
        ct = load_series(out / tp["ct_dir"])
        liver = tp["liver_suv_mean"]
        for lesion in tp["lesions"]:
            if not lesion["present"] or min(lesion["axes_mm"]) < 7.5:
                continue
            centre = np.asarray(lesion["centre_lps_mm"])
            k = suv.map_reference_to_indices(centre[None], round_output=True)[0]
            local = suv.array[k[0] - 1:k[0] + 2, k[1] - 1:k[1] + 2, k[2] - 1:k[2] + 2]
            assert local.max() > max(1.5 * liver, 0.45 * lesion["true_suv"]), lesion["id"]
            c = ct.map_reference_to_indices(centre[None], round_output=True)[0]
            hu = float(np.median(ct.array[c[0], c[1] - 1:c[1] + 2, c[2] - 1:c[2] + 2]))
            assert hu == pytest.approx(lesion["ct_hu"], abs=25), lesion["id"]
            checked += 1
    assert checked >= 6


def test_reference_regions_read_their_true_suv(cohort):
    out, truth = cohort
    for _patient, tp in timepoints(truth):
        suv = suv_volume(out, tp)
        liver = sphere_mean(suv, tp["liver_reference_centre_lps_mm"], 15.0)
        assert liver == pytest.approx(tp["liver_suv_mean"], rel=0.05)
        blood = sphere_mean(suv, tp["blood_pool_centre_lps_mm"], 5.0)
        assert blood == pytest.approx(tp["blood_pool_suv"], rel=0.12)


def test_noise_free_large_lesion_mtv_41_percent_within_10_percent(noise_free):
    out, truth = noise_free
    tp = truth["patients"][0]["timepoints"][0]
    suv = suv_volume(out, tp)
    big = [les for les in tp["lesions"] if les["present"] and les["volume_ml"] >= 10.0]
    assert big, "the dominant lesion must be ≥ 10 ml"
    for lesion in big:
        centre = np.asarray(lesion["centre_lps_mm"])
        k = suv.map_reference_to_indices(centre[None], round_output=True)[0]
        r_vox = np.ceil(1.6 * max(lesion["axes_mm"]) / np.asarray(suv.spacing)).astype(int)
        box = tuple(slice(max(i - r, 0), i + r + 1) for i, r in zip(k, r_vox, strict=True))
        sub = suv.array[box]
        mask = sub >= 0.41 * sub.max()
        labels, _ = ndimage.label(mask)
        centre_label = labels[tuple(np.asarray(k) - [b.start for b in box])]
        mtv_ml = float((labels == centre_label).sum()) * suv.voxel_volume / 1000.0
        assert mtv_ml == pytest.approx(lesion["volume_ml"], rel=0.10), lesion["id"]


def test_ground_truth_lesion_fields_are_consistent(cohort):
    _out, truth = cohort
    new_seen = False
    for patient in truth["patients"]:
        baseline = patient["timepoints"][0]["lesions"]
        assert sum(les["present"] for les in baseline) >= 3
        for tp in patient["timepoints"]:
            assert [les["id"] for les in tp["lesions"]] == patient["lesion_ids"]
            for les in tp["lesions"]:
                assert les["nodal"] == (les["site"] == "lymph node")
                if not les["present"]:
                    assert les["volume_ml"] == 0 and les["true_suv"] is None
                    continue
                a, b, c = les["axes_mm"]
                assert les["volume_ml"] == pytest.approx(4 / 3 * math.pi * a * b * c / 1000)
                assert les["ld_mm"] == pytest.approx(2 * max(a, b))
                assert les["sa_mm"] == pytest.approx(2 * min(a, b))
                assert 8.0 <= les["ld_mm"] <= 50.0 + 1e-9
                assert 4.0 <= les["true_suv"] <= 15.0
                new_seen |= les["new"]
    assert new_seen


def test_midnight_injection_in_one_patient(cohort):
    _out, truth = cohort
    tp = truth["patients"][-1]["timepoints"][0]
    injection = datetime.fromisoformat(tp["injection_datetime"])
    series = datetime.fromisoformat(tp["series_datetime"])
    assert injection.date() < series.date()
    assert 50 * 60 <= tp["uptake_time_s"] <= 75 * 60


def test_sort_slices_maps_pet_slopes_to_volume_slices(cohort):
    out, truth = cohort
    tp = truth["patients"][0]["timepoints"][0]
    datasets = read_series(out / tp["pt_dir"])
    ordered = sort_slices(datasets)
    raw = load_series(datasets, rescale=False, dtype=np.float64)
    scaled = load_series(datasets)
    slopes = np.array([float(ds.RescaleSlope) for ds in ordered])
    np.testing.assert_allclose(scaled.array, raw.array * slopes[:, None, None], rtol=1e-6)
    z = [float(ds.ImagePositionPatient[2]) for ds in ordered]
    assert z == sorted(z)
    assert [int(ds.InstanceNumber) for ds in ordered] == sorted(
        (int(ds.InstanceNumber) for ds in ordered), reverse=True
    )


def test_same_seed_same_files_different_seed_different_uids(tmp_path):
    a = generate_cohort(tmp_path / "a", patients=1, timepoints=1, vendor="philips", seed=3,
                        size="small")
    b = generate_cohort(tmp_path / "b", patients=1, timepoints=1, vendor="philips", seed=3,
                        size="small")
    c = generate_cohort(tmp_path / "c", patients=1, timepoints=1, vendor="philips", seed=4,
                        size="small")
    assert a == b
    tp = a["patients"][0]["timepoints"][0]
    for sub in (tp["ct_dir"], tp["pt_dir"]):
        for name in ("IM0001.dcm", "IM0010.dcm"):
            assert (tmp_path / "a" / sub / name).read_bytes() == (
                tmp_path / "b" / sub / name).read_bytes()
    assert c["patients"][0]["timepoints"][0]["study_uid"] != tp["study_uid"]
    d = generate_cohort(tmp_path / "d", patients=1, timepoints=1, vendor="ge", seed=3,
                        size="small")
    assert d["patients"][0]["patient_id"] == a["patients"][0]["patient_id"]
    assert d["patients"][0]["timepoints"][0]["pt_series_uid"] != tp["pt_series_uid"]


def test_cli_writes_cohort_and_prints_json(tmp_path):
    from oncohybrid.cli.main import app

    result = CliRunner().invoke(app, [
        "phantom", str(tmp_path / "cli"), "--patients", "1", "--timepoints", "1",
        "--vendor", "ge", "--seed", "2", "--size", "small", "--noise-free", "--json",
    ])
    assert result.exit_code == 0, result.output
    truth = json.loads(result.stdout)
    assert truth["noise_free"] is True and truth["patients"][0]["vendor"] == "ge"
    assert (tmp_path / "cli" / "ground_truth.json").exists()
    bad = CliRunner().invoke(app, ["phantom", str(tmp_path / "x"), "--vendor", "canon"])
    assert bad.exit_code == 2


def test_ground_truth_matches_its_json_schema(cohort):
    from importlib.resources import files

    import jsonschema

    out, _truth = cohort
    schema = json.loads(
        (files("oncohybrid.phantom") / "ground_truth.schema.json").read_text(encoding="utf-8")
    )
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(json.loads((out / "ground_truth.json").read_text()), schema)
    broken = json.loads((out / "ground_truth.json").read_text())
    broken["patients"][0]["timepoints"][0]["lesions"][0]["site"] = "brain"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
