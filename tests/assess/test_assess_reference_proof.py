"""`assess` never thresholds PERCIST on an unproven reference VOI (issue #12).

Phantom timepoints cut to (1) the pelvis and lower abdomen: before, the automatic "liver"
landed in the right kidney (SUVmean ~3) and set the threshold; now the timepoint is refused
and the error asks for reader-placed centres; (2) a liver at -10 HU on CT (severe
steatosis): the blood pool sets the threshold and the provenance says why the liver is
missing.
"""

from __future__ import annotations

import datetime as dt
import shutil

import pydicom
import pytest

from oncohybrid.errors import InputError

phantom = pytest.importorskip("oncohybrid.phantom")
LIVER_BODY_Z_MM = 395.0  # phantom landmark (body frame) of the liver reference centre


@pytest.fixture(scope="module")
def timepoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("tp")
    truth = phantom.generate_cohort(root, patients=1, timepoints=1, vendor="siemens", seed=3,
                                    size="small", noise_free=True)
    p = truth["patients"][0]
    lz = p["timepoints"][0]["liver_reference_centre_lps_mm"][2]

    def cut(name, lo_body, hi_body):
        from oncohybrid.services.assess import TimepointInput

        lo, hi = lz + lo_body - LIVER_BODY_Z_MM, lz + hi_body - LIVER_BODY_Z_MM
        files = {}
        for mod in ("PT", "CT"):
            out = root / name / mod
            out.mkdir(parents=True)
            for f in (root / p["patient_id"] / "TP0" / mod).iterdir():
                z = float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2])
                if lo <= z <= hi:
                    shutil.copy(f, out / f.name)
            files[mod] = sorted(out.iterdir())
        return TimepointInput(dt.date(2024, 5, 6), files["PT"], files["CT"])

    def steatotic(name):
        """The whole timepoint with the liver at -10 HU on CT (severe steatosis)."""
        from oncohybrid.services.assess import TimepointInput

        src = root / p["patient_id"] / "TP0"
        shutil.copytree(src / "PT", root / name / "PT")
        (root / name / "CT").mkdir(parents=True)
        for f in (src / "CT").iterdir():
            ds = pydicom.dcmread(f)
            px = ds.pixel_array
            # stored = HU - intercept; the noise-free liver is exactly 60 HU
            liver = px == int(60 - float(ds.RescaleIntercept))
            px[liver] = int(-10 - float(ds.RescaleIntercept))
            ds.PixelData = px.tobytes()
            ds.save_as(root / name / "CT" / f.name)
        return TimepointInput(dt.date(2024, 5, 6), sorted((root / name / "PT").iterdir()),
                              sorted((root / name / "CT").iterdir()))

    cut.steatotic = steatotic
    return cut


def test_pelvis_timepoint_is_refused_with_a_request_for_reader_centres(timepoint):
    from oncohybrid.services.assess import analyse_timepoint

    tp = timepoint("pelvis", 0.0, 310.0)
    with pytest.raises(InputError) as err:
        analyse_timepoint(tp)
    msg = str(err.value)
    assert "neither a liver nor a blood-pool reference" in msg
    assert "automatic liver VOI not placed" in msg and "does not cover the thorax" in msg
    assert "--liver-centre 2024-05-06=X,Y,Z" in msg


def test_liver_without_liver_density_falls_back_to_the_blood_pool_and_says_why(timepoint):
    # A liver at -10 HU (severe steatosis) is no longer found as liver on CT; whatever
    # candidate is left is not proven, so the blood pool sets the PERCIST threshold and
    # the provenance (notes, stored segmentation parameters) says why.
    from oncohybrid.services.assess import analyse_timepoint

    a = analyse_timepoint(timepoint.steatotic("steatosis"))
    assert a.liver is None and a.blood_pool is not None
    assert a.threshold.reference == "blood_pool"
    assert a.blood_pool.anatomy_checks
    why = a.segmentation["liver_reference"]["unavailable"]
    assert why.startswith("liver reference unavailable")
    assert a.segmentation["percist_threshold_reference"] == "blood_pool"
    assert any(n.startswith("PERCIST threshold from the blood pool") for n in a.notes)
