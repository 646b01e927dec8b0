"""SPECT-CT dosimetry in a real browser (issue #20): from the worklist to the patient's
nuclear-medicine page, compute a Lu-177 cycle, read the dose table, see the TAC and DVH
images load, open the PDF; no console error.

Runs its own ``oncohybrid serve`` on a workspace holding only the SPECT-CT phantom, so the
shared reading-room workspace (and its tests' first worklist row) stays as it is."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from e2e_browser import ARTIFACTS, ConsoleWatch, serve_workspace, shot, sign_in

from oncohybrid.config import get_settings
from oncohybrid.phantom.spect import SpectCycle, SpectPhantom, write_spect_patient

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def nm_server(tmp_path_factory):
    from oncohybrid.services.ingest import Ingestor
    from oncohybrid.services.users import ensure_demo_user

    home = tmp_path_factory.mktemp("nm_e2e")
    settings = get_settings(home)
    truth = write_spect_patient(home / "spect", SpectPhantom(
        patient_id="NM-E2E", cycles=(SpectCycle(dt.datetime(2026, 2, 2, 9, 30), 7400.0,
                                                (20.0, 70.0)),)))
    ing = Ingestor(settings)
    try:
        ing.ingest_paths([home / "spect"])
    finally:
        ing.close()
    demo = ensure_demo_user(settings)
    with serve_workspace(home, drop_env=("ONCOHYBRID_DATABASE_URL",)) as (base, log_path):
        yield base, demo, truth
    assert "NM-E2E" not in log_path.read_text(), "server log leaks the Patient ID"


@pytest.fixture
def nm_page(browser, nm_server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=nm_server[0],
                              accept_downloads=True)
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    pg.watch = ConsoleWatch(pg)
    try:
        yield pg
    finally:
        ctx.close()


def test_compute_a_cycle_and_read_the_dose_table(nm_page, nm_server):
    page = nm_page
    _, demo, truth = nm_server
    sign_in(page, *demo)
    page.click("a.patient-link")
    page.wait_for_selector("#timeline")
    page.click("a[href^='/nuclear/patients/']")
    page.wait_for_selector("#nm-cycles")
    cycles = page.inner_text("#nm-cycles")
    assert "Lu-177" in cycles and "20.0 h" in cycles and "70.0 h" in cycles
    shot(page, "nm-01-cycles")
    page.select_option("#nm-run-form select[name=method]", "local")
    page.click("#nm-run")
    page.wait_for_selector("#nm-dose-table")
    assert re.search(r"/nuclear/runs/\d+$", page.url)
    doses = {row.get_attribute("data-voi"): float(row.locator(".nm-dose").inner_text())
             for row in page.locator("#nm-dose-table tr[data-voi]").all()}
    assert set(doses) == {"marrow", "liver", "spleen", "kidney_right", "kidney_left",
                          "tumour_1", "tumour_2"}
    # two points, mono-exponential through them: liver TIA and dose from the phantom's values
    import math
    tps = truth["cycles"][0]["timepoints"]
    a1, a2 = tps[0]["activity_mbq"]["liver"], tps[1]["activity_mbq"]["liver"]
    lam = math.log(a1 / a2) / 50.0
    tia = a1 * math.exp(lam * 20.0) / lam
    dose = tia * 3.6e9 * 0.1479 * 1.602176634e-13 / (truth["organs"]["liver"]["mass_g"] / 1000)
    assert doses["liver"] == pytest.approx(dose, rel=0.02)
    assert "α/β 2.6 Gy" in page.inner_text("#nm-constants")
    for img in ("#nm-tac", "#nm-dvh"):
        page.wait_for_function(f"() => {{ const i = document.querySelector('{img}');"
                               " return i && i.complete && i.naturalWidth > 100; }")
    shot(page, "nm-02-run")
    with page.expect_download() as dl:
        page.click("#nm-pdf")
    assert Path(dl.value.path()).read_bytes()[:5] == b"%PDF-"
    page.goto("/nuclear")
    assert "NM-E2E" in page.inner_text("#nm-patients")
    page.watch.check("nuclear pages")
