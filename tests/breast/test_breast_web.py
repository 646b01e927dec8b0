"""The breast pages with FastAPI's TestClient: the report form (a mass and calcifications),
generated text and category, signing, pathology, the audit page (platform and CSV), roles,
and the CEM low-energy/recombined pairing."""

from __future__ import annotations

import re

import pytest
from audit_data import EXAMS, OUTCOMES
from breast_ws import build, csrf_of, login


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return build(tmp_path_factory.mktemp("breasthome"))


@pytest.fixture(scope="module")
def app(ws):
    from oncohybrid.web.app import create_app

    return create_app(ws.settings)


FORM = {"modality": "MG", "purpose": "screening", "exam_date": "2026-11-02",
        "composition": "c", "mass_present": "1", "mass_laterality": "R", "mass_clock": "10",
        "mass_size_mm": "11", "mass_shape": "irregular", "mass_margin": "spiculated",
        "mass_density": "high", "mass_category": "4C", "calc_present": "1",
        "calc_laterality": "R", "calc_clock": "10", "calc_morphology": "fine_pleomorphic",
        "calc_distribution": "grouped", "calc_category": "4B"}


def test_report_form_text_category_sign_and_audit(app, ws):
    c = login(app, "pam")
    page = c.get(f"/breast/new?patient={ws.patient_pk}")
    assert page.status_code == 200 and 'id="breast-form"' in page.text
    r = c.post("/breast/reports", data={**FORM, "patient": str(ws.patient_pk),
                                        "csrf_token": csrf_of(c)}, follow_redirects=False)
    assert r.status_code == 303, r.text
    url = r.headers["location"]
    pk = int(url.rsplit("/", 1)[1])
    page = c.get(url).text
    assert "BI-RADS 4C" in page  # the most suspicious of 4C and 4B
    assert "irregular mass with spiculated margins, high density, measuring 11 mm" in page
    assert "masse irrégulière à contours spiculés" in page
    assert "microcalcifications fines pléomorphes groupées en foyer" in page
    # the draft can be edited: the form comes back filled, a change regenerates the text
    edit = c.get(f"/breast/reports/{pk}/edit").text
    assert f'name="report" value="{pk}"' in edit
    assert re.search(r'<option value="spiculated" selected>', edit)
    r = c.post("/breast/reports", data={**FORM, "mass_size_mm": "12", "report": str(pk),
                                        "patient": str(ws.patient_pk),
                                        "csrf_token": csrf_of(c)}, follow_redirects=False)
    assert r.headers["location"] == url
    page = c.get(url).text
    assert "measuring 12 mm" in page and "measuring 11 mm" not in page
    # not signed yet: not in the audit
    audit = c.get("/breast/audit").text
    assert f'/breast/reports/{pk}"' not in audit
    r = c.post(f"/breast/reports/{pk}/sign", data={"csrf_token": csrf_of(c)},
               follow_redirects=False)
    assert r.status_code == 303
    page = c.get(url).text
    assert re.search(r'id="report-status">signed<', page) and "pam" in page
    sr = c.get(f"/breast/reports/{pk}/sr.dcm")
    assert sr.status_code == 200 and sr.content[128:132] == b"DICM"
    audit = c.get("/breast/audit").text
    assert f'/breast/reports/{pk}"' in audit
    # a positive screen (4C) with no pathology yet: a false positive so far
    row = re.search(rf'/breast/reports/{pk}".*?class="verdict">(\w+)<', audit, re.S)
    assert row.group(1) == "FP"
    # pathology: malignant, linked to finding 1 -> concordant, and the screen becomes TP
    r = c.post(f"/breast/reports/{pk}/pathology",
               data={"csrf_token": csrf_of(c), "finding": "1", "diagnosis_date": "2026-11-20",
                     "result": "malignant", "cancer_type": "invasive", "size_mm": "9",
                     "nodes": "negative", "biopsy_performed": "yes"}, follow_redirects=False)
    assert r.status_code == 303
    assert ">concordant<" in c.get(url).text
    audit = c.get("/breast/audit").text
    assert re.search(rf'/breast/reports/{pk}".*?class="verdict">(\w+)<', audit, re.S).group(1) \
        == "TP"
    # discordant suggestion: a benign result of the 4C mass; shown on the patient page
    c.post(f"/breast/reports/{pk}/pathology",
           data={"csrf_token": csrf_of(c), "finding": "1", "diagnosis_date": "2026-11-21",
                 "result": "benign", "biopsy_performed": "yes"})
    assert ">discordant<" in c.get(url).text
    patient_page = c.get(f"/patients/{ws.patient_pk}").text
    assert "Discordant radiology-pathology result of 2026-11-21" in patient_page
    pdf = c.get(f"/breast/reports/{pk}/report.pdf?lang=fr")
    assert pdf.status_code == 200 and pdf.content[:4] == b"%PDF"
    # signed reports are frozen
    r = c.post(f"/breast/reports/{pk}/sign", data={"csrf_token": csrf_of(c)})
    assert r.status_code == 400
    assert c.get(f"/breast/reports/{pk}/edit").status_code == 400
    r = c.post("/breast/reports", data={**FORM, "report": str(pk), "patient": str(ws.patient_pk),
                                        "csrf_token": csrf_of(c)})
    assert r.status_code == 400 and "signed" in r.text


