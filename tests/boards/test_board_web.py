"""The tumour-board pages with FastAPI's TestClient: roles, agenda, checklist, presentation
(key images through the viewer's renderers), decision with follow-up in the worklist,
attendance, closing, documents; researchers see pseudonyms only."""

from __future__ import annotations

import io
import re
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "web"))

from web_workspace import login_client  # noqa: E402

PW = {"max": "max-mentor-pass", "fred": "fred-fellow-pass", "rita": "rita-researcher-pw"}


@pytest.fixture(scope="module")
def app(board_ws):
    from oncohybrid.web.app import create_app

    return create_app(board_ws.settings)


def csrf(client) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', client.get("/boards").text).group(1)


def patient_pk(ws, pid: str) -> int:
    from oncohybrid.services.boards import resolve_patient

    return resolve_patient(ws.settings, pid)


def test_board_session_in_the_reading_room(app, board_ws):
    from PIL import Image

    maxc = login_client(app, "max", PW["max"])
    tok = csrf(maxc)
    r = maxc.post("/boards", data={"name": "Web MDT", "specialty": "lung", "weekday": "monday",
                                   "start_time": "13:00", "minutes_per_case": "12",
                                   "csrf_token": tok}, follow_redirects=False)
    assert r.status_code == 303
    page = maxc.get("/boards").text
    board_id = int(re.findall(r'data-board="(\d+)"', page)[-1])
    r = maxc.post(f"/boards/{board_id}/members",
                  data={"name": "fred", "specialty": "radiology", "csrf_token": tok},
                  follow_redirects=False)
    assert r.status_code == 303
    assert "radiology: fred" in maxc.get("/boards").text
    r = maxc.post(f"/boards/{board_id}/sessions", data={"date": "2099-01-05", "csrf_token": tok},
                  follow_redirects=False)
    sid = int(r.headers["location"].rsplit("/", 1)[1])
    pid = board_ws.patient_ids[0]
    pk = patient_pk(board_ws, pid)
    # the patient page offers the action; the form lists the planned session
    assert f"/boards/add?patient={pk}" in maxc.get(f"/patients/{pk}").text
    form = maxc.get(f"/boards/add?patient={pk}").text
    assert f'value="{sid}"' in form and pid in form
    r = maxc.post("/boards/add", data={"patient": pk, "session_id": sid,
                                       "question": "Operable after induction?",
                                       "csrf_token": tok}, follow_redirects=False)
    assert r.status_code == 303
    agenda = maxc.get(f"/boards/sessions/{sid}").text
    assert "13:00–13:12" in agenda and "Operable after induction?" in agenda
    assert "not ready" in agenda
    case_id = int(re.search(r'id="case-(\d+)"', agenda).group(1))
    # a fellow prepares the case: ticks the manual items
    fred = login_client(app, "fred", PW["fred"])
    ftok = csrf(fred)
    # (prior_decision is n/a for a first discussion; after earlier tests' decisions on
    # this patient it needs its tick too)
    for item in ("imaging_reviewed", "key_images", "prior_decision"):
        r = fred.post(f"/boards/cases/{case_id}/checklist",
                      data={"item": item, "done": "1", "csrf_token": ftok},
                      follow_redirects=False)
        assert r.status_code == 303
    agenda = maxc.get(f"/boards/sessions/{sid}").text
    assert "by fred" in agenda and '"readiness">ready' in agenda
    # ... but may not decide
    r = fred.post(f"/boards/cases/{case_id}/decision",
                  data={"recommendation": "x", "csrf_token": ftok}, follow_redirects=False)
    assert r.status_code == 403
    # presentation: one case, key images rendered by the viewer, response codes
    pres = maxc.get(f"/boards/cases/{case_id}/present")
    assert pres.status_code == 200
    assert "Case 1 of 1" in pres.text and "rule-trace" in pres.text
    for which in ("baseline", "current"):
        for kind in ("mip", "fused"):
            img = maxc.get(f"/boards/cases/{case_id}/image/{which}/{kind}.png")
            assert img.status_code == 200 and img.headers["content-type"] == "image/png"
            with Image.open(io.BytesIO(img.content)) as im:
                assert im.size[0] > 50 and im.getextrema() != ((0, 0), (0, 0), (0, 0))
    r = maxc.post(f"/boards/sessions/{sid}/attend",
                  data={"name": "fred", "specialty": "radiology", "csrf_token": tok},
                  follow_redirects=False)
    assert r.status_code == 303
    r = maxc.post(f"/boards/cases/{case_id}/decision",
                  data={"recommendation": "Lobectomy", "rationale": "PMR", "consensus": "1",
                        "follow_up_exam": "CT chest", "follow_up_days": "30",
                        "csrf_token": tok}, follow_redirects=False)
    assert r.status_code == 303
    worklist = maxc.get("/").text
    assert "board follow-up: CT chest due 2099-02-04" in worklist
    assert "Lobectomy" in maxc.get(f"/patients/{pk}").text
    boards_page = maxc.get("/boards").text
    assert "2099-02-04" in boards_page and "CT chest" in boards_page
    assert maxc.post(f"/boards/sessions/{sid}/close", data={"csrf_token": tok},
                     follow_redirects=False).status_code == 303
    minutes = maxc.get(f"/boards/sessions/{sid}/minutes.pdf")
    assert minutes.status_code == 200 and minutes.content[:5] == b"%PDF-"
    # audit: every step recorded
    from oncohybrid.services import audit

    actions = {e["action"] for e in audit.list_entries(board_ws.settings, limit=200)}
    assert {"board.create", "board.session", "board.case.add", "board.case.checklist",
            "board.attendance", "board.decision", "board.session.close",
            "board.minutes"} <= actions

    # researchers: pseudonyms on the agenda, no presentation, pseudonymised slides
    rita = login_client(app, "rita", PW["rita"])
    agenda = rita.get(f"/boards/sessions/{sid}").text
    assert pid not in agenda and "PSN-" in agenda and "Operable" not in agenda
    from oncohybrid.services.worklist import patient_summary

    for st in patient_summary(pk, board_ws.settings)["studies"]:
        assert st["date"] not in agenda  # no visit date of the patient
    listing = rita.get("/boards").text
    assert pid not in listing and "2099-02-04" not in listing and "PSN-" in listing
    assert rita.get(f"/boards/cases/{case_id}/present").status_code == 403
    assert rita.get(f"/boards/sessions/{sid}/minutes.pdf").status_code == 403
    pptx = rita.get(f"/boards/sessions/{sid}/slides.pptx")
    assert pptx.status_code == 200
    with zipfile.ZipFile(io.BytesIO(pptx.content)) as z:
        xml = "".join(z.read(n).decode("utf-8", "replace") for n in z.namelist()
                      if n.endswith(".xml"))
    assert pid not in xml and "PSN-" in xml


def test_applicants_and_unknown_ids(app, board_ws):
    from oncohybrid.services.users import add_user

    add_user(board_ws.settings, "amy", "amy-applicant-pass", "applicant", actor="test")
    amy = login_client(app, "amy", "amy-applicant-pass")
    assert amy.get("/boards", follow_redirects=False).status_code == 403
    maxc = login_client(app, "max", PW["max"])
    assert maxc.get("/boards/sessions/987654").status_code == 400
    assert "987654" in maxc.get("/boards/sessions/987654").text
