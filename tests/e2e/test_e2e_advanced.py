"""The advanced viewer in a real browser (#19): open an MR study, show the ADC map, draw an
ROI, read the ADC; the b-images keep their own windows."""

from __future__ import annotations

import re

import numpy as np
import pytest
from e2e_browser import shot, sign_in
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PW = "mr-reader-quiet-harbour"


@pytest.fixture(scope="module")
def mr_ws(tmp_path_factory):
    """A workspace of its own (the session workspace's worklist stays as the other browser
    tests expect it): a GE-encoded DWI phantom series (b 0/50/400/800) and a physician."""
    import pydicom

    from oncohybrid.config import get_settings
    from oncohybrid.phantom.dwi import write_dwi_series
    from oncohybrid.services.ingest import Ingestor
    from oncohybrid.services.users import add_user
    from oncohybrid.services.worklist import patient_pk_of_study

    home = tmp_path_factory.mktemp("e2e-mr-home")
    settings = get_settings(home)
    truth = write_dwi_series(home / "dwi", encoding="ge", b_values=(0, 50, 400, 800),
                             shape=(4, 64, 64), seed=11)
    ing = Ingestor(settings)
    try:
        ing.ingest_paths([home / "dwi"])
    finally:
        ing.close()
    add_user(settings, "mri", PW, "physician", actor="test")
    study_uid = str(pydicom.dcmread(truth.files[0], stop_before_pixels=True).StudyInstanceUID)
    return settings, truth, study_uid, patient_pk_of_study(study_uid, settings)


@pytest.fixture(scope="module")
def ceus_dect(mr_ws):
    """An ultrasound cine (lognormal bolus) and a DECT pair with its iodine map, ingested
    into the same workspace: ``(cine truth, cine study UID, DECT phantom, DECT study UID)``."""
    import pydicom

    from oncohybrid.phantom.ceus import synthetic_ceus_cine, write_us_multiframe
    from oncohybrid.phantom.dect import write_dect_phantom
    from oncohybrid.services.dect import calibrate_dect, iodine_maps
    from oncohybrid.services.ingest import Ingestor

    settings = mr_ws[0]
    home = settings.home
    cine = synthetic_ceus_cine(seed=2)
    write_us_multiframe(cine, home / "ceus" / "cine.dcm")
    ph = write_dect_phantom(home / "dect", seed=7)
    calibrate_dect(ph.low_dir, ph.high_dir, ph.inserts_json, home / "cal.json")
    iodine_maps(ph.low_dir, ph.high_dir, home / "cal.json", home / "dect-out")
    ing = Ingestor(settings)
    try:
        ing.ingest_paths([home / "ceus", ph.low_dir, home / "dect-out" / "iodine.dcm"])
    finally:
        ing.close()
    us = str(pydicom.dcmread(home / "ceus" / "cine.dcm", stop_before_pixels=True)
             .StudyInstanceUID)
    ct = str(pydicom.dcmread(next(ph.low_dir.glob("*.dcm")), stop_before_pixels=True)
             .StudyInstanceUID)
    return cine, us, ph, ct


