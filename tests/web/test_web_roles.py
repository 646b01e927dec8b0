"""Roles that open no clinical page (the fellowship programme's applicants, reviewers and
programme director, issue #13) and the mentor, who reads like a physician."""

from __future__ import annotations

import pytest


def _clinical_urls(ws) -> list[str]:
    uid = ws.patient["timepoints"][0]["study_uid"]
    return ["/api/worklist", f"/patients/{ws.patient_pk}", f"/api/patients/{ws.patient_pk}",
            f"/patients/{ws.patient_pk}/lesions", f"/patients/{ws.patient_pk}/report.pdf",
            f"/studies/{uid}/view", f"/api/studies/{uid}/info",
            f"/api/studies/{uid}/slice/axial/0.png", f"/api/studies/{uid}/mip/0.png"]


@pytest.mark.parametrize("username", ["amy", "rob", "dora"])
def test_programme_roles_open_no_clinical_page(login, web_ws, username) -> None:  # noqa: ANN001
    c = login(username)
    for url in _clinical_urls(web_ws):
        r = c.get(url, follow_redirects=False)
        assert r.status_code == 403, (url, r.status_code)
        assert web_ws.patient["patient_id"] not in r.text
    # the worklist sends them to their own area (or refuses), never lists patients
    r = c.get("/", follow_redirects=False)
    assert r.status_code in (303, 403)
    if r.status_code == 303:
        assert not r.headers["location"].startswith(("/patients", "/studies", "/api"))
        assert r.headers["location"] != "/"


def test_mentor_reads_and_edits_like_a_physician(login, web_ws) -> None:  # noqa: ANN001
    c = login("max")
    for url in _clinical_urls(web_ws):
        r = c.get(url, follow_redirects=False)
        assert r.status_code == 200, (url, r.status_code)
    assert web_ws.patient["patient_id"] in c.get("/").text
