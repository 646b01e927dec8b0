"""The fellowship programme in the reading room (issue #13).

Applicants register, fill in the form (live eligibility with each rule's reason), upload
PDFs and submit; reviewers declare conflicts of interest and score with the call's
weighted rubric; the programme director assigns reviewers, sees the ranked list, books
interviews (.ics in the applicant's time zone) and offers; the fellow's year (programme
calendar, logbook derived from the platform, monthly mentor sign-off, evaluations,
research project, grant, final report) and the certificate, with a public verify page that
shows only the certificate's own content. Every change goes through
:mod:`oncohybrid.services.fellowship`, which audits it. Applicants, reviewers and the
director open no clinical page (``Role.clinical``).
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.background import BackgroundTask
from starlette.datastructures import FormData
from starlette.status import HTTP_303_SEE_OTHER

from oncohybrid.errors import InputError
from oncohybrid.services import fellowship as svc
from oncohybrid.services import users
from oncohybrid.services.users import Role, SessionInfo
from oncohybrid.web.areas import WebContext
from oncohybrid.web.security import (
    LOGIN_CSRF_COOKIE,
    check_login_csrf,
    csrf_session,
    current_session,
    new_login_csrf,
    require_roles,
)

__all__ = ["register", "form_to_applicant"]

APPLICANT_ROLES = (Role.APPLICANT,)
STAFF = (Role.DIRECTOR, Role.ADMIN)
LANG_LEVELS = ("A1", "A2", "B1", "B2", "C1", "C2", "native")


def form_to_applicant(form: FormData | dict[str, Any], username: str) -> dict[str, Any]:
    """The applicant JSON (applicant.schema.json) from the portal's form fields."""
    def get(name: str) -> str:
        v = form.get(name)
        return v.strip() if isinstance(v, str) else ""

    years = []
    for part in get("fee_paid_years").replace(";", ",").split(","):
        part = part.strip()
        if part:
            years.append(int(part) if part.isdigit() else part)
    languages: dict[str, str] = {}
    for code in ("en", "fr"):
        if get(f"lang_{code}"):
            languages[code] = get(f"lang_{code}")
    for item in get("other_languages").split(","):
        if ":" in item:
            code, level = (x.strip() for x in item.split(":", 1))
            if code:
                languages[code.lower()] = level
    others = []
    for i in (1, 2):
        prog = get(f"other_programme_{i}")
        if prog:
            others.append({"programme": prog, "topic": get(f"other_topic_{i}"),
                           "status": get(f"other_status_{i}") or "submitted"})
    data: dict[str, Any] = {
        "applicant_id": f"A-{username}",
        "name": get("name"),
        "email": get("email"),
        "board_certification": {"date": get("cert_date"), "country": get("cert_country"),
                                "specialty": get("cert_specialty")},
        "society_membership": {"society": get("society"), "category": get("category"),
                               "fee_paid_years": years},
        "languages": languages,
        "wishes_to_subspecialise": get("wishes_to_subspecialise") == "on",
        "declares_hybrid_imaging_knowledge": get("declares_hybrid_imaging_knowledge") == "on",
        "declares_research_interest": get("declares_research_interest") == "on",
        "interview_available": get("interview_available") == "on",
        "track": get("track"),
        "other_applications": others,
        "evidence": {"publications": get("publications")},
    }
    if get("time_zone"):
        data["time_zone"] = get("time_zone")
    return data


