"""The research pages with FastAPI's TestClient: dashboard, CRF entry, locking, export,
data-access groups, worklist badges."""

from __future__ import annotations

import io
import re
import sys
import zipfile
from pathlib import Path

import pytest

from oncohybrid.research.cohort import parse_criterion
from oncohybrid.services import research as r

sys.path.insert(0, str(Path(__file__).parents[1] / "web"))
from web_workspace import login_client  # noqa: E402

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def app(rws):
    from oncohybrid.web.app import create_app

    r.create_study("web1", "Web study", protocol=r.load_protocol_file(DATA / "protocol.yaml"),
                   ethics_number="EC-W", investigators=[("pia", "pi", None),
                                                        ("rita", "investigator", "north"),
                                                        ("rolf", "investigator", "south")],
                   dags=["north", "south"], settings=rws.settings)
    r.save_cohort("web1", "women", [parse_criterion("include", "[sex] = 'F'")], dag="north",
                  settings=rws.settings)
    r.save_cohort("web1", "men", [parse_criterion("include", "[sex] <> 'F'")], dag="south",
                  settings=rws.settings)
    r.import_dictionary("web1", DATA / "dictionary.csv", repeating={"imaging": "timepoint"},
                        settings=rws.settings)
    return create_app(rws.settings)


def _csrf(c) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', c.get("/research").text
                     ).group(1)


def test_dashboard_form_entry_lock_and_export(app, rws):
    c = login_client(app, "pia", "pia-strong-pass-42")
    page = c.get("/research/web1")
    assert page.status_code == 200
    assert 'id="exam-tracking"' in page.text and 'id="crf-completion"' in page.text
    assert "CONSORT" in page.text
    png = c.get("/research/web1/consort/women.png")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    form = c.get("/research/web1/records/1/demographics")
    assert form.status_code == 200 and "data-branching=\"[tumour_type] = &#39;3&#39;\"" in form.text
    token = _csrf(c)
    bad = c.post("/research/web1/records/1/demographics",
                 data={"csrf_token": token, "weight": "heavy", "tumour_type": "1"})
    assert bad.status_code == 422 and "not a number" in bad.text
    ok = c.post("/research/web1/records/1/demographics",
                data={"csrf_token": token, "weight": "64", "height": "160", "tumour_type": "2",
                      "prior_tx___1": "1", "form_complete": "2"}, follow_redirects=False)
    assert ok.status_code == 303
    view = r.form_view("web1", "1", "demographics", settings=rws.settings)
    vals = {f["name"]: f["value"] for f in view["fields"]}
    assert vals["bmi"] == "25" and vals["prior_tx"] == "1"  # 64 / 1.6² = 25.0
    wrong = c.post("/research/web1/records/1/demographics/lock",
                   data={"csrf_token": token, "password": "nope"}, follow_redirects=True)
    assert "refused" in wrong.text and not r.form_view(
        "web1", "1", "demographics", settings=rws.settings)["locked"]
    c.post("/research/web1/records/1/demographics/lock",
           data={"csrf_token": token, "password": "pia-strong-pass-42"})
    assert r.form_view("web1", "1", "demographics", settings=rws.settings)["locked"]
    assert c.post("/research/web1/records/1/demographics",
                  data={"csrf_token": token, "weight": "65"}).status_code == 422
    z = c.post("/research/web1/export", data={"csrf_token": token, "format": "csv",
                                              "deidentify": "1"})
    assert z.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(z.content)).namelist()
    assert {"patients.csv", "crf.csv", "data_dictionary.csv", "manifest.json"} <= set(names)
    # no CSRF token: refused
    assert c.post("/research/web1/export", data={"format": "csv"}).status_code == 403


def test_researchers_see_their_group_only_pseudonymised(app, rws):
    rita = login_client(app, "rita", "rita-strong-pass-42")
    page = rita.get("/research/web1")
    assert page.status_code == 200
    n_f = sum(p["sex"] == "F" for p in rws.truth["patients"])
    assert page.text.count('<tr data-record="') == 2 * n_f  # tracking + completion rows
    for p in rws.truth["patients"]:
        assert p["patient_id"] not in page.text and p["patient_name"] not in page.text
    men = [x["record_id"] for x in r.schedule("web1", settings=rws.settings)["records"]
           if x["record_id"] not in {y["record_id"] for y in r.schedule(
               "web1", viewer=r.Viewer("rita", "researcher"), settings=rws.settings)["records"]}]
    assert rita.get(f"/research/web1/records/{men[0]}/demographics").status_code == 404
    z = rita.post("/research/web1/export", data={"csrf_token": _csrf(rita), "format": "csv"})
    assert z.status_code == 200
    zf = zipfile.ZipFile(io.BytesIO(z.content))
    patients = zf.read("patients.csv").decode()
    assert "pseudonym" in patients.splitlines()[0] and patients.count("\n") == 1 + n_f
    fred = login_client(app, "fred", "fred-strong-pass-42")
    assert fred.get("/research/web1").status_code == 404
    assert "web1" not in fred.get("/research").text


def test_worklist_shows_exam_badges(app, rws):
    c = login_client(app, "pia", "pia-strong-pass-42")
    pks = [x["patient_pk"] for x in r.schedule("web1", settings=rws.settings)["records"]]
    badges = r.worklist_badges(rws.settings, pks)
    # the phantom's exams are in 2024: later windows are long past, so nothing is "due"
    # and the end-of-treatment exam is missing, not badge-worthy; an out-of-window interim
    # is shown
    sch = r.schedule("web1", settings=rws.settings)
    want = {x["patient_pk"] for x in sch["records"]
            if any(t["status"] in ("overdue", "out of window") for t in x["timepoints"])}
    assert set(badges) == want
    if want:
        assert any("web1:" in b for b in c.get("/").text.split("worklist-badge")[1:])
        pk = sorted(want)[0]
        assert "Research study web1:" in c.get(f"/patients/{pk}").text


def test_badges_show_only_the_viewers_studies_and_group(app, rws):
    pks = [x["patient_pk"] for x in r.schedule("web1", settings=rws.settings)["records"]]

    def web1(badges: dict[int, list[str]]) -> set[int]:  # other tests' studies share rws
        return {pk for pk, texts in badges.items() if any(t.startswith("web1:") for t in texts)}

    everyone = web1(r.worklist_badges(rws.settings, pks))
    assert everyone, "the phantom's out-of-window interim gives badges"
    # a platform user who is no member of web1 learns nothing of it
    assert web1(r.worklist_badges(rws.settings, pks, r.Viewer("fred", "fellow"))) == set()
    # a member of the north group sees the badges of north's records only
    north = {x["patient_pk"] for x in r.schedule(
        "web1", viewer=r.Viewer("rita", "researcher"), settings=rws.settings)["records"]}
    rita = web1(r.worklist_badges(rws.settings, pks, r.Viewer("rita", "researcher")))
    assert north < set(pks) and rita == everyone & north
    fred = login_client(app, "fred", "fred-strong-pass-42")
    assert "web1:" not in fred.get("/").text
    assert "Research study web1" not in fred.get(f"/patients/{sorted(everyone)[0]}").text
