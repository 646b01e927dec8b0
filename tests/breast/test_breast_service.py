"""The breast record: reports saved with generated text and category, signed (frozen, SR
VERIFIED), pathology linked to findings with the concordance, and the outcome audit of
the signed reports."""

from __future__ import annotations

import pydicom
import pytest

from oncohybrid.breast.categories import Category
from oncohybrid.breast.correlation import suggest_concordance
from oncohybrid.config import get_settings
from oncohybrid.errors import InputError
from oncohybrid.services import breast as svc
from oncohybrid.store.db import session_scope
from oncohybrid.store.models import Patient

MG = {"modality": "MG", "purpose": "screening", "exam_date": "2026-01-05", "composition": "c",
      "findings": [{"type": "mass", "laterality": "L", "clock": 1, "shape": "irregular",
                    "margin": "indistinct", "density": "equal", "size_mm": 9,
                    "category": "0"}]}
DIAG = {"modality": "US", "purpose": "diagnostic", "exam_date": "2026-01-20",
        "findings": [{"type": "mass", "laterality": "L", "clock": 1, "shape": "irregular",
                      "margin": "angular", "orientation": "not_parallel",
                      "echo_pattern": "hypoechoic", "size_mm": 9, "category": "4B"}]}


def _patient(pid: str) -> int:
    with session_scope() as s:
        p = Patient(patient_id=pid, patient_name="Test^Breast")
        s.add(p)
        s.flush()
        return p.id


def test_report_sign_pathology_and_platform_audit(backend):
    settings = get_settings()
    pk = _patient("BR-100")
    screen = svc.save_report(settings, pk, MG, "dr.a")
    diag = svc.save_report(settings, pk, DIAG, "dr.b")
    rep = svc.get_report(settings, diag)
    assert rep["overall_category"] == "4B" and rep["biopsy_recommended"] is True
    assert "Catégorie BI-RADS 4B" in rep["text_fr"] and "BI-RADS 4B" in rep["text_en"]
    # drafts are not audited
    assert svc.platform_audit(settings)["screening"]["exams"] == 0
    # a draft may change; a signed report may not
    changed = dict(DIAG, findings=[dict(DIAG["findings"][0], category="4C")])
    svc.save_report(settings, pk, changed, "dr.b", report_pk=diag)
    assert svc.get_report(settings, diag)["overall_category"] == "4C"
    signed = svc.sign_report(settings, diag, "dr.b")
    assert signed["status"] == "signed" and signed["has_sr"]
    with pytest.raises(InputError, match="signed"):
        svc.save_report(settings, pk, DIAG, "dr.b", report_pk=diag)
    with pytest.raises(InputError, match="already signed"):
        svc.sign_report(settings, diag, "dr.b")
    ds = pydicom.dcmread(svc.sr_path(settings, diag))
    assert ds.VerificationFlag == "VERIFIED" and ds.PatientID == "BR-100"
    svc.sign_report(settings, screen, "dr.a")
    # invasive 8 mm, node-negative, 10 days after the diagnostic exam (25 after the screen)
    res = svc.add_pathology(settings, diag, "dr.b", finding_index=0,
                            diagnosis_date="2026-01-30", result="malignant",
                            cancer_type="invasive", size_mm=8, nodes="negative")
    assert res["concordance"] == "concordant"
    out = svc.platform_audit(settings)
    assert out["verdicts"] == {str(screen): "TP", str(diag): "TP"}
    assert out["screening"]["exams"] == 1 and out["screening"]["recall_rate"] == 1.0
    assert out["screening"]["cdr_per_1000"] == 1000.0
    assert out["diagnostic"]["ppv2"] == 1.0 and out["diagnostic"]["ppv3"] == 1.0
    assert out["diagnostic"]["minimal_cancer_fraction"] == 1.0
    by = svc.platform_audit(settings, by="radiologist")
    assert sorted(by["groups"]) == ["dr.a", "dr.b"]
    with pytest.raises(InputError, match="finding"):
        svc.add_pathology(settings, diag, "dr.b", finding_index=3,
                          diagnosis_date="2026-01-30", result="benign")


def test_concordance_suggestions():
    assert suggest_concordance(Category.C5, "benign").verdict == "discordant"
    assert suggest_concordance(Category.C4C, "benign").verdict == "discordant"
    assert suggest_concordance(Category.C4A, "benign").verdict == "concordant"
    assert suggest_concordance(Category.C4A, "malignant").verdict == "concordant"
    assert suggest_concordance(Category.C3, "malignant").verdict == "discordant"
    assert suggest_concordance(Category.C4B, "high-risk").verdict == "concordant"
    assert "surgical" in suggest_concordance(Category.C4B, "high-risk").reason


def test_patient_notes_follow_up_and_missing_pathology(backend):
    settings = get_settings()
    pk = _patient("BR-200")
    three = dict(DIAG, exam_date="2026-03-01",
                 findings=[dict(DIAG["findings"][0], category="3")])
    r3 = svc.save_report(settings, pk, three, "dr.a")
    assert svc.patient_notes(settings, pk) == []  # drafts say nothing
    svc.sign_report(settings, r3, "dr.a")
    # 182 days after 2026-03-01
    assert svc.patient_notes(settings, pk) == [
        "BI-RADS 3 (US 2026-03-01): short-interval follow-up due 2026-08-30."]
    r4 = svc.save_report(settings, pk, dict(DIAG, exam_date="2026-09-01"), "dr.a")
    svc.sign_report(settings, r4, "dr.a")
    assert svc.patient_notes(settings, pk) == [
        "BI-RADS 4B (US 2026-09-01): tissue diagnosis recommended, no pathology result "
        "recorded."]
    svc.add_pathology(settings, r4, "dr.a", finding_index=0, diagnosis_date="2026-09-10",
                      result="benign")
    assert svc.patient_notes(settings, pk) == []


def test_record_exports_to_the_audit_csv_and_audits_the_same(backend, tmp_path):
    import json

    from typer.testing import CliRunner

    from oncohybrid.cli.main import app

    settings = get_settings()
    pk = _patient("BR-300")
    a = svc.save_report(settings, pk, MG, "dr.a")
    b = svc.save_report(settings, pk, DIAG, "dr.b")
    svc.sign_report(settings, a, "dr.a")
    svc.sign_report(settings, b, "dr.b")
    svc.add_pathology(settings, b, "dr.b", finding_index=0, diagnosis_date="2027-01-05",
                      result="malignant", cancer_type="dcis", size_mm=6.5)
    runner = CliRunner()
    res = runner.invoke(app, ["breast", "export-csv", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["exams"] == 2
    assert (tmp_path / "EXAMS.csv").read_text().splitlines()[1] == \
        f"breast-report-{a},BR-300,2026-01-05,dr.a,MG,screening,0,no"
    assert (tmp_path / "OUTCOMES.csv").read_text().splitlines()[1] == \
        "BR-300,2027-01-05,malignant,dcis,6.5,,yes"
    from_files = json.loads(runner.invoke(app, [
        "breast", "audit", str(tmp_path / "EXAMS.csv"), "--outcomes",
        str(tmp_path / "OUTCOMES.csv"), "--json"]).stdout)
    from_record = json.loads(runner.invoke(app, ["breast", "audit-record", "--json"]).stdout)
    for purpose in ("screening", "diagnostic"):
        assert from_files[purpose] == from_record[purpose]
    # the DCIS is 365 days after the screen (2026-01-05 -> 2027-01-05): inside the window
    assert from_record["screening"]["counts"]["tp"] == 1
    assert from_record["diagnostic"]["counts"]["tp"] == 1  # 350 days after
