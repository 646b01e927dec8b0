"""``oncohybrid qc calibration``: PET vs dose calibrator with a uniform cylinder (EARL
calibration QC, ±10 %, Boellaard et al. EJNMMI 2015)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from oncohybrid.cli.main import app
from oncohybrid.phantom.iec import PSF, write_cylinder_phantom

runner = CliRunner()
REF = dt.datetime(2026, 11, 3, 9, 0, 0)


@pytest.mark.parametrize("error,passed", [(0.04, True), (-0.12, False)])
def test_calibration_ratio_is_the_scanner_error(tmp_path, error, passed):
    truth = write_cylinder_phantom(tmp_path / "cyl", activity_bq_ml=5000.0,
                                   calibration_error=error, psf=PSF(6.0), noise_cv=0.05,
                                   seed=2, reference_time=REF)
    # activity measured in the dose calibrator 30 min before the scan's reference time
    at = REF - dt.timedelta(minutes=30)
    a_at = 5000.0 * 2 ** (30 * 60 / (109.77 * 60))
    res = runner.invoke(app, ["qc", "calibration", truth["directory"], "--activity-bq-ml",
                              str(a_at), "--at", at.isoformat(), "--json"])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["expected_bq_ml"] == pytest.approx(5000.0, rel=1e-9)
    # central VOI far from the edges: the blur does not reach it, noise averages out
    assert doc["ratio"] == pytest.approx(1.0 + error, abs=0.003)
    assert doc["passed"] is passed
    assert doc["voxel_cov"] == pytest.approx(0.05 / (1 + error), rel=0.1)
    assert doc["voi_ml"] > 1000


def test_calibration_invalid_input_exits_2(tmp_path):
    truth = write_cylinder_phantom(tmp_path / "cyl", voxel_mm=(6.0, 6.0, 6.0))
    for args, reason in [(["--activity-bq-ml", "0"], "must be a positive number"),
                         (["--activity-bq-ml", "5000", "--tolerance", "2"], "tolerance"),
                         (["--activity-bq-ml", "5000", "--at", "2026-13-01"], "ISO 8601")]:
        res = runner.invoke(app, ["qc", "calibration", truth["directory"], *args, "--json"])
        assert res.exit_code == 2, (args, res.stdout, res.stderr)
        assert res.stdout == "" and reason in res.stderr
