"""NM RECON TOMO reading and SPECT activity: a synthetic SPECT with a known sensitivity
gives the activity within 1 % (issue #20 acceptance), Bq/ml reconstructions read as they
are, SPECT SUV, and a counts series without a sensitivity exits 2 with the reason."""

from __future__ import annotations

import json
import math

import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from oncohybrid.cli.main import app
from oncohybrid.dicom.nm import read_nm, read_nm_dataset
from oncohybrid.errors import DicomError, InputError
from oncohybrid.nm.activity import spect_activity

runner = CliRunner()


def _nm_file(root, cycle=1, tp=1):
    return root / f"cycle{cycle}" / f"tp{tp}" / "NM" / "NM0001.dcm"


def test_reader_takes_geometry_windows_rotation_and_dose_units(lu_counts_two_cycles):
    root, truth = lu_counts_two_cycles
    nm = read_nm(_nm_file(root).parent)
    assert nm.pixel_units == "COUNTS"
    assert nm.volume.array.shape == (48, 56, 64)
    assert nm.volume.spacing == pytest.approx((4.8, 4.8, 4.8))
    # first voxel centre at the phantom grid origin (x, y, z)
    assert nm.volume.affine[:3, 3] == pytest.approx([-151.2, -132.0, -112.8])
    assert nm.acquisition_duration_s == 64 * 15.0  # frames in rotation × frame duration
    assert nm.injected_mbq == 7400.0  # (0018,1074) in MBq for NM
    assert nm.energy_windows[0].ranges_kev[0] == pytest.approx((187.56, 229.24))
    assert nm.radionuclide == "Lu-177"
    assert (nm.acquisition_start - nm.administration).total_seconds() == 4 * 3600


def test_reader_orders_frames_by_slice_vector_and_refuses_projections(lu_cycle, tmp_path):
    root, _ = lu_cycle
    ds = pydicom.dcmread(_nm_file(root))
    ref = read_nm_dataset(ds).volume.array
    n = int(ds.NumberOfFrames)
    perm = np.random.default_rng(0).permutation(n)
    frames = ds.pixel_array[perm]
    ds.PixelData = frames.astype("<u2").tobytes()
    ds.SliceVector = [int(i) + 1 for i in perm]
    assert np.array_equal(read_nm_dataset(ds).volume.array, ref)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "TOMO", "EMISSION"]
    with pytest.raises(DicomError, match="RECON TOMO"):
        read_nm_dataset(ds)


def test_counts_with_known_sensitivity_give_activity_within_one_percent(lu_counts_two_cycles):
    root, truth = lu_counts_two_cycles
    for k, tp in enumerate(truth["cycles"][0]["timepoints"], start=1):
        nm = read_nm(_nm_file(root, 1, k))
        act = spect_activity(nm, sensitivity_cps_mbq=11.5)
        v_ml = float(np.prod(nm.volume.spacing)) / 1000
        total = float(act.bq_ml.array.sum()) * v_ml / 1e6
        assert total == pytest.approx(tp["total_activity_mbq"], rel=0.01)
        assert act.source == "counts/sensitivity"
        assert any("11.5 cps/MBq" in p for p in act.provenance)
    # a wrong calibration shows up in proportion
    act = spect_activity(read_nm(_nm_file(root)), sensitivity_cps_mbq=23.0)
    total = float(act.bq_ml.array.sum()) * 0.110592 / 1e6
    assert total == pytest.approx(truth["cycles"][0]["timepoints"][0]["total_activity_mbq"] / 2,
                                  rel=0.01)


def test_organ_concentration_and_spect_suv(lu_cycle):
    root, truth = lu_cycle
    nm = read_nm(_nm_file(root, 1, 2))  # 24 h, shifted by (1, 0, -1) voxels
    act = spect_activity(nm)
    assert act.source == "vendor"
    tp = truth["cycles"][0]["timepoints"][1]
    liver_ml = truth["organs"]["liver"]["volume_ml"]
    c_liver = tp["activity_mbq"]["liver"] * 1e6 / liver_ml
    # a liver point away from the tumour inside it, moved by (x −4.8, z +4.8)
    ijk = np.rint(np.linalg.inv(nm.volume.affine) @ [-95 - 4.8, -10, 15 + 4.8, 1]).astype(int)
    assert act.bq_ml.array[tuple(ijk[:3])] == pytest.approx(c_liver, rel=1e-3)
    # SUVbw = C · weight / (A0 · e^(−λt)), computed here from the header values
    a_bq = 7400e6 * math.exp(-math.log(2) * 24 / (6.647 * 24))
    assert act.suv_factor * c_liver == pytest.approx(c_liver * 75000 / a_bq, rel=1e-9)


