"""A whole tumour-board session in Chromium (#15): create the board and the session, add
two demo patients from their patient pages, prepare (checklist), present with the
keyboard through the cases (key images, rule trace), record a decision with a follow-up
exam, record attendance, close; the follow-up shows in the worklist and the minutes list
the attendance.

The session needs two patients on the agenda to walk through with the keyboard, so it
runs on its own two-patient workspace and server rather than the shared one-patient
demo workspace (adding a patient there would change the other browser tests' worklist).
"""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest
from e2e_browser import ARTIFACTS, ConsoleWatch, serve_workspace, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "max-mentor-pass"


@pytest.fixture(scope="module")
def board_site(tmp_path_factory: pytest.TempPathFactory):
    """Two assessed phantom patients, a mentor and a fellow, ``oncohybrid serve``."""

    from oncohybrid.config import get_settings
    from oncohybrid.phantom import generate_cohort
    from oncohybrid.services.assess import assess_patient
    from oncohybrid.services.ingest import Ingestor
    from oncohybrid.services.users import add_user
    from oncohybrid.services.worklist import patient_pk_of_study

    home = tmp_path_factory.mktemp("e2eboards")
    settings = get_settings(home)
    truth = generate_cohort(home / "phantom", patients=2, timepoints=2, vendor="siemens",
                            seed=7, size="small")
    ing = Ingestor(settings)
    try:
        ing.ingest_paths([home / "phantom"])
    finally:
        ing.close()
    pks = []
    for p in truth["patients"]:
        assess_patient(p["patient_id"], settings=settings)
        pks.append(patient_pk_of_study(p["timepoints"][0]["study_uid"], settings))
    add_user(settings, "max", PASSWORD, "mentor", actor="test")
    add_user(settings, "fred", "fred-fellow-pass", "fellow", actor="test")
    with serve_workspace(home) as (base, _log):
        yield base, truth, pks


def test_full_board_session_in_the_browser(browser, board_site, tmp_path):
    from playwright.sync_api import expect

    base, truth, pks = board_site
    ids = [p["patient_id"] for p in truth["patients"]]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=base,
                              accept_downloads=True)
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    watch = ConsoleWatch(page)
    try:
        sign_in(page, "max", PASSWORD)
        # 1. the board and a session today
        page.click("nav >> text=Tumour boards")
        page.fill("#new-board input[name=name]", "Thoracic MDT")
        page.fill("#new-board input[name=specialty]", "lung")
        page.select_option("#new-board select[name=weekday]", "tuesday")
        page.click("#create-board")
        row = page.locator("#boards tr", has_text="Thoracic MDT")
        expect(row).to_have_count(1)
        row.locator("button", has_text="Create session").click()
        expect(page.locator("#session-title")).to_contain_text("Thoracic MDT")
        today = dt.date.today().isoformat()
        expect(page.locator("#session-title")).to_contain_text(today)
        session_url = page.url
        # 2. both demo patients from their patient pages, with the question
        for pk, pid in zip(pks, ids, strict=True):
            page.goto(f"/patients/{pk}")
            page.click("text=Add to a tumour board")
            page.fill("#question", f"Restaging of {pid}: continue?")
            page.click("#add-to-board")
            expect(page.locator("#agenda")).to_contain_text(f"Restaging of {pid}")
        rows = page.locator("#agenda tr.case-row")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_contain_text("08:00–08:10")
        expect(rows.nth(1)).to_contain_text("08:10–08:20")
        expect(rows.nth(0)).to_contain_text("PR")  # latest RECIST category of the record
        # 3. prepare: tick the manual checklist items until both cases are ready
        for k in range(2):
            for item in ("imaging_reviewed", "key_images"):
                page.locator("#agenda tr.case-row").nth(k).locator(
                    f"button.tick[data-item={item}]").click()
        for k in range(2):
            expect(page.locator("#agenda tr.case-row").nth(k).locator(".readiness")
                   ).to_have_text("ready")
        # attendance by specialty (users are linked by their user name)
        for name, spec in (("max", "nuclear medicine"), ("fred", "radiology"),
                           ("Dr Pulmo", "respiratory medicine")):
            page.fill("#attendee-name", name)
            page.fill("#attendee-specialty", spec)
            page.click("#add-attendee")
        expect(page.locator("#attendance-table tbody tr")).to_have_count(3)
        # 4. present: one case per screen, keyboard through the cases
        page.click("#present")
        expect(page.locator("#case-count")).to_contain_text("Case 1 of 2")
        expect(page.locator("#case-label")).to_contain_text(ids[0])
        imgs = page.locator("#key-images img")
        expect(imgs).to_have_count(4)  # MIP + fused slice, baseline and current
        page.wait_for_function(
            "() => [...document.querySelectorAll('#key-images img')]"
            ".every(i => i.complete && i.naturalWidth > 0)")
        expect(page.locator("#responses")).to_contain_text("partial response")
        page.keyboard.press("t")
        expect(page.locator("#rule-trace")).to_have_attribute("open", "")
        shot(page, "boards-present-case1")
        page.keyboard.press("ArrowRight")
        expect(page.locator("#case-count")).to_contain_text("Case 2 of 2")
        expect(page.locator("#case-label")).to_contain_text(ids[1])
        page.keyboard.press("ArrowLeft")
        expect(page.locator("#case-count")).to_contain_text("Case 1 of 2")
        # 5. the decision with a follow-up exam, from the keyboard's "d"
        page.keyboard.press("d")
        expect(page.locator("#recommendation")).to_be_focused()
        page.keyboard.type("Continue treatment; re-stage")
        page.fill("#rationale", "partial response on RECIST 1.1 and PERCIST")
        page.fill("#follow-up-exam", "FDG PET/CT")
        page.fill("#follow-up-days", "56")
        page.click("#save-decision")
        expect(page.locator("#case-count")).to_contain_text("Case 2 of 2")  # next case
        page.keyboard.press("Escape")
        expect(page.locator("#agenda")).to_contain_text("Continue treatment; re-stage")
        due = (dt.date.today() + dt.timedelta(days=56)).isoformat()
        expect(page.locator("#agenda")).to_contain_text(f"FDG PET/CT due {due}")
        # 6. close
        page.click("#close-session")
        expect(page.locator("#session-status")).to_contain_text("closed")
        expect(page.locator("#close-session")).to_have_count(0)
        # the follow-up appears in the worklist
        page.click("nav >> text=Worklist")
        row = page.locator("#worklist tr", has_text=ids[0])
        expect(row.locator(".worklist-badge")).to_contain_text(
            f"board follow-up: FDG PET/CT due {due}")
        # the minutes list the attendance
        page.goto(session_url)
        with page.expect_download() as dl:
            page.click("#minutes-link")
        path = tmp_path / "minutes.pdf"
        dl.value.save_as(path)
        text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                              capture_output=True, text=True).stdout
        for word in ("Attendance (3)", "max", "fred", "Dr Pulmo", "nuclear medicine",
                     "radiology", "respiratory medicine", "Continue treatment; re-stage",
                     due):
            assert word in text, word
        watch.check("board session")
    finally:
        ctx.close()
