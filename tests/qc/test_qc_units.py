"""Pieces of the QC area: EARL band table, reconstruction comparison, noisy phantoms."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from oncohybrid.cli.main import app
from oncohybrid.phantom.iec import PSF, write_iec_phantom
from oncohybrid.qc.earl import BANDS, band_check
from oncohybrid.qc.registry import compare_recon, recon_attributes, scanner_identity

runner = CliRunner()


def test_earl_bands_are_the_published_values():
    # EARL1: Boellaard et al. EJNMMI 2015;42:328, Table 8 (37 mm and 10 mm spheres)
    assert (BANDS["earl1"]["rc_max"][37.0].low, BANDS["earl1"]["rc_max"][37.0].high) == \
        (0.95, 1.16)
    assert (BANDS["earl1"]["rc_mean"][10.0].low, BANDS["earl1"]["rc_mean"][10.0].high) == \
        (0.27, 0.43)
    # EARL2: Kaalep et al. EJNMMI 2018;45:1344 (large-sphere RCmax above 1)
    assert (BANDS["earl2"]["rc_max"][37.0].low, BANDS["earl2"]["rc_max"][37.0].high) == \
        (1.05, 1.29)
    assert (BANDS["earl2"]["rc_mean"][10.0].low, BANDS["earl2"]["rc_mean"][10.0].high) == \
        (0.39, 0.61)
    for std in BANDS.values():
        for bands in std.values():
            assert sorted(bands) == [10.0, 13.0, 17.0, 22.0, 28.0, 37.0]
            assert all(b.low < b.high for b in bands.values())
    assert band_check("earl1", "rc_mean", 28, 0.85) and not band_check("earl1", "rc_mean", 28,
                                                                         0.851)


def test_reconstruction_differences_are_named():
    ds = pydicom.Dataset()
    ds.ReconstructionMethod = "OSEM 4i5s PSF"
    ds.ConvolutionKernel = "GAUSSIAN 5mm"
    ds.PixelSpacing = ["2.0364", "2.0364"]
    ds.SliceThickness = "2"
    series = recon_attributes(ds)
    assert series["PixelSpacing"] == "2.04\\2.04" and series["SliceThickness"] == "2.00"
    assert compare_recon(series, dict(series)) == []
    proto = {**series, "ConvolutionKernel": "ALLPASS"}
    (diff,) = compare_recon(series, proto)
    assert "ConvolutionKernel" in diff and "ALLPASS" in diff
    assert compare_recon({}, {"Rows": "256"}) == ["Rows None (protocol '256')"]
    ds.Manufacturer, ds.ManufacturerModelName, ds.StationName = "GE", "Discovery MI", "PET1"
    assert scanner_identity(ds).key == "GE|DISCOVERY MI|STATION:PET1"


def test_noisy_phantom_spheres_found_and_noise_measured(tmp_path):
    ph = write_iec_phantom(tmp_path / "PT", voxel_mm=(3.0, 3.0, 3.0), psf=PSF(6.5),
                           noise_cv=0.12, seed=4, ring_angle_deg=101.0,
                           ring_centre_mm=(12.0, 7.0, -6.0))
    res = runner.invoke(app, ["qc", "iec", str(ph.directory), "--sphere-activity-bq-ml",
                              str(ph.sphere_bq_ml), "--background-activity-bq-ml",
                              str(ph.background_bq_ml), "--json"])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    for s in doc["spheres"]:
        if s["diameter_mm"] >= 17:
            err = np.linalg.norm(np.subtract(s["centre_lps_mm"],
                                             ph.sphere_centres_lps_mm[s["diameter_mm"]]))
            assert err < 1.5, s["diameter_mm"]
    # white noise of SD 0.12 B: the voxel COV of the background ROIs
    assert doc["background_cv"] == pytest.approx(0.12, rel=0.1)
    # NEMA background variability of 37 mm ROIs: SD of ROI means ~ 0.12 / sqrt(n voxels)
    bv37 = next(s for s in doc["spheres"] if s["diameter_mm"] == 37)[
        "background_variability_pct"]
    n_vox = np.pi * 18.5**2 / 9.0
    assert bv37 < 3 * 12.0 / np.sqrt(n_vox)
    assert doc["measured_background_bq_ml"] == pytest.approx(ph.background_bq_ml, rel=0.01)
