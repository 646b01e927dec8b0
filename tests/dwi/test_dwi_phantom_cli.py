"""``oncohybrid phantom --dwi`` (#19): each timepoint of the cohort gets an MR DWI study of
the same patient and day, in the patient's vendor encoding (or all five in turn), with its
truth in ground_truth.json; ``oncohybrid dwi adc`` reads it back within the 2 % of the
acceptance, and the study is the patient's once ingested."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from oncohybrid.cli.main import app

runner = CliRunner()


def _adc(folder, tissue) -> dict:
    x, y, _z = tissue["centre_lps_mm"]
    res = runner.invoke(app, ["dwi", "adc", str(folder), "--out", str(folder.parent / "a.dcm"),
                              "--b-values", "50,400,800", "--roi-centre", f"{x},{y},0",
                              "--roi-radius-mm", "8", "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("phantom-dwi")
    res = runner.invoke(app, ["phantom", str(out), "--patients", "3", "--timepoints", "1",
                              "--vendor", "mixed", "--size", "small", "--seed", "4", "--dwi",
                              "--json"])
    assert res.exit_code == 0, res.output
    return out, json.loads(res.stdout)


def test_each_timepoint_gets_a_dwi_study_in_its_vendor_encoding(cohort) -> None:
    out, truth = cohort
    saved = json.loads((out / "ground_truth.json").read_text())
    assert saved == truth
    for p in truth["patients"]:
        tp = p["timepoints"][0]
        dwi = tp["dwi"]
        assert dwi["encoding"] == p["vendor"]
        assert (out / dwi["dir"]).is_dir()
        per_patient = json.loads((out / p["patient_id"] / "ground_truth.json").read_text())
        assert per_patient["timepoints"][0]["dwi"] == dwi
        for tissue in dwi["tissues"][:3]:  # the mono-exponential ones
            doc = _adc(out / dwi["dir"], tissue)
            assert doc["b_value_source"] == dwi["b_value_source"] == p["vendor"]
            assert doc["roi"]["adc_mean_um2_s"] == pytest.approx(tissue["adc_mm2_s"] * 1e6,
                                                                 rel=0.02)


def test_the_dwi_study_belongs_to_the_patient_once_ingested(cohort, tmp_path,
                                                            monkeypatch) -> None:
    from oncohybrid.services.ingest import Ingestor
    from oncohybrid.store.queries import Filters, list_series

    out, truth = cohort
    monkeypatch.setenv("ONCOHYBRID_HOME", str(tmp_path / "home"))
    p = truth["patients"][0]
    with Ingestor() as ing:
        ing.ingest_paths([out / p["patient_id"]])
    rows = list_series(Filters(patient_id=p["patient_id"]))
    mr = [r for r in rows if r["modality"] == "MR"]
    assert len(mr) == 1 and mr[0]["series_uid"] == p["timepoints"][0]["dwi"]["series_uid"]
    pet = next(r for r in rows if r["modality"] == "PT")
    assert mr[0]["study_date"] == pet["study_date"] and mr[0]["study_uid"] != pet["study_uid"]


def test_all_encodings_in_turn(tmp_path) -> None:
    """The five encodings over five timepoints (a cohort truth written here by hand: only
    the fields the DWI writer reads)."""
    from oncohybrid.phantom.dwi import ENCODINGS, add_dwi_studies

    truth = {"patients": [{"patient_id": "P1", "patient_name": "Test^P1", "sex": "F",
                           "birth_date": "1960-02-03", "vendor": "ge",
                           "timepoints": [{"pt_dir": f"P1/TP{k}/PT", "date": f"2024-0{k + 1}-10",
                                           "accession_number": f"A{k}"} for k in range(5)]}]}
    (tmp_path / "P1").mkdir()
    add_dwi_studies(tmp_path, truth, encoding="all", b_values=(0, 400, 800))
    got = [tp["dwi"]["encoding"] for tp in truth["patients"][0]["timepoints"]]
    assert got == list(ENCODINGS)
    liver = truth["patients"][0]["timepoints"][0]["dwi"]["tissues"][1]
    for tp in truth["patients"][0]["timepoints"]:
        res = runner.invoke(app, ["dwi", "adc", str(tmp_path / tp["dwi"]["dir"]), "--out",
                                  str(tmp_path / "x.dcm"), "--roi-centre",
                                  f"{liver['centre_lps_mm'][0]},{liver['centre_lps_mm'][1]},0",
                                  "--roi-radius-mm", "8", "--json"])
        doc = json.loads(res.stdout)
        assert doc["b_value_source"] == tp["dwi"]["b_value_source"]
        assert doc["b_values"] == [0.0, 400.0, 800.0]
        assert doc["roi"]["adc_mean_um2_s"] == pytest.approx(1100.0, rel=0.02)
    import pydicom

    ds = pydicom.dcmread(next((tmp_path / "P1/TP2/MR").glob("*.dcm")), stop_before_pixels=True)
    assert (ds.PatientID, ds.StudyDate, ds.PatientBirthDate) == ("P1", "20240310", "19600203")


@pytest.mark.parametrize("args, reason", [
    (["--dwi-encoding", "canon"], "--dwi-encoding"),
    (["--dwi-b-values", "800"], "at least two different b-values"),
    (["--dwi-b-values", "0,x"], "--dwi-b-values"),
    (["--dwi-directions", "6"], "--dwi-directions"),
    (["--dwi-layout", "mosaic"], "--dwi-layout"),
])
def test_invalid_dwi_options_exit_2_before_writing(tmp_path, args, reason) -> None:
    out = tmp_path / "o"
    res = runner.invoke(app, ["phantom", str(out), "--patients", "1", "--timepoints", "1",
                              "--size", "small", "--dwi", "--json", *args])
    assert res.exit_code == 2
    assert res.stdout == ""
    assert reason in res.stderr
    assert not out.exists()
