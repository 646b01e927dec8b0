"""Dual-energy CT (#19): calibrated water/iodine decomposition on a synthetic dual-source
phantom; iodine within 0.3 mg/ml on inserts the calibration never saw, VNC of water ≈ 0 HU,
VMI against NIST μ/ρ, DICOM outputs dciodvfy-clean, CLI contracts and exit 2 reasons."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from scipy import stats
from typer.testing import CliRunner

from oncohybrid.cli.main import app
from oncohybrid.dicom.volume import load_series
from oncohybrid.phantom.dect import write_dect_phantom
from oncohybrid.quant.dect import DectCalibration, decompose
from oncohybrid.services.dect import calibrate_dect, iodine_maps, sphere_mask

runner = CliRunner()

#: NIST XCOM / SRD 126 μ/ρ (cm²/g) at 60 keV, typed here from the published table.
NIST_60KEV = {"water": 0.2059, "iodine": 7.583}
#: Acceptance: iodine within 0.3 mg/ml; VNC of water background within 3 HU of 0.
IODINE_TOL_MG_ML = 0.3
VNC_WATER_TOL_HU = 3.0


def _insert_voi(ph, ins, shape, affine, shrink_mm=2.0):
    z_mid = 4.5  # phantom slices at z = 0, 3, 6, 9 mm
    return sphere_mask(shape, affine, [*ins.centre_xy_mm, z_mid], ins.radius_mm - shrink_mm)


@pytest.fixture(scope="module", params=["80/Sn150", "100/Sn150"])
def run(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("dect")
    ph = write_dect_phantom(root / "phantom", spectra=request.param, noise_hu=(10.0, 8.0),
                            seed=7)
    cal = calibrate_dect(ph.low_dir, ph.high_dir, ph.inserts_json, root / "cal.json")
    lesion = next(i for i in ph.inserts if i.role == "lesion")
    aorta = next(i for i in ph.inserts if i.role == "aorta")
    res = iodine_maps(ph.low_dir, ph.high_dir, root / "cal.json", root / "out", kev=60.0,
                      voi_centre_lps_mm=[*lesion.centre_xy_mm, 4.5], voi_radius_mm=5.0,
                      aorta_centre_lps_mm=[*aorta.centre_xy_mm, 4.5], aorta_radius_mm=6.0)
    return ph, cal, res, root


def test_calibration_is_the_least_squares_line_of_each_spectrum(run):
    ph, cal, _, _ = run
    rows = cal["inserts"]
    c = [r["iodine_mg_ml"] for r in rows]
    for key, spectrum in (("low", "hu_low_mean"), ("high", "hu_high_mean")):
        fit = stats.linregress(c, [1000.0 + r[spectrum] for r in rows])
        assert cal["calibration"][f"iodine_{key}_hu_per_mg_ml"] == pytest.approx(fit.slope)
        assert cal["calibration"][f"water_{key}"] == pytest.approx(fit.intercept)
    # and near the phantom's known contrast per spectrum
    assert cal["calibration"]["iodine_low_hu_per_mg_ml"] == pytest.approx(
        ph.iodine_low_hu_per_mg_ml, abs=0.5)
    assert cal["calibration"]["iodine_high_hu_per_mg_ml"] == pytest.approx(
        ph.iodine_high_hu_per_mg_ml, abs=0.5)
    assert [r["iodine_mg_ml"] for r in rows] == [0.0, 2.0, 5.0, 10.0, 15.0]


def test_iodine_within_0_3_mg_ml_on_inserts_not_used_for_calibration(run):
    ph, _, res, _ = run
    pm = hd.pm.ParametricMap.from_dataset(pydicom.dcmread(res["outputs"]["iodine"]))
    rwvm = pm.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    assert rwvm.MeasurementUnitsCodeSequence[0].CodeValue == "mg/mL"
    iodine = np.asarray(pm.pixel_array, dtype=np.float64)
    low = load_series(ph.low_dir, dtype=np.float64)
    assert iodine.shape == low.array.shape
    tested = [i for i in ph.inserts if i.role == "test"]
    assert len(tested) == 5
    for ins in tested:
        voi = _insert_voi(ph, ins, low.array.shape, low.affine)
        assert voi.sum() > 100
        assert iodine[voi].mean() == pytest.approx(ins.iodine_mg_ml, abs=IODINE_TOL_MG_ML), \
            ins.name


def test_decomposition_equals_a_per_voxel_linear_solve(run):
    ph, cal, _, _ = run
    lo = load_series(ph.low_dir, dtype=np.float64).array[1, 40:48, 60:68]
    hi = load_series(ph.high_dir, dtype=np.float64).array[1, 40:48, 60:68]
    c = cal["calibration"]
    basis = np.array([[c["water_low"], c["iodine_low_hu_per_mg_ml"]],
                      [c["water_high"], c["iodine_high_hu_per_mg_ml"]]])
    rhs = np.stack([1000.0 + lo.ravel(), 1000.0 + hi.ravel()])
    w, io = np.linalg.solve(basis, rhs)
    d = decompose(lo, hi, DectCalibration.from_json(c))
    np.testing.assert_allclose(d.iodine_mg_ml.ravel(), io, atol=1e-9)
    np.testing.assert_allclose(d.vnc_hu.ravel(), 1000.0 * (w - 1.0), atol=1e-7)


def test_vnc_of_water_background_is_0_hu(run):
    ph, _, res, _ = run
    vnc = load_series(res["outputs"]["vnc"], dtype=np.float64)
    # water background between the insert rings (radius 40 mm, away from every rod)
    ring = np.zeros(vnc.array.shape, dtype=bool)
    for a in np.deg2rad(np.arange(36, 360, 72)):
        ring |= sphere_mask(vnc.array.shape, vnc.affine,
                            [40.0 * np.cos(a), 40.0 * np.sin(a), 4.5], 5.0)
    assert np.all(ph.iodine_mg_ml[ring] == 0) and np.all(ph.water_g_ml[ring] == 1.0)
    assert abs(vnc.array[ring].mean()) < VNC_WATER_TOL_HU
    # the lesion VNC is its soft-tissue base (1.040 g/ml → 40 HU)
    assert res["voi"]["vnc_mean_hu"] == pytest.approx(40.0, abs=6.0)


def test_vmi_matches_nist_attenuation_of_water_and_iodine(run):
    ph, _, res, _ = run
    vmi = load_series(res["outputs"]["vmi"], dtype=np.float64)
    assert Path(res["outputs"]["vmi"]).name == "VMI_60keV"
    hu_per_mg_ml = NIST_60KEV["iodine"] / NIST_60KEV["water"]  # 36.8 HU per mg/ml
    for ins in ph.inserts:
        if ins.role != "test":
            continue
        voi = _insert_voi(ph, ins, vmi.array.shape, vmi.affine)
        truth = 1000.0 * (ins.water_g_ml - 1.0) + ins.iodine_mg_ml * hu_per_mg_ml
        assert vmi.array[voi].mean() == pytest.approx(truth, abs=0.3 * hu_per_mg_ml), ins.name


def test_nic_and_dual_energy_ratio_of_the_lesion(run):
    ph, _, res, _ = run
    lesion = next(i for i in ph.inserts if i.role == "lesion")
    aorta = next(i for i in ph.inserts if i.role == "aorta")
    voi = res["voi"]
    assert voi["iodine_mean_mg_ml"] == pytest.approx(lesion.iodine_mg_ml, abs=IODINE_TOL_MG_ML)
    assert res["aorta"]["iodine_mean_mg_ml"] == pytest.approx(aorta.iodine_mg_ml,
                                                              abs=IODINE_TOL_MG_ML)
    assert voi["normalised_iodine_concentration"] == pytest.approx(
        voi["iodine_mean_mg_ml"] / res["aorta"]["iodine_mean_mg_ml"])
    assert voi["normalised_iodine_concentration"] == pytest.approx(2.5 / 12.0, abs=0.03)
    base = 1000.0 * (lesion.water_g_ml - 1.0)
    der_truth = ((base + ph.iodine_low_hu_per_mg_ml * 2.5)
                 / (base + ph.iodine_high_hu_per_mg_ml * 2.5))
    assert voi["dual_energy_ratio"] == pytest.approx(der_truth, rel=0.05)


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools dciodvfy absent")
def test_dicom_outputs_pass_dciodvfy(run):
    _, _, res, _ = run
    out = res["outputs"]
    paths = [Path(out["iodine"]), next(Path(out["vnc"]).glob("*.dcm")),
             next(Path(out["vmi"]).glob("*.dcm"))]
    for path in paths:
        proc = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        errors = [ln for ln in (proc.stdout + proc.stderr).splitlines()
                  if ln.startswith("Error")]
        assert errors == [], path


# ---------------------------------------------------------------------------------------
# CLI contracts
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def phantom_80(tmp_path_factory):
    root = tmp_path_factory.mktemp("dectcli")
    ph = write_dect_phantom(root / "ph", seed=3)
    return ph, root


def test_cli_calibrate_then_iodine_json(phantom_80, tmp_path):
    ph, _ = phantom_80
    cal = tmp_path / "cal.json"
    r = runner.invoke(app, ["dect", "calibrate", str(ph.low_dir), str(ph.high_dir),
                            "--inserts", str(ph.inserts_json), "--out", str(cal)])
    assert r.exit_code == 0, r.output
    assert json.loads(cal.read_text())["calibration"]["kvp_low"] == 80.0
    x, y = next(i for i in ph.inserts if i.role == "lesion").centre_xy_mm
    r = runner.invoke(app, ["dect", "iodine", str(ph.low_dir), str(ph.high_dir),
                            "--calibration", str(cal), "--out", str(tmp_path / "o"), "--json",
                            "--voi-centre", f"{x},{y},4.5",
                            "--voi-radius-mm", "5", "--aorta-centre", "0,0,4.5"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc["outputs"]) >= {"iodine", "vnc", "vmi"}
    assert Path(doc["outputs"]["vmi"]).name == "VMI_70keV"
    assert doc["low"]["kvp"] == 80.0 and doc["high"]["tin_filter"] is True
    assert doc["voi"]["iodine_mean_mg_ml"] == pytest.approx(2.5, abs=IODINE_TOL_MG_ML)
    assert 0 < doc["voi"]["normalised_iodine_concentration"] < 0.35


def _copy(src: Path, dst: Path, edit) -> Path:
    dst.mkdir(parents=True)
    for f in sorted(src.glob("*.dcm")):
        ds = pydicom.dcmread(f)
        edit(ds)
        ds.save_as(dst / f.name)
    return dst


def _refused(args: list[str], *words: str) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert r.stdout == ""
    for w in words:
        assert w in r.stderr, r.stderr


def test_missing_kvp_is_refused_naming_kvp(phantom_80, tmp_path):
    ph, _ = phantom_80
    low = _copy(ph.low_dir, tmp_path / "LOW", lambda ds: delattr(ds, "KVP"))
    _refused(["dect", "calibrate", str(low), str(ph.high_dir), "--inserts",
              str(ph.inserts_json), "--out", str(tmp_path / "c.json")], "KVP", "LOW_DIR")
    assert not (tmp_path / "c.json").exists()


def test_mismatched_grids_are_refused(phantom_80, tmp_path):
    ph, _ = phantom_80

    def spacing(ds):
        ds.PixelSpacing = ["1.6", "1.6"]

    high = _copy(ph.high_dir, tmp_path / "HIGH", spacing)
    _refused(["dect", "calibrate", str(ph.low_dir), str(high), "--inserts",
              str(ph.inserts_json), "--out", str(tmp_path / "c.json")], "grid")


def test_swapped_low_and_high_are_refused(phantom_80, tmp_path):
    ph, _ = phantom_80
    _refused(["dect", "calibrate", str(ph.high_dir), str(ph.low_dir), "--inserts",
              str(ph.inserts_json), "--out", str(tmp_path / "c.json")], "KVP", "low-kV")


def test_calibration_for_other_kvs_is_refused(phantom_80, tmp_path):
    ph, root = phantom_80
    cal = tmp_path / "cal.json"
    calibrate_dect(ph.low_dir, ph.high_dir, ph.inserts_json, cal)
    other = write_dect_phantom(tmp_path / "p100", spectra="100/Sn150", seed=1)
    _refused(["dect", "iodine", str(other.low_dir), str(other.high_dir), "--calibration",
              str(cal), "--out", str(tmp_path / "o"), "--json"], "kvp_low", "80kV", "100kV")


def test_bad_inserts_file_names_the_field(phantom_80, tmp_path):
    ph, _ = phantom_80
    bad = tmp_path / "inserts.json"
    bad.write_text(json.dumps({"inserts": [
        {"centre_lps_mm": [0, 0, 4.5], "radius_mm": 5, "iodine_mg_ml": 0},
        {"centre_lps_mm": [0, 0], "radius_mm": 5, "iodine_mg_ml": 5}]}))
    _refused(["dect", "calibrate", str(ph.low_dir), str(ph.high_dir), "--inserts", str(bad),
              "--out", str(tmp_path / "c.json")], "inserts[1].centre_lps_mm")
    bad.write_text(json.dumps({"inserts": [
        {"centre_lps_mm": [0, 0, 4.5], "radius_mm": 5, "iodine_mg_ml": -1}]}))
    _refused(["dect", "calibrate", str(ph.low_dir), str(ph.high_dir), "--inserts", str(bad),
              "--out", str(tmp_path / "c.json")], "iodine_mg_ml")


def test_bad_options_exit_2(phantom_80, tmp_path):
    ph, _ = phantom_80
    cal = tmp_path / "cal.json"
    calibrate_dect(ph.low_dir, ph.high_dir, ph.inserts_json, cal)
    base = ["dect", "iodine", str(ph.low_dir), str(ph.high_dir), "--calibration", str(cal),
            "--out", str(tmp_path / "o"), "--json"]
    _refused([*base, "--kev", "20"], "--kev")
    _refused([*base, "--voi-centre", "1,2"], "--voi-centre")
    _refused([*base, "--voi-centre", "0,0,4.5"], "--voi-radius-mm")
    cal.write_text("{}")
    _refused(base, "--calibration")


def test_voi_outside_the_images_is_refused_before_writing(phantom_80, tmp_path):
    ph, _ = phantom_80
    cal = tmp_path / "cal.json"
    calibrate_dect(ph.low_dir, ph.high_dir, ph.inserts_json, cal)
    _refused(["dect", "iodine", str(ph.low_dir), str(ph.high_dir), "--calibration", str(cal),
              "--out", str(tmp_path / "o"), "--json", "--voi-centre", "500,500,500",
              "--voi-radius-mm", "5"], "--voi-centre")
    assert not (tmp_path / "o").exists()


def test_missing_series_directory_exits_2(phantom_80, tmp_path):
    ph, _ = phantom_80
    _refused(["dect", "calibrate", str(tmp_path / "nope"), str(ph.high_dir), "--inserts",
              str(ph.inserts_json), "--out", str(tmp_path / "c.json")], "LOW_DIR")
