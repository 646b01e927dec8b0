"""``oncohybrid nm-phantom`` and ``nm-calibrate``: the phantom a user can write from the
command line reads back with its stated sensitivity; invalid input exits 2."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from oncohybrid.cli.main import app

runner = CliRunner()


def test_nm_phantom_counts_round_trip_through_spect(tmp_path):
    out = tmp_path / "ph"
    res = runner.invoke(app, ["nm-phantom", str(out), "--units", "counts",
                              "--sensitivity-cps-mbq", "6.5", "--times-h", "24",
                              "--patient-id", "CLI-1", "--json"])
    assert res.exit_code == 0, res.output
    truth = json.loads(res.stdout)
    assert truth["units"] == "counts" and truth["sensitivity_cps_mbq"] == 6.5
    nm_dir = out / "cycle1" / "tp1" / "NM"
    spect = runner.invoke(app, ["spect", str(nm_dir), "--sensitivity-cps-mbq", "6.5",
                                "--json"])
    assert spect.exit_code == 0, spect.output
    doc = json.loads(spect.stdout)
    assert doc["total_activity_mbq"] == pytest.approx(
        truth["cycles"][0]["timepoints"][0]["total_activity_mbq"], rel=0.01)
    text = runner.invoke(app, ["spect", str(nm_dir), "--sensitivity-cps-mbq", "6.5"])
    assert text.exit_code == 0 and "SUVbw max" in text.stdout and "# Bq/ml = counts" in text.stdout


@pytest.mark.parametrize("args", [["--units", "mbq"], ["--cycles", "0"], ["--times-h", "0,24"],
                                  ["--times-h", "a"]])
def test_nm_phantom_invalid_options_exit_2(tmp_path, args):
    res = runner.invoke(app, ["nm-phantom", str(tmp_path / "x"), *args, "--json"])
    assert res.exit_code == 2 and res.stdout == ""


def test_nm_calibrate_records_and_refuses_nonsense(monkeypatch, tmp_path):
    monkeypatch.setenv("ONCOHYBRID_HOME", str(tmp_path))
    monkeypatch.delenv("ONCOHYBRID_DATABASE_URL", raising=False)
    ok = runner.invoke(app, ["nm-calibrate", "SPECT-1", "177Lu", "4.6", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["isotope"] == "Lu-177"
    for args, reason in ((["SPECT-1", "F-18", "4.6"], "not one of"),
                         (["SPECT-1", "Lu-177", "0"], "positive"),
                         (["SPECT-1", "Lu-177", "4", "--measured-on", "May"], "YYYY-MM-DD")):
        res = runner.invoke(app, ["nm-calibrate", *args, "--json"])
        assert res.exit_code == 2 and res.stdout == "" and reason in res.stderr