def _form_values(data: dict[str, Any]) -> dict[str, Any]:
    """The form's field values from stored applicant data (for re-display)."""
    bc = data.get("board_certification") or {}
    sm = data.get("society_membership") or {}
    langs = dict(data.get("languages") or {})
    others = data.get("other_applications") or []
    out = {"name": data.get("name", ""), "email": data.get("email", ""),
           "time_zone": data.get("time_zone", ""), "cert_date": bc.get("date", ""),
           "cert_country": bc.get("country", ""), "cert_specialty": bc.get("specialty",
                                                                           "radiology"),
           "society": sm.get("society", "ESR"), "category": sm.get("category", ""),
           "fee_paid_years": ", ".join(str(y) for y in sm.get("fee_paid_years") or []),
           "lang_en": langs.pop("en", ""), "lang_fr": langs.pop("fr", ""),
           "other_languages": ", ".join(f"{k}:{v}" for k, v in langs.items()),
           "track": data.get("track", ""),
           "publications": (data.get("evidence") or {}).get("publications", "")}
    for key in ("wishes_to_subspecialise", "declares_hybrid_imaging_knowledge",
                "declares_research_interest", "interview_available"):
        out[key] = bool(data.get(key))
    for i in (1, 2):
        o = others[i - 1] if len(others) >= i else {}
        out[f"other_programme_{i}"] = o.get("programme", "")
        out[f"other_topic_{i}"] = o.get("topic", "")
        out[f"other_status_{i}"] = o.get("status", "submitted")
    return out