@pytest.fixture(scope="module")
def mr_page(browser, mr_ws):
    """``oncohybrid serve`` on that workspace (loopback, stopped by pid) and a page."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx
    from e2e_browser import ConsoleWatch

    settings = mr_ws[0]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exe = Path(sys.executable).with_name("oncohybrid")
    cmd = ([str(exe)] if exe.exists() else
           [sys.executable, "-c", "from oncohybrid.cli.main import app; app()"])
    log_path = settings.home / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd + ["serve", "--host", "127.0.0.1", "--port", str(port)],
                                env=dict(os.environ, ONCOHYBRID_HOME=str(settings.home)),
                                stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start:\n" + log_path.read_text()[-3000:])
            time.sleep(0.2)
        ctx = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=base)
        pg = ctx.new_page()
        pg.set_default_timeout(30_000)
        pg.watch = ConsoleWatch(pg)
        try:
            yield pg
        finally:
            ctx.close()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "DWI-PHANTOM" not in log_path.read_text(), "server log leaks the Patient ID"


def test_open_mr_study_show_adc_draw_roi_read_adc(mr_page, mr_ws):
    page = mr_page
    _settings, truth, study_uid, patient_pk = mr_ws
    sign_in(page, "mri", PW)
    page.goto(f"/patients/{patient_pk}")
    page.click("a.view-study >> nth=0")
    page.wait_for_url(re.compile(rf"/studies/{re.escape(study_uid)}/advanced$"))
    page.wait_for_selector("#adv-viewer[data-ready=true]")
    page.wait_for_selector("#adv-img[data-loaded=true]")
    # the ADC map is shown first, in µm²/s with its 0-3000 window
    expect(page.locator(".adv-layer.active")).to_have_text("ADC map")
    expect(page.locator("#adv-units")).to_have_text("µm²/s")
    assert page.input_value("#adv-wc") == "1500" and page.input_value("#adv-ww") == "3000"
    shot(page, "advanced-01-adc")

    # the b = 800 image has its own window, and coming back keeps the ADC's
    page.click(".adv-layer[data-layer=b800]")
    page.wait_for_selector("#adv-img[data-loaded=true]")
    b800_centre = float(page.input_value("#adv-wc"))
    assert 0 < b800_centre < 1500
    page.click(".adv-layer[data-layer=b0]")
    page.wait_for_selector("#adv-img[data-loaded=true]")
    assert float(page.input_value("#adv-wc")) > b800_centre
    page.click(".adv-layer[data-layer=adc]")
    page.wait_for_selector("#adv-img[data-loaded=true]")
    assert page.input_value("#adv-wc") == "1500"

    # draw an ROI of ~8 mm radius in the liver cylinder (ADC 1.1e-3 mm²/s)
    liver = next(t for t in truth.tissues if t.name == "liver")
    nz, ny, nx = truth.labels.shape
    aff = truth.affine
    col = (liver.centre_xy_mm[0] - aff[0, 3]) / aff[0, 2]
    row = (liver.centre_xy_mm[1] - aff[1, 3]) / aff[1, 1]
    box = page.locator("#adv-img").bounding_box()
    x0 = box["x"] + (col + 0.5) / nx * box["width"]
    y0 = box["y"] + (row + 0.5) / ny * box["height"]
    radius_px = 8.0 / (nx * aff[0, 2]) * box["width"]
    page.click("#adv-roi-tool")
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + radius_px / 2, y0, steps=3)
    page.mouse.move(x0 + radius_px, y0, steps=3)
    page.mouse.up()
    page.wait_for_selector("#roi-adc-mean")
    shot(page, "advanced-02-roi")
    mean = float(page.inner_text("#roi-adc-mean").split()[0])
    assert mean == pytest.approx(liver.adc_mm2_s * 1e6, rel=0.02)
    n = int(page.inner_text("#roi-n"))
    # the disc holds about π r² / pixel area voxels (8 mm radius, 2 mm pixels: ~50)
    assert abs(n - np.pi * 8.0 ** 2 / (aff[0, 2] * aff[1, 1])) <= 12
    page.watch.check("advanced viewer")


def test_ceus_cine_plays_and_a_rectangle_gives_the_tic(mr_page, ceus_dect):
    page = mr_page
    cine, us_study, _ph, _ct = ceus_dect
    page.goto(f"/studies/{us_study}/advanced")
    page.wait_for_selector("#adv-viewer[data-ready=true]")
    page.wait_for_selector("#adv-img[data-loaded=true]")
    expect(page.locator("#adv-index")).to_contain_text("Frame 1 / 300")
    page.click("#adv-play")
    page.wait_for_function("!document.querySelector('#adv-index').textContent"
                           ".startsWith('Frame 1 /')")
    page.click("#adv-play")  # pause
    box = page.locator("#adv-img").bounding_box()
    cols, rows = cine.frames.shape[2], cine.frames.shape[1]
    cr, cc = cine.lesion_centre_rc
    x0 = box["x"] + (cc - 15) / cols * box["width"]
    y0 = box["y"] + (cr - 15) / rows * box["height"]
    page.click("#adv-roi-tool")
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + 30 / cols * box["width"], y0 + 30 / rows * box["height"], steps=4)
    page.mouse.up()
    page.wait_for_selector("#tic-r2")
    assert page.inner_text("#tic-model") == "lognormal"
    assert float(page.inner_text("#tic-r2")) > 0.95
    assert float(page.inner_text("#tic-mu")) == pytest.approx(cine.truth["mu"], rel=0.05)
    assert page.get_attribute("#adv-tic-chart", "data-points") == "300"
    page.click("#adv-tic-save")
    expect(page.locator("#adv-tic-saved")).to_be_visible()
    shot(page, "advanced-03-ceus")
    page.watch.check("CEUS cine")


def test_dect_iodine_overlay_can_be_switched_off(mr_page, ceus_dect):
    page = mr_page
    _cine, _us, ph, ct_study = ceus_dect
    page.goto(f"/studies/{ct_study}/view")  # a CT study with an iodine map opens here
    page.wait_for_url(re.compile(rf"/studies/{re.escape(ct_study)}/advanced$"))
    page.wait_for_selector("#adv-viewer[data-ready=true]")
    page.wait_for_selector("#adv-img[data-loaded=true]")
    expect(page.locator("#adv-overlay-label")).to_be_visible()
    assert "overlay=true" in page.get_attribute("#adv-img", "src")
    shot(page, "advanced-04-dect")
    page.uncheck("#adv-overlay")
    page.wait_for_selector("#adv-img[data-loaded=true]")
    assert "overlay=false" in page.get_attribute("#adv-img", "src")
    # read-out at the lesion insert: HU and iodine
    lesion = next(i for i in ph.inserts if i.role == "lesion")
    from oncohybrid.dicom.volume import load_series

    vol = load_series(ph.low_dir)
    idx = np.linalg.solve(np.asarray(vol.affine), [*lesion.centre_xy_mm, 4.5, 1.0])[:3]
    _nk, nj, ni = vol.spatial_shape
    box = page.locator("#adv-img").bounding_box()
    page.mouse.click(box["x"] + (idx[2] + 0.5) / ni * box["width"],
                     box["y"] + (idx[1] + 0.5) / nj * box["height"])
    expect(page.locator("#adv-ro-value")).to_contain_text("mg/mL")
    iodine = float(page.inner_text("#adv-ro-value").split("iodine")[1].split()[0])
    assert iodine == pytest.approx(lesion.iodine_mg_ml, abs=1.5)  # one noisy voxel
    page.watch.check("DECT overlay")