def test_spect_cli_json_and_counts_without_sensitivity_exit_2(lu_counts_two_cycles):
    root, truth = lu_counts_two_cycles
    series = str(_nm_file(root).parent)
    bad = runner.invoke(app, ["spect", series, "--json"])
    assert bad.exit_code == 2
    assert bad.stdout == ""
    assert "sensitivity" in bad.stderr and "counts" in bad.stderr
    ok = runner.invoke(app, ["spect", series, "--sensitivity-cps-mbq", "11.5", "--json",
                             "--roi-centre", "-95,-10,15", "--roi-radius-mm", "12"])
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.stdout)
    assert doc["activity_source"] == "counts/sensitivity"
    assert doc["total_activity_mbq"] == pytest.approx(
        truth["cycles"][0]["timepoints"][0]["total_activity_mbq"], rel=0.01)
    assert doc["acquisition_duration_s"] == 960.0
    liver_c = truth["cycles"][0]["timepoints"][0]["activity_mbq"]["liver"] * 1e6 / \
        truth["organs"]["liver"]["volume_ml"]
    assert doc["roi"]["mean_bq_ml"] == pytest.approx(liver_c, rel=0.01)
    zero = runner.invoke(app, ["spect", series, "--sensitivity-cps-mbq", "0", "--json"])
    assert zero.exit_code == 2 and zero.stdout == ""


def test_non_nm_folder_is_refused(tmp_path):
    with pytest.raises(InputError, match="no NM reconstructed tomography"):
        read_nm(tmp_path)


def test_decay_correction_to_administration_is_undone(lu_cycle):
    root, truth = lu_cycle
    ds = pydicom.dcmread(_nm_file(root, 1, 3))  # 96 h
    plain = spect_activity(read_nm_dataset(ds)).bq_ml.array
    ds.DecayCorrection = "ADMIN"  # same pixels, now said to be referred to the injection
    act = spect_activity(read_nm_dataset(ds))
    assert np.allclose(act.bq_ml.array, plain * math.exp(-math.log(2) * 96 / (6.647 * 24)))
    assert any("Decay Correction ADMIN" in p for p in act.provenance)


def test_acquisition_duration_fallbacks(lu_counts_two_cycles):
    root, _ = lu_counts_two_cycles
    ds = pydicom.dcmread(_nm_file(root))
    rot = ds.RotationInformationSequence[0]
    del rot.ActualFrameDuration
    ds.ActualFrameDuration = 15000  # written once at the top level
    assert read_nm_dataset(ds).acquisition_duration_s == 64 * 15.0
    del ds.RotationInformationSequence
    ds.AcquisitionDuration = 900.0
    nm = read_nm_dataset(ds)
    assert nm.acquisition_duration_s == 900.0
    assert any("(0018,9073)" in n for n in nm.notes)
    del ds.AcquisitionDuration
    with pytest.raises(InputError, match="acquisition duration"):
        spect_activity(read_nm_dataset(ds), sensitivity_cps_mbq=11.5)


def test_negative_slice_spacing_runs_against_the_normal(lu_cycle):
    root, _ = lu_cycle
    ds = pydicom.dcmread(_nm_file(root))
    ref = read_nm_dataset(ds).volume
    n = int(ds.NumberOfFrames)
    # the same volume written head first: frames reversed, first position at the top
    ds.PixelData = ds.pixel_array[::-1].astype("<u2").tobytes()
    top = [float(v) for v in ds.DetectorInformationSequence[0].ImagePositionPatient]
    top[2] += (n - 1) * 4.8
    ds.DetectorInformationSequence[0].ImagePositionPatient = [f"{v:g}" for v in top]
    ds.SpacingBetweenSlices = "-4.8"
    vol = read_nm_dataset(ds).volume
    probe = np.array([-95.0, -10.0, 15.0, 1.0])  # a liver point in LPS mm
    i_ref = np.rint(np.linalg.inv(ref.affine) @ probe).astype(int)[:3]
    i_new = np.rint(np.linalg.inv(vol.affine) @ probe).astype(int)[:3]
    assert vol.array[tuple(i_new)] == pytest.approx(ref.array[tuple(i_ref)])
    assert i_new[0] == n - 1 - i_ref[0]
