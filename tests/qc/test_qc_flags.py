"""Equipment registry, QC log and harmonisation flags (issue #20): a study acquired on a
scanner whose QC failed that week shows "SUV not harmonised" on the patient page and in
the PDF; the other study of the same patient does not; the PET reconstruction is compared
with the scanner's EARL-compliant protocol learnt from a phantom that passed EARL2."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from typer.testing import CliRunner

from oncohybrid.cli.main import app
from oncohybrid.phantom.iec import PSF, write_iec_phantom

sys.path.insert(0, str(Path(__file__).parents[1] / "web"))

runner = CliRunner()


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from oncohybrid.config import get_settings
    from oncohybrid.phantom import generate_cohort
    from oncohybrid.services.ingest import Ingestor
    from oncohybrid.services.worklist import patient_pk_of_study

    home = tmp_path_factory.mktemp("qc_home")
    settings = get_settings(home)
    data = home / "phantom"
    truth = generate_cohort(data, patients=1, timepoints=2, vendor="siemens", seed=11,
                            size="small")
    ing = Ingestor(settings)
    try:
        ing.ingest_paths([data])
    finally:
        ing.close()
    p = truth["patients"][0]
    pk = patient_pk_of_study(p["timepoints"][0]["study_uid"], settings)
    return settings, data, p, pk


def _pet_header(data: Path, p: dict, t: int) -> pydicom.Dataset:
    return pydicom.dcmread(next((data / p["timepoints"][t]["pt_dir"]).glob("*.dcm")),
                           stop_before_pixels=True)


def test_registry_flags_and_protocol(ws, tmp_path, monkeypatch):
    from oncohybrid.services import qc

    settings, data, p, pk = ws
    monkeypatch.setenv("ONCOHYBRID_HOME", str(settings.home))
    monkeypatch.delenv("ONCOHYBRID_DATABASE_URL", raising=False)

    # --- registry from the stored instances ------------------------------------------
    res = runner.invoke(app, ["qc", "registry", "refresh", "--json"])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["linked"] == 4 and doc["unreadable"] == 0  # 2 × (CT + PET)
    hdr = _pet_header(data, p, 0)
    (scanner,) = doc["scanners"]
    assert (scanner["manufacturer"], scanner["model"], scanner["station_name"],
            scanner["software_versions"]) == (hdr.Manufacturer, hdr.ManufacturerModelName,
                                              hdr.StationName, hdr.SoftwareVersions)
    assert scanner["modalities"] == "CT,PT" and scanner["studies"] == 2
    again = json.loads(runner.invoke(app, ["qc", "registry", "refresh", "--json"]).stdout)
    assert again["linked"] == 0 and again["series_linked_total"] == 4  # idempotent
    assert qc.patient_notes(settings, pk) == []  # no QC on record: nothing to flag

    # --- a daily QC that fails in the week of TP1 (and passes on TP0's day) -------------
    d0 = dt.date.fromisoformat(p["timepoints"][0]["date"])
    d1 = dt.date.fromisoformat(p["timepoints"][1]["date"])
    assert d0.isocalendar()[:2] != d1.isocalendar()[:2]
    key = scanner["key"]
    ok = runner.invoke(app, ["qc", "daily", key, "--date", d0.isoformat(), "--measure",
                             "calibration_ratio=1.02", "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["passed"] is True
    friday = d1 + dt.timedelta(days=4 - d1.weekday()) if d1.weekday() < 4 else d1
    bad = runner.invoke(app, ["qc", "daily", key, "--date", friday.isoformat(), "--measure",
                              "calibration_ratio=0.85", "--json"])
    assert bad.exit_code == 0, bad.stderr
    bad_doc = json.loads(bad.stdout)
    assert bad_doc["passed"] is False and "0.85 outside 0.9–1.1" in bad_doc["summary"]

    status = qc.patient_status(p["patient_id"], settings)
    by_date = {s["date"]: s for s in status["studies"]}
    assert by_date[d0.isoformat()]["harmonised"] is True
    assert by_date[d1.isoformat()]["harmonised"] is False
    notes = qc.patient_notes(settings, pk)
    flagged = [n for n in notes if n.startswith("SUV not harmonised")]
    assert len(flagged) == 1 and "study 2 of 2" in flagged[0]
    assert "in the week of the scan" in flagged[0] and str(d1.year) not in flagged[0]

    # --- EARL2 protocol learnt from a phantom scanned with the same reconstruction -------
    ph = write_iec_phantom(
        tmp_path / "iec", voxel_mm=(float(hdr.SliceThickness), float(hdr.PixelSpacing[0]),
                                    float(hdr.PixelSpacing[1])),
        matrix=int(hdr.Rows), psf=PSF(7.5, overshoot=0.5, wide_fwhm_mm=15.0), serial=None,
        manufacturer=hdr.Manufacturer, model=hdr.ManufacturerModelName,
        station=hdr.StationName, software=(str(hdr.SoftwareVersions),),
        reconstruction=hdr.ReconstructionMethod, convolution_kernel=None,
        reference_time=dt.datetime.combine(d0, dt.time(7, 30)))
    rec = runner.invoke(app, ["qc", "iec", str(ph.directory), "--sphere-activity-bq-ml",
                              "20000", "--background-activity-bq-ml", "2000", "--record",
                              "--json"])
    assert rec.exit_code == 0, rec.stderr
    rdoc = json.loads(rec.stdout)
    assert rdoc["earl2"] is True and rdoc["scanner"]["key"] == key and rdoc["result_id"]
    notes = qc.patient_notes(settings, pk)
    assert sum("matches the scanner's EARL2-compliant protocol" in n for n in notes) == 2

    # --- the reading room: the flag on the patient page, the QC page ------------------
    from web_workspace import login_client

    from oncohybrid.services.users import add_user
    from oncohybrid.web.app import create_app

    add_user(settings, "petra", "petra-physician-pw", "physician", actor="test")
    add_user(settings, "rosa", "rosa-researcher-pw", "researcher", actor="test")
    web = create_app(settings)
    c = login_client(web, "petra", "petra-physician-pw")
    page = c.get(f"/patients/{pk}")
    assert page.status_code == 200
    assert "SUV not harmonised" in page.text and "study 2 of 2" in page.text
    q = c.get("/qc")
    assert q.status_code == 200 and key in q.text and "FAIL" in q.text
    trend = c.get(f"/qc/scanners/{scanner['id']}/trend.png")
    assert trend.status_code == 200 and trend.content[:4] == b"\x89PNG"
    curves = c.get(f"/qc/results/{rdoc['result_id']}/curves.png")
    assert curves.status_code == 200 and curves.content[:4] == b"\x89PNG"
    r = login_client(web, "rosa", "rosa-researcher-pw")
    rp = r.get(f"/patients/{pk}")
    if rp.status_code == 200:  # researchers see the flag, without calendar dates
        assert "SUV not harmonised" in rp.text

    # --- the PDF report --------------------------------------------------------------
    from oncohybrid.services.report import build_patient_report

    pdf = build_patient_report(p["patient_id"], settings, out=tmp_path / "report.pdf")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    flat = " ".join(text.split())
    assert "SUV not harmonised" in flat
    assert "SUV not harmonised: TP1" in flat and "SUV not harmonised: TP0" not in flat

    # --- trend plot from the CLI -----------------------------------------------------
    png = tmp_path / "trend.png"
    tr = runner.invoke(app, ["qc", "trend", key, "--out", str(png)])
    assert tr.exit_code == 0, tr.stderr
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_daily_qc_invalid_input_exits_2(ws, monkeypatch):
    settings, _data, _p, _pk = ws
    monkeypatch.setenv("ONCOHYBRID_HOME", str(settings.home))
    monkeypatch.delenv("ONCOHYBRID_DATABASE_URL", raising=False)
    runner.invoke(app, ["qc", "registry", "refresh"])
    key = json.loads(runner.invoke(app, ["qc", "registry", "ls", "--json"]).stdout)[
        "scanners"][0]["key"]
    for args, reason in [
        (["NO-SUCH-SCANNER", "--date", "2024-01-01", "--measure", "calibration_ratio=1"],
         "not in the registry"),
        ([key, "--date", "01/02/2024", "--measure", "calibration_ratio=1"], "not an ISO date"),
        ([key, "--date", "2024-01-01", "--measure", "mystery=3"], "has no tolerance"),
        ([key, "--date", "2024-01-01", "--measure", "calibration_ratio"], "NAME=NUMBER"),
        ([key, "--date", "2024-01-01", "--measure", "x=1", "--tolerance", "x=2:1"],
         "must not exceed"),
    ]:
        res = runner.invoke(app, ["qc", "daily", *args, "--json"])
        assert res.exit_code == 2, (args, res.stdout, res.stderr)
        assert res.stdout == "" and reason in res.stderr
