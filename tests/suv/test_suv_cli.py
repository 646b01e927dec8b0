"""``oncohybrid suv``: JSON (validated against SUV_JSON_SCHEMA), table, overrides, refusals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import pydicom
import pytest
from suv_testdata import pet_series
from typer.testing import CliRunner

import refdata
from oncohybrid.cli.main import app
from oncohybrid.dicom.suv import SUV_JSON_SCHEMA

DRO_ROOT = refdata.path_of("ibsi-suv-dro")
runner = CliRunner()


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONCOHYBRID_HOME", str(tmp_path / "home"))


def _write(datasets, folder: Path) -> Path:
    folder.mkdir()
    for i, ds in enumerate(datasets):
        pydicom.dcmwrite(folder / f"{i:03d}.dcm", ds, enforce_file_format=True)
    return folder


@pytest.mark.skipif(not DRO_ROOT.is_dir(), reason="IBSI SUV DROs not present")
def test_json_for_decay_none_has_per_slice_factors_and_max_suv() -> None:
    res = runner.invoke(app, ["suv", str(DRO_ROOT / "DRO_3_4" / "PT"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    jsonschema.validate(out, SUV_JSON_SCHEMA)
    assert out["decay_correction"] == "NONE"
    assert len(out["per_slice"]) == 20
    assert {"key", "BW", "LBMJANMA", "BSA", "IBW"} <= set(out["per_slice"][0])
    assert round(out["suvbw_max"], 2) == 4.00


def test_table_shows_why_this_reference_time(tmp_path: Path) -> None:
    series = _write(pet_series(2, pixels=True, SeriesTime="113000",
                               per_slice=[dict(AcquisitionTime="110230",
                                               FrameReferenceTime="450000"),
                                          dict(AcquisitionTime="110500",
                                               FrameReferenceTime="600000")],
                               ActualFrameDuration="603000"), tmp_path / "pt")
    res = runner.invoke(app, ["suv", str(series)])
    assert res.exit_code == 0, res.output
    assert "Why this reference time" in res.stdout
    assert "back_computed" in res.stdout


def test_overrides_on_command_line_are_used_and_recorded(tmp_path: Path) -> None:
    series = _write(pet_series(2, pixels=True, PatientWeight=None), tmp_path / "pt")
    res = runner.invoke(app, ["suv", str(series), "--json", "--dose-bq", "3e8",
                              "--injection-time", "2025-01-01T09:30:00", "--weight-kg", "80"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    jsonschema.validate(out, SUV_JSON_SCHEMA)
    want = 80000 / (3e8 * 2 ** (-5400 / 6586.2))
    assert out["suvbw_factor"] == pytest.approx(want, rel=1e-12)
    assert out["provenance"]["overrides"]["weight_kg"] == 80.0
    # slice pixels are 100 and 200, slope 1: SUVmax = 200 × factor
    assert out["suvbw_max"] == pytest.approx(200 * want, rel=1e-6)
    assert out["per_slice"] is None and math.isfinite(out["sul_factor"])


def test_refusal_exits_non_zero_with_reason_on_stderr(tmp_path: Path) -> None:
    series = _write(pet_series(2, pixels=True, Units="PROPCNTS"), tmp_path / "pt")
    res = runner.invoke(app, ["suv", str(series), "--json"])
    assert res.exit_code == 1
    assert res.stdout == ""
    assert "PROPCNTS" in res.stderr and "SUV cannot be computed" in res.stderr


def test_bad_injection_time_is_input_error(tmp_path: Path) -> None:
    series = _write(pet_series(2, pixels=True), tmp_path / "pt")
    res = runner.invoke(app, ["suv", str(series), "--injection-time", "yesterday"])
    assert res.exit_code == 2
    assert "--injection-time" in res.stderr


def _uneven_series(tmp_path: Path) -> Path:
    """Four slices at z = 0, 4, 8, 14 mm: the last gap is 1.5 voxels, so load_series
    resamples the planes onto a uniform grid and says so in the volume's notes."""
    zs = (0.0, 4.0, 8.0, 14.0)
    return _write(pet_series(4, pixels=True,
                             per_slice=[dict(ImagePositionPatient=[0.0, 0.0, z]) for z in zs]),
                  tmp_path / "pt")


def test_json_carries_the_volume_notes(tmp_path: Path) -> None:
    res = runner.invoke(app, ["suv", str(_uneven_series(tmp_path)), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    jsonschema.validate(out, SUV_JSON_SCHEMA)
    assert len(out["volume_notes"]) == 1
    assert "non-uniform slice spacing" in out["volume_notes"][0]
    assert out["volume_problem"] is None and out["suvbw_factor"] > 0  # other keys unchanged


def test_table_prints_the_volume_notes(tmp_path: Path) -> None:
    res = runner.invoke(app, ["suv", str(_uneven_series(tmp_path))],
                        env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "volume note" in res.stdout
    assert "non-uniform slice spacing" in res.stdout


def test_regular_series_has_no_volume_notes(tmp_path: Path) -> None:
    series = _write(pet_series(3, pixels=True), tmp_path / "pt")
    res = runner.invoke(app, ["suv", str(series), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["volume_notes"] == []
    res = runner.invoke(app, ["suv", str(series)])
    assert "volume note" not in res.stdout
