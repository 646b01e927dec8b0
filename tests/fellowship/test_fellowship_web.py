"""The fellowship pages (issue #13) through the FastAPI app: the applicant's portal with
live eligibility and PDF-only uploads, review with COI and the weighted rubric, interview
invitations, offer, the year, sign-offs, certificate and the public verify page; and the
security boundaries (applicants and reviewers see only their own / assigned)."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "web"))

from web_workspace import login_client  # noqa: E402

from oncohybrid.config import get_settings  # noqa: E402
from oncohybrid.services import fellowship as svc  # noqa: E402
from oncohybrid.services import users  # noqa: E402

PW = "Correct-Horse-Battery-9"
ACCOUNTS = {"amy": "applicant", "ann": "applicant", "bea": "applicant", "rob": "reviewer",
            "ria": "reviewer", "dora": "director", "max": "mentor", "fred": "fellow"}
CALL_YAML = (Path(__file__).parents[2] / "src/oncohybrid/fellowship/calls/"
             "esor-gustave-roussy-2021.yaml").read_text()
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def open_call_yaml(today: dt.date) -> str:
    """The ESOR call with its dates moved so that it is open today and the year runs now."""
    start = today.replace(day=1)
    return (CALL_YAML.replace("id: esor-gustave-roussy-2021", "id: test-open-call")
            .replace('date: "2021-06-15"', f'date: "{today + dt.timedelta(days=30)}"')
            .replace('start: "2021-10-01"', f'start: "{start}"')
            .replace("year: 2021}", f"year: {today.year}}}"))


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    home = tmp_path_factory.mktemp("fellowweb")
    settings = get_settings(home)
    for name, role in ACCOUNTS.items():
        users.add_user(settings, name, PW, role, actor="test")
    f = home / "call.yaml"
    f.write_text(open_call_yaml(dt.date.today()))
    svc.load_call_file(settings, f)
    from oncohybrid.web.app import create_app

    app = create_app(settings)
    return settings, app


def client(web, name):
    return login_client(web[1], name, PW)


def csrf(c, url="/fellowship/apply"):
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', c.get(url).text).group(1)


FORM = {"call": "test-open-call", "name": "Dr Amy Stone", "email": "amy@example.org",
        "time_zone": "America/New_York", "track": "research", "cert_specialty": "radiology",
        "society": "ESR", "category": "full", "lang_en": "C1", "lang_fr": "B1",
        "other_languages": "it:native", "wishes_to_subspecialise": "on",
        "declares_hybrid_imaging_knowledge": "on", "declares_research_interest": "on",
        "interview_available": "on", "other_programme_1": "ESOR Exchange",
        "other_topic_1": "MR", "other_status_1": "withdrawn"}


def fill(today: dt.date) -> dict[str, str]:
    return dict(FORM, cert_date=str(today.replace(year=today.year - 1)), cert_country="US",
                fee_paid_years=str(today.year))


def apply_as(c, form) -> str:
    token = csrf(c)
    r = c.post("/fellowship/apply/save", data=dict(form, csrf_token=token))
    return r.text


def test_applicant_portal_journey_and_selection(web):
    settings, _ = web
    today = dt.date.today()
    amy = client(web, "amy")
    assert amy.get("/", follow_redirects=False).headers["location"] == "/fellowship/apply"
    # Ineligible: certified in the US, French B1.
    page = apply_as(amy, fill(today))
    assert "Not eligible" in page
    assert "Certification country US is not in the call" in page
    assert "French level B1 is below the required B2" in page
    # Live check returns the same reasons without saving.
    token = csrf(amy)
    live = amy.post("/fellowship/apply/check", data=dict(fill(today), cert_country="FR",
                                                          lang_fr="B2"),
                    headers={"X-CSRF-Token": token}).json()
    assert live["eligible"] is True
    # Uploads: not a PDF, too large -> refused; PDFs accepted.
    token = csrf(amy)
    r = amy.post("/fellowship/apply/upload", data={"csrf_token": token, "kind": "cv",
                                                   "call": "test-open-call"},
                 files={"file": ("cv.pdf", b"<html>not a pdf</html>", "application/pdf")})
    assert r.status_code == 400 and "not a PDF" in r.text
    big = PDF + b"0" * svc.MAX_UPLOAD_BYTES
    r = amy.post("/fellowship/apply/upload", data={"csrf_token": token, "kind": "cv",
                                                   "call": "test-open-call"},
                 files={"file": ("cv.pdf", big, "application/pdf")})
    assert r.status_code == 400 and "over the limit" in r.text
    # Submitting while ineligible is refused with the reasons.
    r = amy.post("/fellowship/apply/submit", data={"csrf_token": token,
                                                   "call": "test-open-call"})
    assert r.status_code == 400 and "not eligible" in r.text
    # Fix and upload.
    page = apply_as(amy, dict(fill(today), cert_country="FR", lang_fr="B2"))
    assert ">Eligible<" in page
    token = csrf(amy)
    for kind in ("cv", "board_certificate", "motivation"):
        r = amy.post("/fellowship/apply/upload", data={"csrf_token": token, "kind": kind,
                                                       "call": "test-open-call"},
                     files={"file": (f"{kind}.pdf", PDF, "application/pdf")},
                     follow_redirects=False)
        assert r.status_code == 303, r.text
    r = amy.post("/fellowship/apply/submit", data={"csrf_token": token,
                                                   "call": "test-open-call"})
    assert r.status_code == 200 and 'data-status="submitted"' in r.text
    app_pk = svc.application_of(settings, "amy", "test-open-call")["pk"]
    doc_pk = svc.application_of(settings, "amy", "test-open-call")["documents"][0]["pk"]
    r = amy.get(f"/fellowship/documents/{doc_pk}")
    assert r.status_code == 200 and r.content == PDF
    assert r.headers["content-disposition"].startswith("attachment")

    # Director assigns rob (not ria), books the interview; rob declares no COI and scores.
    dora = client(web, "dora")
    t = csrf(dora, "/fellowship/admin")
    assert dora.post(f"/fellowship/applications/{app_pk}/assign",
                     data={"csrf_token": t, "reviewer": "rob"}).status_code == 200
    rob, ria = client(web, "rob"), client(web, "ria")
    assert f"#{app_pk}" in rob.get("/fellowship/review").text
    assert f"#{app_pk}" not in ria.get("/fellowship/review").text
    assert ria.get(f"/fellowship/applications/{app_pk}").status_code == 404
    assert ria.get(f"/fellowship/documents/{doc_pk}").status_code == 404
    assert rob.get(f"/fellowship/documents/{doc_pk}").status_code == 200
    t = csrf(rob, "/fellowship/review")
    r = rob.post(f"/fellowship/applications/{app_pk}/score",
                 data={"csrf_token": t, "score_cv": "8", "score_motivation": "7",
                       "score_research": "9", "score_hybrid": "6"})
    assert "declare whether you have a conflict" in r.text
    rob.post(f"/fellowship/applications/{app_pk}/coi", data={"csrf_token": t,
                                                             "conflict": "no"})
    r = rob.post(f"/fellowship/applications/{app_pk}/score",
                 data={"csrf_token": t, "score_cv": "8", "score_motivation": "7",
                       "score_research": "9", "score_hybrid": "6"})
    # 0.30*8 + 0.25*7 + 0.25*9 + 0.20*6 = 2.4 + 1.75 + 2.25 + 1.2 = 7.60
    assert 'id="my-total">7.60<' in r.text
    admin_page = dora.get("/fellowship/admin?call=test-open-call").text
    assert "7.60" in admin_page
    r = dora.post(f"/fellowship/applications/{app_pk}/interview",
                  data={"csrf_token": t if False else csrf(dora, "/fellowship/admin"),
                        "starts_at": f"{today.year + 1}-07-05T16:00", "zone": "Europe/Paris",
                        "minutes": "30", "location": "video call"})
    assert r.status_code == 200
    ics_pk = re.search(r"/fellowship/interviews/(\d+)\.ics", r.text).group(1)
    ics = amy.get(f"/fellowship/interviews/{ics_pk}.ics")
    assert ics.headers["content-type"].startswith("text/calendar")
    # 16:00 in Paris (CEST, UTC+2) is 10:00 in New York (EDT, UTC-4).
    assert f"DTSTART;TZID=America/New_York:{today.year + 1}0705T100000" in ics.text
    assert "BEGIN:VTIMEZONE" in ics.text and "TZID:America/New_York" in ics.text
    # Offer, accept: the applicant becomes the fellow.
    dora.post(f"/fellowship/applications/{app_pk}/decision",
              data={"csrf_token": csrf(dora, "/fellowship/admin"), "status": "offered"})
    r = amy.post("/fellowship/apply/offer", data={"csrf_token": csrf(amy), "answer": "accept",
                                                  "call": "test-open-call"})
    assert "/fellowship/fellows/A-amy" in r.text
    # The director links the platform account and the mentor.
    t = csrf(dora, "/fellowship/admin")
    dora.post("/fellowship/fellows/A-amy/year", data={"csrf_token": t, "account": "fred",
                                                      "mentor": "max"})
    fred, mx = client(web, "fred"), client(web, "max")
    t = csrf(fred, "/fellowship/fellows/A-amy")
    fred.post("/fellowship/fellows/A-amy/entry", data={"csrf_token": t, "date": str(today),
                                                       "title": "ESOR course on PET-CT"})
    fred.post("/fellowship/fellows/A-amy/report-text",
              data={"csrf_token": t, "summary": "A year of hybrid imaging."})
    page = mx.get("/fellowship/fellows/A-amy").text
    assert "ESOR course on PET-CT" in page and "A year of hybrid imaging." in page
    # The grant view reconciles to the cent.
    assert 'id="grant-sum">23000.00<' in page and 'id="grant-total">23000.00<' in page
    assert page.count(">1916.67<") == 11 and page.count(">1916.63<") == 1
    t = csrf(mx, "/fellowship/fellows/A-amy")
    month = today.strftime("%Y-%m")
    mx.post("/fellowship/fellows/A-amy/signoff", data={"csrf_token": t, "month": month})
    assert "signed off by max" in mx.get("/fellowship/fellows/A-amy").text
    # Fred cannot sign off; the director cannot issue before the report sign-off.
    t2 = csrf(fred, "/fellowship/fellows/A-amy")
    assert fred.post("/fellowship/fellows/A-amy/report-signoff",
                     data={"csrf_token": t2}).status_code == 403
    t3 = csrf(dora, "/fellowship/admin")
    r = dora.post("/fellowship/fellows/A-amy/certificate", data={"csrf_token": t3})
    assert "not signed off" in r.text
    mx.post("/fellowship/fellows/A-amy/report-signoff", data={"csrf_token": t})
    r = dora.post("/fellowship/fellows/A-amy/certificate", data={"csrf_token": t3})
    code = re.search(r'id="cert-code">([^<]+)<', r.text).group(1)
    pdf = dora.get("/fellowship/fellows/A-amy/report.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    # Public verify page: no sign-in; shows the certificate's content only.
    from fastapi.testclient import TestClient

    anon = TestClient(web[1])
    v = anon.get("/fellowship/verify", params={"code": code})
    assert 'data-valid="true"' in v.text and "Dr Amy Stone" in v.text
    assert "amy@example.org" not in v.text and "7.60" not in v.text
    bad = code[:-1] + ("A" if code[-1] != "A" else "B")
    assert 'data-valid="false"' in anon.get("/fellowship/verify", params={"code": bad}).text


def test_applicants_see_no_clinical_page_and_not_another_application(web):
    settings, _ = web
    today = dt.date.today()
    ann = client(web, "ann")
    apply_as(ann, dict(fill(today), name="Dr Ann Other"))
    assert ann.get("/patients/1").status_code == 403
    assert ann.get("/api/worklist").status_code in (403, 404)
    ann_pk = svc.application_of(settings, "ann", "test-open-call")["pk"]
    assert ann.get(f"/fellowship/applications/{ann_pk}").status_code == 403
    assert ann.get("/fellowship/admin").status_code == 403
    assert ann.get("/fellowship/review").status_code == 403
    amy_app = svc.application_of(settings, "amy", "test-open-call")
    if amy_app and amy_app["documents"]:
        assert ann.get(f"/fellowship/documents/{amy_app['documents'][0]['pk']}"
                       ).status_code == 404
    # Another applicant's draft documents are not reachable either.
    token = csrf(ann)
    ann.post("/fellowship/apply/upload", data={"csrf_token": token, "kind": "cv",
                                               "call": "test-open-call"},
             files={"file": ("cv.pdf", PDF, "application/pdf")})
    ann_doc = svc.application_of(settings, "ann", "test-open-call")["documents"][0]["pk"]
    users_amy = client(web, "amy")
    assert users_amy.get(f"/fellowship/documents/{ann_doc}").status_code == 404
    # Reviewers see no draft and no clinical page.
    rob = client(web, "rob")
    assert rob.get("/patients/1").status_code == 403
    assert rob.get(f"/fellowship/applications/{ann_pk}").status_code == 404


def test_uploads_without_a_session_or_csrf_token_are_refused(web):
    from fastapi.testclient import TestClient

    anon = TestClient(web[1])
    r = anon.post("/fellowship/apply/upload", files={"file": ("cv.pdf", PDF)},
                  follow_redirects=False)
    assert r.status_code in (401, 303)
    amy = client(web, "ann")
    r = amy.post("/fellowship/apply/upload", data={"kind": "cv"},
                 files={"file": ("cv.pdf", PDF)})
    assert r.status_code == 403


def test_self_registration_creates_an_applicant_account_only(web):
    settings, app = web
    import re

    from fastapi.testclient import TestClient

    anon = TestClient(app)

    def token() -> str:
        text = anon.get("/fellowship/register").text
        assert "test-open-call" in text or "ESOR" in text
        return re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)

    # without the form's token (double-submit, like sign-in): refused, no account
    r = anon.post("/fellowship/register", data={"username": "forged", "password": PW})
    assert r.status_code == 403
    assert "forged" not in {u["username"] for u in users.list_users(settings)}
    r = anon.post("/fellowship/register", data={"username": "newbie", "password": "password",
                                                "csrf_token": token()})
    assert r.status_code == 400 and "password" in r.text
    r = anon.post("/fellowship/register", data={"username": "newbie", "password": PW,
                                                "csrf_token": token()},
                  follow_redirects=False)
    assert r.status_code == 303
    role = {u["username"]: u["role"] for u in users.list_users(settings)}["newbie"]
    assert role == "applicant"
    # A role cannot be smuggled in.
    anon.post("/fellowship/register", data={"username": "sneaky", "password": PW,
                                            "role": "director", "csrf_token": token()})
    assert {u["username"]: u["role"] for u in users.list_users(settings)}["sneaky"] == \
        "applicant"


def test_a_closed_call_takes_no_application(web):
    settings, _ = web
    from oncohybrid.errors import InputError

    with pytest.raises(InputError, match="closed at the end of 2021-06-15"):
        svc.save_application(settings, "ann", "esor-gustave-roussy-2021", {"name": "x"})
    ann = client(web, "ann")
    page = ann.get("/fellowship/apply?call=esor-gustave-roussy-2021").text
    assert "The deadline of this call has passed." in page and 'id="save"' not in page


def test_a_shortlisted_applicant_picks_an_open_interview_slot(web):
    settings, _ = web
    today = dt.date.today()
    from oncohybrid.web.fellowship import form_to_applicant

    form = dict(fill(today), cert_country="FR", lang_fr="B2", name="Dr Bea Blue",
                time_zone="Asia/Tokyo")
    svc.save_application(settings, "bea", "test-open-call", form_to_applicant(form, "bea"))
    for kind in ("cv", "board_certificate", "motivation"):
        svc.add_document(settings, "bea", "test-open-call", kind, f"{kind}.pdf", PDF)
    svc.submit_application(settings, "bea", "test-open-call")
    dora = client(web, "dora")
    r = dora.post("/fellowship/slots", data={
        "csrf_token": csrf(dora, "/fellowship/admin"), "call": "test-open-call",
        "starts_at": f"{today.year + 1}-01-15T09:00", "zone": "Europe/Paris",
        "minutes": "30", "location": "video call"})
    assert r.status_code == 200 and 'id="open-slots"' in r.text
    bea = client(web, "bea")
    page = bea.get("/fellowship/apply?call=test-open-call").text
    # 09:00 in Paris in January (CET, UTC+1) = 17:00 in Tokyo (JST, UTC+9).
    assert f"{today.year + 1}-01-15 17:00 JST" in page
    slot = re.search(r'name="slot" value="(\d+)"', page).group(1)
    r = bea.post("/fellowship/apply/slot", data={"csrf_token": csrf(bea), "slot": slot,
                                                 "call": "test-open-call"})
    assert r.status_code == 200 and "fs-interview" in r.text and 'name="slot"' not in r.text
    assert svc.open_slots(settings, "test-open-call") == []
    ics_pk = re.search(r"/fellowship/interviews/(\d+)\.ics", r.text).group(1)
    ics = bea.get(f"/fellowship/interviews/{ics_pk}.ics").text
    assert f"DTSTART;TZID=Asia/Tokyo:{today.year + 1}0115T170000" in ics
    # Taken slots cannot be taken again; a draft cannot book.
    from oncohybrid.errors import InputError

    with pytest.raises(InputError, match="already have an interview"):
        svc.book_slot(settings, "bea", "test-open-call", int(slot))
    with pytest.raises(InputError, match="only a submitted application"):
        svc.book_slot(settings, "ann", "test-open-call", int(slot))
