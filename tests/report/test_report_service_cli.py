"""``services.report`` on a database with a longitudinal record, and ``oncohybrid report``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import report_data
from report_tools import dciodvfy_errors, pdf_pages, pdf_text, save_pngs, squash
from typer.testing import CliRunner

from oncohybrid.cli.main import app
from oncohybrid.report.sr import read_measurements
from oncohybrid.services.report import build_patient_report, lesion_mask, load_report_data

runner = CliRunner()


@pytest.fixture
def home(db_settings, monkeypatch):
    settings, _ = db_settings
    monkeypatch.setenv("ONCOHYBRID_HOME", str(settings.home))
    return settings


def test_report_data_comes_from_the_record(db_settings, cohort):
    settings, uids = db_settings
    _, truth = cohort
    patient = truth["patients"][0]
    data = load_report_data(patient["patient_id"], settings, images=False)
    assert [tp.date.isoformat() for tp in data.timepoints] == [
        tp["date"] for tp in patient["timepoints"]]
    assert {les.lesion_id: les.tracking_uid for les in data.lesions} == {
        lid: uids[patient["patient_id"]][lid] for lid in patient["lesion_ids"]}
    roles = report_data.roles(patient)
    assert all(les.role == roles[les.lesion_id] for les in data.lesions)
    truth_l1 = patient["timepoints"][1]["lesions"][0]
    l1 = next(les for les in data.lesions if les.lesion_id == "L1")
    assert l1.measurements["TP1"].ld_mm == pytest.approx(truth_l1["ld_mm"])
    assert data.assessments["recist1.1"]["best_overall_response"] == "PR"
    # The waterfall covers every assessed patient of the database, this one flagged.
    assert len(data.cohort) == 2 and sum(p.is_current for p in data.cohort) == 1


def test_derived_lesion_mask_matches_the_phantom_lesion(data_p0):
    """41 % isocontour around the record centroid vs the analytic ellipsoid (Dice)."""
    tp = data_p0.baseline
    les = data_p0.lesions[0]  # L1: the large hot lung lesion
    m = les.measurements["TP0"]
    derived = lesion_mask(tp.images.pet_suv, m.centroid_lps_mm, m.ld_mm)
    truth = tp.images.lesion_masks["L1"]
    dice = 2 * np.logical_and(derived, truth).sum() / (derived.sum() + truth.sum())
    assert dice > 0.7


def test_service_report_for_the_web_button_accepts_the_database_key(home):
    import sqlalchemy as sa

    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models import Patient

    with session_scope(home) as s:
        pk = s.scalar(sa.select(Patient.id).where(Patient.patient_id == "PH3-002"))
    path = build_patient_report(pk, home, dpi=50)
    assert path.is_file() and path.parent == home.derived_dir / "reports"
    text = squash(pdf_text(path))
    assert "PH3-002" in text and "RECIST 1.1" in text


def test_cli_report_with_sr_seg_and_encapsulated_pdf(home, tmp_path, cohort):
    out = tmp_path / "r.pdf"
    res = runner.invoke(app, ["report", "PH3-001", "--out", str(out), "--sr",
                              str(tmp_path / "sr.dcm"), "--seg", str(tmp_path / "seg.dcm"),
                              "--encapsulated", str(tmp_path / "pdf.dcm"), "--reader",
                              "Dr B. Board", "--dpi", "50", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert set(doc) == {"pdf", "sr", "seg", "encapsulated"}
    save_pngs(out, "cli-report")
    for key in ("sr", "seg", "encapsulated"):
        assert dciodvfy_errors(doc[key]) == [], key
    groups = read_measurements(doc["sr"])
    _, truth = cohort
    current = truth["patients"][0]["timepoints"][-1]
    by_id = {g.tracking_id: g for g in groups}
    for les in current["lesions"]:
        if les["present"]:
            assert by_id[les["id"]].values["ld_mm"] == pytest.approx(les["ld_mm"])
            assert by_id[les["id"]].referenced_segment is not None
    assert "Dr B. Board" in pdf_text(out)


def test_cli_pseudonymised_report_and_meeting_pack(home, tmp_path):
    anon = tmp_path / "anon.pdf"
    res = runner.invoke(app, ["report", "PH3-001", "--out", str(anon), "--pseudonymise",
                              "--dpi", "50"])
    assert res.exit_code == 0, res.output
    text = pdf_text(anon)
    assert "PH3-001" not in text and "Phantom" not in text and "PHANTOM" not in text
    pack = tmp_path / "pack.pdf"
    res = runner.invoke(app, ["report", "--meeting", "PH3-002", "--out", str(pack),
                              "--date", "2025-02-03", "--pseudonymise", "--dpi", "50", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {"pdf": str(pack)}
    assert pdf_pages(pack) >= 1 + 2
    text = pdf_text(pack)
    assert "2025-02-03" in text and "PH3-002" not in text and "PSN-" in text
    assert "2025-02-03" in pdf_text(pack)


@pytest.mark.parametrize(("args", "code", "message"), [
    (["report", "--out", "x.pdf"], 2, "PATIENT"),
    (["report", "NOBODY", "--out", "x.pdf"], 1, "not in the study database"),
    (["report", "PH3-001", "--out", "x.pdf", "--pseudonymise", "--sr", "s.dcm"], 2,
     "PDF only"),
    (["report", "PH3-001", "--meeting", "PH3-002", "--out", "x.pdf"], 2, "not both"),
    (["report", "--meeting", "PH3-001", "--date", "03/02/2025", "--out", "x.pdf"], 2,
     "YYYY-MM-DD"),
    (["report", "PH3-001", "--out", "x.pdf", "--sr", "s.dcm", "--timepoint", "TP9"], 2,
     "TP9"),
])
def test_cli_errors_exit_non_zero_with_a_message(home, tmp_path, monkeypatch, args, code,
                                                 message):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, args)
    assert res.exit_code == code, res.output
    assert message in res.stderr
    assert "Traceback" not in res.output
