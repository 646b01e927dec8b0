"""Researchers see pseudonymous UIDs, days from baseline and no free-text descriptions,
in pages and JSON (issue 12 item 9); their viewer links work through the pseudonyms."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re

UID_RE = re.compile(r"\b\d+(?:\.\d+){3,}\b")


def _secrets(ws) -> list[str]:
    p = ws.patient
    out = []
    for tp in p["timepoints"]:
        out += [tp["study_uid"], tp["ct_series_uid"], tp["pt_series_uid"], tp["date"]]
    out += ["PET-CT FDG WHOLE BODY", "PET WB AC", "CT WB small"]
    return out


def _expected_uid(ws, uid: str) -> str:
    key = (ws.settings.home / "report-pseudonym.key").read_bytes()
    digest = hmac.new(key, b"uid:" + uid.encode(), hashlib.sha256).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def test_researcher_api_has_pseudonymous_uids_relative_days_and_no_descriptions(web_ws,
                                                                                 login):
    c = login("rita")
    body = c.get(f"/api/patients/{web_ws.patient_pk}")
    assert body.status_code == 200
    for needle in _secrets(web_ws):
        assert needle not in body.text, f"{needle!r} leaked to the researcher"
    data = body.json()
    tps = web_ws.patient["timepoints"]
    base = dt.date.fromisoformat(tps[0]["date"])
    got = {st["study_uid"]: st for st in data["studies"]}
    for tp in tps:
        st = got[_expected_uid(web_ws, tp["study_uid"])]
        assert st["date"] == f"day {(dt.date.fromisoformat(tp['date']) - base).days}"
        assert st["description"] is None
        assert {se["series_uid"] for se in st["series"]} == {
            _expected_uid(web_ws, tp["ct_series_uid"]), _expected_uid(web_ws, tp["pt_series_uid"])}
        assert all(se["description"] is None for se in st["series"])
    # Every UID in the answer is a valid 2.25 UID of at most 64 characters (PS3.5 §9.1).
    for uid in UID_RE.findall(body.text):
        assert uid.startswith("2.25.") and len(uid) <= 64
    days = [tp["date"] for tp in data["timeline"]["timepoints"]]
    assert days[0] == "day 0" and all(d.startswith("day ") for d in days)


def test_researcher_pages_and_viewer_work_through_pseudonyms(web_ws, login):
    c = login("rita")
    pk = web_ws.patient_pk
    pseudo = _expected_uid(web_ws, web_ws.patient["timepoints"][0]["study_uid"])
    urls = [f"/patients/{pk}", f"/patients/{pk}/lesions", "/", "/api/worklist",
            f"/studies/{pseudo}/view", f"/api/studies/{pseudo}/info",
            f"/patients/{pk}/lesions?tp=1"]
    for url in urls:
        r = c.get(url)
        assert r.status_code == 200, (url, r.status_code)
        for needle in _secrets(web_ws):
            assert needle not in r.text, f"{needle!r} leaked in {url}"
    assert c.get(f"/api/studies/{pseudo}/slice/axial/5.png").status_code == 200
    # The real UID is no key for a researcher; a physician uses it as before.
    real = web_ws.patient["timepoints"][0]["study_uid"]
    assert c.get(f"/studies/{real}/view").status_code == 404
    assert c.get(f"/api/studies/{real}/slice/axial/5.png").status_code == 404
    assert login("demo").get(f"/studies/{real}/view").status_code == 200
    # Date filters would reveal exact dates by bisection.
    r = c.get("/api/worklist", params={"date_from": web_ws.patient["timepoints"][0]["date"]})
    assert r.status_code == 400 and "date_from" in r.json()["detail"]


def test_physician_still_sees_real_uids_and_dates(web_ws, login):
    body = login("demo").get(f"/api/patients/{web_ws.patient_pk}").text
    tp = web_ws.patient["timepoints"][0]
    assert tp["study_uid"] in body and tp["date"] in body and "PET WB AC" in body
