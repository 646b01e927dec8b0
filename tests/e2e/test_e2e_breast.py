"""Breast imaging in a real browser (#21): report a mammogram with one mass and
calcifications from the patient page, read the generated text and category, sign, and
find the report in the outcome audit."""

from __future__ import annotations

import re

import pytest
from e2e_browser import shot, sign_in
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

USER, PASSWORD = "brenda", "brenda-breast-radiologist"


@pytest.fixture(scope="module")
def radiologist(e2e_ws):
    from oncohybrid.services.users import add_user

    add_user(e2e_ws.settings, USER, PASSWORD, "physician", actor="test")
    return USER


def test_report_a_mammogram_sign_and_see_it_in_the_audit(page, e2e_ws, radiologist):
    sign_in(page, radiologist, PASSWORD)
    page.goto(f"/patients/{e2e_ws.patient_pk}")
    page.click("text=Breast report (BI-RADS)")
    expect(page.locator("#breast-form")).to_be_visible()
    page.select_option("#modality", "MG")
    page.select_option("#purpose", "screening")
    page.fill("#exam-date", "2026-11-02")
    page.select_option("#composition", "c")
    page.check("#mass-present")
    page.select_option("#mass-laterality", "L")
    page.fill("#mass-clock", "2")
    page.fill("#mass-size", "13")
    page.select_option("#mass-shape", "irregular")
    page.select_option("#mass-margin", "spiculated")
    page.select_option("#mass-density", "high")
    page.select_option("#mass-category", "4C")
    page.check("#calc-present")
    page.select_option("#calc-laterality", "L")
    page.fill("#calc-clock", "2")
    page.select_option("#calc-morphology", "fine_linear_branching")
    page.select_option("#calc-distribution", "segmental")
    page.select_option("#calc-category", "5")
    page.click("#generate")

    expect(page.locator("#overall-category")).to_have_text("BI-RADS 5")
    expect(page.locator("#report-status")).to_have_text("draft")
    en = page.locator("#text-en")
    expect(en).to_contain_text("Breast composition: ACR c")
    expect(en).to_contain_text("Left breast, upper outer quadrant, 2 o'clock: irregular mass "
                               "with spiculated margins, high density, measuring 13 mm. "
                               "BI-RADS 4C.")
    expect(en).to_contain_text("fine linear or fine-linear branching calcifications in a "
                               "segmental distribution")
    expect(en).to_contain_text("Assessment: BI-RADS 5 – Highly suggestive of malignancy")
    fr = page.locator("#text-fr")
    expect(fr).to_contain_text("masse irrégulière à contours spiculés, de haute densité")
    expect(fr).to_contain_text("microcalcifications fines linéaires ou linéaires branchées de "
                               "distribution segmentaire")
    expect(fr).to_contain_text("Conclusion : catégorie BI-RADS 5 (ACR 5)")
    report_url = page.url
    pk = int(re.search(r"/breast/reports/(\d+)$", report_url).group(1))
    shot(page, "breast-report-draft")

    page.click("#sign")
    expect(page.locator("#report-status")).to_have_text("signed")
    expect(page.locator("#signed-by")).to_have_text(radiologist)
    expect(page.locator("#sr-link")).to_be_visible()

    page.click("text=Outcome audit")
    row = page.locator("#audited-reports tr", has=page.locator(f'a[href="/breast/reports/{pk}"]'))
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(4)).to_have_text("5")
    expect(row.locator("td").nth(5)).to_have_text(radiologist)
    expect(row.locator(".verdict")).to_have_text("FP")  # positive screen, no cancer yet
    expect(page.locator('#audit-screening tr[data-metric="recall_rate"]')).to_be_visible()
    shot(page, "breast-audit")
    page.watch.check("breast report and audit")
