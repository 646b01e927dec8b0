"""The reading room in a real browser: sign in, worklist, timeline, viewer, lesions, PDF."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from e2e_browser import ARTIFACTS, shot, sign_in
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def _independent_suv(pt_dir: Path, lps: np.ndarray, suvbw_factor: float) -> float:
    """SUVbw at an LPS point straight from the PET files: nearest slice along the normal
    and nearest pixel from (0020,0032)/(0020,0037)/(0028,0030), stored value × slope +
    intercept × the phantom's ground-truth SUVbw factor (not oncohybrid.dicom.suv)."""
    best = None
    for f in pt_dir.glob("*.dcm"):
        ds = pydicom.dcmread(f)
        iop = np.array(ds.ImageOrientationPatient, float)
        normal = np.cross(iop[:3], iop[3:])
        d = abs(float(np.dot(lps - np.array(ds.ImagePositionPatient, float), normal)))
        if best is None or d < best[0]:
            best = (d, ds)
    _, ds = best
    iop = np.array(ds.ImageOrientationPatient, float)
    off = lps - np.array(ds.ImagePositionPatient, float)
    row_mm, col_mm = (float(v) for v in ds.PixelSpacing)
    col = int(round(float(np.dot(off, iop[:3])) / col_mm))
    row = int(round(float(np.dot(off, iop[3:])) / row_mm))
    raw = float(ds.pixel_array[row, col])
    return (raw * float(ds.RescaleSlope) + float(ds.RescaleIntercept)) * suvbw_factor


def _open_viewer(page, ws) -> None:
    page.goto(f"/patients/{ws.patient_pk}")
    page.click("a.view-study >> nth=0")
    page.wait_for_selector("#viewer[data-ready=true]")
    page.wait_for_selector("#vp-axial img[data-loaded=true]")
    page.wait_for_selector("#mip-img")


def test_sign_in_worklist_timeline(page, e2e_ws):
    page.goto("/")
    assert "/login" in page.url
    shot(page, "01-login")
    sign_in(page, *e2e_ws.demo)
    assert e2e_ws.patient["patient_id"] in page.inner_text("#worklist")
    shot(page, "02-worklist")
    page.click("a.patient-link")
    page.wait_for_selector("#timeline")
    assert page.locator("a.view-study").count() == len(e2e_ws.patient["timepoints"])
    shot(page, "03-patient")
    page.watch.check("worklist/patient")


def test_viewer_scroll_and_click_reads_suv(page, e2e_ws):
    sign_in(page, *e2e_ws.demo)
    _open_viewer(page, e2e_ws)
    shot(page, "04-viewer")
    label = page.locator("#vp-axial .vp-index")
    before = int(label.inner_text().split("/")[0])
    src_before = page.get_attribute("#vp-axial img", "src")
    box = page.locator("#vp-axial img").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(3):
        page.mouse.wheel(0, -120)
    expect(label).to_have_text(re.compile(rf"^{before + 3} /"))
    page.wait_for_selector("#vp-axial img[data-loaded=true]")
    assert page.get_attribute("#vp-axial img", "src") != src_before

    # Click inside the body, a little off centre, and compare with the files.
    page.mouse.click(box["x"] + box["width"] * 0.46, box["y"] + box["height"] * 0.52)
    page.wait_for_selector("#readout[data-ready=true]")
    ro = page.locator("#readout")
    suv_shown = float(ro.get_attribute("data-suv"))
    lps = np.array([float(v) for v in ro.get_attribute("data-lps").split(",")])
    tp0 = e2e_ws.patient["timepoints"][0]
    expected = _independent_suv(e2e_ws.data_dir / tp0["pt_dir"], lps, tp0["suvbw_factor"])
    assert suv_shown > 0.3  # inside the body, not background
    assert suv_shown == pytest.approx(expected, abs=1.5e-3, rel=1e-4)
    assert re.match(r"-?\d+ HU", page.inner_text("#ro-hu"))
    # The coronal and sagittal planes moved to the clicked voxel.
    k, j, i = (int(v) for v in ro.get_attribute("data-voxel").split(","))
    expect(page.locator("#vp-coronal .vp-index")).to_have_text(re.compile(rf"^{j + 1} /"))

    # Tools: lung window, PET only with inverted grey, MIP rotation, zoom.
    page.click("button.win[data-window=lung]")
    page.click("button.mode[data-mode=pet]")
    page.select_option("#cmap", "grey_inv")
    page.click("#zoom-in")
    page.click("#mip-play")
    expect(page.locator("#mip-angle")).not_to_have_text("0°")
    page.click("#mip-play")
    page.wait_for_selector("#vp-axial img[data-loaded=true]")
    shot(page, "05-viewer-pet")
    page.click("button.mode[data-mode=fused]")
    page.select_option("#cmap", "hot")
    page.click("#zoom-reset")
    page.wait_for_selector("#vp-axial img[data-loaded=true]")
    page.watch.check("viewer")


