"""Cross-check against the synthetic multi-vendor phantom's ground truth.

The phantom (oncohybrid.phantom) writes Siemens BQML, GE post-processed BQML with the
GEMS_PETD_01 private scan date-time, and Philips CNTS with creator-resolved private factors,
plus a midnight-crossing last patient; it computes its factors independently of
oncohybrid.dicom.suv (own body-size formulas, own timing). All four factors must agree.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from oncohybrid.dicom.suv import Normalisation, compute_suv

phantom = pytest.importorskip("oncohybrid.phantom.cohort")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("suv_phantom")
    truth = phantom.generate_cohort(out, patients=3, timepoints=1, vendor="mixed", seed=3,
                                    size="small", noise_free=True)
    return out, truth


def test_factors_match_phantom_truth_for_every_vendor(cohort) -> None:
    out, truth = cohort
    seen = set()
    for patient in truth["patients"]:
        for tp in patient["timepoints"]:
            files = sorted((Path(out) / tp["pt_dir"]).iterdir())
            s = compute_suv([pydicom.dcmread(f, stop_before_pixels=True) for f in files])
            seen.add((s.units.value, s.reference_time_source))
            for norm, key in ((Normalisation.BW, "suvbw_factor"),
                              (Normalisation.LBM_JANMA, "sul_factor"),
                              (Normalisation.BSA, "suvbsa_factor"),
                              (Normalisation.IBW, "suvibw_factor")):
                assert s.factor(norm) == pytest.approx(tp[key], rel=1e-9), (tp["pt_dir"], key)
    assert {("BQML", "series"), ("BQML", "ge_private_scan_datetime"),
            ("CNTS", "series")} <= seen
