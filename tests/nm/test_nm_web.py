"""The reading room's dosimetry pages (issue #20): cycles of a patient, a run computed from
the page (CSRF-checked, editing roles only) whose dose table equals the service's numbers,
the TAC and DVH images, the constants, and no access for researchers or applicants."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "web"))

from web_workspace import csrf_of, login_client  # noqa: E402

from oncohybrid.config import get_settings  # noqa: E402
from oncohybrid.phantom.spect import SpectCycle, SpectPhantom, write_spect_patient  # noqa: E402


@pytest.fixture(scope="module")
def nm_web(tmp_path_factory):
    from oncohybrid.services.ingest import Ingestor
    from oncohybrid.services.users import add_user, ensure_demo_user
    from oncohybrid.web.app import create_app

    home = tmp_path_factory.mktemp("nm_web")
    settings = get_settings(home)
    data = home / "spect"
    truth = write_spect_patient(data, SpectPhantom(
        patient_id="NM-WEB", cycles=(SpectCycle(dt.datetime(2026, 4, 6, 10, 0), 7400.0,
                                                (24.0, 96.0)),)))
    ing = Ingestor(settings)
    try:
        ing.ingest_paths([data])
    finally:
        ing.close()
    demo = ensure_demo_user(settings)
    add_user(settings, "rita", "rita-researcher-pw", "researcher", actor="test")
    add_user(settings, "fred", "fred-fellow-pass", "fellow", actor="test")
    app = create_app(settings)
    return settings, app, demo, truth


def _pdf_text(data: bytes) -> str:
    import subprocess

    return subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True,
                          check=True).stdout.decode()


def _pk(client) -> int:
    page = client.get("/nuclear")
    assert page.status_code == 200
    m = re.search(r'href="/nuclear/patients/(\d+)">NM-WEB<', page.text)
    assert m, page.text
    return int(m.group(1))


@pytest.mark.slow
def test_physician_runs_dosimetry_from_the_page(nm_web):
    from oncohybrid.services import audit
    from oncohybrid.services.nm import run_by_id

    settings, app, demo, truth = nm_web
    c = login_client(app, *demo)
    pk = _pk(c)
    page = c.get(f"/nuclear/patients/{pk}")
    assert page.status_code == 200
    assert "Lu-177" in page.text and "24.0 h" in page.text and "96.0 h" in page.text
    assert 'id="nm-run-form"' in page.text
    # the patient page links here
    assert f'href="/nuclear/patients/{pk}"' in c.get(f"/patients/{pk}").text
    # a POST without the CSRF token is refused
    assert c.post(f"/nuclear/patients/{pk}/dosimetry", data={"cycle": "1"}).status_code == 403
    token = csrf_of(c)
    bad = c.post(f"/nuclear/patients/{pk}/dosimetry",
                 data={"cycle": "4", "method": "local", "fit": "auto", "csrf_token": token})
    assert bad.status_code == 400 and "no cycle 4" in bad.text
    r = c.post(f"/nuclear/patients/{pk}/dosimetry",
               data={"cycle": "1", "method": "local", "fit": "mono-exp", "csrf_token": token},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    run_id = int(r.headers["location"].rsplit("/", 1)[1])
    doc = run_by_id(settings, run_id)["doc"]
    html = c.get(f"/nuclear/runs/{run_id}").text
    rows = dict(re.findall(r'<tr data-voi="([a-z_0-9]+)">.*?<td class="nm-dose">([0-9.]+)</td>',
                           html, flags=re.S))
    assert rows == {v["name"]: f"{v['dose_gy']:.3f}" for v in doc["vois"]}
    # two time points, mono-exponential: TIA = A(t1)·e^(λ t1)/λ from the phantom's own values
    tps = truth["cycles"][0]["timepoints"]
    a1, a2 = tps[0]["activity_mbq"]["liver"], tps[1]["activity_mbq"]["liver"]
    import math
    lam = math.log(a1 / a2) / 72.0
    liver = next(v for v in doc["vois"] if v["name"] == "liver")
    assert liver["tia_mbq_h"] == pytest.approx(a1 * math.exp(lam * 24) / lam, rel=0.02)
    assert "α/β 2.6 Gy" in html and "ICRP 107" in html
    for img in ("tac", "dvh"):
        png = c.get(f"/nuclear/runs/{run_id}/{img}.png")
        assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = c.get(f"/nuclear/runs/{run_id}/report.pdf")
    assert pdf.status_code == 200 and pdf.content[:5] == b"%PDF-"
    text = _pdf_text(pdf.content)
    assert "α/β 2.6 Gy" in text and "0.1479 MeV/decay" in text
    for v in doc["vois"]:
        assert f"{v['dose_gy']:.3f}" in text
    # the patient page states the cumulative kidney BED against Bodei 2008's limits
    kidney = next(v for v in doc["vois"] if v["name"] == "kidney_left")
    note = f"kidney_left cumulative BED {kidney['bed_gy']:.1f} Gy over cycle(s) 1"
    assert note in c.get(f"/patients/{pk}").text
    entries = audit.list_entries(settings, action="nm.dosimetry")
    assert entries and entries[0]["username"] == demo[0]


def test_roles_without_identified_clinical_access_are_refused(nm_web):
    settings, app, demo, _ = nm_web
    pk = _pk(login_client(app, *demo))
    rita = login_client(app, "rita", "rita-researcher-pw")
    assert rita.get("/nuclear").status_code == 403
    assert rita.get(f"/nuclear/patients/{pk}").status_code == 403
    fred = login_client(app, "fred", "fred-fellow-pass")
    assert fred.get(f"/nuclear/patients/{pk}").status_code == 200
    r = fred.post(f"/nuclear/patients/{pk}/dosimetry",
                  data={"cycle": "1", "csrf_token": csrf_of(fred)})
    assert r.status_code == 403
    assert login_client(app, *demo).get("/nuclear/runs/999999").status_code == 404