def register(app: FastAPI, ctx: WebContext) -> None:  # noqa: C901 - one route table
    settings = ctx.settings
    page = ctx.page

    ctx.add_nav("Fellowship", "/fellowship", Role.APPLICANT, Role.REVIEWER, Role.DIRECTOR,
                Role.FELLOW, Role.MENTOR, Role.ADMIN)
    ctx.homes[Role.APPLICANT] = "/fellowship/apply"
    ctx.homes[Role.REVIEWER] = "/fellowship/review"
    ctx.homes[Role.DIRECTOR] = "/fellowship/admin"

    def _call_id(call: str | None) -> str:
        if call:
            return svc.get_call(settings, call).id
        open_ = svc.open_calls(settings)
        return open_[0].id if open_ else svc.callmod.DEFAULT_CALL

    def _see_other(url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=HTTP_303_SEE_OTHER)

    def _not_found(exc: Exception) -> HTTPException:
        return HTTPException(404, str(exc))

    # ---------------------------------------------------------------- landing
    @app.get("/fellowship")
    def home(request: Request, sess: SessionInfo = Depends(current_session)) -> Response:
        role = sess.user.role
        if role in ctx.homes and not role.clinical:
            return _see_other(ctx.homes[role])
        if role is Role.ADMIN:
            return _see_other("/fellowship/admin")
        mine = svc.fellows(settings, username=sess.user.username, role=role.value)
        return page(request, "fellowship/home.html", sess, fellows=mine)

    # ---------------------------------------------------------------- public pages
    def _register_page(request: Request, status: int = 200, error: str | None = None,
                       username: str = "") -> Response:
        # No session exists yet: a double-submit token, as the sign-in form has
        # (web/security.py check_login_csrf), so no other site can create accounts
        # through a visitor's browser.
        token = new_login_csrf()
        resp = page(request, "fellowship/register.html", None, status=status,
                    calls=svc.open_calls(settings), error=error, username=username,
                    login_csrf=token)
        resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", path="/fellowship/register")
        return resp

    @app.get("/fellowship/register")
    def register_form(request: Request) -> Response:
        return _register_page(request)

    @app.post("/fellowship/register", dependencies=[Depends(check_login_csrf)])
    async def register_post(request: Request) -> Response:
        form = await request.form()
        username = str(form.get("username") or "").strip()
        password = str(form.get("password") or "")
        if not svc.open_calls(settings):
            return _register_page(request, 400, "No call is open for applications.", username)
        try:
            users.add_user(settings, username, password, Role.APPLICANT,
                           actor=f"self-registration:{username[:40]}")
        except InputError as exc:
            return _register_page(request, 400, str(exc), username)
        resp = _see_other("/login?next=/fellowship/apply")
        resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/fellowship/register")
        return resp

    @app.get("/fellowship/verify")
    def verify_page(request: Request, code: str = "") -> Response:
        result = svc.verify(settings, code) if code.strip() else None
        return page(request, "fellowship/verify.html", None, code=code, result=result)

    # ---------------------------------------------------------------- applicant
    applicant = require_roles(Role.APPLICANT)

    def _apply_page(request: Request, sess: SessionInfo, call_id: str,
                    error: str | None = None, status: int = 200,
                    values: dict[str, Any] | None = None) -> Response:
        call = svc.get_call(settings, call_id)
        app_ = svc.application_of(settings, sess.user.username, call.id)
        interviews: list[dict[str, Any]] = []
        fellow = None
        if app_ is not None:
            view = svc.application_view(settings, sess.user.username, "applicant", app_["pk"])
            interviews = view["interviews"]
            if app_["status"] == "accepted":
                fellow = svc.fellow_of_user(settings, sess.user.username)
        vals = values or _form_values(app_["data"] if app_ else {})
        slots: list[dict[str, Any]] = []
        if app_ and app_["status"] in ("submitted", "shortlisted", "waiting") and not interviews:
            zone = (app_["data"] or {}).get("time_zone") or call.host["time_zone"]
            slots = svc.open_slots(settings, call.id, zone)
        return page(request, "fellowship/apply.html", sess, status=status, call=call,
                    app=app_, v=vals, error=error, kinds=svc.DOCUMENT_KINDS,
                    levels=LANG_LEVELS, max_mib=svc.MAX_UPLOAD_BYTES // (1024 * 1024),
                    interviews=interviews, fellow=fellow, slots=slots,
                    open=dt.datetime.now(dt.UTC) < call.deadline_end)

    @app.get("/fellowship/apply")
    def apply_page(request: Request, call: str | None = None,
                   sess: SessionInfo = Depends(applicant)) -> Response:
        return _apply_page(request, sess, _call_id(call))

    @app.post("/fellowship/apply/save")
    async def apply_save(request: Request, sess: SessionInfo = Depends(csrf_session)) -> Response:
        _only(sess, Role.APPLICANT)
        form = await request.form()
        call_id = _call_id(str(form.get("call") or "") or None)
        data = form_to_applicant(form, sess.user.username)
        try:
            _, error = svc.save_application(settings, sess.user.username, call_id, data)
        except InputError as exc:
            return _apply_page(request, sess, call_id, str(exc), 400)
        return _apply_page(request, sess, call_id, error, 200 if error is None else 400)

    @app.post("/fellowship/apply/check")
    async def apply_check(request: Request,
                          sess: SessionInfo = Depends(csrf_session)) -> Response:
        """Live eligibility of the form as it stands (nothing saved)."""
        _only(sess, Role.APPLICANT)
        form = await request.form()
        call_id = _call_id(str(form.get("call") or "") or None)
        data = form_to_applicant(form, sess.user.username)
        data["submitted_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        try:
            _, result = svc.eligibility_of_data(settings, data, call_id)
        except InputError as exc:
            return JSONResponse({"error": str(exc)})
        return JSONResponse(result.as_dict())

    @app.post("/fellowship/apply/upload")
    async def apply_upload(request: Request, sess: SessionInfo = Depends(csrf_session)
                           ) -> Response:
        _only(sess, Role.APPLICANT)
        form = await request.form()
        call_id = _call_id(str(form.get("call") or "") or None)
        file = form.get("file")
        kind = str(form.get("kind") or "")
        if not hasattr(file, "read"):
            return _apply_page(request, sess, call_id, "choose a PDF file to upload", 400)
        # Read one byte more than the limit: enough to refuse, never the whole of a huge file.
        content = await file.read(svc.MAX_UPLOAD_BYTES + 1)  # type: ignore[union-attr]
        try:
            svc.add_document(settings, sess.user.username, call_id, kind,
                             getattr(file, "filename", None) or "document.pdf", content)
        except InputError as exc:
            return _apply_page(request, sess, call_id, str(exc), 400)
        return _see_other(f"/fellowship/apply?call={call_id}")

    async def _applicant_action(request: Request, sess: SessionInfo,
                                act: Callable[[FormData, str], object]) -> Response:
        """One applicant button: the call from the form, the action, back to the form (the
        reason on the page when the action is refused)."""
        _only(sess, Role.APPLICANT)
        form = await request.form()
        call_id = _call_id(str(form.get("call") or "") or None)
        try:
            act(form, call_id)
        except (InputError, ValueError) as exc:
            return _apply_page(request, sess, call_id, str(exc), 400)
        return _see_other(f"/fellowship/apply?call={call_id}")

    @app.post("/fellowship/apply/submit")
    async def apply_submit(request: Request, sess: SessionInfo = Depends(csrf_session)
                           ) -> Response:
        return await _applicant_action(request, sess, lambda form, call_id:
                                       svc.submit_application(settings, sess.user.username,
                                                              call_id))

    @app.post("/fellowship/apply/slot")
    async def apply_slot(request: Request, sess: SessionInfo = Depends(csrf_session)
                         ) -> Response:
        return await _applicant_action(request, sess, lambda form, call_id: svc.book_slot(
            settings, sess.user.username, call_id, int(str(form.get("slot") or 0))))

    @app.post("/fellowship/apply/withdraw")
    async def apply_withdraw(request: Request, sess: SessionInfo = Depends(csrf_session)
                             ) -> Response:
        return await _applicant_action(request, sess, lambda form, call_id:
                                       svc.withdraw_application(settings, sess.user.username,
                                                                call_id))

    @app.post("/fellowship/apply/offer")
    async def apply_offer(request: Request, sess: SessionInfo = Depends(csrf_session)
                          ) -> Response:
        return await _applicant_action(request, sess, lambda form, call_id:
                                       svc.respond_to_offer(settings, sess.user.username,
                                                            call_id,
                                                            form.get("answer") == "accept"))

    # ---------------------------------------------------------------- documents, interviews
    @app.get("/fellowship/documents/{doc_pk}")
    def document(doc_pk: int, sess: SessionInfo = Depends(current_session)) -> Response:
        try:
            path, name = svc.document_file(settings, sess.user.username, sess.user.role.value,
                                           doc_pk)
        except svc.Forbidden as exc:
            raise _not_found(exc) from None
        # An attachment, never rendered inline by the browser.
        return FileResponse(path, media_type="application/pdf", filename=name,
                            content_disposition_type="attachment")

    @app.get("/fellowship/interviews/{pk}.ics")
    def interview_ics(pk: int, sess: SessionInfo = Depends(current_session)) -> Response:
        try:
            text = svc.interview_ics(settings, sess.user.username, sess.user.role.value, pk)
        except svc.Forbidden as exc:
            raise _not_found(exc) from None
        return Response(text, media_type="text/calendar; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="interview-{pk}.ics"'})

    # ---------------------------------------------------------------- reviewer / director
    reviewer_or_staff = require_roles(Role.REVIEWER, Role.DIRECTOR, Role.ADMIN)

    @app.get("/fellowship/review")
    def review_page(request: Request, call: str | None = None,
                    sess: SessionInfo = Depends(require_roles(Role.REVIEWER))) -> Response:
        call_id = _call_id(call)
        apps = svc.list_applications(settings, call_id, username=sess.user.username,
                                     role="reviewer")
        return page(request, "fellowship/review.html", sess, call=svc.get_call(settings,
                                                                                call_id),
                    apps=apps)

    @app.get("/fellowship/applications/{pk}")
    def application_page(request: Request, pk: int,
                         sess: SessionInfo = Depends(reviewer_or_staff)) -> Response:
        try:
            view = svc.application_view(settings, sess.user.username, sess.user.role.value, pk)
        except svc.Forbidden as exc:
            raise _not_found(exc) from None
        call = svc.get_call(settings, view["call_id"])
        mine = next((r for r in view["reviews"] if r["reviewer"] == sess.user.username), None)
        reviewers = [u["username"] for u in users.list_users(settings)
                     if u["role"] == "reviewer" and u.get("active", True)]
        return page(request, "fellowship/application.html", sess, a=view, call=call,
                    mine=mine, reviewers=reviewers, error=request.query_params.get("error"))

    def _back(pk: int, error: str | None = None) -> RedirectResponse:
        from urllib.parse import quote

        return _see_other(f"/fellowship/applications/{pk}"
                          + (f"?error={quote(error)}" if error else ""))

    @app.post("/fellowship/applications/{pk}/coi")
    async def review_coi(request: Request, pk: int,
                         sess: SessionInfo = Depends(csrf_session)) -> Response:
        _only(sess, Role.REVIEWER)
        form = await request.form()
        try:
            svc.declare_coi(settings, sess.user.username, pk, form.get("conflict") == "yes",
                            str(form.get("note") or ""))
        except svc.Forbidden as exc:
            raise _not_found(exc) from None
        return _back(pk)

    @app.post("/fellowship/applications/{pk}/score")
    async def review_score(request: Request, pk: int,
                           sess: SessionInfo = Depends(csrf_session)) -> Response:
        _only(sess, Role.REVIEWER)
        form = await request.form()
        scores = {k[6:]: v for k, v in form.items() if k.startswith("score_")}
        try:
            svc.score_application(settings, sess.user.username, pk, scores,
                                  str(form.get("comment") or ""))
        except svc.Forbidden as exc:
            raise _not_found(exc) from None
        except InputError as exc:
            return _back(pk, str(exc))
        return _back(pk)

    async def _staff_action(request: Request, sess: SessionInfo, pk: int,
                            act: Callable[[FormData], object]) -> Response:
        """One programme-staff button on an application: the action, back to the
        application (the reason on the page when the action is refused)."""
        _only(sess, *STAFF)
        form = await request.form()
        try:
            act(form)
        except InputError as exc:
            return _back(pk, str(exc))
        return _back(pk)

    @app.post("/fellowship/applications/{pk}/assign")
    async def assign(request: Request, pk: int,
                     sess: SessionInfo = Depends(csrf_session)) -> Response:
        return await _staff_action(request, sess, pk, lambda form: svc.assign_reviewer(
            settings, pk, str(form.get("reviewer") or ""), actor=sess.user.username))

    @app.post("/fellowship/applications/{pk}/interview")
    async def interview(request: Request, pk: int,
                        sess: SessionInfo = Depends(csrf_session)) -> Response:
        _only(sess, *STAFF)
        form = await request.form()
        try:
            zone = ZoneInfo(str(form.get("zone") or "Europe/Paris"))
            local = dt.datetime.fromisoformat(str(form.get("starts_at") or ""))
            minutes = int(str(form.get("minutes") or "30"))
        except (ValueError, ZoneInfoNotFoundError):
            return _back(pk, "interview: give the date and time (and a known time zone)")
        try:
            svc.book_interview(settings, pk, local.replace(tzinfo=zone), minutes,
                               str(form.get("location") or "video call"),
                               actor=sess.user.username)
        except InputError as exc:
            return _back(pk, str(exc))
        return _back(pk)

    @app.post("/fellowship/applications/{pk}/decision")
    async def decision(request: Request, pk: int,
                       sess: SessionInfo = Depends(csrf_session)) -> Response:
        return await _staff_action(request, sess, pk, lambda form: svc.set_decision(
            settings, pk, str(form.get("status") or ""), actor=sess.user.username))

    @app.post("/fellowship/slots")
    async def add_slot(request: Request, sess: SessionInfo = Depends(csrf_session)) -> Response:
        from urllib.parse import quote

        _only(sess, *STAFF)
        form = await request.form()
        call_id = _call_id(str(form.get("call") or "") or None)
        try:
            zone = ZoneInfo(str(form.get("zone") or "Europe/Paris"))
            local = dt.datetime.fromisoformat(str(form.get("starts_at") or ""))
            minutes = int(str(form.get("minutes") or "30"))
            svc.add_slot(settings, call_id, local.replace(tzinfo=zone), minutes,
                         str(form.get("location") or "video call"), actor=sess.user.username)
        except (ValueError, ZoneInfoNotFoundError):
            return _see_other(f"/fellowship/admin?call={call_id}&error="
                              + quote("slot: give the date and time (and a known time zone)"))
        except InputError as exc:
            return _see_other(f"/fellowship/admin?call={call_id}&error={quote(str(exc))}")
        return _see_other(f"/fellowship/admin?call={call_id}")

    @app.get("/fellowship/admin")
    def admin_page(request: Request, call: str | None = None,
                   sess: SessionInfo = Depends(require_roles(*STAFF))) -> Response:
        call_id = _call_id(call)
        c = svc.get_call(settings, call_id)
        return page(request, "fellowship/admin.html", sess, call=c,
                    calls=svc.list_calls(settings),
                    apps=svc.list_applications(settings, call_id, username=sess.user.username,
                                               role=sess.user.role.value),
                    fellows=svc.fellows(settings, role="director"),
                    slots=svc.open_slots(settings, call_id, c.host["time_zone"]),
                    error=request.query_params.get("error"))

    # ---------------------------------------------------------------- the year
    def _fellow_page(request: Request, sess: SessionInfo, fid: str, error: str | None = None,
                     status: int = 200) -> Response:
        try:
            book = svc.logbook(settings, fid, username=sess.user.username,
                               role=sess.user.role.value)
        except svc.Forbidden as exc:
            raise _not_found(exc) from None
        f = book["fellow"]
        call = svc.get_call(settings, f["call_id"])
        me = sess.user.username
        is_fellow = me == f["username"] or (
            sess.user.role is Role.APPLICANT and svc.fellow_of_user(settings, me) == fid)
        accounts = users.list_users(settings)
        return page(request, "fellowship/fellow.html", sess, status=status, book=book, f=f,
                    call=call, grant=svc.grant_schedule(settings, f["call_id"]),
                    months=_calendar(f["programme"]), is_fellow=is_fellow,
                    is_mentor=me == f["mentor"], is_staff=sess.user.role in STAFF,
                    stages=svc.RESEARCH_STAGES, states=svc.MILESTONE_STATES,
                    eval_kinds=svc.EVALUATION_KINDS, eval_items=svc.EVALUATION_ITEMS,
                    sections=svc.REPORT_SECTIONS, error=error,
                    clinical_accounts=[u["username"] for u in accounts
                                       if u["role"] in ("fellow", "physician")],
                    mentors=[u["username"] for u in accounts if u["role"] == "mentor"])

    @app.get("/fellowship/fellows/{fid}")
    def fellow_page(request: Request, fid: str,
                    sess: SessionInfo = Depends(current_session)) -> Response:
        return _fellow_page(request, sess, fid, request.query_params.get("error"))

    @app.post("/fellowship/fellows/{fid}/{action}")
    async def fellow_action(request: Request, fid: str, action: str,
                            sess: SessionInfo = Depends(csrf_session)) -> Response:
        from urllib.parse import quote

        form = await request.form()
        me = sess.user.username
        try:
            view = svc.fellow_view(settings, fid, username=me, role=sess.user.role.value)
        except svc.Forbidden as exc:
            raise _not_found(exc) from None
        staff = sess.user.role in STAFF
        is_fellow = me == view["username"] or (
            sess.user.role is Role.APPLICANT and svc.fellow_of_user(settings, me) == fid)

        def need(ok: bool) -> None:
            if not ok:
                raise HTTPException(403, "your role does not allow this")

        try:
            if action == "year":
                need(staff)
                svc.set_year(settings, fid, username=str(form.get("account") or "") or None,
                             mentor=str(form.get("mentor") or "") or None, actor=me)
            elif action == "week":
                need(staff or is_fellow)
                svc.set_week(settings, fid, int(str(form.get("week") or "0")),
                             str(form.get("module") or ""), actor=me)
            elif action == "entry":
                need(is_fellow)
                svc.add_log_entry(settings, fid,
                                  dt.date.fromisoformat(str(form.get("date") or "")),
                                  str(form.get("title") or ""), str(form.get("detail") or ""),
                                  actor=me)
            elif action == "signoff":
                need(me == view["mentor"])
                svc.sign_month(settings, fid, str(form.get("month") or ""), mentor=me,
                               comment=str(form.get("comment") or ""))
            elif action == "evaluation":
                svc.add_evaluation(settings, fid, str(form.get("kind") or ""),
                                   str(form.get("period") or ""),
                                   {k[6:]: v for k, v in form.items() if k.startswith("score_")},
                                   str(form.get("comment") or ""), author=me)
            elif action == "research":
                need(is_fellow or me == view["mentor"])
                milestones = {key: {"status": str(form.get(f"{key}_status") or ""),
                                    "date": str(form.get(f"{key}_date") or ""),
                                    "note": str(form.get(f"{key}_note") or "")}
                              for key, _ in svc.RESEARCH_STAGES}
                collab = [{"name": str(form.get(f"collab_name_{i}") or ""),
                           "role": str(form.get(f"collab_role_{i}") or "")} for i in range(1, 5)]
                svc.update_research(settings, fid, title=str(form.get("title") or ""),
                                    milestones=milestones, collaborators=collab, actor=me)
            elif action == "report-text":
                need(is_fellow)
                svc.save_report_text(settings, fid, {k: str(form.get(k) or "")
                                                     for k in svc.REPORT_SECTIONS}, actor=me)
            elif action == "report-signoff":
                need(me == view["mentor"])
                svc.sign_off_report(settings, fid, mentor=me)
            elif action == "certificate":
                need(staff)
                with tempfile.TemporaryDirectory() as tmp:
                    svc.issue_certificate(settings, fid, Path(tmp) / "c.pdf", actor=me)
            else:
                raise HTTPException(404, f"no action {action!r}")
        except (InputError, ValueError) as exc:
            return _see_other(f"/fellowship/fellows/{fid}?error={quote(str(exc))}")
        except svc.Forbidden as exc:
            raise HTTPException(403, str(exc)) from None
        except svc.OncohybridError as exc:
            return _see_other(f"/fellowship/fellows/{fid}?error={quote(str(exc))}")
        return _see_other(f"/fellowship/fellows/{fid}")

    @app.get("/fellowship/fellows/{fid}/report.pdf")
    def report_pdf(fid: str, sess: SessionInfo = Depends(current_session)) -> Response:
        tmp = Path(tempfile.mkdtemp(dir=settings.home))
        out = tmp / f"final-report-{fid}.pdf"
        try:
            svc.final_report(settings, fid, out, username=sess.user.username,
                             role=sess.user.role.value)
        except svc.Forbidden as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _not_found(exc) from None
        return FileResponse(out, media_type="application/pdf",
                            filename=f"final-report-{fid}.pdf",
                            content_disposition_type="attachment",
                            background=BackgroundTask(shutil.rmtree, tmp, True))

    @app.get("/fellowship/fellows/{fid}/certificate.pdf")
    def certificate_pdf(fid: str, sess: SessionInfo = Depends(current_session)) -> Response:
        try:
            view = svc.fellow_view(settings, fid, username=sess.user.username,
                                   role=sess.user.role.value)
        except svc.Forbidden as exc:
            raise _not_found(exc) from None
        if view["certificate"] is None:
            raise HTTPException(404, "no certificate has been issued yet")
        tmp = Path(tempfile.mkdtemp(dir=settings.home))
        out = tmp / f"certificate-{fid}.pdf"
        svc.issue_certificate(settings, fid, out, actor=sess.user.username)
        return FileResponse(out, media_type="application/pdf",
                            filename=f"certificate-{fid}.pdf",
                            content_disposition_type="attachment",
                            background=BackgroundTask(shutil.rmtree, tmp, True))


def _only(sess: SessionInfo, *roles: Role) -> None:
    if sess.user.role not in roles:
        raise HTTPException(403, "your role does not allow this")


def _calendar(plan: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from oncohybrid.fellowship.programme import by_month

    return [{"month": m, "weeks": weeks} for m, weeks in by_month(plan).items()]
