"""Scanner QC in a real browser (issue #20): refresh the equipment registry, log a daily QC
that fails in the week of the patient's second scan, and see "SUV not harmonised" on that
patient's page; the trend plot and the QC log show the failure."""

from __future__ import annotations

import pytest
from e2e_browser import shot, sign_in

pytestmark = pytest.mark.browser


def test_failed_daily_qc_flags_the_study_of_that_week(page, e2e_ws):
    sign_in(page, *e2e_ws.demo)
    page.click("nav a[href='/qc']")
    page.wait_for_selector("#qc-scanners")
    page.click("#qc-refresh")
    page.wait_for_selector("#qc-scanners tr[data-scanner]")
    row = page.locator("#qc-scanners tr[data-scanner]").first
    assert "PT" in row.inner_text() and "CT" in row.inner_text()

    tp1 = e2e_ws.patient["timepoints"][1]["date"]
    form = page.locator("#qc-daily-form")
    form.locator("select[name=scanner]").select_option(index=0)
    form.locator("input[name=date]").fill(tp1)
    form.locator("input[name=name]").fill("calibration_ratio")
    form.locator("input[name=value]").fill("0.82")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#qc-results tr.qc-fail")
    log = page.inner_text("#qc-results")
    assert tp1 in log and "0.82 outside 0.9–1.1" in log
    shot(page, "qc-01-log")

    trend = page.request.get(page.locator("#qc-scanners a", has_text="trend").first
                             .get_attribute("href"))
    assert trend.status == 200 and trend.body()[:4] == b"\x89PNG"

    page.goto(f"/patients/{e2e_ws.patient_pk}")
    notes = page.locator(".area-note", has_text="SUV not harmonised")
    notes.first.wait_for()
    assert notes.count() == 1
    text = notes.first.inner_text()
    assert "study 2 of 2" in text and "in the week of the scan" in text and tp1 not in text
    shot(page, "qc-02-patient-flag")
    page.watch.check("qc pages")
