"""`oncohybrid quantify` on phantom patients with known ground truth, JSON and DICOM SEG.

Tolerances come from the phantom's physics (oncohybrid.phantom: 6 mm FWHM Gaussian PET
resolution, uniform lesions of known SUV, multiplicative noise unless noise_free):

- SUVmax / SUVpeak of lesions >= 10 ml: their radius (>= 13 mm) exceeds 1 cm^3-sphere
  radius + 2.5 sigma of the blur (6.2 + 6.4 mm), so the blurred centre keeps >= 99% of
  the true SUV; allow 3% (noise-free).
- SUVmean over the 41% VOI is lower than the true SUV by construction (the blurred edge
  is inside the VOI): it must lie between the threshold and SUVmax and above 70% of truth.
- MTV of lesions >= 10 ml, background-corrected 41% (noise-free): within 10% (the 41%
  iso-contour of a blurred sphere sits within ~1 mm of the true edge; see the segment tests).
- Liver reference: the 3 cm sphere lies in uniform liver; noise-free mean within 1%,
  noisy mean within 5% (300 voxels average the noise) of the true liver SUV.
"""

from __future__ import annotations

import json
import os

import jsonschema
import numpy as np
import pytest
from typer.testing import CliRunner

from oncohybrid.services.quantify import QUANTIFY_JSON_SCHEMA

phantom = pytest.importorskip("oncohybrid.phantom")


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory):
    out = {}
    for noise_free in (True, False):
        root = tmp_path_factory.mktemp("nf" if noise_free else "noisy")
        truth = phantom.generate_cohort(
            root,
            patients=1,
            timepoints=1,
            vendor="siemens",
            seed=3,
            noise_free=noise_free,
            size="small",
        )
        p = truth["patients"][0]
        out[noise_free] = (root / p["patient_id"] / "TP0", p["timepoints"][0])
    return out


@pytest.fixture()
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("ONCOHYBRID_HOME", str(tmp_path / "home"))
    from oncohybrid.cli.main import app

    runner = CliRunner()

    def run(*args):
        return runner.invoke(app, [str(a) for a in args])

    return run


def _match(lesions, truth_lesion, tol_mm=10.0):
    c = np.asarray(truth_lesion["centre_lps_mm"])
    best = min(lesions, key=lambda m: np.linalg.norm(np.asarray(m["centroid_lps_mm"]) - c))
    assert np.linalg.norm(np.asarray(best["centroid_lps_mm"]) - c) <= tol_mm, truth_lesion["id"]
    return best


