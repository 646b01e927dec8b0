"""`assess` refuses criteria the PET tracer is not valid for (issue #12, tracer awareness).

A Lu-177 SPECT stored as PET got PERCIST with no word. Here a stored phantom PET/CT is
relabelled Lu-177 DOTATATE (half-life 6.647 d): PERCIST and Lugano must be refused
(exit 2, naming tracer and criterion) before any image is analysed; RECIST 1.1 (CT) is
not affected; the tracer summary of the stored series is available to the web app.
"""

from __future__ import annotations

import json

import pydicom
import pytest
from typer.testing import CliRunner

phantom = pytest.importorskip("oncohybrid.phantom")


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    import os

    root = tmp_path_factory.mktemp("lu")
    home = tmp_path_factory.mktemp("home")
    truth = phantom.generate_cohort(root, patients=1, timepoints=1, vendor="siemens", seed=3,
                                    size="small", noise_free=True)
    pid = truth["patients"][0]["patient_id"]
    for f in (root / pid / "TP0" / "PT").iterdir():
        ds = pydicom.dcmread(f)
        item = ds.RadiopharmaceuticalInformationSequence[0]
        item.Radiopharmaceutical = "Lu-177 DOTATATE"
        item.RadionuclideHalfLife = "574300.8"
        del item.RadiopharmaceuticalCodeSequence
        del item.RadionuclideCodeSequence
        ds.save_as(f)
    old = os.environ.get("ONCOHYBRID_HOME")
    os.environ["ONCOHYBRID_HOME"] = str(home)
    try:
        from oncohybrid.services.ingest import Ingestor

        with Ingestor() as ing:
            ing.ingest_paths([root])
        yield home, pid
    finally:
        from oncohybrid.store.db import dispose_engines

        dispose_engines()
        if old is None:
            os.environ.pop("ONCOHYBRID_HOME", None)
        else:
            os.environ["ONCOHYBRID_HOME"] = old


def test_percist_on_lu177_stored_as_pet_is_refused(stored, monkeypatch):
    from oncohybrid.cli.main import app

    home, pid = stored
    monkeypatch.setenv("ONCOHYBRID_HOME", str(home))
    res = CliRunner().invoke(app, ["assess", pid, "--criteria", "percist,recist1.1", "--json"])
    assert res.exit_code == 2, res.output
    out = " ".join(res.output.split())
    assert "tracer mismatch" in out and "percist" in out and "Lu-177" in out
    assert "SPECT/NM" in out and "--allow-tracer-mismatch" in out
    assert "recist1.1 is valid" not in out  # CT criteria do not depend on the tracer


def test_tracer_summary_of_a_stored_series(stored, monkeypatch):
    from oncohybrid.services.quantify import tracer_summary
    from oncohybrid.store.queries import Filters, list_series

    home, pid = stored
    monkeypatch.setenv("ONCOHYBRID_HOME", str(home))
    pet = next(r for r in list_series(Filters(patient_id=pid)) if r["modality"] == "PT")
    info = tracer_summary(pet["series_uid"])
    assert info["radionuclide"] == "Lu-177" and info["family"] == "SSTR"
    assert info["imaging"] == "SPECT/NM"
    assert info["summary"] == "SSTR (Lu-177 DOTATATE), Lu-177, SPECT/NM"
    assert json.loads(json.dumps(info)) == info


def test_allow_tracer_mismatch_assesses_with_a_note(stored, monkeypatch):
    from oncohybrid.services.assess import AssessParams, assess_patient

    home, pid = stored
    monkeypatch.setenv("ONCOHYBRID_HOME", str(home))
    res = assess_patient(pid, ["percist"], params=AssessParams(allow_tracer_mismatch=True),
                         store=False)
    assert res.to_json()["tracers"][0]["radionuclide"] == "Lu-177"
    assert any("assessed anyway" in n for n in res.notes)
    assert any("emits no positrons" in n for n in res.notes)
