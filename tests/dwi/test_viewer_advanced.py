"""The reading room's viewer for MR diffusion, contrast ultrasound and DECT iodine (#19).

One workspace holds three phantom studies ingested as a scanner would send them: a Siemens
DWI series (b 0/50/400/800, tissues of known ADC), an ultrasound multi-frame cine with a
lognormal bolus, and a dual-source DECT pair with the iodine Parametric Map of
``oncohybrid dect iodine``. The viewer's numbers are checked against the phantoms' truth
and against the command-line services run here on the same files.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parents[1] / "web"))

from web_workspace import csrf_of, login_client  # noqa: E402,F401

#: the workspace of three phantom studies takes ~20-40 s to write, ingest and fit on 2 cores
slow = pytest.mark.slow

PW = {"phil": ("physician", "advanced-physician-pw"), "fred": ("fellow", "advanced-fellow-pw"),
      "rita": ("researcher", "advanced-researcher-pw")}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from oncohybrid.config import get_settings
    from oncohybrid.phantom.ceus import synthetic_ceus_cine, write_us_multiframe
    from oncohybrid.phantom.dect import write_dect_phantom
    from oncohybrid.phantom.dwi import write_dwi_series
    from oncohybrid.services.dect import calibrate_dect, iodine_maps
    from oncohybrid.services.ingest import Ingestor
    from oncohybrid.services.users import add_user
    from oncohybrid.store.queries import Filters, list_series

    home = tmp_path_factory.mktemp("adv-home")
    settings = get_settings(home)
    data = home / "in"
    dwi = write_dwi_series(data / "dwi", encoding="siemens", b_values=(0, 50, 400, 800),
                           shape=(4, 48, 48), seed=3)
    cine = synthetic_ceus_cine(seed=2)
    write_us_multiframe(cine, data / "ceus" / "cine.dcm")
    ph = write_dect_phantom(home / "dect", seed=7)
    calibrate_dect(ph.low_dir, ph.high_dir, ph.inserts_json, home / "cal.json")
    iodine_maps(ph.low_dir, ph.high_dir, home / "cal.json", data / "dect-out")
    # one patient with all three studies (as a cancer centre's patient would have them)
    import pydicom

    ident = pydicom.dcmread(next(Path(ph.low_dir).glob("*.dcm")), stop_before_pixels=True)
    for f in [*(data / "dwi").glob("*.dcm"), data / "ceus" / "cine.dcm"]:
        ds = pydicom.dcmread(f)
        for kw in ("PatientID", "PatientName", "PatientBirthDate", "PatientSex"):
            setattr(ds, kw, ident.get(kw, ""))
        ds.save_as(f)
    ing = Ingestor(settings)
    try:
        from pydicom.data import get_testdata_file

        ing.ingest_paths([data / "dwi", data / "ceus", ph.low_dir, data / "dect-out" /
                          "iodine.dcm", Path(get_testdata_file("MR_small.dcm"))])
    finally:
        ing.close()
    for name, (role, pw) in PW.items():
        add_user(settings, name, pw, role, actor="test")
    studies = {}
    for row in list_series(Filters(), settings):
        key = "MR_small" if row["patient_id"] not in (ident.PatientID,) else row["modality"]
        studies.setdefault(key, row["study_uid"])
    from oncohybrid.web.app import create_app

    return {"settings": settings, "app": create_app(settings), "dwi": dwi, "cine": cine,
            "dect": ph, "studies": studies, "data": data}


def _client(ws, name="phil"):
    return login_client(ws["app"], name, PW[name][1])


def _series(c, study, kind):
    info = c.get(f"/api/advanced/{study}/info").json()
    return next(s for s in info["series"] if s["kind"] == kind)


@slow
def test_non_pet_studies_open_in_the_advanced_viewer(ws) -> None:
    c = _client(ws)
    for modality in ("MR", "US"):
        study = ws["studies"][modality]
        r = c.get(f"/studies/{study}/view", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/studies/{study}/advanced"
        page = c.get(f"/studies/{study}/advanced")
        assert page.status_code == 200 and "/static/viewer_advanced.js" in page.text
    assert _client(ws, "fred").get(f"/studies/{ws['studies']['MR']}/advanced").status_code == 200
    assert _client(ws, "rita").get(f"/api/advanced/{ws['studies']['MR']}/info").status_code == 403


@slow
def test_dwi_layers_have_their_own_windows(ws) -> None:
    c = _client(ws)
    s = _series(c, ws["studies"]["MR"], "dwi")
    assert s["b_values"] == [0.0, 50.0, 400.0, 800.0] and s["b_value_source"] == "siemens"
    layers = {layer["name"]: layer for layer in s["layers"]}
    assert set(layers) == {"b0", "b50", "b400", "b800", "adc"}
    assert layers["adc"]["units"] == "µm²/s"
    assert layers["adc"]["window"] == {"centre": 1500.0, "width": 3000.0}
    # b = 800 is much darker than b = 0: each b-image is windowed on its own signal
    assert layers["b800"]["window"]["centre"] < 0.8 * layers["b0"]["window"]["centre"]
    study, uid = ws["studies"]["MR"], s["series_uid"]
    pngs = {}
    for name in ("b0", "b800", "adc"):
        r = c.get(f"/api/advanced/{study}/series/{uid}/layer/{name}/2.png")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        im = Image.open(io.BytesIO(r.content))
        assert im.size == (48, 48)
        pngs[name] = np.asarray(im)
    assert not np.array_equal(pngs["b0"], pngs["adc"])
    # a narrower explicit window changes the rendering
    r = c.get(f"/api/advanced/{study}/series/{uid}/layer/adc/2.png?wc=1000&ww=500")
    assert not np.array_equal(np.asarray(Image.open(io.BytesIO(r.content))), pngs["adc"])


@slow
@pytest.mark.parametrize("tissue", [0, 1, 2])
def test_disc_roi_reads_the_phantom_adc(ws, tissue) -> None:
    c = _client(ws)
    study = ws["studies"]["MR"]
    s = _series(c, study, "dwi")
    dwi = ws["dwi"]
    t = dwi.tissues[tissue]
    aff = dwi.affine
    nz, ny, nx = dwi.labels.shape
    # fractional image position of the tissue centre (voxel centres at (n + 0.5) / N)
    col = (t.centre_xy_mm[0] - aff[0, 3]) / aff[0, 2]
    row = (t.centre_xy_mm[1] - aff[1, 3]) / aff[1, 1]
    fx, fy = (col + 0.5) / nx, (row + 0.5) / ny
    radius = 8.0
    r = c.get(f"/api/advanced/{study}/series/{s['series_uid']}/roi",
              params={"layer": "adc", "index": 2, "fx": fx, "fy": fy, "radius_mm": radius})
    assert r.status_code == 200, r.text
    d = r.json()
    jj, ii = np.mgrid[0:ny, 0:nx]
    want_n = int(np.count_nonzero(((jj - row) * aff[1, 1]) ** 2 + ((ii - col) * aff[0, 2]) ** 2
                                  <= radius ** 2))
    assert d["n_voxels"] == want_n
    assert d["adc"]["adc_mean_um2_s"] == pytest.approx(t.adc_mm2_s * 1e6, rel=0.02)
    assert d["centre_lps_mm"][:2] == pytest.approx(list(t.centre_xy_mm), abs=0.01)


@slow
def test_ceus_cine_frames_and_tic_fit(ws) -> None:
    from oncohybrid.quant.ceus import Roi
    from oncohybrid.services.ceus import tic

    c = _client(ws)
    study = ws["studies"]["US"]
    s = _series(c, study, "ceus")
    cine = ws["cine"]
    assert s["cine"]["frames"] == 300
    assert s["cine"]["times_s"][:3] == pytest.approx([0.0, 0.2, 0.4])
    r = c.get(f"/api/advanced/{study}/series/{s['series_uid']}/frame/150.png")
    assert Image.open(io.BytesIO(r.content)).size == (s["cine"]["columns"], s["cine"]["rows"])
    roi = {"x": 65, "y": 45, "w": 30, "h": 30}
    d = c.get(f"/api/advanced/{study}/series/{s['series_uid']}/tic",
              params={**roi, "model": "lognormal"}).json()
    direct = tic(ws["data"] / "ceus" / "cine.dcm", Roi(65, 45, 30, 30), model="lognormal")
    assert d["model"] == "lognormal" and d["r2"] == pytest.approx(direct.fit.r2)
    assert d["r2"] > 0.95
    for key in ("mu", "sigma", "t0_s"):  # the bolus the cine was made with
        assert d["parameters"][key] == pytest.approx(cine.truth[key], rel=0.05)
    assert len(d["curve"]["fitted"]) == len(d["curve"]["t_s"]) == 300


@slow
def test_dect_iodine_overlay_reads_the_insert_concentration(ws) -> None:
    from oncohybrid.dicom.volume import load_series

    c = _client(ws)
    study = ws["studies"]["CT"]
    r = c.get(f"/studies/{study}/view", follow_redirects=False)
    assert r.status_code == 303  # a CT study with an iodine map opens here
    s = _series(c, study, "dect")
    assert s["overlay"]["units"] == "mg/mL" and s["overlay"]["range"] == [0.0, 10.0]
    ct = load_series(ws["dect"].low_dir)
    aff = np.asarray(ct.affine)
    n_k, n_j, n_i = ct.spatial_shape
    checked = 0
    for ins in ws["dect"].inserts:
        if ins.role not in ("test", "lesion") or ins.radius_mm < 4:
            continue
        idx = np.linalg.solve(aff, [*ins.centre_xy_mm, 4.5, 1.0])[:3]
        fx, fy = (idx[2] + 0.5) / n_i, (idx[1] + 0.5) / n_j
        d = c.get(f"/api/advanced/{study}/series/{s['series_uid']}/roi",
                  params={"layer": "image", "index": 1, "fx": fx, "fy": fy,
                          "radius_mm": ins.radius_mm - 2}).json()
        assert d["means"]["iodine"] == pytest.approx(ins.iodine_mg_ml, abs=0.3), ins.name
        checked += 1
    assert checked >= 2
    with_overlay = c.get(f"/api/advanced/{study}/series/{s['series_uid']}/layer/image/1.png")
    without = c.get(f"/api/advanced/{study}/series/{s['series_uid']}/layer/image/1.png"
                    "?overlay=false")
    rgb = np.asarray(Image.open(io.BytesIO(with_overlay.content)).convert("RGB")).astype(int)
    grey = np.asarray(Image.open(io.BytesIO(without.content)).convert("RGB")).astype(int)
    assert np.all(grey[..., 0] == grey[..., 1])  # plain CT is grey
    assert np.any(rgb[..., 0] - rgb[..., 2] > 50)  # iodine shows in colour


@slow
def test_bad_requests_name_the_problem(ws) -> None:
    c = _client(ws)
    study = ws["studies"]["MR"]
    s = _series(c, study, "dwi")
    base = f"/api/advanced/{study}/series/{s['series_uid']}"
    r = c.get(f"{base}/layer/b1000/0.png")
    assert r.status_code == 400 and "b1000" in r.text
    assert c.get(f"{base}/layer/adc/99.png").status_code == 400
    assert c.get(f"/api/advanced/{study}/series/1.2.3/layer/adc/0.png").status_code == 404
    assert re.search("frame|cine", c.get(f"{base}/frame/0.png").text)


@slow
def test_saved_measurements_appear_in_the_patient_pdf(ws, tmp_path) -> None:
    import shutil
    import subprocess

    from oncohybrid.services.worklist import patient_pk_of_study

    if not shutil.which("pdftotext"):
        pytest.skip("poppler's pdftotext is missing")
    c = _client(ws)
    csrf = {"X-CSRF-Token": csrf_of(c)}
    mr, ct, us = ws["studies"]["MR"], ws["studies"]["CT"], ws["studies"]["US"]
    dwi = _series(c, mr, "dwi")
    t = ws["dwi"].tissues[1]  # liver, ADC 1100 µm²/s
    aff = ws["dwi"].affine
    col = (t.centre_xy_mm[0] - aff[0, 3]) / aff[0, 2]
    row = (t.centre_xy_mm[1] - aff[1, 3]) / aff[1, 1]
    roi = {"kind": "roi", "layer": "adc", "index": 2, "fx": (col + 0.5) / 48,
           "fy": (row + 0.5) / 48, "radius_mm": 8.0}
    saved = c.post(f"/api/advanced/{mr}/series/{dwi['series_uid']}/measurements", json=roi,
                   headers=csrf)
    assert saved.status_code == 200, saved.text
    adc = saved.json()["values"]["adc"]["adc_mean_um2_s"]
    assert adc == pytest.approx(1100, rel=0.02)
    # the fellow may look but not save; a forged number is never taken
    fellow = _client(ws, "fred")
    assert fellow.post(f"/api/advanced/{mr}/series/{dwi['series_uid']}/measurements",
                       json=roi, headers={"X-CSRF-Token": csrf_of(fellow)}).status_code == 403
    forged = c.post(f"/api/advanced/{mr}/series/{dwi['series_uid']}/measurements",
                    json={**roi, "adc": 1.0}, headers=csrf).json()
    assert forged["values"]["adc"]["adc_mean_um2_s"] == adc
    dect = _series(c, ct, "dect")
    lesion = next(i for i in ws["dect"].inserts if i.role == "lesion")
    from oncohybrid.dicom.volume import load_series

    vol = load_series(ws["dect"].low_dir)
    idx = np.linalg.solve(np.asarray(vol.affine), [*lesion.centre_xy_mm, 4.5, 1.0])[:3]
    n_k, n_j, n_i = vol.spatial_shape
    iod = c.post(f"/api/advanced/{ct}/series/{dect['series_uid']}/measurements", headers=csrf,
                 json={"kind": "roi", "layer": "image", "index": 1, "fx": (idx[2] + 0.5) / n_i,
                       "fy": (idx[1] + 0.5) / n_j, "radius_mm": lesion.radius_mm - 2}).json()
    assert iod["values"]["means"]["iodine"] == pytest.approx(lesion.iodine_mg_ml, abs=0.3)
    cine = _series(c, us, "ceus")
    fit = c.post(f"/api/advanced/{us}/series/{cine['series_uid']}/measurements", headers=csrf,
                 json={"kind": "tic", "x": 65, "y": 45, "w": 30, "h": 30}).json()
    assert fit["values"]["r2"] > 0.95
    assert len(c.get(f"/api/advanced/{mr}/measurements").json()) == 2
    bad = c.post(f"/api/advanced/{mr}/series/{dwi['series_uid']}/measurements",
                 json={"kind": "volume"}, headers=csrf)
    assert bad.status_code == 400 and "roi or tic" in bad.text

    pk = patient_pk_of_study(mr, ws["settings"])
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(c.get(f"/patients/{pk}/report.pdf").content)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    flat = " ".join(text.split())
    assert "MR diffusion, dual-energy CT and contrast-ultrasound measurements" in flat
    assert f"ADC mean {adc:.0f}" in flat
    assert f"iodine {iod['values']['means']['iodine']:.2f} mg/mL" in flat
    assert f"lognormal fit, R² {fit['values']['r2']:.3f}" in flat
    assert "2026-01-01" in flat  # the MR study date
    # the researcher's pseudonymised report keeps the numbers, not the dates
    from oncohybrid.services.report import build_patient_report

    pseudo = build_patient_report(pk, ws["settings"], out=tmp_path / "p.pdf", pseudonymise=True)
    ptext = " ".join(subprocess.run(["pdftotext", "-layout", str(pseudo), "-"],
                                    capture_output=True, text=True, check=True).stdout.split())
    assert f"ADC mean {adc:.0f}" in ptext and "2026-01-01" not in ptext


@pytest.mark.parametrize("modalities, shows, has_layers", [
    (("PT", "CT"), False, False),       # PET/CT: the PET/CT viewer
    (("PT", "MR"), False, True),        # PET/MR: PET/CT viewer, with a link here
    (("MR",), True, True),              # MR only
    (("US",), True, True),              # ultrasound cine
    (("CT",), False, False),            # plain CT: the PET/CT viewer shows CT
    (("SR",), True, False),             # nothing the PET/CT viewer shows: opened here
])
def test_which_viewer_a_study_opens_in(monkeypatch, modalities, shows, has_layers) -> None:
    from oncohybrid.services import viewer_advanced as va

    rows = [(f"1.2.{k}", m, None) for k, m in enumerate(modalities)]
    monkeypatch.setattr(va, "_rows", lambda _settings, _uid: rows)
    monkeypatch.setattr(va, "series_files", lambda _uid, _settings: [])
    assert va.shows(None, "1.2.3") is shows  # type: ignore[arg-type]
    assert va.has_layers(None, "1.2.3") is has_layers  # type: ignore[arg-type]


@slow
def test_a_plain_mr_series_from_pydicom_is_shown_with_its_own_window(ws) -> None:
    """pydicom's public MR_small.dcm (no b-value): one MR layer, window from the 1st-99.5th
    percentile of its non-zero pixels, computed here from the file."""
    import pydicom
    from pydicom.data import get_testdata_file

    c = _client(ws)
    study = ws["studies"]["MR_small"]
    assert c.get(f"/studies/{study}/view", follow_redirects=False).status_code == 303
    s = _series(c, study, "mr")
    (layer,) = s["layers"]
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    px = ds.pixel_array.astype(float) * float(ds.get("RescaleSlope", 1)) + float(
        ds.get("RescaleIntercept", 0))
    lo, hi = np.percentile(px[px != 0], [1.0, 99.5])
    assert layer["window"]["centre"] == pytest.approx((lo + hi) / 2, abs=1e-3)
    assert layer["window"]["width"] == pytest.approx(hi - lo, abs=1e-3)
    r = c.get(f"/api/advanced/{study}/series/{s['series_uid']}/layer/image/0.png")
    assert Image.open(io.BytesIO(r.content)).size == (64, 64)