def test_noise_free_phantom_metrics_match_ground_truth(cohorts, cli, tmp_path):
    tp_dir, truth = cohorts[True]
    seg_path = tmp_path / "lesions.seg.dcm"
    res = cli(
        "quantify",
        tp_dir / "PT",
        "--ct",
        tp_dir / "CT",
        "--method",
        "41pct",
        "--background-corrected",
        "--json",
        "--seg-out",
        seg_path,
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    jsonschema.validate(doc, QUANTIFY_JSON_SCHEMA)
    assert doc["seg_file"] == str(seg_path)
    liver = doc["references"]["liver"]
    assert liver["placement"] == "auto-ct"
    assert liver["suv_mean"] == pytest.approx(truth["liver_suv_mean"], rel=0.01)
    # Blood pool from the CT: centred within 6 mm of the axis of the 12 mm-radius aorta, the
    # 5 mm-radius cylinder stays >= 1 mm inside the wall, where the 6 mm FWHM blur lowers
    # the SUV by up to ~30% in the outermost voxels: the mean stays within 8%.
    blood = doc["references"]["blood_pool"]
    assert blood["placement"] == "auto-ct"
    xy = np.subtract(blood["centre_lps_mm"][:2], truth["blood_pool_centre_lps_mm"][:2])
    assert np.linalg.norm(xy) <= 6.0
    assert blood["suv_mean"] == pytest.approx(truth["blood_pool_suv"], rel=0.08)
    assert doc["suv"]["suvbw_factor"] == pytest.approx(truth["suvbw_factor"], rel=1e-6)
    assert doc["sul_per_suv"] == pytest.approx(truth["sul_factor"] / truth["suvbw_factor"])
    big = [t for t in truth["lesions"] if t["present"] and t["volume_ml"] >= 10.0]
    assert big, "phantom has no lesion >= 10 ml"
    for t in big:
        m = _match(doc["lesions"], t)
        assert m["suv_max"] == pytest.approx(t["true_suv"], rel=0.03)
        assert m["suv_peak"]["value"] == pytest.approx(t["true_suv"], rel=0.03)
        assert 0.7 * t["true_suv"] <= m["suv_mean"] <= m["suv_max"]
        assert m["mtv_ml"] == pytest.approx(t["volume_ml"], rel=0.10)
        assert m["tlg_suv_ml"] == pytest.approx(m["suv_mean"] * m["mtv_ml"])
    wb = doc["whole_body"]
    assert wb["lesion_count"] == len(doc["lesions"]) == doc["segmentation"]["n_lesions"]
    assert wb["tmtv_ml"] == pytest.approx(sum(m["mtv_ml"] for m in doc["lesions"]))

    # DICOM SEG: one binary segment per lesion, referencing the PET images.
    import highdicom as hd
    import pydicom

    seg = hd.seg.segread(seg_path)
    assert seg.SegmentationType == "BINARY"
    assert seg.number_of_segments == len(doc["lesions"])
    pet_uids = {
        pydicom.dcmread(tp_dir / "PT" / f, stop_before_pixels=True).SOPInstanceUID
        for f in os.listdir(tp_dir / "PT")
    }
    refs = {
        i.ReferencedSOPInstanceUID
        for s in seg.ReferencedSeriesSequence
        for i in s.ReferencedInstanceSequence
    }
    assert refs == pet_uids
    vol = seg.get_volume(combine_segments=True)
    for k in (1, len(doc["lesions"])):
        n_vox = int(np.count_nonzero(vol.array == k))
        voxel_ml = float(np.prod(vol.spacing)) / 1000
        assert n_vox * voxel_ml == pytest.approx(doc["lesions"][k - 1]["mtv_ml"], rel=1e-6)


def test_noisy_phantom_liver_and_percist_threshold(cohorts, cli):
    tp_dir, truth = cohorts[False]
    res = cli("quantify", tp_dir / "PT", "--ct", tp_dir / "CT", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    jsonschema.validate(doc, QUANTIFY_JSON_SCHEMA)
    liver = doc["references"]["liver"]
    assert liver["placement"] == "auto-ct" and liver["anatomy_checks"]
    assert liver["suv_mean"] == pytest.approx(truth["liver_suv_mean"], rel=0.05)
    thr = doc["references"]["percist_threshold"]
    assert thr["threshold_sul"] == pytest.approx(1.5 * liver["sul_mean"] + 2 * liver["sul_sd"])
    assert doc["segmentation"]["threshold_suv"] == pytest.approx(thr["threshold_suv"])
    for m in doc["lesions"]:
        assert m["suv_peak"]["value"] is None or m["suv_peak"]["value"] <= m["suv_max"] + 1e-9


def test_manual_liver_centre_and_bad_options(cohorts, cli):
    tp_dir, truth = cohorts[True]
    c = truth["liver_reference_centre_lps_mm"]
    res = cli(
        "quantify",
        tp_dir / "PT",
        "--method",
        "suv4",
        "--json",
        "--liver-centre",
        ",".join(str(v) for v in c),
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["references"]["liver"]["placement"] == "manual"
    assert doc["references"]["liver"]["centre_lps_mm"] == pytest.approx(c)
    assert doc["segmentation"]["threshold_suv"] == 4.0
    bad = cli("quantify", tp_dir / "PT", "--liver-centre", "1,2", "--json")
    assert bad.exit_code == 2 and "--liver-centre" in bad.output
    bad = cli("quantify", tp_dir / "PT", "--method", "otsu", "--json")
    assert bad.exit_code == 2 and "--method" in bad.output


def test_human_readable_output_lists_references_and_lesions(cohorts, cli):
    tp_dir, _ = cohorts[True]
    res = cli("quantify", tp_dir / "PT", "--ct", tp_dir / "CT", "--method", "suv4")
    assert res.exit_code == 0, res.output
    assert "liver: SUV" in res.stdout and "PERCIST threshold" in res.stdout
    assert "TMTV" in res.stdout and "Lesions (suv4)" in res.stdout