def test_invalid_form_is_shown_again_with_the_reason(app, ws):
    c = login(app, "pam")
    bad = {**FORM, "mass_category": "", "patient": str(ws.patient_pk),
           "csrf_token": csrf_of(c)}
    r = c.post("/breast/reports", data=bad)
    assert r.status_code == 400
    assert "findings[0].category" in r.text and 'value="10"' in r.text


def test_roles(app, ws):
    fellow = login(app, "fred")
    assert fellow.get(f"/breast?patient={ws.patient_pk}").status_code == 200
    assert fellow.get(f"/breast/new?patient={ws.patient_pk}").status_code == 403
    r = fellow.post("/breast/reports", data={**FORM, "patient": str(ws.patient_pk),
                                             "csrf_token": csrf_of(fellow)})
    assert r.status_code == 403
    rita = login(app, "rita")
    assert rita.get("/breast").status_code == 403
    audit = rita.get("/breast/audit")
    assert audit.status_code == 200 and "/breast/reports/" not in audit.text
    grouped = rita.get("/breast/audit?by=radiologist").text
    assert "pam" not in grouped and "reader 1" in grouped
    assert login(app, "amy").get("/breast/audit").status_code == 403
    # CSRF
    pam = login(app, "pam")
    assert pam.post("/breast/reports", data={**FORM, "patient": str(ws.patient_pk)}
                    ).status_code == 403


def test_csv_audit_upload_with_funnel_plots(app):
    c = login(app, "pam")
    r = c.post("/breast/audit/csv", data={"csrf_token": csrf_of(c), "by": "radiologist"},
               files={"exams": ("EXAMS.csv", EXAMS, "text/csv"),
                      "outcomes": ("OUTCOMES.csv", OUTCOMES, "text/csv")})
    assert r.status_code == 200, r.text
    # recall 3/7 = 42.9 %, PPV3 4/6 = 66.7 %, bad rows listed
    assert re.search(r'data-metric="recall_rate">.*?42\.9 %', r.text, re.S)
    assert re.search(r'data-metric="ppv3">.*?66\.7 %', r.text, re.S)
    assert "exams row 9: modality" in r.text
    assert r.text.count('src="data:image/png;base64,') == 3


def test_cem_pairs(app, ws):
    c = login(app, "fred")
    page = c.get(f"/breast/cem?patient={ws.patient_pk}").text
    # right CC by Image Type; left MLO by description (recombined) and kVp (31 kV low-energy)
    assert page.count('class="br-pair"') == 2
    assert "R CC" in page and "L MLO" in page
    imgs = re.findall(r'src="(/breast/cem/image/\d+\.png)"', page)
    assert len(imgs) == 4
    png = c.get(imgs[0])
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_mri_report_from_the_form(app, ws):
    c = login(app, "pam")
    form = {"modality": "MRI", "purpose": "diagnostic", "exam_date": "2026-11-03",
            "fgt": "c", "bpe": "moderate", "bpe_symmetry": "symmetric", "nme_present": "1",
            "nme_laterality": "L", "nme_clock": "3", "nme_size_mm": "35",
            "nme_nme_distribution": "segmental", "nme_nme_pattern": "clumped",
            "nme_kinetics_initial": "fast", "nme_kinetics_delayed": "washout",
            "nme_category": "4B", "patient": str(ws.patient_pk), "csrf_token": csrf_of(c)}
    r = c.post("/breast/reports", data=form, follow_redirects=True)
    assert r.status_code == 200, r.text
    assert "non-mass enhancement in a segmental distribution, clumped internal enhancement, " \
        "spanning 35 mm; kinetics: fast initial enhancement, washout delayed phase" in r.text
    assert "rehaussement non-masse de distribution segmentaire" in r.text
    assert "Background parenchymal enhancement: moderate, symmetric." in r.text
