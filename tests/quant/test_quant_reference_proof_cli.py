"""Automatic reference VOIs must prove their anatomy (issue #12, "Real scanner data").

A thigh/groin field of view once got a PERCIST "liver" in the upper thigh (SUVmean 1.62,
no note) that set the threshold. Here a phantom field of view is cut to the pelvis and
lower abdomen (no liver, no lungs), and a whole-body PET is given without its CT: no
automatic VOI may be placed, the output says why and asks for reader-placed centres, and
PERCIST thresholding refuses (exit 2) rather than use an unproven VOI.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

phantom = pytest.importorskip("oncohybrid.phantom")

#: body height (mm, phantom frame) of the top of the cut: kidneys, pelvis; the liver
#: spans 320-490 mm and the lungs start at 435 mm
CUT_BODY_Z_MM = 310.0
LIVER_BODY_Z_MM = 395.0  # phantom landmark: liver reference centre


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("proof")
    truth = phantom.generate_cohort(root, patients=1, timepoints=1, vendor="siemens", seed=3,
                                    noise_free=True, size="small")
    p = truth["patients"][0]
    tp_dir = root / p["patient_id"] / "TP0"
    tp = p["timepoints"][0]
    # LPS z of the cut: the truth gives the liver landmark in LPS, the body frame in mm.
    z_cut = tp["liver_reference_centre_lps_mm"][2] - (LIVER_BODY_Z_MM - CUT_BODY_Z_MM)
    cut = root / "pelvis"
    for mod in ("PT", "CT"):
        (cut / mod).mkdir(parents=True)
        for f in (tp_dir / mod).iterdir():
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            if float(ds.ImagePositionPatient[2]) < z_cut:
                shutil.copy(f, cut / mod / f.name)
    assert len(list((cut / "PT").iterdir())) >= 20
    return tp_dir, cut, tp


@pytest.fixture()
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("ONCOHYBRID_HOME", str(tmp_path / "home"))
    from oncohybrid.cli.main import app

    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


def test_pelvis_field_of_view_gets_no_automatic_liver_or_blood_pool(study, cli):
    _, cut, _ = study
    res = cli("quantify", cut / "PT", "--ct", cut / "CT", "--method", "suv4", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["references"]["liver"] is None
    assert doc["references"]["blood_pool"] is None
    assert doc["references"]["percist_threshold"] is None
    notes = " | ".join(doc["notes"])
    assert "automatic liver VOI not placed" in notes and "does not cover the thorax" in notes
    assert "--liver-centre" in notes


def test_pelvis_field_of_view_refuses_percist_thresholding(study, cli):
    _, cut, _ = study
    res = cli("quantify", cut / "PT", "--ct", cut / "CT")
    assert res.exit_code == 2
    assert "--method percist needs a proven liver or blood-pool reference" in res.output
    assert "--liver-centre X,Y,Z" in res.output


def test_pet_without_ct_gets_no_automatic_liver(study, cli):
    tp_dir, _, _ = study
    res = cli("quantify", tp_dir / "PT", "--method", "suv4")
    assert res.exit_code == 0, res.output
    assert "liver: SUV" not in res.stdout
    assert "automatic liver VOI not placed: without a CT" in " ".join(res.stdout.split())
    res = cli("quantify", tp_dir / "PT", "--json")
    assert res.exit_code == 2 and "--liver-centre" in res.output


def test_reader_placed_centres_are_used_in_a_pelvis_field_of_view(study, cli):
    # the reader vouches for a manual centre: it is used as given, with no proof asked
    _, cut, _ = study
    zs = [float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2])
          for f in (cut / "PT").iterdir()]
    centre = (-75.0, 30.0, float(np.median(zs)))
    res = cli("quantify", cut / "PT", "--ct", cut / "CT", "--json",
              "--liver-centre", ",".join(str(v) for v in centre))
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    liver = doc["references"]["liver"]
    assert liver["placement"] == "manual" and liver["anatomy_checks"] == []
    assert liver["centre_lps_mm"] == pytest.approx(centre)
    assert doc["references"]["percist_threshold"]["reference"] == "liver"


def test_whole_body_with_ct_still_places_a_proven_liver(study, cli):
    tp_dir, _, tp = study
    res = cli("quantify", tp_dir / "PT", "--ct", tp_dir / "CT", "--method", "suv4", "--json")
    assert res.exit_code == 0, res.output
    liver = json.loads(res.stdout)["references"]["liver"]
    assert liver["placement"] == "auto-ct" and not liver["notes"]
    assert any("below the right lung base" in c for c in liver["anatomy_checks"])
    d = np.subtract(liver["centre_lps_mm"], tp["liver_reference_centre_lps_mm"])
    assert np.linalg.norm(d) <= 40.0
