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


def test_area_badges_and_notes_hide_dates_from_researchers(web_ws) -> None:  # noqa: ANN001
    from oncohybrid.services.users import Role, SessionInfo, UserInfo
    from oncohybrid.web.areas import WebContext

    ctx = WebContext(settings=web_ws.settings, templates=None, page=None, client=None)
    ctx.worklist_badges.append(lambda st, pks: {pk: ["CT due 2027-01-05"] for pk in pks})
    ctx.patient_notes.append(lambda st, pk, sess: [
        f"seen by {sess.user.username} on 20261106 and 06/11/2026"])
    rita = SessionInfo(UserInfo(1, "rita", Role.RESEARCHER), "t")
    max_ = SessionInfo(UserInfo(2, "max", Role.MENTOR), "t")
    assert ctx.badges_for([7], max_) == {7: ["CT due 2027-01-05"]}
    assert ctx.badges_for([7], rita) == {7: ["CT due [date withheld]"]}
    assert ctx.notes_for(7, max_) == ["seen by max on 20261106 and 06/11/2026"]
    assert ctx.notes_for(7, rita) == ["seen by rita on [date withheld] and [date withheld]"]


def test_area_notes_withhold_every_common_date_spelling_from_researchers(web_ws) -> None:  # noqa: ANN001
    """The areas' text is scrubbed with de-identification's date pattern: dotted, dashed and
    slashed day-first and year-first dates (the ISO/DA/slash-only pattern let these through)."""
    from oncohybrid.services.users import Role, SessionInfo, UserInfo
    from oncohybrid.web.areas import WebContext

    ctx = WebContext(settings=web_ws.settings, templates=None, page=None, client=None)
    ctx.patient_notes.append(lambda st, pk: [
        "PET 06.11.2026, CT 06-11-2026, MR 2026.11.06, US 2026/11/06; dose 370 MBq"])
    rita = SessionInfo(UserInfo(1, "rita", Role.RESEARCHER), "t")
    assert ctx.notes_for(7, rita) == [
        "PET [date withheld], CT [date withheld], MR [date withheld], US [date withheld]; "
        "dose 370 MBq"]
