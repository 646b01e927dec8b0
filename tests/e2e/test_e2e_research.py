"""Acceptance (issue #16) in a real browser: a 20-patient phantom study with a protocol,
CRF data entered through the web form (branching logic, calculated field, e-signature),
exams tracked on the dashboard, a de-identified export downloaded, and statistics on it
(services.stats) checked against independent computations."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from e2e_browser import serve_workspace, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DATA = Path(__file__).parents[1] / "research" / "data"
N = 20
PW = {"pia": "pia-strong-pass-42", "rita": "rita-strong-pass-42"}
# Two readers' calls for records 1..8 (1 malignant, 0 not).
READ1 = [1, 1, 0, 1, 0, 0, 1, 1]
READ2 = [1, 0, 0, 1, 0, 1, 1, 1]


@pytest.fixture(scope="module")
def study_ws(tmp_path_factory):
    from oncohybrid.config import get_settings
    from oncohybrid.phantom import generate_cohort
    from oncohybrid.research.cohort import parse_criterion
    from oncohybrid.services import research as r
    from oncohybrid.services.assess import assess_patient
    from oncohybrid.services.ingest import Ingestor
    from oncohybrid.services.users import add_user

    home = tmp_path_factory.mktemp("e2e_research")
    settings = get_settings(home)
    truth = generate_cohort(home / "phantom", patients=N, timepoints=2, vendor="mixed",
                            seed=16, size="small")
    ing = Ingestor(settings)
    try:
        ing.ingest_paths([home / "phantom"])
    finally:
        ing.close()
    for p in truth["patients"][:3]:
        assess_patient(p["patient_id"], settings=settings)
    add_user(settings, "pia", PW["pia"], "physician", actor="test")
    add_user(settings, "rita", PW["rita"], "researcher", actor="test")
    clinical = home / "clinical.csv"
    with clinical.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["patient_id", "tumour_type"])
        for i, p in enumerate(truth["patients"]):
            w.writerow([p["patient_id"], "lymphoma" if i % 4 else "melanoma"])
    r.create_study("ACC1", "Interim FDG PET in lymphoma",
                   protocol=r.load_protocol_file(DATA / "protocol.yaml"),
                   ethics_number="EC-2026-016", ethics_date="2026-01-15",
                   investigators=[("pia", "pi", None), ("rita", "statistician", None)],
                   settings=settings)
    r.import_clinical("ACC1", clinical, settings=settings)
    res = r.save_cohort("ACC1", "lymphoma",
                        [parse_criterion("include", "FDG PET: [tracer(fdg)] = '1'"),
                         parse_criterion("include", "lymphoma: [tumour_type] = 'lymphoma'")],
                        settings=settings)
    r.import_dictionary("ACC1", DATA / "dictionary.csv", repeating={"imaging": "timepoint"},
                        settings=settings)
    return settings, truth, res


@pytest.fixture(scope="module")
def research_server(study_ws):
    settings = study_ws[0]
    with serve_workspace(settings.home) as (base, log):
        yield base
    text = log.read_text()
    for p in study_ws[1]["patients"]:
        assert p["patient_id"] not in text and p["patient_name"] not in text


@pytest.fixture
def rpage(browser, research_server):
    from e2e_browser import ARTIFACTS, ConsoleWatch

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=research_server,
                              accept_downloads=True)
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    pg.watch = ConsoleWatch(pg)
    try:
        yield pg
    finally:
        ctx.close()


def _sign_in(page, user: str) -> None:
    page.goto("/login")
    page.fill("#username", user)
    page.fill("#password", PW[user])
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_research_study_acceptance(rpage, study_ws, tmp_path):
    settings, truth, cohort = study_ws
    page = rpage
    n_in = sum(1 for i in range(N) if i % 4)
    assert cohort["flow"]["included"] == n_in
    _sign_in(page, "pia")
    page.goto("/research")
    page.click("text=ACC1")
    page.wait_for_selector("#exam-tracking")
    assert page.locator("#exam-tracking tbody tr").count() == n_in
    # exams tracked: every baseline is done on the patient's first PET/CT date
    first = {p["patient_id"]: p["timepoints"][0]["date"] for p in truth["patients"]}
    for row in page.locator("#exam-tracking tbody tr").all()[:5]:
        pid = row.locator("td").nth(1).inner_text()
        cell = row.locator("td").nth(2)
        assert "done" in cell.inner_text() and first[pid] in cell.inner_text()
    page.wait_for_function("() => { const i = document.querySelector('img.consort');"
                           " return i && i.complete && i.naturalWidth > 100; }")
    shot(page, "research-01-dashboard")

    # CRF entry through the form: branching logic and the calculated BMI in the browser
    for k, (r1, r2) in enumerate(zip(READ1, READ2, strict=True), start=1):
        page.goto(f"/research/ACC1/records/{k}/demographics")
        other = page.locator("#fld-tumour_other")
        page.select_option("#in-tumour_type", "3" if k == 1 else "1")
        if k == 1:
            assert other.is_visible()
            page.fill("#in-tumour_other", "composite lymphoma")
        else:
            assert not other.is_visible()
        page.fill("#in-weight", str(60 + k))
        page.fill("#in-height", "170")
        bmi = round((60 + k) / 1.7 ** 2 + 1e-9, 1)
        assert float(page.input_value("#in-bmi")) == bmi
        page.check(f"input[name=read1][value='{r1}']")
        page.check(f"input[name=read2][value='{r2}']")
        page.check("#form-complete")
        page.click("#save-form")
        page.wait_for_selector("#message")
        assert page.inner_text("#form-status") == "complete"
    shot(page, "research-02-crf")
    # e-signature: the PI locks record 1 with her password
    page.goto("/research/ACC1/records/1/demographics")
    page.fill("#sign-password", PW["pia"])
    page.click("#lock-button")
    page.wait_for_selector("#locked")
    assert page.locator("#save-form").count() == 0
    page.watch.check("research pages")

    # the researcher downloads the (forced) de-identified export
    page.click("form.inline button")  # sign out
    _sign_in(page, "rita")
    page.goto("/research/ACC1")
    with page.expect_download() as dl:
        page.click("#export-button")
    zpath = tmp_path / "export.zip"
    dl.value.save_as(zpath)
    out = tmp_path / "export"
    zipfile.ZipFile(zpath).extractall(out)
    blob = "".join(p.read_text(errors="ignore") for p in out.iterdir())
    for p in truth["patients"]:
        for needle in (p["patient_id"], p["patient_name"], p["birth_date"],
                       p["timepoints"][0]["study_uid"]):
            assert needle not in blob
    assert "composite lymphoma" not in blob  # free text dropped
    from oncohybrid.services import stats

    crf = out / "crf.csv"
    rows = [r for r in csv.DictReader(io.StringIO(crf.read_text()))
            if not r["redcap_repeat_instrument"] and r["read1"]]
    assert len(rows) == len(READ1)
    k = stats.kappa(crf, ["read1", "read2"])
    a, b = np.array(READ1), np.array(READ2)
    po = float(np.mean(a == b))
    pe = float(np.mean(a) * np.mean(b) + np.mean(1 - a) * np.mean(1 - b))
    assert k.n == 8 and k.kappa == pytest.approx((po - pe) / (1 - pe), abs=1e-12)
    meas = out / "measurements.csv"
    ba = stats.bland_altman(meas, "suv_max", "suv_peak")
    m = [r for r in csv.DictReader(io.StringIO(meas.read_text())) if r["suv_max"]
         and r["suv_peak"]]
    d = np.array([float(r["suv_max"]) - float(r["suv_peak"]) for r in m])
    assert ba.n == len(d) > 3
    assert ba.bias == pytest.approx(d.mean()) and ba.sd == pytest.approx(d.std(ddof=1))
    # the export is audited, as the researcher's
    from oncohybrid.services.audit import list_entries

    ex = list_entries(settings, action="research.export")
    assert ex[0]["username"] == "rita" and ex[0]["details"]["deidentified"] is True
    page.watch.check("researcher export")