def test_lesion_role_change_updates_response(page, e2e_ws):
    if not e2e_ws.assessed:
        pytest.skip("the record/assess services are not installed")
    sign_in(page, *e2e_ws.demo)
    page.goto(f"/patients/{e2e_ws.patient_pk}/lesions?tp=1")
    page.wait_for_selector("#lesion-table")
    shot(page, "06-lesions")
    first = page.locator("select.role-select").first
    crit = first.get_attribute("data-criterion")
    resp = page.locator(f"#response span[data-criterion='{crit}']")
    before = resp.inner_text()
    trace_before = page.inner_text("#trace")
    # Demote every target lesion of this criterion: the response must change.
    selects = page.locator(f"select.role-select[data-criterion='{crit}']")
    for n in range(selects.count()):
        sel = selects.nth(n)
        if sel.input_value() == "target":
            with page.expect_response(re.compile(r"/role$")):
                sel.select_option("non-target")
    expect(page.locator("body")).to_have_attribute("data-updated", re.compile(r"\d+"))
    after = page.locator(f"#response span[data-criterion='{crit}']").inner_text()
    assert (after, page.inner_text("#trace")) != (before, trace_before)
    shot(page, "07-lesions-changed")
    page.watch.check("lesions")


def test_download_pdf(page, e2e_ws):
    sign_in(page, *e2e_ws.demo)
    page.goto(f"/patients/{e2e_ws.patient_pk}")
    page.wait_for_selector("#timeline")
    if page.locator("#download-pdf").count() == 0:
        r = page.request.get(f"/patients/{e2e_ws.patient_pk}/report.pdf")
        assert r.status == 404 and "report service" in r.text()
        pytest.skip("the report service is not installed")
    with page.expect_download() as dl:
        page.click("#download-pdf")
    path = ARTIFACTS / "report.pdf"
    dl.value.save_as(str(path))
    assert path.read_bytes()[:5] == b"%PDF-"
    page.watch.check("pdf")


def test_researcher_and_admin_pages(page, e2e_ws):
    sign_in(page, "rita", "rita-researcher-pw")
    body = page.content()
    assert e2e_ws.patient["patient_id"] not in body and "PSN-" in body
    shot(page, "08-researcher-worklist")
    page.click("a.patient-link")
    page.wait_for_selector("#timeline")
    assert e2e_ws.patient["patient_id"] not in page.content()
    page.goto("/admin/audit")
    assert page.locator("#audit").count() == 0  # 403 page
    page.watch.errors.clear()  # the 403 document itself is logged by Chromium
    page.click("button.link")  # sign out
    page.wait_for_selector("#username")
    sign_in(page, "adam", "adam-admin-pass")
    page.goto("/admin/audit")
    page.wait_for_selector("#audit")
    assert "login" in page.inner_text("#audit")
    shot(page, "09-audit")
    page.goto("/admin/users")
    shot(page, "10-users")
    page.watch.check("admin")


def test_measure_long_axis_by_two_clicks(page, e2e_ws):
    if not e2e_ws.assessed:
        pytest.skip("the record/assess services are not installed")
    sign_in(page, *e2e_ws.demo)
    _open_viewer(page, e2e_ws)
    page.wait_for_selector("#measure:not([hidden])")
    first = page.locator("#lesion-list li").first
    lesion_id = first.get_attribute("data-lesion")
    first.click()
    page.wait_for_selector("#lesion-history table")
    # The plane jumped to the lesion: its id sits beside its contour in all three planes.
    for o in ("axial", "coronal", "sagittal"):
        expect(page.locator(f"#vp-{o} .tag", has_text=lesion_id)).to_have_count(1)
    page.wait_for_selector("#vp-axial img[data-loaded=true]")
    page.select_option("#measure-axis", "long")
    page.click("#measure-start")
    box = page.locator("#vp-axial img").bounding_box()
    y = box["y"] + box["height"] * 0.5
    page.mouse.click(box["x"] + box["width"] * 0.40, y)
    page.mouse.click(box["x"] + box["width"] * 0.60, y)
    expect(page.locator("#measure-status")).to_have_attribute("data-length", re.compile(r"\d"))
    info = page.request.get(f"/api/studies/{e2e_ws.patient['timepoints'][0]['study_uid']}/info")
    shape, spacing = info.json()["shape"], info.json()["spacing_mm"]
    length = float(page.get_attribute("#measure-status", "data-length"))
    # 20 % of the image width, within one screen pixel of the click positions.
    px_mm = shape[2] * spacing[2] / box["width"]
    assert length == pytest.approx(0.2 * shape[2] * spacing[2], abs=2 * px_mm + 0.1)
    shot(page, "11-viewer-measure")
    page.watch.check("measure")
