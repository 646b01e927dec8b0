"""The advanced viewer in a real browser (#19): open an MR study, show the ADC map, draw an
ROI, read the ADC; the b-images keep their own windows."""

from __future__ import annotations

import re

import numpy as np
import pytest
from e2e_browser import shot, sign_in
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def mr_study(e2e_ws, tmp_path_factory):
    """A GE-encoded DWI phantom series (b 0/50/400/800) ingested into the served workspace."""
    from oncohybrid.phantom.dwi import write_dwi_series
    from oncohybrid.services.ingest import Ingestor
    from oncohybrid.services.worklist import patient_pk_of_study

    folder = tmp_path_factory.mktemp("e2e-dwi")
    truth = write_dwi_series(folder, encoding="ge", b_values=(0, 50, 400, 800),
                             shape=(4, 64, 64), seed=11)
    ing = Ingestor(e2e_ws.settings)
    try:
        ing.ingest_paths([folder])
    finally:
        ing.close()
    import pydicom

    study_uid = str(pydicom.dcmread(truth.files[0], stop_before_pixels=True).StudyInstanceUID)
    return truth, study_uid, patient_pk_of_study(study_uid, e2e_ws.settings)


def test_open_mr_study_show_adc_draw_roi_read_adc(page, e2e_ws, mr_study):
    truth, study_uid, patient_pk = mr_study
    sign_in(page, *e2e_ws.demo)
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
